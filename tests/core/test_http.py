"""The connectors' retrying transport and the shared HTTP helpers."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from naturalead_sync import ConnectorContext
from naturalead_sync.http import (
    RetryPolicy,
    RetryTransport,
    backoff_delay,
    redact_url,
    retry_after,
)
from support import FakeClock, run_process

FAST = RetryPolicy(max_attempts=4, max_elapsed=60.0, backoff_initial=0.5, backoff_max=2.0)


def scripted(*statuses: int, seen: list[httpx.Request]) -> httpx.MockTransport:
    answers = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = answers.pop(0) if answers else 200
        headers = {"Retry-After": "3"} if status == 429 else {}
        return httpx.Response(status, headers=headers, json={"status": status})

    return httpx.MockTransport(handler)


def client(inner: httpx.BaseTransport, clock: FakeClock, retry_post: bool = False) -> httpx.Client:
    transport = RetryTransport(
        inner, FAST, retry_post=retry_post, sleep=clock.sleep, clock=clock, rng=random.Random(1)
    )
    return httpx.Client(transport=transport, base_url="https://crm.example.test")


def test_transient_statuses_are_retried_with_retry_after_honoured() -> None:
    seen: list[httpx.Request] = []
    clock = FakeClock()
    response = client(scripted(503, 429, seen=seen), clock).get("/contacts")
    assert response.status_code == 200
    assert len(seen) == 3
    assert 3.0 <= clock.now <= 3.0 + FAST.backoff_initial  # backoff, then Retry-After: 3


def test_retries_are_bounded_and_the_last_answer_returned() -> None:
    seen: list[httpx.Request] = []
    response = client(scripted(*[502] * 10, seen=seen), FakeClock()).get("/contacts")
    assert response.status_code == 502
    assert len(seen) == FAST.max_attempts


def test_elapsed_budget_stops_retrying() -> None:
    seen: list[httpx.Request] = []
    policy = RetryPolicy(max_attempts=50, max_elapsed=5.0)
    clock = FakeClock()
    transport = RetryTransport(
        scripted(*[429] * 50, seen=seen), policy, sleep=clock.sleep, clock=clock
    )
    response = httpx.Client(transport=transport).get("https://crm.example.test/x")
    assert response.status_code == 429
    assert len(seen) == 2  # 3 s waited, another 3 s would pass the 5 s budget


def test_post_is_retried_only_when_the_connector_says_it_reads() -> None:
    seen: list[httpx.Request] = []
    assert client(scripted(503, seen=seen), FakeClock()).post("/search").status_code == 503
    seen.clear()
    reads = client(scripted(503, seen=seen), FakeClock(), retry_post=True)
    assert reads.post("/search", json={"q": 1}).status_code == 200
    assert [r.content for r in seen] == [b'{"q":1}', b'{"q":1}']


def test_other_errors_are_not_retried() -> None:
    seen: list[httpx.Request] = []
    assert client(scripted(404, seen=seen), FakeClock()).get("/x").status_code == 404
    assert len(seen) == 1


@pytest.fixture
def flaky_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback server that drops the first connection, then answers 200."""
    hits: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(1)
            if len(hits) == 1:
                self.connection.close()
                return
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_connector_client_retries_a_dropped_connection_over_loopback(
    flaky_server: tuple[str, list[int]],
) -> None:
    url, hits = flaky_server
    context = ConnectorContext("crm", retry=RetryPolicy(backoff_initial=0.01, backoff_max=0.02))
    with context.http_client(base_url=url) as http:
        assert http.get("/contacts").json() == {"ok": True}
    assert len(hits) == 2


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("7") == 7.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", lambda: now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", lambda: now) == 0.0
    assert retry_after("soon") is None
    assert retry_after(None) is None
    assert retry_after("-3") is None


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(3)
    assert all(0 <= backoff_delay(1, 1.0, 60.0, rng) <= 1.0 for _ in range(50))
    assert all(0 <= backoff_delay(10, 1.0, 60.0, rng) <= 60.0 for _ in range(50))
    assert max(backoff_delay(4, 1.0, 60.0, rng) for _ in range(200)) > 4.0


def test_redact_url_hides_secret_query_values() -> None:
    url = httpx.URL("https://x.pipedrive.com/v1/persons?api_token=abc123&start=0&limit=500")
    assert (
        redact_url(url) == "https://x.pipedrive.com/v1/persons?api_token=REDACTED&start=0&limit=500"
    )
    assert "abc123" not in redact_url(url)


def test_httpx_request_lines_never_show_a_secret_query_parameter() -> None:
    # httpx logs every request's whole URL at INFO (what -vv shows); the CLI's logging setup
    # puts RedactedUrls on httpx's logger, once however often it runs. In a process of its
    # own: the setup replaces the root logger's handlers.
    script = """
import logging, httpx
from naturalead_sync.console import setup_logging
from naturalead_sync.http import RedactedUrls
setup_logging(2, "json")
setup_logging(2, "json")
print(sum(isinstance(f, RedactedUrls) for f in logging.getLogger("httpx").filters))
transport = httpx.MockTransport(lambda request: httpx.Response(200))
with httpx.Client(transport=transport) as client:
    client.get("http://crm.invalid/leads", params={"api_key": "SECRET123", "page": "2"})
"""
    done = run_process([sys.executable, "-c", script], check=True)
    assert done.stdout.strip() == "1"
    assert "HTTP Request: GET" in done.stderr and "SECRET123" not in done.stderr
    assert "api_key=REDACTED&page=2" in done.stderr
