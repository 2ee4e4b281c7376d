"""The sandbox's protocol logic: an emulator of the Naturalead lead sync API.

:meth:`Sandbox.handle` answers ``POST /api/leads/sync``, ``DELETE /api/leads/sync`` and
``GET /api/leads`` the way the public docs describe them; where the docs leave a point open,
the sandbox makes one documented choice:

- Auth: ``X-API-Key`` or ``Authorization: Bearer <key>`` (``X-API-Key`` wins). Keys live in
  SQLite as SHA-256 hashes; :data:`DEFAULT_KEY` is seeded with the sync and view scopes.
- Rate limit: one sliding window per key, shared by POST and DELETE on ``/api/leads/sync``.
  Only requests let through count (not 401, 403 or 429 answers; a 400 or a faulted 503 does).
  Sync answers from a known key carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and
  ``RateLimit-Reset`` (seconds until the oldest counted request leaves the window); a 429
  adds ``Retry-After`` (seconds until a slot frees). Seconds are whole numbers rounded up
  when ``window_seconds >= 10``, else decimals with 3 places (rounded up), so compressed
  windows in tests stay meaningful. A spurious 429 (a fault) says ``Remaining: 0`` and asks
  to wait one slot's share of the window, ``window_seconds / requests_per_window``.
- Upsert by ``lead_id``: keys present replace stored values (``customFields`` and ``tags``
  wholesale), omitted keys keep them; ``null`` or ``""`` clear a text field. The batch's
  ``source`` is written on create (``"api"`` when absent) and on update only when sent.
  Unknown per-lead keys are ignored. A phone held by another ``lead_id`` is a per-lead
  error (the API leaves phone collisions unspecified). Size limits are ``models.LIMITS``.
- Faults (sync endpoints only, after auth and rate limiting): scripted actions first, then
  random ones drawn from :class:`Faults` rates.
- With ``log_requests`` (``naturalead-sync -v sandbox serve``), each request is logged at INFO:
  method, path (without its query), status, leads and the fault injected, never the key.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..loopback import HTTPAnswer
from ..models import LIMITS
from .store import LEAD_FIELDS, Store, hash_key

__all__ = ["DEFAULT_KEY", "Faults", "RequestRecord", "Sandbox", "SandboxResponse"]

DEFAULT_KEY = "nl_test_" + "0" * 64
DEFAULT_SCOPES = ("leads:sync_create", "leads:sync_delete", "leads:view")
SYNC_PATH = "/api/leads/sync"
LEADS_PATH = "/api/leads"
MAX_ITEMS = 100
ACTIONS = frozenset({"ok", "500", "drop", "slow", "429", "400"})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ITEMS = {"POST": "leads", "DELETE": "lead_ids"}
_SCOPES = {"POST": "leads:sync_create", "DELETE": "leads:sync_delete", "GET": "leads:view"}
#: How the request log names each fault, and the ``sandbox serve`` option that injects it.
_FAULTS: dict[str, tuple[str, str]] = {
    "500": ("503", "--error-rate"),
    "drop": ("committed, then the connection dropped unanswered", "--drop-rate"),
    "slow": ("committed, answered late", "--slow-rate"),
    "429": ("429 under the limit", "--burst-429-rate"),
    "400": ("whole-batch 400", "scripted"),
}
log = logging.getLogger(__name__)


@dataclass
class Faults:
    """Failures the sync endpoints inject, by rate (0..1) per request; ``seed`` fixes them.

    ``error_rate``: 503, nothing written. ``drop_after_commit_rate``: the write commits, then
    the connection drops without an answer. ``slow_rate``: the write commits, the answer
    comes ``slow_seconds`` late. ``rate_limit_burst_rate``: a 429 under the limit, as another
    process sharing the key would cause. ``whole_batch_400``: strict mode, the first invalid
    lead fails the whole request with 400 and nothing is written.
    """

    error_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    rate_limit_burst_rate: float = 0.0
    whole_batch_400: bool = False
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request to a sync endpoint as the sandbox saw it (``received`` is its clock)."""

    received: float
    method: str
    path: str
    status: int
    items: int
    rate_limited: bool
    action: str = "ok"


#: The sandbox's answers are loopback answers: ``action`` is ``ok``, ``drop`` or ``slow`` (with
#: its ``delay``).
SandboxResponse = HTTPAnswer


