"""The custom connector's REST source against a small JSON API on loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest

from naturalead_sync import ConnectorContext, ConnectorError, Window
from naturalead_sync.conformance import ConnectorConformance
from naturalead_sync.loopback import HTTPAnswer, LoopbackServer, serve
from naturalead_sync_custom import CustomConnector, CustomSettings
from support import SourceClock

EVERYTHING = Window(None, datetime(2100, 1, 1, tzinfo=UTC))


class LeadsApi:
    """``GET /leads`` and ``GET /deleted``, paged as ``mode`` says, behind a bearer token."""

    def __init__(self, mode: str = "cursor", *, stuck: bool = False) -> None:
        self.mode = mode
        self.stuck = stuck  # hands back the same cursor or link forever
        self.records: dict[str, dict[str, Any]] = {}
        self.deleted: list[tuple[str, datetime]] = []
        self.requests: list[str] = []
        self.base = ""

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        self.requests.append(path)
        auth = headers.get("Authorization", "")
        if auth not in ("Bearer t0ken", "Basic " + base64.b64encode(b"u:p").decode()):
            return HTTPAnswer(401, {}, b'{"error": "unauthorized"}')
        url = urlsplit(path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        since = query.get("updated_since")
        if url.path == "/deleted":
            items = [
                {"id": i} for i, at in self.deleted if since is None or at.isoformat() >= since
            ]
            return HTTPAnswer(200, {}, json.dumps({"data": items}).encode())
        rows = sorted(self.records.values(), key=lambda r: (r["meta"]["updated"], str(r.get("id"))))
        if since is not None:
            rows = [r for r in rows if r["meta"]["updated"] >= since.replace("Z", "+00:00")]
        size = int(query.get("limit", 100))
        start = {
            "page": (int(query.get("page", 1)) - 1) * size,
            "offset": int(query.get("offset", 0)),
            "cursor": int(query.get("cursor", 0)),
            "link": int(query.get("after", 0)),
        }[self.mode]
        page = rows[start : start + size]
        nxt = 0 if self.stuck else start + size
        headers_out: dict[str, str] = {}
        answer: dict[str, Any] = {"data": page}
        if self.mode == "cursor":
            answer["paging"] = {"next": str(nxt) if start + size < len(rows) else None}
        if self.mode == "link" and start + size < len(rows):
            link = f"{self.base}/leads?after={nxt}&limit={size}"
            if since is not None:
                link += f"&updated_since={since}"
            headers_out["Link"] = f'<{link}>; rel="next"'
        return HTTPAnswer(200, headers_out, json.dumps(answer).encode())


class RestHarness(SourceClock):
    """The API's records with a clock; deletes go to the deleted-records endpoint."""

    connector = "custom"
    deletes: Literal["feed", "reconcile"] = "feed"

    def __init__(self, server: LoopbackServer, api: LeadsApi) -> None:
        super().__init__()
        self.api = api
        self.settings: dict[str, Any] = {
            "source": "rest",
            "url": f"{server.url}/leads",
            "auth": "bearer",
            "token": "t0ken",
            "pagination": "cursor",
            "cursor_path": "paging.next",
            "records_path": "data",
            "modified_path": "meta.updated",
            "updated_since_param": "updated_since",
            "deleted_url": f"{server.url}/deleted",
        }

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        ids = []
        for n, at in self.numbered(count, same_time=same_time):
            self.api.records[str(n)] = {
                "id": n,
                "first_name": f"First{n}",
                "last_name": f"Last{n}",
                "email": f"lead{n}@example.com",
                "meta": {"updated": at.isoformat()},
            }
            ids.append(str(n))
        return ids

    def update(self, native_id: str, marker: str) -> None:
        record = self.api.records[native_id]
        record.update(first_name=marker, meta={"updated": self.clock.isoformat()})

    def delete(self, native_id: str) -> None:
        del self.api.records[native_id]
        self.api.deleted.append((native_id, self.clock))


@pytest.fixture
def api() -> Iterator[tuple[LeadsApi, LoopbackServer]]:
    app = LeadsApi()
    with serve(app) as server:
        app.base = server.url
        yield app, server


