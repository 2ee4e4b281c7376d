"""HTTP for connectors: a retrying httpx transport, and the helpers the Naturalead client
shares with it (``Retry-After`` parsing, backoff with jitter, URLs safe to log).

A connector gets its client from :meth:`ConnectorContext.http_client`, which wraps the
transport in :class:`RetryTransport`: answers 429, 500, 502, 503 and 504 and transport errors
(timeouts, dropped connections) are retried with exponential backoff and full jitter, honouring
``Retry-After``, bounded in attempts and in elapsed time. Only idempotent methods are retried,
plus POST when the connector says its POSTs are reads (``retry_post=True``, e.g. a search
endpoint). When the retries are spent, the last answer is returned (or the last error raised)
for the connector to handle.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

__all__ = [
    "RedactedUrls",
    "RetryPolicy",
    "RetryTransport",
    "backoff_delay",
    "redact_url",
    "retry_after",
]

log = logging.getLogger(__name__)
_SENSITIVE = ("token", "key", "secret", "password", "signature", "auth")


@dataclass(frozen=True)
class RetryPolicy:
    """How a connector's HTTP calls are retried."""

    max_attempts: int = 5
    max_elapsed: float = 300.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    statuses: frozenset[int] = field(default=frozenset({429, 500, 502, 503, 504}))
    methods: frozenset[str] = field(default=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}))


def retry_after(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), or None."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or (lambda: datetime.now(UTC)))()).total_seconds()
        return max(0.0, seconds)
    return seconds if seconds >= 0 else None


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, initial * 2^(n-1))]."""
    return rng.uniform(0, min(cap, initial * 2 ** (attempt - 1)))


def redact_url(url: httpx.URL) -> str:
    """The URL with the values of secret-looking query parameters replaced by ``REDACTED``."""
    if not url.query:
        return str(url)
    params = [
        (name, "REDACTED" if any(word in name.lower() for word in _SENSITIVE) else value)
        for name, value in url.params.multi_items()
    ]
    return str(url.copy_with(params=params))


class RedactedUrls(logging.Filter):
    """Rewrites the URLs in httpx's own log lines (``HTTP Request: GET <url> ...``, shown with
    ``-vv``) with :func:`redact_url`, so that no secret query parameter reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's URL arguments; never drops a record."""
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport and retries transient failures according to a :class:`RetryPolicy`."""

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        *,
        retry_post: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.policy = policy or RetryPolicy()
        self.methods = self.policy.methods | ({"POST"} if retry_post else set())
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        #: Retries made so far, for reports.
        self.retries = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method not in self.methods:
            return self.inner.handle_request(request)
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                delay = self._delay(attempt, started, None)
                if delay is None:
                    raise
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code not in self.policy.statuses:
                    return response
                delay = self._delay(attempt, started, response.headers.get("retry-after"))
                if delay is None:
                    return response
                response.read()
                response.close()
                problem = f"HTTP {response.status_code}"
            self.retries += 1
            log.warning(
                "%s %s: %s; retry %d in %.1fs",
                request.method,
                redact_url(request.url),
                problem,
                attempt,
                delay,
            )
            self._sleep(delay)

    def _delay(self, attempt: int, started: float, header: str | None) -> float | None:
        """Seconds before the next try, or None when the policy says stop."""
        if attempt >= self.policy.max_attempts:
            return None
        waited = retry_after(header)
        delay = (
            waited
            if waited is not None
            else backoff_delay(
                attempt, self.policy.backoff_initial, self.policy.backoff_max, self._rng
            )
        )
        if self._clock() - started + delay > self.policy.max_elapsed:
            return None
        return delay

    def close(self) -> None:
        self.inner.close()
