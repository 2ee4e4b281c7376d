"""The Naturalead sync API client: paced, retried, splitting, defensive, secret-safe.

It speaks exactly the documented API: ``X-API-Key``, ``POST /api/leads/sync`` with
``{"source", "leads"}`` and ``DELETE /api/leads/sync`` with ``{"lead_ids"}``, at most 100 per
request. Every failure is classified:

- 429: wait ``Retry-After`` (or back off), then send again;
- 5xx, timeouts, dropped connections, a 2xx that is not JSON: back off with jitter and send
  again, bounded in tries and in time (safe: upserts are idempotent by ``lead_id``);
- 400, 404, 409, 413, 422 on a batch: split it in halves until the offending lead is alone,
  then record that lead as rejected; an ``errors[]`` entry that names no known lead is
  treated the same way;
- 401, 403: stop at once with :class:`AuthError` naming the key (by its last 4 characters)
  and, for 403, the missing scope.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import LimitsConfig, RetryConfig
from .errors import AuthError, DestinationError, TransientError
from .http import backoff_delay, retry_after
from .pacing import Pacer

__all__ = ["DeleteResult", "NaturaleadClient", "UpsertResult"]

SYNC_PATH = "/api/leads/sync"
SCOPE_CREATE = "leads:sync_create"
SCOPE_DELETE = "leads:sync_delete"
_SPLITTABLE = {400, 404, 409, 413, 422}
_KNOWN_UPSERT_FIELDS = {"total", "created", "updated", "failed", "errors", "success", "message"}
_SCOPE = re.compile(r"requires:\s*([a-z_]+:[a-z_]+)")
_MAX_CONSECUTIVE_429 = 30

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UpsertResult:
    """Per-lead outcome of one upsert call (after any splitting)."""

    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    created: int | None = None
    updated: int | None = None

    def merge(self, other: UpsertResult) -> None:
        self.accepted.extend(other.accepted)
        self.rejected.update(other.rejected)
        for name in ("created", "updated"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, (mine or 0) + theirs)


@dataclass(slots=True)
class DeleteResult:
    """Outcome of one delete call (after any splitting)."""

    deleted: int = 0
    not_found: int = 0
    rejected: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ClientStats:
    """What the client did, for the run report."""

    upsert_requests: int = 0
    delete_requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@dataclass(slots=True)
class _Answer:
    status: int
    body: Any  # parsed JSON for 2xx and splittable 4xx, else None
    message: str


def _json(value: Any) -> str:
    """Compact JSON text, non-ASCII characters as they are."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "message", "details") if body.get(k)]
        if parts:
            return ": ".join(dict.fromkeys(parts))
    return fallback


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _rate_limit_headers(headers: httpx.Headers) -> tuple[float | None, float | None]:
    """(remaining, reset seconds) from ``RateLimit-*`` or the combined ``RateLimit`` header."""
    remaining = _seconds(headers.get("ratelimit-remaining"))
    reset = _seconds(headers.get("ratelimit-reset"))
    combined = headers.get("ratelimit")
    if combined and (remaining is None or reset is None):
        parts = dict(item.strip().split("=", 1) for item in combined.split(",") if "=" in item)
        remaining = remaining if remaining is not None else _seconds(parts.get("remaining"))
        reset = reset if reset is not None else _seconds(parts.get("reset"))
    return remaining, reset