def _items(payload: Any, key: str, not_array: str) -> list[Any]:
    """The non-empty list of at most ``MAX_ITEMS`` under ``key``, or a :class:`_BadRequest`."""
    items = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise _BadRequest(not_array)
    if not items:
        raise _BadRequest(f"{key} must not be empty")
    if len(items) > MAX_ITEMS:
        raise _BadRequest(f"Too many {key}: maximum {MAX_ITEMS} per request", f"got {len(items)}")
    return items


class _BadRequest(Exception):
    def __init__(self, error: str, details: str | None = None) -> None:
        super().__init__(error)
        self.body: dict[str, Any] = {"error": error}
        if details is not None:
            self.body["details"] = details


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    data = json.dumps(body, ensure_ascii=False).encode()
    return SandboxResponse(
        status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, data
    )


def _decode(body: bytes) -> tuple[Any, bool]:
    try:
        return json.loads(body), True
    except (ValueError, RecursionError):
        return None, False


def _lead_problem(lead: dict[str, Any]) -> str | None:
    """The first thing wrong with one lead (without looking at the store), or None."""
    lead_id = lead.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id.strip():
        return "lead_id is required"
    if len(lead_id) > LIMITS.lead_id:
        return "lead_id is too long"
    for field in ("name", "phone", "email"):
        value = lead.get(field)
        if value is not None and not isinstance(value, str):
            return f"{field} must be a string"
    name, phone, email = lead.get("name"), lead.get("phone"), lead.get("email")
    if name and len(name) > LIMITS.name:
        return "name is too long"
    if phone and not _E164.match(phone):
        return "phone must be in E.164 format"
    if email:
        if len(email) > LIMITS.email:
            return "email is too long"
        local, at, domain = email.partition("@")
        if not at or not local or "@" in domain or "." not in domain:
            return "email is invalid"
    fields: dict[str, Any] = lead.get("customFields") or {}
    if len(fields) > LIMITS.custom_fields:
        return "customFields is too long"
    for key, value in fields.items():
        if len(key) > LIMITS.custom_field_key:
            return "customFields key is too long"
        if isinstance(value, dict | list):
            return f"customFields.{key} must be a string"
        if len(str(value)) > LIMITS.custom_field_value:
            return f"customFields.{key} is too long"
    tags: list[str] = lead.get("tags") or []
    if len(tags) > LIMITS.tags or any(len(tag) > LIMITS.tag for tag in tags):
        return "tags is too long"
    return None


