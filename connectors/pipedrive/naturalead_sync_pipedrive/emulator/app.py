"""The emulator's protocol pipeline and its Python test interface.

:meth:`PipedriveEmulator.handle` answers one request: ``/_emulator/...`` goes to the admin
interface (:mod:`.admin`, no auth, no limits, not logged); ``POST /oauth/token`` refreshes
OAuth tokens; ``/api/v2/...``, ``/api/v1/...`` and ``/v1/...`` go through authentication,
the OAuth scope check, rate limits, scripted faults and the endpoint; anything else is a 404.
Every API request is appended to :attr:`PipedriveEmulator.request_log`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from naturalead_sync.loopback import HTTPAnswer

from .admin import Admin
from .auth import (
    DEFAULT_API_TOKEN,
    DEFAULT_OAUTH_TOKEN,
    DEFAULT_REFRESH_TOKEN,
    OAUTH_SCOPES,
    AuthKind,
    Credential,
    TokenRegistry,
)
from .clock import EmulatorClock
from .faults import SPOILING, FaultScript, fault_answer, spoil
from .limits import BLOCK_PAGE, EmulatorLimits, RateLimiter
from .protocol import ERROR_INFO, ApiError, EmulatorOptions, Request, html_answer
from .records import Company
from .routing import locate, resolve
from .seed import bootstrap, seed_leads, seed_persons
from .shapes import lead_v1, person_v2
from .store import Store

__all__ = ["LOG_LIMIT", "PipedriveEmulator", "RequestRecord"]

#: :attr:`PipedriveEmulator.request_log` keeps at most this many records (oldest dropped).
LOG_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API request as the emulator saw it. ``received`` is the limiter's monotonic
    clock; ``path`` keeps the query with ``api_token`` redacted; ``action`` is ``ok``, a
    fault, ``burst``/``daily`` (429) or ``blocked`` (HTML 403)."""

    received: float
    method: str
    path: str
    status: int
    route: str | None
    auth: AuthKind | None
    cost: int
    action: str


@dataclass
class _Trace:
    route: str | None = None
    auth: AuthKind | None = None
    cost: int = 0
    action: str = "ok"


def _redacted(path: str, query: str) -> str:
    pairs = [(k, "***" if k == "api_token" else v) for k, v in parse_qsl(query, True)]
    return f"{path}?{urlencode(pairs)}" if pairs else path


