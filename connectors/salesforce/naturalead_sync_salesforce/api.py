"""Salesforce through simple-salesforce: the one place that logs in, sends the calls, watches
the daily API allowance and turns simple-salesforce's errors into naturalead-sync's.

- Transport: the connector's ``requests.Session`` (see :meth:`SalesforceConnector.session`)
  gets an adapter with core's timeout (requests has none by default, and simple-salesforce
  sets none) and bounded retries of 5xx answers and dropped connections with core's attempt
  and backoff bounds (simple-salesforce retries nothing), for core's idempotent methods, the
  Bulk job abort (PATCH) and the logins (POST). The other POST, a Bulk job creation, is sent
  once: a second request could start a second job and spend the org's Bulk quota. A
  connection that fails before the request goes out (it cannot be opened) is still retried;
  a 5xx answer, or a connection dropped after the request went out, fails the run, and may
  leave that query job on Salesforce to finish unread.
- Sessions: simple-salesforce logs in again on ``INVALID_SESSION_ID`` for every login-based
  flow; calls pass ``max_retries=0`` so it does so once and raises, and this module sends the
  call again once. Every call goes through ``Salesforce._call_salesforce`` (``query``,
  ``query_more``, ``restful``), never through ``SFType``, whose refresh-on-401 recurses
  without bound.
- Budget: ``Sforce-Limit-Info`` (``sf.api_usage``) is read after each call; a call that would
  go past ``max_api_share`` of the daily allowance is not sent (:class:`BudgetExhausted`), and
  ``REQUEST_LIMIT_EXCEEDED`` ends the run at once, without retries.
- Bulk API 2.0 (:meth:`SalesforceApi.bulk_query`): simple-salesforce's Bulk 2.0 client,
  driven a call at a time (create the job, poll it, read each result chunk) rather than
  ``sf.bulk2.<Object>.query``, whose wait is unbounded (24 hours) and whose polls are neither
  counted nor budgeted. That client reads no ``Sforce-Limit-Info`` and does not log in again:
  each Bulk call adds one to the known usage, and an expired session logs in again once with
  a new client.
- Errors: messages say what failed and what to do, never a secret.

Apart from the test helpers (:mod:`.testing`), this is the only module that imports
simple-salesforce and requests, and the connector imports it when it is built, not at import:
every installed plugin is imported at each start, whichever connectors run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, TypeVar, cast

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation, SFBulk2Handler
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)
from simple_salesforce.util import Usage
from urllib3.util.retry import Retry

from naturalead_sync import BudgetExhausted, ConnectorContext, ConnectorError
from naturalead_sync.http import RetryPolicy

from .errors import SalesforceCallError
from .settings import SalesforceSettings

__all__ = ["SalesforceApi", "SalesforceCallError"]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Rows per Bulk result chunk (``maxRecords``): one call each.
BULK_CHUNK = 50_000
#: Seconds between Bulk job polls: the first poll at once, then doubling up to the cap.
_POLL_FIRST, _POLL_MAX = 0.5, 15.0
#: Paths of the logins (SOAP ``login()``, the OAuth token endpoint): the only POSTs resent.
_LOGIN_PATHS = ("/services/Soap/u/", "/services/oauth2/token")
#: What each login flow needs to be told in an error.
_LOGIN_FIX = {
    "jwt": "check username, consumer_key and the private key; the connected app must hold the "
    "certificate and pre-authorise the user's profile or permission set",
    "client_credentials": "check consumer_key, consumer_secret and domain (your My Domain); "
    "the connected app needs the client credentials flow and a run-as user",
    "password": "check username, password and security_token (and domain: 'test' for a sandbox)",
    "session": "get a new session_id, or use JWT bearer or client credentials, which log in "
    "again by themselves",
}


def _bulk2(sf: Salesforce, sobject: str) -> Any:
    """simple-salesforce's Bulk 2.0 client for ``sobject`` (``sf.bulk2.<sobject>``), with its
    job-level calls: ``create_job``, ``get_job``, ``get_query_results``, ``abort_job``."""
    return getattr(cast(SFBulk2Handler, sf.bulk2), sobject)._client


def _retry(policy: RetryPolicy, *methods: str) -> Retry:
    """urllib3's retries of 5xx answers and dropped connections within ``policy``'s bounds, for
    its idempotent methods and ``methods``. Whatever the method, a connection that failed
    before the request went out is retried."""
    return Retry(
        total=max(policy.max_attempts - 1, 0),
        backoff_factor=policy.backoff_initial,
        backoff_max=policy.backoff_max,
        status_forcelist=sorted(policy.statuses - {429}),
        allowed_methods=policy.methods | set(methods),
        raise_on_status=False,
    )


class _Adapter(HTTPAdapter):
    """An adapter with a default timeout (requests' own default is to wait forever) that
    sends a login's POST through a second adapter, with ``login_retry``, and the rest with
    ``retry``."""

    def __init__(self, timeout: float, retry: Retry, login_retry: Retry) -> None:
        super().__init__(max_retries=retry)
        self.timeout = timeout
        self._login = HTTPAdapter(max_retries=login_retry)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        """Send with the default timeout unless the caller gave one."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if request.method == "POST" and request.path_url.startswith(_LOGIN_PATHS):
            return self._login.send(request, *args, **kwargs)
        return super().send(request, *args, **kwargs)

    def close(self) -> None:
        """Close both adapters' connection pools."""
        super().close()
        self._login.close()


class SalesforceApi:
    """The Salesforce calls the connector makes, retried, budgeted, errors translated.

    ``session_factory`` builds the ``requests.Session`` everything goes through (the
    connector's :meth:`~naturalead_sync_salesforce.SalesforceConnector.session`). The login
    happens at the first call.
    """

    def __init__(
        self,
        settings: SalesforceSettings,
        context: ConnectorContext,
        session_factory: Callable[[], requests.Session],
    ) -> None:
        self._settings = settings
        self._context = context
        self._session_factory = session_factory
        self._sf: Salesforce | None = None
        #: ``(used, allowance)`` from the latest ``Sforce-Limit-Info``, None before a call.
        self.usage: tuple[int, int] | None = None
        #: Calls sent (after the login), for reports and benchmarks.
        self.requests = 0

    # -- the client ------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        policy = self._context.retry
        # POST is resent for the logins only (a second login costs nothing), never for the
        # other one, a Bulk job creation: a second job would spend the org's Bulk quota. The
        # only PATCH aborts a Bulk job, which a second abort leaves aborted.
        adapter = _Adapter(
            self._context.timeout_seconds, _retry(policy, "PATCH"), _retry(policy, "POST")
        )
        session = self._session_factory()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        version = metadata.version("simple-salesforce")
        session.headers["User-Agent"] = f"{self._context.user_agent} simple-salesforce/{version}"
        return session

    def _login_kwargs(self) -> dict[str, Any]:
        s = self._settings
        flow = s.auth_flow
        if flow == "session":
            assert s.session_id is not None
            return {"session_id": s.session_id.get_secret_value(), "instance_url": s.instance_url}
        if flow == "client_credentials":
            assert s.consumer_secret is not None
            return {
                "consumer_key": s.consumer_key,
                "consumer_secret": s.consumer_secret.get_secret_value(),
                "domain": s.domain,
            }
        if flow == "password":
            assert s.password is not None and s.security_token is not None
            return {
                "username": s.username,
                "password": s.password.get_secret_value(),
                "security_token": s.security_token.get_secret_value(),
                "domain": s.domain or "login",
            }
        key: dict[str, Any] = (
            {"privatekey_file": str(self._context.resolve_path(s.private_key_file))}
            if s.private_key_file
            else {"privatekey": s.private_key.get_secret_value() if s.private_key else None}
        )
        return {
            "username": s.username,
            "consumer_key": s.consumer_key,
            "domain": s.domain or "login",
            **key,
        }

    def client(self) -> Salesforce:
        """The logged-in simple-salesforce client (the login happens on the first use)."""
        if self._sf is None:
            try:
                self._sf = Salesforce(
                    session=self._session(),
                    version=self._settings.api_version,
                    **self._login_kwargs(),
                )
            except (SalesforceError, requests.RequestException) as exc:
                raise self._error("login", exc) from None
            except OSError as exc:  # the private key file
                raise ConnectorError(
                    f"cannot read settings.private_key_file ({exc.strerror}); give the path "
                    "of the PEM key, relative to the config file"
                ) from None
        return self._sf

    def close(self) -> None:
        """Close the session's connection pool."""
        if self._sf is not None:
            self._sf.session.close()
            self._sf = None

    # -- calls -----------------------------------------------------------------------------------

    def call(
        self,
        what: str,
        send: Callable[[Salesforce], T],
        *,
        budget: bool = True,
        bulk: bool = False,
        sent_once: str | None = None,
    ) -> T:
        """Send one call (``send(sf)``), within the budget unless ``budget`` is false.

        ``bulk``: ``send`` goes through simple-salesforce's Bulk 2.0 client, which neither
        logs in again nor reads ``Sforce-Limit-Info`` (see the module docstring).
        ``sent_once``: why the transport sends this call once (a POST other than a login),
        given when it does, for the error to say ``sent once (<sent_once>)`` rather than
        speak of retries.
        """
        if budget:
            self._check_budget(what)
        for attempt in (1, 2):
            sf = self.client()
            try:
                result = send(sf)
            except SalesforceExpiredSession as exc:
                # simple-salesforce has logged in again already (login-based flows), except
                # through its Bulk client: a new client logs in.
                if attempt == 1 and self._settings.auth_flow != "session":
                    if bulk:
                        self.close()
                    log.info("Salesforce session expired during the %s; logging in again", what)
                    continue
                raise self._error(what, exc, sent_once) from None
            except (SalesforceError, requests.RequestException) as exc:
                raise self._error(what, exc, sent_once) from None
            finally:
                self.requests += 1
            if bulk:
                if self.usage is not None:
                    self.usage = (self.usage[0] + 1, self.usage[1])
            elif isinstance(usage := sf.api_usage.get("api-usage"), Usage):
                self.usage = (usage.used, usage.total)
            return result
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[Any]]:
        """The records of ``soql`` a page at a time (``nextRecordsUrl`` paging)."""
        headers = {"Sforce-Query-Options": f"batchSize={self._settings.batch_size}"}
        page = self.call(
            "query",
            lambda sf: sf.query(
                soql, include_deleted=include_deleted, headers=headers, max_retries=0
            ),
        )
        while True:
            yield list(page.get("records") or [])
            if page.get("done", True):
                return
            page = self._next_page(str(page["nextRecordsUrl"]), headers)

    def count(self, soql: str) -> int:
        """The ``totalSize`` of a ``SELECT COUNT() ...`` query."""
        return int(self.call("count", lambda sf: sf.query(soql, max_retries=0))["totalSize"])

    def bulk_query(self, sobject: str, soql: str) -> Iterator[Iterator[list[str]]]:
        """The rows of ``soql`` from a Bulk API 2.0 query job, a result chunk at a time.

        Each chunk comes as its CSV lines, parsed as they are read: the header first, then a
        list of strings per row (empty for null). The next chunk is read (one call) when the
        caller moves on to it. The job is polled, at once then at growing intervals, for
        ``bulk_max_wait`` at most; a job that ends ``Failed`` or ``Aborted``, or takes longer
        (it is aborted then), fails the run.
        """
        job = self.call(
            f"creation of the Bulk API 2.0 query job for the {sobject} backfill",
            lambda sf: _bulk2(sf, sobject).create_job(Operation.query, soql),
            bulk=True,
            sent_once="a second request could start a second job",
        )
        job_id = str(job["id"])
        self._await_job(sobject, job_id)
        locator, seen = "", set()
        while True:
            chunk = self._bulk_chunk(sobject, job_id, locator)
            yield csv.reader(io.StringIO(chunk["records"], newline=""))
            locator = str(chunk["locator"] or "")
            if not locator:
                return
            if locator in seen:  # the chunks would start over: stop rather than loop
                raise SalesforceCallError(
                    f"Salesforce gave the Bulk results locator {locator!r} of job {job_id} a "
                    "second time; the backfill stopped there with its checkpoint kept. Run "
                    "again (a new job is made)"
                )
            seen.add(locator)

    def _bulk_chunk(self, sobject: str, job_id: str, locator: str) -> Any:
        """One result chunk: ``{"records": CSV text, "locator": next chunk or ""}``."""
        return self.call(
            "Bulk results",
            lambda sf: _bulk2(sf, sobject).get_query_results(job_id, locator, BULK_CHUNK),
            bulk=True,
        )

    def _await_job(self, sobject: str, job_id: str) -> None:
        """Poll the Bulk job until it completes; raise when it fails or takes too long. A job
        left running (too long, or a poll that failed) is aborted, as far as Salesforce can
        be reached: it would go on costing the org."""
        wait = self._settings.bulk_max_wait.total_seconds()
        deadline, delay = time.monotonic() + wait, _POLL_FIRST
        try:
            while True:
                info = self.call(
                    "Bulk job status",
                    lambda sf: _bulk2(sf, sobject).get_job(job_id, True),
                    bulk=True,
                )
                state = str(info.get("state"))
                if state in ("JobComplete", "Failed", "Aborted"):
                    break
                if time.monotonic() + delay > deadline:
                    raise SalesforceCallError(
                        f"Salesforce's Bulk API 2.0 job {job_id} was still {state} after "
                        f"bulk_max_wait ({wait:g} s); it was told to abort. Raise "
                        "bulk_max_wait, or set bulk_threshold = 0 to read through REST queries",
                        "BULK_JOB_TIMEOUT",
                    )
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
        except BaseException:
            with contextlib.suppress(Exception):
                self.call(
                    "Bulk job abort",
                    lambda sf: _bulk2(sf, sobject).abort_job(job_id, True),
                    budget=False,
                    bulk=True,
                )
            raise
        if state != "JobComplete":
            reason = info.get("errorMessage") or "no reason given"
            raise SalesforceCallError(
                f"Salesforce's Bulk API 2.0 job {job_id} for the backfill ended {state} "
                f"({reason}). Run again (the checkpoint is kept), or set bulk_threshold = 0 "
                "to read through REST queries",
                f"BULK_JOB_{state.upper()}",
            )

    def _next_page(self, url: str, headers: dict[str, str]) -> Any:
        return self.call(
            "query page",
            lambda sf: sf.query_more(url, identifier_is_url=True, headers=headers, max_retries=0),
        )

    def restful(self, path: str, params: dict[str, str] | None = None, **options: Any) -> Any:
        """GET a REST resource under ``/services/data/vNN.N/``."""
        return self.call(path, lambda sf: sf.restful(path, params=params, max_retries=0), **options)

    # -- budget and errors -----------------------------------------------------------------------

    def _check_budget(self, what: str) -> None:
        if self.usage is None:
            return
        used, allowance = self.usage
        share = self._settings.max_api_share
        if allowance > 0 and used + 1 > share * allowance:
            raise BudgetExhausted(
                f"Salesforce API usage is {used}/{allowance} ({used / allowance:.0%}), at "
                f"settings.max_api_share ({share:.0%}); stopped before the {what}. The "
                "checkpoint is kept: the next run resumes (the allowance is a rolling 24 hours), "
                "or raise max_api_share"
            )

    def _error(self, what: str, exc: Exception, sent_once: str | None = None) -> ConnectorError:
        """``exc`` as naturalead-sync's error for the ``what``; ``sent_once``: why the call
        was not resent, when it was not (see :meth:`call`)."""
        settings = self._settings
        flow = settings.auth_flow
        retries = (
            " after the allowed retries" if sent_once is None else f", sent once ({sent_once})"
        )
        if isinstance(exc, SalesforceAuthenticationFailed):
            return SalesforceCallError(
                f"Salesforce refused the {flow} login ({exc.code}: {exc.auth_message}); "
                f"{_LOGIN_FIX[flow]}",
                str(exc.code),
            )
        if not isinstance(exc, SalesforceError):
            return SalesforceCallError(
                f"Salesforce could not be reached for the {what} ({type(exc).__name__})"
                f"{retries}; check the network (proxy, firewall) and run again: the checkpoint "
                "is kept"
            )
        content = exc.content
        first: Any = content[0] if isinstance(content, list) and content else {}
        code = str(first.get("errorCode")) if isinstance(first, dict) else None
        message = str(first.get("message", "")) if isinstance(first, dict) else ""
        label = f"HTTP {exc.status} {code or ''}".strip()
        if code == "REQUEST_LIMIT_EXCEEDED":
            return BudgetExhausted(
                f"Salesforce's API limit is reached ({what}: {message}). The checkpoint is "
                "kept; run again when the org's 24-hour usage has dropped"
            )
        if exc.status == 401:
            return SalesforceCallError(
                f"Salesforce refused the session ({label}) on the {what}; {_LOGIN_FIX[flow]}",
                code,
            )
        if exc.status == 403 or code in ("INVALID_TYPE", "INSUFFICIENT_ACCESS"):
            return SalesforceCallError(
                f"Salesforce refused the {what} ({label}: {message}). The user needs the "
                f'"API Enabled" permission and Read on {settings.object} (View All for every '
                "record, and its fields visible)",
                code,
            )
        if isinstance(exc.status, int) and exc.status >= 500:
            return SalesforceCallError(
                f"Salesforce failed on the {what} ({label}){retries}; run again later: the "
                "checkpoint is kept",
                code,
            )
        return SalesforceCallError(
            f"Salesforce rejected the {what} ({label}: {message or 'no message'}). Check "
            "settings.object and settings.fields",
            code,
        )