class Sandbox:
    """An in-process Naturalead: keys and leads in SQLite, rate limits and faults in memory."""

    def __init__(
        self,
        db_path: str | Path = ":memory:",
        *,
        requests_per_window: int = 50,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        faults: Faults | None = None,
        log_requests: bool = False,
    ) -> None:
        self._lock = threading.RLock()
        #: Log each request at INFO (see the module's docstring).
        self.log_requests = log_requests
        self._store = Store(db_path, DEFAULT_KEY, DEFAULT_SCOPES)
        self.requests_per_window = requests_per_window
        self.window_seconds = window_seconds
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}
        self._script: deque[str] = deque()
        self._fault_scripted = False  # whether the last fault drawn was scripted (for the log)
        self.request_log: list[RequestRecord] = []
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)

    @property
    def faults(self) -> Faults:
        """The active faults; assigning new ones re-seeds the random draws."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    def add_key(self, key: str, scopes: Iterable[str]) -> None:
        """Accept ``key`` with ``scopes`` (replacing the scopes of a key already known)."""
        with self._lock:
            self._store.add_key(key, scopes)

    def script(self, *actions: str) -> None:
        """Queue outcomes (``ok 500 drop slow 429 400``) for the next sync requests."""
        unknown = set(actions) - ACTIONS
        if unknown:
            raise ValueError(f"unknown sandbox action(s): {', '.join(sorted(unknown))}")
        with self._lock:
            self._script.extend(actions)

    def leads(self) -> list[dict[str, Any]]:
        """Every stored lead, sorted by ``lead_id``."""
        with self._lock:
            return self._store.leads()

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        """The stored lead with ``lead_id``, or None."""
        with self._lock:
            return self._store.lead(lead_id)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._store.close()

    # -- the protocol ---------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> SandboxResponse:
        """Answer one HTTP request (``path`` may carry a query string)."""
        method = method.upper()
        url = urlsplit(path)
        allowed = {SYNC_PATH: ("POST", "DELETE"), LEADS_PATH: ("GET",)}.get(url.path)
        leads: int | None = None
        fault, scripted = "ok", False
        if allowed is None:
            answer = _json(404, {"error": "Not found"})
        elif method not in allowed:
            answer = _json(405, {"error": "Method not allowed"}, {"Allow": ", ".join(allowed)})
        else:
            lowered = {name.lower(): value for name, value in headers.items()}
            with self._lock:
                if url.path == LEADS_PATH:
                    answer, leads = self._list(lowered, url.query)
                else:
                    answer, leads, fault = self._sync(method, lowered, body)
                    scripted = self._fault_scripted
        if self.log_requests:
            self._log(method, url.path, answer.status, leads, fault, scripted)
        return answer

    @staticmethod
    def _log(
        method: str, path: str, status: int, leads: int | None, fault: str, scripted: bool
    ) -> None:
        """The request log's line (at INFO): never a header, so never the key."""
        counted = "" if leads is None else f" · {leads} lead(s)"
        injected = ""
        if fault != "ok":
            label, option = _FAULTS[fault]
            injected = f" · fault: {label} ({'scripted' if scripted else option})"
        log.info("%s %s %d%s%s", method, path, status, counted, injected)

    def _key(self, headers: Mapping[str, str]) -> tuple[str, frozenset[str]] | SandboxResponse:
        """The key sent and its scopes, or the 401 answer."""
        key = headers.get("x-api-key", "").strip()
        if not key:
            scheme, _, token = headers.get("authorization", "").strip().partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else ""
        if not key:
            return _json(
                401,
                {
                    "error": "Authentication required. Provide an API key via X-API-Key "
                    "header or Authorization: Bearer header."
                },
            )
        scopes = self._store.scopes(key)
        if scopes is None:
            return _json(401, {"error": "Invalid or expired API key"})
        return key, scopes

    @staticmethod
    def _forbidden(scope: str, headers: Mapping[str, str] | None = None) -> SandboxResponse:
        message = f"API key does not have the required scope (requires: {scope})."
        return _json(403, {"error": "Forbidden", "message": message}, headers)

    def _list(self, headers: Mapping[str, str], query: str) -> tuple[SandboxResponse, int | None]:
        """The answer, and how many leads it lists."""
        found = self._key(headers)
        if isinstance(found, HTTPAnswer):
            return found, None
        if _SCOPES["GET"] not in found[1]:
            return self._forbidden(_SCOPES["GET"]), None
        params = parse_qs(query)
        try:
            skip = int(params.get("skip", ["0"])[-1])
            limit = int(params.get("limit", ["50"])[-1])
        except ValueError:
            skip = limit = -1
        if skip < 0 or limit < 0:
            return _json(400, {"error": "skip and limit must be non-negative integers"}), None
        listed = self._store.leads(order="id", skip=skip, limit=min(limit, MAX_ITEMS))
        return _json(200, listed), len(listed)

    # -- rate limiting --------------------------------------------------------------------

    def _seconds(self, value: float) -> str:
        value = max(0.0, value)
        if self.window_seconds >= 10:
            return str(math.ceil(round(value, 6)))
        return f"{math.ceil(round(value * 1000, 6)) / 1000:.3f}"

    def _window(self, key: str, now: float) -> deque[float]:
        window = self._windows.setdefault(hash_key(key), deque())
        while window and window[0] <= now - self.window_seconds:
            window.popleft()
        return window

    def _rate_headers(self, window: deque[float], now: float) -> dict[str, str]:
        reset = window[0] + self.window_seconds - now if window else 0.0
        return {
            "RateLimit-Limit": str(self.requests_per_window),
            "RateLimit-Remaining": str(max(0, self.requests_per_window - len(window))),
            "RateLimit-Reset": self._seconds(reset),
        }

    def _too_many(self, wait: float) -> SandboxResponse:
        seconds = self._seconds(wait)
        message = (
            "Sync API rate limit exceeded. Maximum "
            f"{self.requests_per_window} batch requests per minute."
        )
        headers = {
            "RateLimit-Limit": str(self.requests_per_window),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": seconds,
            "Retry-After": seconds,
        }
        return _json(429, {"error": message}, headers)

    # -- the sync endpoints ---------------------------------------------------------------

    def _fault(self) -> str:
        """The next fault: a scripted action, else one drawn from the rates."""
        self._fault_scripted = bool(self._script)
        if self._script:
            return self._script.popleft()
        faults, rng = self._faults, self._rng
        for rate, action in (
            (faults.rate_limit_burst_rate, "429"),
            (faults.error_rate, "500"),
            (faults.drop_after_commit_rate, "drop"),
            (faults.slow_rate, "slow"),
        ):
            if rate > 0 and rng.random() < rate:
                return action
        return "ok"

    def _sync(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[SandboxResponse, int, str]:
        """The answer, the leads (or lead_ids) the request carried, and the fault injected
        (``ok``: none)."""
        now = self._clock()
        payload, parsed = _decode(body)
        listed = payload.get(_ITEMS[method]) if isinstance(payload, dict) else None
        items = len(listed) if isinstance(listed, list) else 0
        answer, action = self._sync_answer(method, headers, payload, parsed, now)

        self.request_log.append(
            RequestRecord(
                now, method, SYNC_PATH, answer.status, items, answer.status == 429, action
            )
        )
        if action == "slow":
            return answer._replace(action="slow", delay=self._faults.slow_seconds), items, action
        return answer._replace(action=action if action == "drop" else "ok"), items, action

    def _sync_answer(
        self, method: str, headers: Mapping[str, str], payload: Any, parsed: bool, now: float
    ) -> tuple[SandboxResponse, str]:
        found = self._key(headers)
        if isinstance(found, HTTPAnswer):
            return found, "ok"
        key, scopes = found
        window = self._window(key, now)
        if _SCOPES[method] not in scopes:  # the key is known: show its budget, spend nothing
            return self._forbidden(_SCOPES[method], self._rate_headers(window, now)), "ok"
        if len(window) >= self.requests_per_window:
            return self._too_many(window[0] + self.window_seconds - now), "ok"
        action = self._fault()
        if action == "429":
            return self._too_many(self.window_seconds / self.requests_per_window), action
        window.append(now)
        limits = self._rate_headers(window, now)
        if action == "500":
            return _json(503, {"error": "Service unavailable"}, limits), action
        if action == "400":
            return _json(400, {"error": "Bad request", "details": "scripted fault"}, limits), action
        try:
            if not parsed:
                raise _BadRequest("Invalid JSON body")
            result = self._upsert(payload) if method == "POST" else self._delete(payload)
        except _BadRequest as bad:
            return _json(400, bad.body, limits), action
        return _json(200, result, limits), action

    def _upsert(self, payload: Any) -> dict[str, Any]:
        leads = _items(payload, "leads", "leads must be an array")
        source = payload.get("source")
        if source is not None and not isinstance(source, str):
            raise _BadRequest("source must be a string")
        for index, lead in enumerate(leads):
            if not isinstance(lead, dict):
                raise _BadRequest("each lead must be an object", f"index {index}")
            tags = lead.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise _BadRequest("tags must be an array", f"index {index}")
            if not isinstance(lead.get("customFields", {}), dict):
                raise _BadRequest("customFields must be a key-value object", f"index {index}")

        created = updated = 0
        errors: list[dict[str, Any]] = []
        with self._store.transaction():  # a _BadRequest (strict mode) rolls everything back
            for index, lead in enumerate(leads):
                lead_id = lead.get("lead_id")
                problem = _lead_problem(lead) or self._phone_taken(lead)
                if problem is not None:
                    known = isinstance(lead_id, str) and bool(lead_id.strip())
                    if self._faults.whole_batch_400:
                        where = f"lead_id {lead_id}" if known else f"index {index}"
                        raise _BadRequest(problem, f"{where}: {problem}")
                    errors.append(
                        {"lead_id": lead_id if known else None, "index": index, "error": problem}
                    )
                    continue
                values = {name: lead[name] for name in LEAD_FIELDS if name in lead}
                if self._store.upsert(lead_id, values, source):
                    created += 1
                else:
                    updated += 1
        return {
            "total": len(leads),
            "created": created,
            "updated": updated,
            "failed": len(errors),
            "errors": errors,
        }

    def _phone_taken(self, lead: dict[str, Any]) -> str | None:
        phone = lead.get("phone")
        if phone and self._store.phone_owner(phone) not in (None, lead["lead_id"]):
            return f"phone {phone} already belongs to another lead"
        return None

    def _delete(self, payload: Any) -> dict[str, Any]:
        ids = _items(payload, "lead_ids", "lead_ids must be an array of strings")
        if not all(isinstance(item, str) for item in ids):
            raise _BadRequest("lead_ids must be an array of strings")
        with self._store.transaction():
            deleted = sum(self._store.delete(lead_id) for lead_id in ids)
        return {"total": len(ids), "deleted": deleted, "notFound": len(ids) - deleted}