class TestRestConformance(ConnectorConformance):
    @pytest.fixture
    def source(self, api: tuple[LeadsApi, LoopbackServer]) -> RestHarness:
        return RestHarness(api[1], api[0])


def connect(settings: dict[str, Any], bad: list[str] | None = None) -> CustomConnector:
    sink = None if bad is None else (lambda where, why, rid: bad.append(f"{where}: {why}"))
    context = ConnectorContext(connection="t", base_dir=Path.cwd(), bad_record_sink=sink)
    return CustomConnector(CustomSettings.model_validate(settings), context)


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("page", {"pagination": "page"}),
        ("offset", {"pagination": "offset"}),
        ("cursor", {"pagination": "cursor", "cursor_path": "paging.next"}),
        ("link", {"pagination": "link", "size_param": None, "params": {"limit": "7"}}),
    ],
)
def test_every_pagination_reads_every_record_once(mode: str, extra: dict[str, Any]) -> None:
    app = LeadsApi(mode)
    with serve(app) as server:
        app.base = server.url
        harness = RestHarness(server, app)
        ids = harness.create(23)
        settings = {**harness.settings, **extra, "page_size": 7, "auth": "basic"}
        settings.update(username="u", password="p", token=None)
        connector = connect(settings)
        try:
            assert sorted(r.id for r in connector.fetch_changed(EVERYTHING)) == sorted(ids)
            assert sorted(connector.fetch_all_ids()) == sorted(ids)
            assert [r.id for r in connector.fetch_by_ids(["5", "nope"])] == ["5"]
        finally:
            connector.close()


@pytest.mark.parametrize("mode", ["cursor", "link", "page"])
def test_a_page_loop_without_progress_stops_with_an_error(mode: str) -> None:
    app = LeadsApi(mode, stuck=True)
    with serve(app) as server:
        app.base = server.url
        harness = RestHarness(server, app)
        harness.create(30)
        extra = {"pagination": mode, "page_size": 7, "params": {"limit": "7"}}
        if mode == "page":  # the API ignores the page number: the same records again
            app.mode = "offset"
        connector = connect({**harness.settings, **extra})
        try:
            with pytest.raises(ConnectorError, match=r"never end|repeats the previous page"):
                list(connector.fetch_changed(EVERYTHING))
        finally:
            connector.close()
        assert len(app.requests) <= 3


def test_max_pages_bounds_a_listing(api: tuple[LeadsApi, LoopbackServer]) -> None:
    harness = RestHarness(api[1], api[0])
    harness.create(30)
    connector = connect({**harness.settings, "params": {"limit": "5"}, "max_pages": 2})
    with pytest.raises(ConnectorError, match=r"settings\.max_pages"):
        list(connector.fetch_changed(EVERYTHING))


def test_bad_records_are_reported_and_the_others_go_on(
    api: tuple[LeadsApi, LoopbackServer],
) -> None:
    harness = RestHarness(api[1], api[0])
    harness.create(3)
    api[0].records["2"]["meta"] = {"updated": "soon"}
    api[0].records["x"] = {"name": "no id", "meta": {"updated": "2026-03-01T00:00:00Z"}}
    bad: list[str] = []
    connector = connect(harness.settings, bad)
    assert sorted(r.id for r in connector.fetch_changed(EVERYTHING)) == ["1", "3"]
    assert len(bad) == 2
    assert any("settings.modified_path" in line for line in bad)
    assert any("settings.id_path" in line for line in bad)


def test_refused_credentials_name_the_auth_settings(
    api: tuple[LeadsApi, LoopbackServer],
) -> None:
    harness = RestHarness(api[1], api[0])
    connector = connect({**harness.settings, "token": "wrong-secret"})
    with pytest.raises(ConnectorError, match=r"settings\.auth") as caught:
        connector.check()
    assert "wrong-secret" not in str(caught.value)
    with pytest.raises(ValueError, match="needs token"):
        CustomSettings.model_validate({**harness.settings, "token": None})
    with pytest.raises(ConnectorError, match=r"settings\.records_path"):
        list(connect({**harness.settings, "records_path": "nope"}).fetch_changed(EVERYTHING))