class NaturaleadClient:
    """Sends upserts and deletes to one Naturalead account (one API key)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        limits: LimitsConfig | None = None,
        retry: RetryConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "naturalead-sync",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits or LimitsConfig()
        self.retry = retry or RetryConfig()
        self.pacer = Pacer(
            self.limits.requests_per_window,
            self.limits.leads_per_window,
            self.limits.window.total_seconds(),
            clock=clock,
            sleep=sleep,
        )
        self.stats = ClientStats()
        self._key_hint = api_key[-4:]
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        #: The whole URL, made once: httpx would parse and join a path on every request.
        self._url = httpx.URL(f"{base_url.rstrip('/')}{SYNC_PATH}")
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "X-API-Key": api_key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=self.retry.timeout.total_seconds(),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"NaturaleadClient({str(self._http.base_url)!r}, key=…{self._key_hint})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- public calls ---------------------------------------------------------------------

    def upsert(
        self,
        source: str | None,
        leads: Sequence[dict[str, Any]],
        encoded: Sequence[str] | None = None,
    ) -> UpsertResult:
        """Upsert up to ``batch_size`` leads; split on whole-batch rejections.

        ``encoded``, when given, holds each lead's JSON text (the engine has it from the
        payload hash): it is sent as it is instead of encoding ``leads`` again.
        """
        result = UpsertResult()
        if not leads:
            return result
        if encoded is None:
            encoded = [_json(lead) for lead in leads]
        elif len(encoded) != len(leads):
            raise ValueError(f"{len(leads)} leads but {len(encoded)} encoded leads")
        head = f'{{"source":{_json(source)},' if source else "{"
        content = f'{head}"leads":[{",".join(encoded)}]}}'.encode()
        answer = self._send("POST", content, len(leads), SCOPE_CREATE)
        if answer.status in _SPLITTABLE:
            return self._split_upsert(source, leads, encoded, answer.message)
        errors, unattributed = self._read_errors(answer.body, leads)
        if unattributed and len(leads) > 1:
            log.warning(
                "Naturalead reported %d error(s) without a known lead_id; resending the batch "
                "in halves to attribute them",
                len(unattributed),
            )
            return self._split_upsert(source, leads, encoded, "unattributed error")
        if unattributed:
            errors[leads[0]["lead_id"]] = unattributed[0]
        result.rejected = errors
        result.accepted = [lead["lead_id"] for lead in leads if lead["lead_id"] not in errors]
        if isinstance(answer.body, dict):
            for name in ("created", "updated"):
                value = answer.body.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    setattr(result, name, value)
            unknown = set(answer.body) - _KNOWN_UPSERT_FIELDS
            if unknown:
                log.info(
                    "Naturalead answered with unknown field(s): %s", ", ".join(sorted(unknown))
                )
        return result

    def delete(self, lead_ids: Sequence[str]) -> DeleteResult:
        """Delete up to ``batch_size`` leads by ``lead_id``; split on whole-batch rejections."""
        result = DeleteResult()
        if not lead_ids:
            return result
        content = _json({"lead_ids": list(lead_ids)}).encode()
        answer = self._send("DELETE", content, len(lead_ids), SCOPE_DELETE)
        if answer.status in _SPLITTABLE:
            if len(lead_ids) == 1:
                result.rejected[lead_ids[0]] = answer.message
                return result
            log.debug(
                "DELETE %s: resending %d lead_id(s) in halves (%s)",
                SYNC_PATH,
                len(lead_ids),
                answer.message,
            )
            middle = len(lead_ids) // 2
            for half in (lead_ids[:middle], lead_ids[middle:]):
                part = self.delete(half)
                result.deleted += part.deleted
                result.not_found += part.not_found
                result.rejected.update(part.rejected)
            return result
        body = answer.body if isinstance(answer.body, dict) else {}
        deleted, not_found = body.get("deleted"), body.get("notFound")
        result.deleted = deleted if isinstance(deleted, int) else len(lead_ids)
        result.not_found = not_found if isinstance(not_found, int) else 0
        return result

    def check(self, *, deletes: bool = True) -> list[str]:
        """Prove the key works and holds the sync scopes; returns the scopes proven.

        Sends an empty upsert (and an empty delete): the API checks the key and the scope
        before the body, so a 400 for the empty list proves both. Each costs one request of
        the sync budget.
        """
        proven = []
        probes: tuple[tuple[str, dict[str, Any], str], ...] = (
            ("POST", {"leads": []}, SCOPE_CREATE),
            ("DELETE", {"lead_ids": []}, SCOPE_DELETE),
        )
        for method, body, scope in probes:
            if scope == SCOPE_DELETE and not deletes:
                continue
            self._send(method, _json(body).encode(), 0, scope)
            proven.append(scope)
        return proven

    # -- internals ------------------------------------------------------------------------

    def _split_upsert(
        self,
        source: str | None,
        leads: Sequence[dict[str, Any]],
        encoded: Sequence[str],
        message: str,
    ) -> UpsertResult:
        if len(leads) == 1:
            return UpsertResult(rejected={leads[0]["lead_id"]: message})
        log.debug("POST %s: resending %d lead(s) in halves (%s)", SYNC_PATH, len(leads), message)
        result = UpsertResult()
        middle = len(leads) // 2
        result.merge(self.upsert(source, leads[:middle], encoded[:middle]))
        result.merge(self.upsert(source, leads[middle:], encoded[middle:]))
        return result

    @staticmethod
    def _read_errors(
        body: Any, leads: Sequence[dict[str, Any]]
    ) -> tuple[dict[str, str], list[str]]:
        """Errors by lead_id, and the messages of entries that name no lead of the batch."""
        errors: dict[str, str] = {}
        unattributed: list[str] = []
        entries = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not entries:
            return errors, unattributed
        known = {lead["lead_id"] for lead in leads}
        for entry in entries:
            lead_id = entry.get("lead_id") if isinstance(entry, dict) else None
            index = entry.get("index") if isinstance(entry, dict) else None
            if lead_id not in known and isinstance(index, int) and 0 <= index < len(leads):
                lead_id = leads[index]["lead_id"]
            message = _message(entry, json.dumps(entry)[:500])
            if isinstance(lead_id, str) and lead_id in known:
                errors[lead_id] = message
            else:
                unattributed.append(message)
        return errors, unattributed

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(
            attempt,
            self.retry.backoff_initial.total_seconds(),
            self.retry.backoff_max.total_seconds(),
            self._rng,
        )

    def _send(self, method: str, content: bytes, items: int, scope: str) -> _Answer:
        """One logical request: paced, retried; returns a 2xx or a splittable 4xx answer."""
        started = self._clock()
        failures = 0
        limited = 0
        while True:
            waited = self.pacer.waited
            self.pacer.acquire(items)
            waited = self.pacer.waited - waited
            sent_at = self._clock()
            if method == "POST":
                self.stats.upsert_requests += 1
            else:
                self.stats.delete_requests += 1
            try:
                response = self._http.request(method, self._url, content=content)
                problem = self._classify(response, scope)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                response = None
            finally:
                self.pacer.record(items)
            if log.isEnabledFor(logging.DEBUG):
                self._log_request(method, items, response, problem, sent_at, waited)
            if response is not None:
                self._heed_rate_limit(response.headers, sent_at)
            if isinstance(problem, _Answer):
                return problem
            elapsed = self._clock() - started
            budget = self.retry.max_elapsed.total_seconds() - elapsed
            if response is not None and response.status_code == 429:
                limited += 1
                self.stats.rate_limited += 1
                wait = retry_after(response.headers.get("retry-after"))
                wait = (wait if wait is not None else self._backoff(limited)) + self._rng.uniform(
                    0, 0.1 * self.limits.window.total_seconds() / 60
                )
                if limited > _MAX_CONSECUTIVE_429 or wait > budget:
                    raise TransientError(
                        f"Naturalead kept answering 429 ({problem}) for {elapsed:.0f}s; "
                        "another process may be using the same API key. The checkpoint is "
                        "kept; run again later"
                    )
                log.debug(
                    "%s %s: 429 (%d in a row); sending again in %.3fs",
                    method,
                    SYNC_PATH,
                    limited,
                    wait,
                )
                self.pacer.defer(wait)
                continue
            failures += 1
            if failures >= self.retry.max_attempts:
                raise TransientError(
                    f"{method} {SYNC_PATH} failed {failures} times, last: {problem}. "
                    "The checkpoint is kept; run again when Naturalead is reachable"
                )
            delay = self._backoff(failures)
            if delay > budget:
                raise TransientError(
                    f"{method} {SYNC_PATH} still failing after {elapsed:.0f}s "
                    f"(retry.max_elapsed), last: {problem}. The checkpoint is kept"
                )
            self.stats.retries += 1
            log.warning("%s %s: %s; retry %d in %.1fs", method, SYNC_PATH, problem, failures, delay)
            self._sleep(delay)

    def _log_request(
        self,
        method: str,
        items: int,
        response: httpx.Response | None,
        problem: _Answer | str,
        sent_at: float,
        waited: float,
    ) -> None:
        """The debug line of one request: what it carried, its answer, the pacer's wait (the
        path only: never the key or the body)."""
        remaining = None if response is None else response.headers.get("ratelimit-remaining")
        log.debug(
            "%s %s: %d item(s), %s in %.3fs after %.3fs waiting for the pacer%s",
            method,
            SYNC_PATH,
            items,
            f"failed ({problem})" if response is None else f"answered {response.status_code}",
            self._clock() - sent_at,
            waited,
            "" if remaining is None else f"; RateLimit-Remaining {remaining}",
        )

    def _heed_rate_limit(self, headers: httpx.Headers, sent_at: float) -> None:
        """Wait out an empty server window the pacer does not know about.

        The server counted the request at some moment between ``sent_at`` and now, over the
        window before that moment. The pacer stamps each request when its answer arrives, so
        its count over the window before ``sent_at`` includes every request of this client the
        server counted. When the server's ``RateLimit-Remaining`` is 0 and that count is below
        the limit, the server counted requests this client did not send (another process with
        the same key): send nothing for ``RateLimit-Reset`` seconds. Otherwise the pacer's own
        wait is exact to the millisecond, where the header is rounded up to whole seconds, and
        the header is not followed.
        """
        remaining, reset = _rate_limit_headers(headers)
        if (
            remaining is not None
            and remaining <= 0
            and reset
            and not self.pacer.full_since(sent_at)
        ):
            log.debug(
                "RateLimit-Remaining 0 though this client sent fewer requests than the limit "
                "(another process uses the key?): sending nothing for %.3fs",
                reset,
            )
            self.pacer.defer(reset)

    def _classify(self, response: httpx.Response, scope: str) -> _Answer | str:
        """A final answer, or a string describing a retryable problem."""
        status = response.status_code
        try:
            body: Any = response.json() if response.content else None
            parsed = True
        except (json.JSONDecodeError, UnicodeDecodeError):
            body, parsed = None, False
        message = _message(body, response.reason_phrase or f"HTTP {status}")
        if status == 401:
            raise AuthError(
                f"Naturalead refused the API key ending in …{self._key_hint} (401: {message}). "
                "Check destination.api_key: the key may be revoked, expired or mistyped; "
                "create or rotate one in Naturalead (Settings > API keys)"
            )
        if status == 403:
            missing = _SCOPE.search(message)
            needed = missing[1] if missing else scope
            extra = (
                " Only an Owner can create a key with leads:sync_delete."
                if needed == SCOPE_DELETE
                else ""
            )
            raise AuthError(
                f"the API key ending in …{self._key_hint} lacks the scope {needed} "
                f"(403: {message}). Create a key with {needed}.{extra}"
            )
        if status == 429:
            return f"429 {message}"
        if status >= 500:
            return f"{status} {message}"
        if 200 <= status < 300:
            if not parsed or (body is not None and not isinstance(body, dict)):
                kind = response.headers.get("content-type", "no content type")
                return f"{status} with a body that is not a JSON object ({kind})"
            return _Answer(status, body, message)
        if status in _SPLITTABLE:
            return _Answer(status, body, f"{status} {message}")
        raise DestinationError(
            f"Naturalead answered {status} ({message}) to {response.request.method} "
            f"{SYNC_PATH}; check destination.url ({self._http.base_url})"
        )
