"""The Naturalead client: auth errors, retries, splitting and defensive parsing.

Odd answers the sandbox never gives (HTML pages, errors without lead_id, unknown counters)
come from ``httpx.MockTransport`` handlers: pure protocol logic, no network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from naturalead_sync import AuthError, DestinationError, TransientError
from naturalead_sync.client import NaturaleadClient
from naturalead_sync.config import LimitsConfig, RetryConfig
from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox, SandboxTransport

KEY = "nl_live_" + "f" * 60 + "c0de"
FAST = RetryConfig(
    backoff_initial=timedelta(milliseconds=1), backoff_max=timedelta(milliseconds=5), max_attempts=4
)


def leads(*ids: str) -> list[dict[str, str]]:
    return [{"lead_id": i, "name": f"Lead {i}"} for i in ids]


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> NaturaleadClient:
    return NaturaleadClient(
        "https://api.example.test", KEY, retry=FAST, transport=httpx.MockTransport(handler), **kw
    )


def test_bad_key_stops_with_a_message_that_hides_the_key(sandbox: Sandbox) -> None:
    client = NaturaleadClient("http://sandbox.invalid", KEY, transport=SandboxTransport(sandbox))
    with pytest.raises(AuthError) as caught:
        client.upsert("t", leads("1"))
    message = str(caught.value)
    assert "401" in message and "…c0de" in message and "destination.api_key" in message
    assert KEY not in message and KEY not in repr(client)
    assert client.stats.retries == 0


def test_missing_delete_scope_names_the_scope_and_the_owner_rule(sandbox: Sandbox) -> None:
    sandbox.add_key(KEY, ["leads:sync_create"])
    client = NaturaleadClient("http://sandbox.invalid", KEY, transport=SandboxTransport(sandbox))
    assert client.upsert("t", leads("1")).accepted == ["1"]
    with pytest.raises(AuthError, match=r"lacks the scope leads:sync_delete.*Only an Owner"):
        client.delete(["1"])


def test_check_proves_key_and_scopes(sandbox: Sandbox) -> None:
    client = NaturaleadClient(
        "http://sandbox.invalid", DEFAULT_KEY, transport=SandboxTransport(sandbox)
    )
    assert client.check() == ["leads:sync_create", "leads:sync_delete"]


def test_batches_are_sent_with_source_and_key_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"total": 2, "created": 2, "updated": 0, "errors": []})

    result = mock_client(handler).upsert("hubspot", leads("a", "b"))
    assert result.accepted == ["a", "b"] and result.created == 2
    request = seen[0]
    assert (request.method, request.url.path) == ("POST", "/api/leads/sync")
    assert request.headers["x-api-key"] == KEY
    assert json.loads(request.content) == {"source": "hubspot", "leads": leads("a", "b")}


def test_delete_sends_its_body() -> None:
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.method, json.loads(request.content)))
        return httpx.Response(200, json={"total": 2, "deleted": 1, "notFound": 1})

    result = mock_client(handler).delete(["a", "b"])
    assert (result.deleted, result.not_found) == (1, 1)
    assert bodies == [("DELETE", {"lead_ids": ["a", "b"]})]


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(
            200, text="<html>proxy says hi</html>", headers={"content-type": "text/html"}
        ),
        httpx.Response(502, text="<html>Bad gateway</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
)
def test_unusable_answers_are_retried_then_fail_clearly(answer: httpx.Response) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answer

    with pytest.raises(TransientError, match="failed 4 times"):
        mock_client(handler).upsert("t", leads("1"))
    assert len(calls) == FAST.max_attempts


def test_errors_without_lead_id_are_attributed_by_splitting() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = [lead["lead_id"] for lead in json.loads(request.content)["leads"]]
        errors = [{"message": "bad"}] if "c" in sent else []
        return httpx.Response(200, json={"errors": errors})

    result = mock_client(handler).upsert("t", leads("a", "b", "c", "d"))
    assert sorted(result.accepted) == ["a", "b", "d"]
    assert result.rejected == {"c": "bad"}


def test_encoded_leads_are_sent_as_given_and_split_with_their_leads() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        sent = [lead["lead_id"] for lead in json.loads(request.content)["leads"]]
        if "b" in sent:
            return httpx.Response(422, json={"message": "phone taken"})
        return httpx.Response(200, json={"errors": []})

    # Keys in another order than json.dumps gives them, and an escaped letter: sent verbatim.
    encoded = [f'{{"name":"L\\u00e9ad {i}","lead_id":"{i}"}}' for i in "abc"]
    result = mock_client(handler).upsert("t", leads("a", "b", "c"), encoded)
    assert bodies == [
        f'{{"source":"t","leads":[{encoded[0]},{encoded[1]},{encoded[2]}]}}'.encode(),
        f'{{"source":"t","leads":[{encoded[0]}]}}'.encode(),
        f'{{"source":"t","leads":[{encoded[1]},{encoded[2]}]}}'.encode(),
        f'{{"source":"t","leads":[{encoded[1]}]}}'.encode(),
        f'{{"source":"t","leads":[{encoded[2]}]}}'.encode(),
    ]
    assert result.accepted == ["a", "c"] and result.rejected == {"b": "422 phone taken"}
    with pytest.raises(ValueError, match="3 leads but 2 encoded leads"):
        mock_client(handler).upsert("t", leads("a", "b", "c"), encoded[:2])


@pytest.mark.parametrize("base", ["https://api.example.test/nl", "https://api.example.test/nl/"])
def test_a_base_url_with_a_path_keeps_it(base: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        return httpx.Response(200, json={"errors": [], "deleted": 1})

    client = NaturaleadClient(base, KEY, retry=FAST, transport=httpx.MockTransport(handler))
    client.upsert("t", leads("1"))
    client.delete(["1"])
    assert seen == [
        "POST https://api.example.test/nl/api/leads/sync",
        "DELETE https://api.example.test/nl/api/leads/sync",
    ]


def test_error_entries_by_index_and_unknown_fields_are_tolerated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"summary": {"x": 1}, "errors": [{"index": 1, "error": "phone taken"}]}
        )

    with caplog.at_level(logging.INFO):
        result = mock_client(handler).upsert("t", leads("a", "b"))
    assert result.rejected == {"b": "phone taken"} and result.accepted == ["a"]
    assert "unknown field(s): summary" in caplog.text


def test_429_waits_retry_after_then_succeeds() -> None:
    answers = [
        httpx.Response(
            429, headers={"Retry-After": "7"}, json={"error": "Sync API rate limit exceeded."}
        ),
        httpx.Response(200, json={"errors": []}),
    ]
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = mock_client(lambda request: answers.pop(0), sleep=sleep, clock=lambda: now[0])
    assert client.upsert("t", leads("1")).accepted == ["1"]
    assert client.stats.rate_limited == 1
    assert 7.0 <= sum(slept) <= 7.2


def test_ratelimit_remaining_zero_defers_the_next_request() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={}, headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "30"}
        )

    client = mock_client(
        handler,
        sleep=sleep,
        clock=lambda: now[0],
        limits=LimitsConfig(window=timedelta(seconds=60)),
    )
    client.upsert("t", leads("1"))
    client.upsert("t", leads("2"))
    assert now[0] == pytest.approx(30.0)


def test_an_empty_server_window_the_pacer_counted_too_waits_the_exact_time() -> None:
    """RateLimit-Reset is rounded up to whole seconds: when the pacer's own window is full,
    its wait (to the millisecond) wins over the header."""
    now = [0.0]
    sent_at: list[float] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(now[0])
        now[0] += 0.25  # the round trip
        remaining = 2 - len(sent_at)
        headers = {"RateLimit-Remaining": str(max(remaining, 0)), "RateLimit-Reset": "60"}
        return httpx.Response(200, json={}, headers=headers)

    client = mock_client(
        handler,
        sleep=sleep,
        clock=lambda: now[0],
        limits=LimitsConfig(requests_per_window=2, window=timedelta(seconds=60)),
    )
    for lead_id in ("1", "2", "3"):
        client.upsert("t", leads(lead_id))
    # The first answer arrived at 0.25 s: the third request leaves a window later, not 60 s
    # after the second answer (60.5 s).
    assert sent_at == [0.0, 0.25, pytest.approx(60.25)]


def test_unexpected_client_error_is_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(405, json={"error": "Method not allowed"})

    with pytest.raises(DestinationError, match="405"):
        mock_client(handler).upsert("t", leads("1"))
    assert calls == [1]


def test_whole_batch_400_on_delete_is_split_to_the_bad_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["lead_ids"]
        if "bad" in ids:
            return httpx.Response(400, json={"error": "invalid lead id"})
        return httpx.Response(200, json={"total": len(ids), "deleted": len(ids), "notFound": 0})

    result = mock_client(handler).delete(["a", "b", "bad", "c", "d"])
    assert (result.deleted, result.not_found) == (4, 0)
    assert result.rejected == {"bad": "400 invalid lead id"}
