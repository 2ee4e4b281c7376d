"""The emulator's front: routing, sessions, the daily API budget, faults, the request log and the
``/_emulator/`` admin interface.

Per request: route (unknown path 404 ``NOT_FOUND``, wrong method 405 ``METHOD_NOT_ALLOWED``,
version below 31.0 410 ``GONE``, above 66.0 404), then the token (``Authorization: Bearer`` or
``OAuth``; missing, unknown or expired: 401 ``INVALID_SESSION_ID``), then the next scripted
fault, then the budget: every REST and Bulk call that gets this far counts against
``api_limit`` over a rolling 24 hours of the org's clock, faulted ones included (except the
``expired`` and ``quota`` faults); logins, ``GET /services/data/`` and the admin interface are
free. Once the budget is spent: 403 ``REQUEST_LIMIT_EXCEEDED``. Every counted answer carries
``Sforce-Limit-Info: api-usage=USED/LIMIT``.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from naturalead_sync.loopback import HTTPAnswer

from .auth import Credentials
from .bulk import BulkJobs
from .clock import Clock
from .errors import APIError, json_answer
from .faults import Fault, FaultScript
from .rest import NEWEST_VERSION, OLDEST_VERSION, Request, RestAPI, versions
from .store import Org

__all__ = ["RequestRecord", "SalesforceEmulator"]

_SOAP = re.compile(r"^/services/Soap/u/(\d+\.\d)(?:/.*)?$")
_DATA = re.compile(r"^/services/data/v(\d+\.\d)/(.*)$")
_ID = r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?"
_ROUTES: list[tuple[frozenset[str], re.Pattern[str], str]] = [
    (frozenset({m}) if isinstance(m, str) else m, re.compile(f"^{pattern}$"), name)
    for m, pattern, name in (
        ("GET", r"(?P<kind>query|queryAll)/?", "query"),
        ("GET", rf"(?P<kind>query|queryAll)/(?P<locator>{_ID}-\d+)/?", "query_more"),
        ("GET", r"limits/?", "limits"),
        ("GET", r"sobjects/?", "describe"),
        ("GET", r"sobjects/(?P<sobject>\w+)/?", "describe"),
        ("GET", r"sobjects/(?P<sobject>\w+)/(?P<describe>describe)/?", "describe"),
        ("GET", r"sobjects/(?P<sobject>\w+)/(?P<kind>deleted|updated)/?", "replication"),
        ("GET", rf"sobjects/(?P<sobject>\w+)/(?P<id>{_ID})/?", "sobject"),
        ("POST", r"jobs/query/?", "bulk"),
        (frozenset({"GET", "PATCH", "DELETE"}), rf"jobs/query/(?P<job>{_ID})/?", "bulk"),
        ("GET", rf"jobs/query/(?P<job>{_ID})/results/?", "bulk_results"),
    )
]
_EXPIRED = APIError(401, "INVALID_SESSION_ID", "Session expired or invalid")
_OVER_LIMIT = APIError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
_HTML_ERROR = (  # an error page as a load balancer serves it (HTML, not XML)
    b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head>"
    b"<body><p>Service Unavailable<br></body></html>"
)
_SERVER_ERRORS = {
    "500": (500, "UNKNOWN_EXCEPTION", "An unexpected error occurred (scripted fault)."),
    "503": (503, "SERVER_UNAVAILABLE", "Server temporarily unavailable (scripted fault)."),
}


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it (``at`` is the org's clock; admin calls are not
    logged)."""

    at: datetime
    method: str
    path: str
    endpoint: str
    status: int
    fault: str | None


