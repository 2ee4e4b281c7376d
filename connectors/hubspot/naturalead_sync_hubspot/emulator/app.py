"""The HubSpot emulator's protocol logic: auth, scopes, limits, faults and routing.

:meth:`HubSpotEmulator.handle` answers the CRM v3 objects API for contacts (``0-1``) and leads
(``0-136``), v4 association batch reads, ``POST /oauth/v1/token`` and an admin API under
``/_emulator/``, following the connector reference (``hubspot.md`` section 9). Where HubSpot's
behaviour is unverified or undocumented the emulator makes one documented choice:

- Order of checks: routing (unknown path 404, wrong method 405, unknown object type 400
  ``Unable to infer object type``), then scripted faults, then auth (401; an expired OAuth
  token is 401 ``EXPIRED_AUTHENTICATION``), scopes (403 ``MISSING_SCOPES``), limits (429),
  and the endpoint. A request that got a 401, 403, 429 or a 5xx fault counts toward no limit.
- Limits: a rolling ten-second window per app (a static token; an OAuth client, so refreshed
  tokens share it) and a daily budget per account, on every non-search request; search has
  its own per-account per-second bucket and counts toward the daily budget only. 429 bodies:
  ``TEN_SECONDLY_ROLLING``, ``DAILY`` (with a ``requestId``) and ``SECONDLY`` for search, as
  ``{"status":"error","message":"You have reached your <policy> limit.","errorType":
  "RATE_LIMIT","correlationId","policyName"}``. ``Retry-After`` only when
  ``limits.retry_after_seconds`` is set, rounded up to whole seconds (urllib3 refuses
  fractions). Rate-limit headers go on every non-search answer to a known token (the
  ``Daily`` pair on static tokens only); search answers, 429s included, carry none.
- Faults (``script``): ``500 502 503 504`` answer an error body at once (nothing written,
  nothing counted); ``429``/``429-daily`` answer the ten-secondly/daily body; ``drop`` and
  ``slow`` run the request normally (writes commit), then close the connection without an
  answer or answer ``slow_seconds`` late; ``ok`` is a placeholder that consumes a slot.
- Records: ids count up from 1001 (contacts) and 5000001 (leads). API writes refuse
  undefined properties (400 ``PROPERTY_DOESNT_EXIST``) and ignore read-only ones
  (``hs_object_id``, ``createdate``, last-modified, ``hs_merged_object_ids``); ``""`` clears
  a value (stored as null). The Python API defines unknown properties on first use. Creating
  a contact with an email an active contact has is 409 ``CONFLICT`` ("Contact already
  exists. Existing ID: N").
- List: ``limit`` above 100 (50 with ``propertiesWithHistory``) is clamped; ``after`` is the
  next id to read (last id + 1). Archived records are kept 90 days
  (``archive_retention_seconds``), then purged. ``DELETE`` is 204 even for unknown ids.
- Merge: a new id; the earlier ``createdate`` of the two; primary values win where set;
  ``hs_merged_object_ids`` lists every absorbed id ascending, joined with ``;``. The old ids
  answer GET and batch read with the survivor and are not in the ``archived=true`` list;
  associations move to the survivor. Merging an unknown id is 404, an id with itself 400.
- GDPR delete: gone at once (404 on GET, missing from batch read, no archived entry,
  aliases and associations dropped); 204 also for an unknown email, 404 for an unknown id.
- Search: unset properties match ``NEQ``, ``NOT_IN``, ``NOT_CONTAINS_TOKEN`` and
  ``NOT_HAS_PROPERTY`` only; ``IN``/``NOT_IN`` compare lower-cased record values with the
  values as sent (so upper-case values never match, as in HubSpot); ``CONTAINS_TOKEN`` matches
  whitespace-separated tokens or the whole value, ``*`` as wildcard; ``query`` is a
  case-insensitive substring match on the type's text properties; more than one sort is a
  400; a string sort is a property name, ``-name`` descending; unset values sort last. The
  10k cap answers 400 ``VALIDATION_ERROR`` ("Cannot page beyond 10000 results ...") when
  ``after >= 10000`` (``search_cap_mode="after"``) or ``after + limit > 10000``
  (``"after_plus_limit"``); ``total`` is never capped.
- Batch read: one error entry listing every missing id (``numErrors: 1``); ids resolving to
  one record come back once; ``archived=true`` reads archived records only.
- Leads: a lead's primary contact is set with :meth:`HubSpotEmulator.associate_lead` (the
  Python ``create`` takes no association); an API create needs ``associations`` with type
  578 to an existing contact. v4 reads answer type 578 (lead to contact) or 579 (contact to
  lead), category ``HUBSPOT_DEFINED``, label ``"Primary"``, ``toObjectId`` as a JSON number;
  inputs without associations are 207 errors with subCategory
  ``crm.associations.NO_ASSOCIATIONS_FOUND``. v3 ``associations=`` types are
  ``lead_to_primary_contact`` and ``primary_contact_to_lead``.
- OAuth: ``grant_type=refresh_token`` only; the refresh token stays the same (with
  ``rotate_refresh_tokens`` set, each refresh answers a new one and refuses the one it was
  sent from then on, as a server that rotates them would); access tokens live
  ``oauth_token_seconds`` (1800) on the emulator clock. Errors are 400 with ``status``
  ``BAD_REFRESH_TOKEN``, ``BAD_CLIENT_ID``, ``BAD_CLIENT_SECRET`` or
  ``UNSUPPORTED_GRANT_TYPE``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from naturalead_sync.loopback import HTTPAnswer

from .admin import admin
from .endpoints import Endpoints
from .gateway import Gateway
from .limits import EmulatorLimits
from .routes import Route, route_of
from .schema import READ_ONLY, SCHEMAS, iso
from .seed import contact_properties
from .store import EmailTaken, Record, Store, Table
from .wire import ApiError, Query, Reply, Request, answer

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REFRESH_TOKEN",
    "DEFAULT_SCOPES",
    "DEFAULT_TOKEN",
    "FAULTS",
    "HubSpotEmulator",
    "RequestRecord",
]

DEFAULT_TOKEN = "pat-na1-00000000-0000-4000-8000-0000000e1e1e"
DEFAULT_SCOPES = (
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.leads.read",
    "crm.objects.leads.write",
)
DEFAULT_CLIENT_ID = "00000000-0000-4000-8000-00000000c11e"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
DEFAULT_REFRESH_TOKEN = "na1-0000-0000-4000-8000-000000000fe5"
FAULTS = frozenset({"ok", "500", "502", "503", "504", "429", "429-daily", "drop", "slow"})
_FAULT_MESSAGES = {
    "500": "internal error",
    "502": "Bad Gateway",
    "503": "Service Unavailable",
    "504": "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API request as the emulator answered it. ``at`` is the emulator clock (epoch
    seconds), ``action`` the fault applied (``ok`` when none), ``token_hint`` the token's
    last four characters (never the token), ``kind`` the route (``list``, ``search``, ...)."""

    at: float
    method: str
    path: str
    status: int
    action: str
    search: bool
    token_hint: str
    kind: str = ""


