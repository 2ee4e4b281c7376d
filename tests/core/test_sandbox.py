"""The sandbox emulates the Naturalead sync API: through httpx in-process and over loopback."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from naturalead_sync.models import LIMITS
from naturalead_sync.sandbox import (
    DEFAULT_KEY,
    Faults,
    RequestRecord,
    Sandbox,
    SandboxTransport,
    serve,
)
from support import FakeClock

SYNC = "/api/leads/sync"
OTHER_KEY = "nl_test_" + "c0de" * 16


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    sandbox = Sandbox(tmp_path / "sandbox.db")
    yield sandbox
    sandbox.close()


@pytest.fixture(params=["transport", "server"])
def client(request: pytest.FixtureRequest, box: Sandbox) -> Iterator[httpx.Client]:
    """A client with the default key, in-process or over a loopback server."""
    headers = {"X-API-Key": DEFAULT_KEY}
    if request.param == "transport":
        with httpx.Client(
            base_url="http://sandbox.invalid", headers=headers, transport=SandboxTransport(box)
        ) as http:
            yield http
        return
    with serve(box) as server, httpx.Client(base_url=server.url, headers=headers) as http:
        yield http


def lead(n: int, **fields: Any) -> dict[str, Any]:
    return {"lead_id": f"L{n}", "name": f"Lead {n}", "phone": f"+1415555{n:04d}", **fields}


def post(
    http: httpx.Client,
    *leads: dict[str, Any],
    source: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"leads": list(leads)}
    if source is not None:
        body["source"] = source
    return http.post(SYNC, json=body, headers=headers)


def stored(box: Sandbox, lead_id: str) -> dict[str, Any]:
    found = box.lead(lead_id)
    assert found is not None, f"{lead_id} is not stored"
    return found


def eventually_stored(box: Sandbox, lead_id: str) -> dict[str, Any]:
    """Wait (bounded) for a server thread to commit ``lead_id``."""
    deadline = time.monotonic() + 10
    while (found := box.lead(lead_id)) is None:
        assert time.monotonic() < deadline, f"{lead_id} was never stored"
        time.sleep(0.01)
    return found


def delete(http: httpx.Client, body: Any, **kwargs: Any) -> httpx.Response:
    return http.request("DELETE", SYNC, content=json.dumps(body), **kwargs)


# -- auth -------------------------------------------------------------------------------------


def test_auth_errors(client: httpx.Client, box: Sandbox) -> None:
    body = {"leads": [lead(1)]}
    request = client.build_request("POST", SYNC, json=body)
    del request.headers["X-API-Key"]
    missing = client.send(request)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "Authentication required. Provide an API key via X-API-Key header or "
        "Authorization: Bearer header."
    }
    unknown = client.post(SYNC, json=body, headers={"X-API-Key": OTHER_KEY})
    assert (unknown.status_code, unknown.json()) == (401, {"error": "Invalid or expired API key"})
    assert "RateLimit-Limit" not in unknown.headers

    box.add_key(OTHER_KEY, ["leads:sync_create"])
    other = {"X-API-Key": OTHER_KEY}
    forbidden = delete(client, {"lead_ids": ["L1"]}, headers=other)
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "error": "Forbidden",
        "message": "API key does not have the required scope (requires: leads:sync_delete).",
    }
    assert forbidden.headers["RateLimit-Remaining"] == "50"  # shown, not spent
    listing = client.get("/api/leads", headers=other)
    assert listing.status_code == 403
    assert "leads:view" in listing.json()["message"]
    assert post(client, lead(1)).status_code == 200  # the default key
    assert client.post(SYNC, json=body, headers=other).status_code == 200
    assert box.request_log[-1].status == 200
    assert box.request_log[0].status == 401


def test_bearer_is_accepted_and_x_api_key_wins(client: httpx.Client) -> None:
    body = {"leads": [lead(1)]}
    request = client.build_request("POST", SYNC, json=body)
    del request.headers["X-API-Key"]
    request.headers["Authorization"] = f"Bearer {DEFAULT_KEY}"
    assert client.send(request).status_code == 200
    both_bad_first = {"X-API-Key": OTHER_KEY, "Authorization": f"Bearer {DEFAULT_KEY}"}
    assert client.post(SYNC, json=body, headers=both_bad_first).status_code == 401
    both_good_first = {"X-API-Key": DEFAULT_KEY, "Authorization": f"Bearer {OTHER_KEY}"}
    assert client.post(SYNC, json=body, headers=both_good_first).status_code == 200


# -- upsert -----------------------------------------------------------------------------------


def test_upsert_creates_then_updates_keeping_omitted_fields(
    client: httpx.Client, box: Sandbox
) -> None:
    first = post(
        client,
        lead(1, email="a@example.com", customFields={"company": "Acme", "size": 5}, tags=["x"]),
        lead(2),
        source="hubspot",
    )
    assert first.status_code == 200
    assert first.json() == {"total": 2, "created": 2, "updated": 0, "failed": 0, "errors": []}
    assert first.headers["RateLimit-Limit"] == "50"
    first_l1 = stored(box, "L1")
    assert first_l1["source"] == "hubspot"
    assert first_l1["customFields"] == {"company": "Acme", "size": 5}
    assert set(first_l1) == {
        "id", "lead_id", "name", "phone", "email", "customFields", "tags", "source",
        "createdAt", "updatedAt",
    }  # fmt: skip

    update = {"lead_id": "L1", "name": "Renamed", "customFields": {"stage": "won"}, "tags": []}
    second = post(client, update, lead(3), {"lead_id": "L3", "email": "c@example.com"})
    assert second.json() == {"total": 3, "created": 1, "updated": 2, "failed": 0, "errors": []}
    l1 = stored(box, "L1")
    assert l1["name"] == "Renamed"
    assert l1["email"] == "a@example.com"
    assert l1["phone"] == "+14155550001"
    assert l1["source"] == "hubspot"
    assert l1["customFields"] == {"stage": "won"}
    assert l1["tags"] == []
    assert l1["id"] == first_l1["id"]
    assert l1["createdAt"] == first_l1["createdAt"]
    third = stored(box, "L3")
    assert third["name"] == "Lead 3"
    assert third["email"] == "c@example.com"
    assert third["source"] == "api"
    assert [item["lead_id"] for item in box.leads()] == ["L1", "L2", "L3"]

    listed = client.get("/api/leads", params={"skip": 1, "limit": 1})
    assert [item["lead_id"] for item in listed.json()] == ["L2"]
    assert len(client.get("/api/leads", params={"limit": 500}).json()) == 3
    assert client.get("/api/leads", params={"skip": "x"}).status_code == 400


def test_per_lead_errors_do_not_roll_back_the_others(client: httpx.Client, box: Sandbox) -> None:
    answer = post(
        client,
        lead(1),
        {"name": "no id"},
        lead(3, phone="4155550003"),
        lead(4, email="nobody@localhost"),
        lead(5, name="x" * (LIMITS.name + 1)),
        {"lead_id": 6},
        lead(7, email="seven@example.com"),
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["total"], body["created"], body["updated"], body["failed"]) == (7, 2, 0, 5)
    assert body["errors"] == [
        {"lead_id": None, "index": 1, "error": "lead_id is required"},
        {"lead_id": "L3", "index": 2, "error": "phone must be in E.164 format"},
        {"lead_id": "L4", "index": 3, "error": "email is invalid"},
        {"lead_id": "L5", "index": 4, "error": "name is too long"},
        {"lead_id": None, "index": 5, "error": "lead_id is required"},
    ]
    assert [item["lead_id"] for item in box.leads()] == ["L1", "L7"]


def test_phone_collision_is_a_per_lead_error(client: httpx.Client, box: Sandbox) -> None:
    assert post(client, lead(1)).json()["created"] == 1
    clash = post(client, lead(2, phone="+14155550001"), lead(1, name="same phone, same lead"))
    assert clash.json()["errors"] == [
        {"lead_id": "L2", "index": 0, "error": "phone +14155550001 already belongs to another lead"}
    ]
    assert clash.json()["updated"] == 1
    # Processed in order: once L1 moves away, the phone is free within the same batch.
    moved = post(client, lead(1, phone="+14155559999"), lead(2, phone="+14155550001"))
    assert (moved.json()["updated"], moved.json()["created"]) == (1, 1)
    duplicate = post(client, lead(8), lead(8, name="second wins"))
    assert (duplicate.json()["created"], duplicate.json()["updated"]) == (1, 1)
    assert stored(box, "L8")["name"] == "second wins"


@pytest.mark.parametrize(
    ("content", "error", "details"),
    [
        (b"{not json", "Invalid JSON body", None),
        (b"[]", "leads must be an array", None),
        (b'{"leads": {}}', "leads must be an array", None),
        (b'{"leads": []}', "leads must not be empty", None),
        (
            json.dumps({"leads": [lead(n) for n in range(101)]}).encode(),
            "Too many leads: maximum 100 per request",
            "got 101",
        ),
        (json.dumps({"leads": [lead(1), "L2"]}).encode(), "each lead must be an object", "index 1"),
        (json.dumps({"leads": [lead(1, tags="vip")]}).encode(), "tags must be an array", "index 0"),
        (json.dumps({"leads": [lead(1, tags=[1])]}).encode(), "tags must be an array", "index 0"),
        (
            json.dumps({"leads": [lead(1), lead(2, customFields=["a"])]}).encode(),
            "customFields must be a key-value object",
            "index 1",
        ),
    ],
)
def test_whole_request_400_writes_nothing(
    client: httpx.Client, box: Sandbox, content: bytes, error: str, details: str | None
) -> None:
    answer = client.post(SYNC, content=content, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    expected = {"error": error} if details is None else {"error": error, "details": details}
    assert answer.json() == expected
    assert box.leads() == []
    assert answer.headers["RateLimit-Remaining"] == "49"  # a 400 spends a request


def test_strict_mode_fails_the_whole_batch_on_the_first_bad_lead(
    client: httpx.Client, box: Sandbox
) -> None:
    box.faults = Faults(whole_batch_400=True)
    post(client, lead(1))
    answer = post(client, lead(2), lead(3, phone="+14155550001"), lead(4, email="bad"))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "phone +14155550001 already belongs to another lead",
        "details": "lead_id L3: phone +14155550001 already belongs to another lead",
    }
    assert [item["lead_id"] for item in box.leads()] == ["L1"]
    missing = post(client, lead(2), {"name": "no id"})
    assert missing.json()["details"] == "index 1: lead_id is required"
    assert post(client, lead(2), lead(3)).json()["created"] == 2


# -- delete, routing ------------------------------------------------------------------------


def test_delete_counts_and_rejections(client: httpx.Client, box: Sandbox) -> None:
    post(client, lead(1), lead(2), lead(3))
    answer = delete(client, {"lead_ids": ["L1", "L2", "nope", "L1"]})
    assert answer.status_code == 200
    assert answer.json() == {"total": 4, "deleted": 2, "notFound": 2}
    assert [item["lead_id"] for item in box.leads()] == ["L3"]
    assert box.request_log[-1].items == 4
    assert box.request_log[-1].method == "DELETE"
    for body, error in [
        ({"lead_ids": []}, "lead_ids must not be empty"),
        ({"lead_ids": "L3"}, "lead_ids must be an array of strings"),
        ({"lead_ids": [3]}, "lead_ids must be an array of strings"),
        ({"lead_ids": [f"x{n}" for n in range(101)]}, "Too many lead_ids: maximum 100 per request"),
    ]:
        refused = delete(client, body)
        assert (refused.status_code, refused.json()["error"]) == (400, error)
    assert [item["lead_id"] for item in box.leads()] == ["L3"]


def test_unknown_path_and_wrong_method(client: httpx.Client) -> None:
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/nothing").json() == {"error": "Not found"}
    wrong = client.get(SYNC)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST, DELETE"
    assert client.put(SYNC, json={}).status_code == 405


# -- rate limiting ----------------------------------------------------------------------------


def test_compressed_window_rate_limit_with_headers() -> None:
    clock = FakeClock(1000.0)
    box = Sandbox(requests_per_window=3, window_seconds=2.0, clock=clock)
    http = httpx.Client(
        base_url="http://sandbox.invalid",
        headers={"X-API-Key": DEFAULT_KEY},
        transport=SandboxTransport(box, owns_sandbox=True),
    )
    seen = []
    for step in (0.0, 0.5, 0.5):
        clock.advance(step)
        answer = post(http, lead(1))
        seen.append((answer.headers["RateLimit-Remaining"], answer.headers["RateLimit-Reset"]))
    assert seen == [("2", "2.000"), ("1", "1.500"), ("0", "1.000")]
    box.add_key(OTHER_KEY, ["leads:sync_create"])
    assert post(http, lead(2), headers={"X-API-Key": OTHER_KEY}).status_code == 200  # own bucket

    clock.advance(0.2)
    for _ in range(3):  # refused requests do not count, and DELETE shares the bucket
        refused = delete(http, {"lead_ids": ["L1"]})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "0.800"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.json() == {
            "error": "Sync API rate limit exceeded. Maximum 3 batch requests per minute."
        }
    assert box.lead("L1") is not None
    clock.advance(0.8)  # the first request leaves the window
    freed = delete(http, {"lead_ids": ["L1"]})
    assert freed.status_code == 200
    assert freed.headers["RateLimit-Remaining"] == "0"
    assert freed.headers["RateLimit-Reset"] == "0.500"
    assert [r.rate_limited for r in box.request_log] == [False] * 4 + [True] * 3 + [False]
    record = box.request_log[4]
    assert isinstance(record, RequestRecord)
    assert record.received == pytest.approx(1001.2)
    assert (record.method, record.path, record.status, record.items) == ("DELETE", SYNC, 429, 1)
    http.close()


def test_whole_second_headers_for_real_windows() -> None:
    clock = FakeClock(1000.0)
    box = Sandbox(requests_per_window=2, clock=clock)
    http = httpx.Client(
        base_url="http://sandbox.invalid",
        headers={"X-API-Key": DEFAULT_KEY},
        transport=SandboxTransport(box, owns_sandbox=True),
    )
    assert post(http, lead(1)).headers["RateLimit-Reset"] == "60"
    clock.advance(0.25)
    assert post(http, lead(1)).headers["RateLimit-Reset"] == "60"  # 59.75, rounded up
    clock.advance(20.5)
    refused = post(http, lead(1))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40"
    http.close()


# -- faults -----------------------------------------------------------------------------------


def test_scripted_failures_write_nothing(client: httpx.Client, box: Sandbox) -> None:
    box.script("500", "429", "400", "ok")
    unavailable = post(client, lead(1))
    assert (unavailable.status_code, unavailable.json()) == (
        503,
        {"error": "Service unavailable"},
    )
    limited = post(client, lead(1))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert post(client, lead(1)).status_code == 400
    assert box.leads() == []
    last = post(client, lead(1))
    assert last.status_code == 200
    assert last.headers["RateLimit-Remaining"] == "47"  # the 503 and the 400 spent one each
    assert [r.status for r in box.request_log] == [503, 429, 400, 200]
    assert [r.rate_limited for r in box.request_log] == [False, True, False, False]
    assert [r.action for r in box.request_log] == ["500", "429", "400", "ok"]
    with pytest.raises(ValueError, match="unknown sandbox action"):
        box.script("boom")


def test_faults_come_after_auth_and_skip_other_endpoints(
    client: httpx.Client, box: Sandbox
) -> None:
    box.script("500")
    assert post(client, lead(1), headers={"X-API-Key": OTHER_KEY}).status_code == 401
    assert client.get("/api/leads").status_code == 200
    assert post(client, lead(1)).status_code == 503  # the script was still waiting


def test_drop_commits_the_write_then_loses_the_answer(client: httpx.Client, box: Sandbox) -> None:
    box.script("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, lead(1))
    eventually_stored(box, "L1")
    assert box.request_log[-1].action == "drop"
    assert post(client, lead(1)).json()["updated"] == 1  # the retry is an idempotent update


def test_slow_answer_beyond_the_timeout_times_out_after_committing(
    client: httpx.Client, box: Sandbox
) -> None:
    box.faults = Faults(slow_seconds=0.5)
    box.script("slow")
    with pytest.raises(httpx.ReadTimeout):
        client.post(SYNC, json={"leads": [lead(1)]}, timeout=0.1)
    eventually_stored(box, "L1")


def test_slow_answers_within_the_timeout_arrive(client: httpx.Client, box: Sandbox) -> None:
    box.faults = Faults(slow_seconds=0.05)
    box.script("slow")
    answer = client.post(SYNC, json={"leads": [lead(1)]}, timeout=5.0)
    assert answer.status_code == 200
    assert answer.json()["created"] == 1


def test_random_faults_follow_the_seed() -> None:
    def statuses(seed: int) -> list[int]:
        box = Sandbox(requests_per_window=1000, faults=Faults(error_rate=0.5, seed=seed))
        http = httpx.Client(
            base_url="http://sandbox.invalid",
            headers={"X-API-Key": DEFAULT_KEY},
            transport=SandboxTransport(box, owns_sandbox=True),
        )
        with http:
            return [post(http, lead(n)).status_code for n in range(40)]

    first = statuses(7)
    assert first == statuses(7)
    assert set(first) == {200, 503}
    box = Sandbox(faults=Faults(rate_limit_burst_rate=1.0))
    answer = box.handle("POST", SYNC, {"X-API-Key": DEFAULT_KEY}, b'{"leads": []}')
    assert answer.status == 429
    assert answer.headers["RateLimit-Remaining"] == "0"
    box.faults = Faults(drop_after_commit_rate=1.0)
    body = json.dumps({"leads": [lead(1)]}).encode()
    answer = box.handle("POST", SYNC, {"x-api-key": DEFAULT_KEY}, body)
    assert (answer.action, answer.status) == ("drop", 200)
    assert stored(box, "L1")["name"] == "Lead 1"
    box.close()


def test_request_log_names_each_fault_and_never_the_key(caplog: pytest.LogCaptureFixture) -> None:
    logger = "naturalead_sync.sandbox.app"
    body = json.dumps({"leads": [lead(1), lead(2)]}).encode()
    headers = {"X-API-Key": DEFAULT_KEY}
    quiet = Sandbox()  # in-process (a run's embedded destination): no request lines
    quiet.handle("POST", SYNC, headers, body)
    quiet.close()
    assert not [r for r in caplog.records if r.name == logger]

    box = Sandbox(faults=Faults(drop_after_commit_rate=1.0), log_requests=True)
    box.handle("POST", SYNC, headers, body)
    box.faults = Faults(slow_rate=1.0, slow_seconds=0.5)
    box.handle("DELETE", SYNC, headers, json.dumps({"lead_ids": ["L1"]}).encode())
    box.faults = Faults(rate_limit_burst_rate=1.0)
    box.handle("POST", SYNC, headers, body)
    box.faults = Faults()
    box.script("500", "400")
    box.handle("POST", SYNC, headers, body)
    box.handle("POST", SYNC, headers, body)
    box.handle("GET", "/api/leads?limit=1&skip=0", headers, b"")
    box.handle("POST", SYNC, {"X-API-Key": OTHER_KEY}, body)
    box.handle("GET", "/elsewhere", headers, b"")
    box.close()
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == logger] == [
        (
            "INFO",
            "POST /api/leads/sync 200 · 2 lead(s) · fault: committed, then the connection "
            "dropped unanswered (--drop-rate)",
        ),
        (
            "INFO",
            "DELETE /api/leads/sync 200 · 1 lead(s) · fault: committed, answered late "
            "(--slow-rate)",
        ),
        (
            "INFO",
            "POST /api/leads/sync 429 · 2 lead(s) · fault: 429 under the limit (--burst-429-rate)",
        ),
        ("INFO", "POST /api/leads/sync 503 · 2 lead(s) · fault: 503 (scripted)"),
        ("INFO", "POST /api/leads/sync 400 · 2 lead(s) · fault: whole-batch 400 (scripted)"),
        ("INFO", "GET /api/leads 200 · 1 lead(s)"),
        ("INFO", "POST /api/leads/sync 401 · 2 lead(s)"),
        ("INFO", "GET /elsewhere 404"),
    ]


# -- persistence ------------------------------------------------------------------------------


def test_leads_and_keys_persist_across_sandboxes(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "sandbox.db"
    first = Sandbox(path)
    first.add_key(OTHER_KEY, ["leads:sync_create", "leads:view"])
    headers = {"X-API-Key": OTHER_KEY}
    answer = first.handle("POST", SYNC, headers, json.dumps({"leads": [lead(1)]}).encode())
    assert answer.status == 200
    first.close()

    second = Sandbox(path)
    assert [item["lead_id"] for item in second.leads()] == ["L1"]
    assert second.request_log == []  # in memory only
    listed = second.handle("GET", "/api/leads?limit=10", headers, b"")
    assert [item["lead_id"] for item in json.loads(listed.body)] == ["L1"]
    second.close()

    raw = b"".join(part.read_bytes() for part in path.parent.iterdir())
    assert OTHER_KEY.encode() not in raw
    assert DEFAULT_KEY.encode() not in raw
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_server_closes_cleanly(box: Sandbox) -> None:
    server = serve(box)
    assert server.url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=server.url, headers={"X-API-Key": DEFAULT_KEY}) as http:
        assert post(http, lead(1)).status_code == 200  # a keep-alive connection stays open
        server.close()
        server.close()
        with pytest.raises(httpx.TransportError):
            post(http, lead(2))
    assert [item["lead_id"] for item in box.leads()] == ["L1"]