class SalesforceEmulator(Org):
    """An in-memory Salesforce org served over HTTP (see the package docstring).

    :param clock: the org's clock (default: wall time).
    :param api_limit: daily REST+Bulk call budget (rolling 24 hours).
    :param seed: seeds the generated data of :meth:`seed_leads` and :meth:`seed_contacts`.
    :param batch_size_default: query page size without ``Sforce-Query-Options``.
    :param token_lifetime: seconds (org clock) a session lasts; None: until revoked.
    :param slow_seconds: delay of a ``slow`` fault.
    :param bulk_job_polls: status reads a Bulk job answers ``InProgress`` before completing.
    :param replication_id_limit: most ids getDeleted/getUpdated return (``EXCEEDED_ID_LIMIT``).
    :param instance_url: the URL logins report (default: ``http://`` + the request's Host).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        api_limit: int = 15_000,
        seed: int = 0,
        batch_size_default: int = 2000,
        token_lifetime: float | None = None,
        slow_seconds: float = 5.0,
        bulk_job_polls: int = 1,
        replication_id_limit: int = 600_000,
        instance_url: str | None = None,
    ) -> None:
        super().__init__(clock=clock, seed=seed)
        self.api_limit = api_limit
        self.slow_seconds = slow_seconds
        self.instance_url = instance_url.rstrip("/") if instance_url else None
        #: Users, connected apps and sessions.
        self.credentials = Credentials(
            self.org_id, self.clock, lambda: self.new_id("005"), self.user_id
        )
        self.credentials.token_lifetime = token_lifetime
        self.rest = RestAPI(
            self,
            batch_size_default=batch_size_default,
            replication_id_limit=replication_id_limit,
            api_usage=lambda: self.api_usage,
        )
        self.bulk = BulkJobs(self, polls_in_progress=bulk_job_polls)
        #: The latest 10,000 requests, oldest first.
        self.request_log: deque[RequestRecord] = deque(maxlen=10_000)
        self._faults = FaultScript()
        self._calls: deque[datetime] = deque()

    # -- test controls -----------------------------------------------------------------------

    def script(self, *faults: str, endpoint: str = "any", times: int = 1) -> None:
        """Queue ``faults`` (see :mod:`.faults`) for the next requests to ``endpoint``
        (``"query"``, ``"query_more"``, ``"login"``, ...; ``"any"``: any REST or Bulk one),
        the whole sequence ``times`` times."""
        with self._lock:
            self._faults.add(faults, endpoint, times)

    def clear_faults(self) -> None:
        """Forget every scripted fault not yet used."""
        with self._lock:
            self._faults.clear()

    @property
    def api_usage(self) -> tuple[int, int]:
        """``(calls in the last 24 hours, api_limit)``."""
        with self._lock:
            horizon = self.now() - timedelta(days=1)
            while self._calls and self._calls[0] <= horizon:
                self._calls.popleft()
            return len(self._calls), self.api_limit

    def set_api_usage(self, used: int) -> None:
        """Pretend ``used`` calls were made just now (e.g. to start a test near the limit)."""
        with self._lock:
            self._calls = deque([self.now()] * used)

    def stats(self) -> dict[str, Any]:
        """Counters for tests and the admin interface."""
        with self._lock:
            endpoints: dict[str, int] = {}
            for record in self.request_log:
                endpoints[record.endpoint] = endpoints.get(record.endpoint, 0) + 1
            used, limit = self.api_usage
            return {
                "now": self.now().isoformat(),
                "requests": endpoints,
                "api_usage": {"used": used, "limit": limit},
                "records": self.counts(),
                "open_cursors": self.rest.open_cursors,
                "bulk_jobs": len(self.bulk),
                "faults_pending": self._faults.pending(),
            }

    # -- HTTP --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """Answer one HTTP request (``path`` may carry a query string); thread-safe."""
        method, url = method.upper(), urlsplit(path)
        lowered = {name.lower(): value for name, value in headers.items()}
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        base_url = self.instance_url or f"http://{lowered.get('host', '127.0.0.1')}"
        with self._lock:
            if url.path.startswith("/_emulator/"):
                return self._admin(method, url.path.removeprefix("/_emulator/"), body)
            endpoint, answer, fault = self._dispatch(
                method, url.path, params, lowered, body, base_url
            )
            fault_name = None if fault is None else str(fault)
            self.request_log.append(
                RequestRecord(self.now(), method, path, endpoint, answer.status, fault_name)
            )
        if fault is None:
            return answer
        delay = (fault.seconds or self.slow_seconds) if fault.name == "slow" else 0.0
        return answer._replace(action=fault.name, delay=delay)

    def _dispatch(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        base_url: str,
    ) -> tuple[str, HTTPAnswer, Fault | None]:
        soap = _SOAP.match(path)
        if soap and method == "POST":
            return self._login(lambda: self.credentials.soap_login(soap[1], body, base_url))
        if path.rstrip("/") == "/services/oauth2/token" and method == "POST":
            return self._login(lambda: self.credentials.oauth_token(headers, body, base_url))
        if path.rstrip("/") == "/services/data" and method == "GET":
            return "versions", json_answer(200, versions()), None
        try:
            version, route, match = self._route(method, path)
        except APIError as error:
            return "unknown", error.answer(), None
        endpoint = match["kind"] if route == "replication" else route
        scheme, _, token = headers.get("authorization", "").partition(" ")
        session = self.credentials.session(token.strip())
        if scheme.lower() not in ("bearer", "oauth") or session is None:
            return endpoint, _EXPIRED.answer(), None
        fault = self._faults.take(endpoint)
        name = None if fault is None else fault.name
        used, limit = self.api_usage
        if name == "expired":
            self.credentials.revoke(token.strip())
            return endpoint, _EXPIRED.answer(), fault
        if name == "quota" or used >= limit:
            usage = {"Sforce-Limit-Info": f"api-usage={used}/{limit}"}
            return endpoint, _OVER_LIMIT.answer(usage), fault
        self._calls.append(self.now())
        limits = {"Sforce-Limit-Info": f"api-usage={used + 1}/{limit}"}
        if name in _SERVER_ERRORS:
            return endpoint, APIError(*_SERVER_ERRORS[name]).answer(limits), fault
        request = Request(method, version, params, headers, body, match, session, fault)
        try:
            answer = self._resource(route, request)
        except APIError as error:
            answer = error.answer()
        return endpoint, answer._replace(headers={**answer.headers, **limits}), fault

    def _route(self, method: str, path: str) -> tuple[str, str, dict[str, str]]:
        """``(version, route name, named groups)`` of a REST path, or an :class:`APIError`."""
        data = _DATA.match(path)
        if data is None:
            raise APIError(404, "NOT_FOUND", "The requested resource does not exist")
        version, rest = data[1], data[2]
        if float(version) < OLDEST_VERSION:
            raise APIError(410, "GONE", f"API version {version} is retired")
        if float(version) > NEWEST_VERSION:
            raise APIError(404, "NOT_FOUND", "The requested resource does not exist")
        allowed: set[str] = set()
        for methods, pattern, name in _ROUTES:
            found = pattern.match(rest)
            if found and method in methods:
                groups = {k: v for k, v in found.groupdict().items() if v is not None}
                return version, name, groups
            if found:
                allowed |= methods
        if allowed:
            message = f"HTTP Method '{method}' not allowed. Allowed are {','.join(sorted(allowed))}"
            raise APIError(405, "METHOD_NOT_ALLOWED", message)
        raise APIError(404, "NOT_FOUND", "The requested resource does not exist")

    def _resource(self, route: str, req: Request) -> HTTPAnswer:
        if route == "bulk_results":
            return self.bulk.results(req.match["job"], req.version, req.params)
        if route == "bulk" and req.method == "POST":
            return self.bulk.create(req.version, req.body, req.session.user_id, req.fault)
        if route == "bulk":
            job = req.match["job"]
            if req.method == "PATCH":
                return self.bulk.abort(job, req.body)
            if req.method == "DELETE":
                return self.bulk.delete(job)
            return self.bulk.status(job, req.fault)
        handlers: dict[str, Callable[[Request], HTTPAnswer]] = {
            "query": self.rest.query,
            "query_more": self.rest.query_more,
            "limits": self.rest.limits,
            "describe": self.rest.describe,
            "replication": self.rest.replication,
            "sobject": self.rest.record,
        }
        return handlers[route](req)

    def _login(self, login: Callable[[], HTTPAnswer]) -> tuple[str, HTTPAnswer, Fault | None]:
        fault = self._faults.take("login")
        if fault is not None and fault.name in _SERVER_ERRORS:
            status = _SERVER_ERRORS[fault.name][0]
            return "login", HTTPAnswer(status, {"Content-Type": "text/html"}, _HTML_ERROR), fault
        return "login", login(), fault

    # -- /_emulator/ -------------------------------------------------------------------------

    def _admin(self, method: str, route: str, body: bytes) -> HTTPAnswer:
        """The admin interface (no auth, not counted, not logged); see the README."""
        try:
            payload = json.loads(body) if body else {}
            route = route.rstrip("/")
            if (method, route) == ("GET", "stats"):
                return json_answer(200, self.stats())
            if (method, route) == ("POST", "seed"):
                sobject = str(payload.get("sobject", "Lead"))
                count = int(payload.get("count", 0))
                ids = self.seed(sobject, count, same_stamp=bool(payload.get("same_stamp")))
                return json_answer(200, {"created": len(ids), "ids": ids[:100]})
            if route == "clock" and method in ("GET", "POST"):
                if "advance" in payload:
                    self.advance(float(payload["advance"]))
                if "set" in payload:
                    self.set_time(datetime.fromisoformat(str(payload["set"])))
                return json_answer(200, {"now": self.now().isoformat()})
            if route == "faults" and method in ("GET", "POST", "DELETE"):
                if method == "POST":
                    faults = tuple(str(f) for f in payload.get("faults", []))
                    self.script(
                        *faults,
                        endpoint=str(payload.get("endpoint", "any")),
                        times=int(payload.get("times", 1)),
                    )
                if method == "DELETE":
                    self.clear_faults()
                return json_answer(200, {"pending": self._faults.pending()})
            if (method, route) == ("POST", "sessions/expire"):
                return json_answer(200, {"expired": self.credentials.expire_sessions()})
            if route == "requests" and method == "GET":
                log = [asdict(r) | {"at": r.at.isoformat()} for r in self.request_log]
                return json_answer(200, log)
        except (ValueError, TypeError, AttributeError) as error:
            return json_answer(400, {"error": str(error)})
        return json_answer(404, {"error": f"no admin route {method} /_emulator/{route}"})