class HubSpotEmulator:
    """An in-process HubSpot: contacts and leads in memory, served by
    ``naturalead_sync.loopback.serve``. Every method is thread-safe."""

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        limits: EmulatorLimits | None = None,
        index_lag_seconds: float = 0.0,
        search_cap_mode: str = "after",
        seed: int = 0,
    ) -> None:
        if search_cap_mode not in ("after", "after_plus_limit"):
            raise ValueError(
                f"search_cap_mode must be after or after_plus_limit, not {search_cap_mode!r}"
            )
        self._lock = threading.RLock()
        self._clock = clock or time.time
        self._offset = 0.0
        self._rng = random.Random(seed)
        self._gate = Gateway(limits or EmulatorLimits(), self._rng)
        self._store = Store(round(index_lag_seconds * 1000))
        self._index_lag_seconds = index_lag_seconds
        self._api = Endpoints(self._store, self._now_ms, search_cap_mode)
        self._data_rng = random.Random(seed)
        self._next_generated = 1
        self._script: deque[tuple[str, str | None]] = deque()
        self._records_returned = 0
        #: How late a ``slow`` fault answers, in seconds.
        self.slow_seconds = 1.0
        #: How long an archived record stays restorable before it is purged.
        self.archive_retention_seconds = 90 * 86400.0
        self.request_log: list[RequestRecord] = []
        self.add_token(DEFAULT_TOKEN, DEFAULT_SCOPES)
        self.add_refresh_token(
            DEFAULT_REFRESH_TOKEN,
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            scopes=DEFAULT_SCOPES,
        )

    # -- clock and configuration ----------------------------------------------------------

    def now(self) -> float:
        """The emulator clock: epoch seconds."""
        with self._lock:
            return self._clock() + self._offset

    def _now_ms(self) -> int:
        return math.floor(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward by ``seconds``."""
        with self._lock:
            self._offset += seconds

    def set_time(self, epoch: float) -> None:
        """Set the emulator clock to ``epoch`` seconds (it keeps running from there)."""
        with self._lock:
            self._offset = epoch - self._clock()

    @property
    def index_lag_seconds(self) -> float:
        """How long after a write search sees it (GET, list and batch read see it at once)."""
        return self._index_lag_seconds

    @index_lag_seconds.setter
    def index_lag_seconds(self, seconds: float) -> None:
        with self._lock:
            self._index_lag_seconds = seconds
            self._store.set_lag(round(seconds * 1000))

    @property
    def search_cap_mode(self) -> str:
        """When a search page hits the 10k cap: ``after`` or ``after_plus_limit``."""
        return self._api.cap_mode

    @property
    def limits(self) -> EmulatorLimits:
        """The limits enforced (a mutable dataclass: change fields to change them)."""
        return self._gate.limits

    @property
    def oauth_token_seconds(self) -> float:
        """How long an OAuth access token lives on the emulator clock (default 1800)."""
        return self._gate.oauth_token_seconds

    @oauth_token_seconds.setter
    def oauth_token_seconds(self, seconds: float) -> None:
        with self._lock:
            self._gate.oauth_token_seconds = seconds

    @property
    def rotate_refresh_tokens(self) -> bool:
        """Whether each OAuth refresh answers a new refresh token and refuses the one it was
        sent from then on (default False: HubSpot keeps the same one)."""
        return self._gate.rotate_refresh_tokens

    @rotate_refresh_tokens.setter
    def rotate_refresh_tokens(self, rotate: bool) -> None:
        with self._lock:
            self._gate.rotate_refresh_tokens = rotate

    def add_token(self, token: str, scopes: Iterable[str]) -> None:
        """Accept ``token`` (a private-app token) with ``scopes``, replacing earlier ones."""
        with self._lock:
            self._gate.add_token(token, scopes)

    def add_refresh_token(
        self, refresh_token: str, *, client_id: str, client_secret: str, scopes: Iterable[str]
    ) -> None:
        """Accept ``refresh_token`` for the OAuth client at ``POST /oauth/v1/token``."""
        with self._lock:
            self._gate.add_refresh_token(refresh_token, client_id, client_secret, scopes)

    def script(self, *actions: str, path_contains: str | None = None) -> None:
        """Queue faults for the next API requests whose path (with query) contains
        ``path_contains`` (any request when None): ``ok 500 502 503 504 429 429-daily drop
        slow``; see the module docstring."""
        unknown = set(actions) - FAULTS
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        with self._lock:
            self._script.extend((action, path_contains) for action in actions)

    def queued_faults(self) -> int:
        """How many scripted faults still wait for a request."""
        with self._lock:
            return len(self._script)

    # -- scenario API ---------------------------------------------------------------------

    def _table(self, object_type: str) -> Table:
        schema = SCHEMAS.get(object_type)
        if schema is None:
            raise ValueError(f"unknown object type {object_type!r}; use contacts or leads")
        return self._store.tables[schema.name]

    def _values(self, table: Table, properties: Mapping[str, str | None]) -> dict[str, str | None]:
        read_only = sorted(set(properties) & READ_ONLY)
        if read_only:
            raise ValueError(
                f"read-only properties are set by the emulator: {', '.join(read_only)}"
            )
        table.defined.update(properties)
        return {
            name: None if value in (None, "") else str(value) for name, value in properties.items()
        }

    def _id(self, table: Table, object_id: str, *, archived: bool = False) -> int:
        found = table.get(int(object_id), archived=archived) if object_id.isdigit() else None
        if found is None:
            state = "archived" if archived else "active"
            raise KeyError(f"no {state} {table.schema.label.lower()} {object_id}")
        return found.id

    @staticmethod
    def _record(table: Table, object_id: str) -> Record | None:
        """The active or archived record ``object_id`` lives on as."""
        if not object_id.isdigit():
            return None
        return table.get(int(object_id)) or table.get(int(object_id), archived=True)

    def seed_contacts(self, n: int, *, same_timestamp: bool = False) -> list[str]:
        """Create ``n`` realistic contacts (see ``seed.py``) and return their ids. They take
        the ``n`` milliseconds before now, one each in id order, so a window ending at now
        holds them all; with ``same_timestamp`` they all get now."""
        with self._lock:
            now, table = self._now_ms(), self._store.contacts
            ids: list[str] = []
            while len(ids) < n:
                number = self._next_generated
                self._next_generated += 1
                at = now if same_timestamp else now - (n - len(ids))
                properties = contact_properties(number, self._data_rng)
                try:
                    ids.append(str(table.create(properties, at, "IMPORT").id))
                except EmailTaken:  # the address was taken by hand; skip the number
                    continue
            return ids

    def create(self, object_type: str, properties: Mapping[str, str | None]) -> str:
        """Create a record now; its id. A taken contact email raises ``ValueError``."""
        with self._lock:
            table = self._table(object_type)
            try:
                record = table.create(self._values(table, properties), self._now_ms(), "CRM_UI")
            except EmailTaken as taken:
                raise ValueError(str(taken)) from None
            return str(record.id)

    def update(
        self, object_type: str, object_id: str, properties: Mapping[str, str | None]
    ) -> None:
        """Change properties of an active record; its last-modified becomes now."""
        with self._lock:
            table = self._table(object_type)
            values = self._values(table, properties)
            try:
                table.update(self._id(table, object_id), values, self._now_ms(), "CRM_UI")
            except EmailTaken as taken:
                raise ValueError(str(taken)) from None

    def touch(self, object_type: str, ids: Iterable[str]) -> None:
        """Bump last-modified of every listed record to the same millisecond (a bulk update)."""
        with self._lock:
            table = self._table(object_type)
            table.touch([self._id(table, object_id) for object_id in ids], self._now_ms())

    def archive(self, object_type: str, object_id: str) -> None:
        """Soft-delete a record: gone from search and the default list, in ``archived=true``."""
        with self._lock:
            table = self._table(object_type)
            table.archive(self._id(table, object_id), self._now_ms())

    def restore(self, object_type: str, object_id: str) -> None:
        """Bring an archived record back, with a new last-modified."""
        with self._lock:
            table = self._table(object_type)
            try:
                table.restore(self._id(table, object_id, archived=True), self._now_ms())
            except EmailTaken as taken:
                raise ValueError(str(taken)) from None

    def merge(self, object_type: str, primary_id: str, merged_id: str) -> str:
        """Merge two active records into a new one (its id); see the module docstring."""
        with self._lock:
            table = self._table(object_type)
            primary, merged = self._id(table, primary_id), self._id(table, merged_id)
            return str(self._store.merge(table, primary, merged, self._now_ms()).id)

    def gdpr_delete(self, object_type: str, object_id: str) -> None:
        """Delete a record (active or archived) for good, leaving no trace."""
        with self._lock:
            table = self._table(object_type)
            record = self._record(table, object_id)
            if record is None:
                raise KeyError(f"no {table.schema.label.lower()} {object_id}")
            self._store.purge(table, record.id, self._now_ms())

    def associate_lead(self, lead_id: str, contact_id: str) -> None:
        """Make ``contact_id`` the primary contact (type 578) of ``lead_id``."""
        with self._lock:
            store = self._store
            store.associate(self._id(store.leads, lead_id), self._id(store.contacts, contact_id))

    def get(self, object_type: str, object_id: str) -> dict[str, str | None]:
        """The stored properties of the record ``object_id`` lives on as (active or archived,
        following merges); ``KeyError`` when there is none."""
        with self._lock:
            table = self._table(object_type)
            record = self._record(table, object_id)
            if record is None:
                raise KeyError(f"no {table.schema.label.lower()} {object_id}")
            return dict(record.properties)

    def stats(self) -> dict[str, Any]:
        """Counts: ``requests``, ``by_kind``, ``rate_limited`` (429s), ``search_requests``,
        ``records_returned``, ``faults``, and the stored ``contacts`` and ``leads``."""
        with self._lock:
            log = self.request_log
            return {
                "requests": len(log),
                "by_kind": dict(Counter(record.kind for record in log)),
                "rate_limited": sum(record.status == 429 for record in log),
                "search_requests": sum(record.search for record in log),
                "records_returned": self._records_returned,
                "faults": sum(record.action != "ok" for record in log),
                "contacts": len(self._store.contacts),
                "leads": len(self._store.leads),
            }

    # -- HTTP -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """Answer one HTTP request (``path`` carries the query string)."""
        method, url = method.upper(), urlsplit(path)
        with self._lock:
            if url.path.startswith("/_emulator/"):
                return admin(self, method, url.path.removeprefix("/_emulator/").strip("/"), body)
            lowered = {name.lower(): value for name, value in headers.items()}
            return self._call(method, path, lowered, body)

    def _call(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        now_ms = self._now_ms()
        self._store.expire(now_ms - round(self.archive_retention_seconds * 1000), now_ms)
        correlation = self._gate.new_uuid()
        url = urlsplit(path)
        request = Request(
            method, url.path, Query(url.query), body, f"http://{headers.get('host', '')}"
        )
        route, action = Route("unrouted"), "ok"
        try:
            route = route_of(self._store, method, url.path)
            action = self._fault(path)
            reply = self._serve(route, action, request, headers, now_ms)
        except ApiError as error:
            reply = Reply(error.status, error.body(correlation), headers=error.headers)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        self.request_log.append(
            RequestRecord(
                at=now_ms / 1000,
                method=method,
                path=path,
                status=reply.status,
                action=action,
                search=route.kind == "search",
                token_hint=token.strip()[-4:] if scheme.lower() == "bearer" else "",
                kind=route.kind,
            )
        )
        self._records_returned += reply.records
        result = answer(
            reply.status, reply.body, {"X-HubSpot-Correlation-Id": correlation, **reply.headers}
        )
        delay = self.slow_seconds if action == "slow" else 0.0
        return result._replace(action=action, delay=delay)

    def _serve(
        self, route: Route, action: str, request: Request, headers: Mapping[str, str], now_ms: int
    ) -> Reply:
        """Faults, auth, scopes and limits in that order, then the endpoint."""
        if action in _FAULT_MESSAGES:
            message = _FAULT_MESSAGES[action]
            raise ApiError(int(action), "", message, fields={"status": "error", "message": message})
        if route.kind == "oauth":
            return self._gate.refresh(request, now_ms)
        token = self._gate.authenticate(headers, now_ms)
        search = route.kind == "search"
        if action in ("429", "429-daily"):
            policy = "DAILY" if action == "429-daily" else "TEN_SECONDLY_ROLLING"
            raise self._gate.too_many(policy, token, search=search)
        self._gate.authorize(token, route.scopes, search=search)
        limits = self._gate.admit(token, search=search, day=iso(now_ms)[:10])
        try:
            reply: Reply = getattr(self._api, route.kind)(route, request)
        except ApiError as error:
            error.headers.update(limits)
            raise
        reply.headers.update(limits)
        return reply

    def _fault(self, path: str) -> str:
        """The first queued fault whose path filter matches ``path`` (consumed), or ``ok``."""
        for entry in self._script:
            if entry[1] is None or entry[1] in path:
                self._script.remove(entry)
                return entry[0]
        return "ok"