class PipedriveEmulator:
    """An in-memory Pipedrive company served through :meth:`handle` (thread-safe).

    ``clock`` stamps records (default: a running clock at the real time); ``limits`` sets
    the burst and daily budgets; ``seed`` fixes every random draw (hash keys, data);
    ``options`` picks a side where the docs are ambiguous; ``monotonic`` drives the rate
    limits; ``persons``/``leads`` are seeded at start; ``api_domain`` is what OAuth tokens
    report (default: ``http://<Host header>``). The account starts with three users, person
    and lead labels, custom person and deal fields, :data:`DEFAULT_API_TOKEN` for user 1 and
    :data:`DEFAULT_OAUTH_TOKEN` (refresh token :data:`DEFAULT_REFRESH_TOKEN`).
    """

    def __init__(
        self,
        *,
        clock: EmulatorClock | None = None,
        limits: EmulatorLimits | None = None,
        seed: int = 0,
        options: EmulatorOptions | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        persons: int = 0,
        leads: int = 0,
        company_domain: str = "emulated",
        api_domain: str | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self.clock = clock or EmulatorClock()
        self.options = options or EmulatorOptions()
        self.api_domain = api_domain
        self._rng = random.Random(seed)
        self._monotonic = monotonic
        self.store = Store(self.clock, self._rng, Company(domain=company_domain))
        bootstrap(self.store)
        self.tokens = TokenRegistry(self.clock)
        self.tokens.add_api_token(DEFAULT_API_TOKEN)
        self.tokens.add_oauth_token(
            DEFAULT_OAUTH_TOKEN,
            scopes=OAUTH_SCOPES,
            api_domain=api_domain,
            refresh_token=DEFAULT_REFRESH_TOKEN,
        )
        self.limiter = RateLimiter(limits or EmulatorLimits(), monotonic, random.Random(seed + 1))
        self.faults = FaultScript()
        self.request_log: list[RequestRecord] = []
        self._admin = Admin(self)
        if persons:
            self.seed_persons(persons)
        if leads:
            self.seed_leads(leads)

    # -- the protocol ---------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """Answer one HTTP request (``path`` may carry a query string)."""
        url = urlsplit(path)
        request = Request.parse(method, url.path, url.query, headers, body)
        if url.path == "/_emulator" or url.path.startswith("/_emulator/"):
            return self._admin.handle(request)
        with self._lock:
            self.store.purge()
            trace = _Trace()
            answer = self._serve(request, trace)
            self.request_log.append(
                RequestRecord(
                    self._monotonic(),
                    request.method,
                    _redacted(url.path, url.query),
                    answer.status,
                    trace.route,
                    trace.auth,
                    trace.cost,
                    trace.action,
                )
            )
            if len(self.request_log) > LOG_LIMIT:
                del self.request_log[: LOG_LIMIT // 10]
        return answer

    def base_url(self, request: Request) -> str:
        """The URL OAuth clients are sent to: ``api_domain`` or ``http://<Host>``."""
        return self.api_domain or f"http://{request.headers.get('host', '127.0.0.1')}"

    def _serve(self, request: Request, trace: _Trace) -> HTTPAnswer:
        if request.path == "/oauth/token":
            trace.route = "oauth.token"
            if request.method != "POST":
                return ApiError(405, "Method not allowed").answer()
            return self.tokens.token_endpoint(request, self.base_url(request))
        located = locate(request.path)
        if located is None:
            return ApiError(404, "Not found", error_info="Object was not found.").answer()
        credential = self.tokens.find(request, query_token=self.options.query_token)
        if credential is None:
            return ApiError(401, "unauthorized access", errorCode=401).answer()
        request.credential, trace.auth = credential, credential.kind
        try:
            route, request.params = resolve(request.method, *located)
        except ApiError as unrouted:
            admitted = self._admit(credential, 0, trace)
            return admitted if isinstance(admitted, HTTPAnswer) else unrouted.answer(admitted)
        if not credential.allows(route.scopes):
            return ApiError(403, "Scope and URL mismatch", errorCode=403).answer()
        admitted = self._admit(credential, self.limiter.limits.costs.get(route.name, 0), trace)
        if isinstance(admitted, HTTPAnswer):
            return admitted
        trace.route = route.name
        fault = self.faults.next_for(request.path)
        if fault is not None:
            trace.action = fault.action
            if fault.action not in SPOILING:
                return fault_answer(fault.action, admitted)
        try:
            answer = route.handler(self.store, self.options, request)
        except ApiError as error:
            answer = error.answer()
        answer = answer._replace(headers={**answer.headers, **admitted})
        return answer if fault is None else spoil(answer, fault, self.options.slow_seconds)

    def _admit(
        self, credential: Credential, cost: int, trace: _Trace
    ) -> HTTPAnswer | dict[str, str]:
        """The limiter's refusal (429 or the HTML 403), or an admitted request's headers."""
        verdict = self.limiter.admit(credential.token, credential.kind, cost)
        if verdict.outcome == "ok":
            trace.cost = cost
            return verdict.headers
        trace.action = verdict.outcome
        if verdict.outcome == "blocked":
            return html_answer(403, BLOCK_PAGE)
        info = "Daily token budget exhausted" if verdict.outcome == "daily" else "Rate limit hit"
        error = ApiError(
            429, "request over limit", error_info=f"{info}. {ERROR_INFO}", errorCode=429
        )
        return error.answer(verdict.headers)

    # -- test hooks -----------------------------------------------------------------------

    def script(
        self, *faults: str, path_contains: str | None = None, slow_seconds: float | None = None
    ) -> None:
        """Queue faults for the next API requests whose path contains ``path_contains``
        (any path when None); see :mod:`.faults` for the actions."""
        with self._lock:
            self.faults.add(*faults, path_contains=path_contains, slow_seconds=slow_seconds)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self.faults.clear()

    def reset_limits(self) -> None:
        """Empty the burst windows, lift blocks and refill the daily budget."""
        with self._lock:
            self.limiter.reset()

    def stats(self) -> dict[str, Any]:
        """Counts of requests (by status, route and action), records and the budgets."""
        with self._lock:
            log = self.request_log
            leads = self.store.leads.values()
            return {
                "requests": len(log),
                "by_status": dict(Counter(str(record.status) for record in log)),
                "by_route": dict(Counter(record.route or "-" for record in log)),
                "by_action": dict(Counter(record.action for record in log)),
                "faults_pending": len(self.faults),
                "persons": len(self.store.persons) - self.store.deleted_count(),
                "deleted_persons": self.store.deleted_count(),
                "leads": sum(not lead.is_archived for lead in leads),
                "archived_leads": sum(lead.is_archived for lead in leads),
                **self.limiter.state(),
            }

    def now(self) -> datetime:
        """The emulator clock's time."""
        return self.clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move the emulator clock by ``seconds``; returns the new time."""
        return self.clock.advance(seconds)

    def set_time(self, when: datetime) -> datetime:
        """Set the emulator clock to ``when``; returns it."""
        return self.clock.set_time(when)

    def add_api_token(self, token: str, *, user_id: int = 1) -> None:
        """Accept API token ``token`` for ``user_id`` (revoking that user's previous one)."""
        with self._lock:
            self.tokens.add_api_token(token, user_id=user_id)

    def add_oauth_token(
        self,
        access_token: str,
        *,
        scopes: Sequence[str] = OAUTH_SCOPES,
        api_domain: str | None = None,
        expires_in: float = 3599.0,
        refresh_token: str | None = None,
        user_id: int = 1,
    ) -> None:
        """Accept an OAuth access token with ``scopes`` until ``expires_in`` (clock seconds)."""
        with self._lock:
            self.tokens.add_oauth_token(
                access_token,
                user_id=user_id,
                scopes=scopes,
                api_domain=api_domain or self.api_domain,
                expires_in=expires_in,
                refresh_token=refresh_token,
            )

    def revoke_token(self, token: str) -> bool:
        """Stop accepting ``token``; True when it was known."""
        with self._lock:
            return self.tokens.revoke(token)

    # -- data -----------------------------------------------------------------------------

    def seed_persons(self, count: int, *, same_update_time: bool = False) -> list[int]:
        """Create ``count`` realistic persons (see :mod:`.seed`); returns their ids."""
        with self._lock:
            made = seed_persons(self.store, self._rng, count, same_update_time=same_update_time)
            return [person.id for person in made]

    def seed_leads(self, count: int, *, archived: int = 0) -> list[str]:
        """Create ``count`` leads joined to seeded persons (``archived`` of them archived)."""
        with self._lock:
            return [lead.id for lead in seed_leads(self.store, self._rng, count, archived=archived)]

    def person(self, person_id: int) -> dict[str, Any] | None:
        """Person ``person_id`` in v2 shape (soft-deleted ones too), or None once purged."""
        with self._lock:
            found = self.store.persons.get(person_id)
            return None if found is None else person_v2(self.store, found)

    def create_person(self, name: str, **fields: Any) -> dict[str, Any]:
        """Create a person (see :meth:`Store.create_person`); returns its v2 shape."""
        with self._lock:
            return person_v2(self.store, self.store.create_person(name, **fields))

    def update_person(self, person_id: int, **changes: Any) -> dict[str, Any]:
        """Change a live person; ``update_time`` becomes now. Returns its v2 shape."""
        with self._lock:
            return person_v2(self.store, self.store.update_person(person_id, **changes))

    def delete_person(self, person_id: int) -> dict[str, Any]:
        """Soft-delete a person (purged 30 days later); returns its v2 shape."""
        with self._lock:
            return person_v2(self.store, self.store.delete_person(person_id))

    def merge_persons(self, loser_id: int, winner_id: int) -> dict[str, Any]:
        """Merge ``loser_id`` into ``winner_id`` (the loser is deleted); returns the winner."""
        with self._lock:
            return person_v2(self.store, self.store.merge_persons(loser_id, winner_id))

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        """Lead ``lead_id`` in v1 shape, or None when it is gone."""
        with self._lock:
            found = self.store.leads.get(lead_id)
            return None if found is None else lead_v1(self.store, found)

    def create_lead(self, title: str, **fields: Any) -> dict[str, Any]:
        """Create a lead (see :meth:`Store.create_lead`); returns its v1 shape."""
        with self._lock:
            return lead_v1(self.store, self.store.create_lead(title, **fields))

    def update_lead(self, lead_id: str, **changes: Any) -> dict[str, Any]:
        """Change a non-archived lead; returns its v1 shape."""
        with self._lock:
            return lead_v1(self.store, self.store.update_lead(lead_id, **changes))

    def archive_lead(self, lead_id: str) -> dict[str, Any]:
        """Archive a lead (it moves to ``/v1/leads/archived``); returns its v1 shape."""
        with self._lock:
            return lead_v1(self.store, self.store.archive_lead(lead_id))

    def convert_lead(self, lead_id: str) -> None:
        """Convert a lead to a deal: the lead is deleted and vanishes from every endpoint."""
        with self._lock:
            self.store.remove_lead(lead_id)

    def delete_lead(self, lead_id: str) -> None:
        """Delete a lead for good."""
        with self._lock:
            self.store.remove_lead(lead_id)

    def delete_org(self, org_id: int) -> None:
        """Soft-delete organization ``org_id``: it leaves every list; persons keep its id."""
        with self._lock:
            self.store.delete_org(org_id)

    def add_person_field(self, name: str, field_type: str, options: Sequence[str] = ()) -> str:
        """Add a custom person field; returns its 40-hex hash key."""
        with self._lock:
            return self.store.add_field("person", name, field_type, options).key

    def add_deal_field(self, name: str, field_type: str, options: Sequence[str] = ()) -> str:
        """Add a custom deal field (leads inherit it); returns its hash key."""
        with self._lock:
            return self.store.add_field("deal", name, field_type, options).key

    def rename_person_field(self, key: str, name: str) -> None:
        """Rename a person field: its ``name`` changes, its key never does."""
        with self._lock:
            self.store.fields.get("person", key).name = name

    def add_filter(self, **conditions: int) -> int:
        """Add a saved person filter (``owner_id``, ``org_id``, ``label_id``); returns its id."""
        with self._lock:
            return self.store.add_filter(**conditions)
