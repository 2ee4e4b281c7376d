"""HubSpot through ``hubspot-api-client``: the one place that builds the SDK's API objects,
paces and retries their calls, refreshes OAuth tokens and turns their errors into
naturalead-sync's.

This is the only module that imports the SDK, and the connector imports it when it is built,
not at import: every installed plugin is imported at each start, whichever connectors run.

- Pacing: CRM search has its own bucket (5 requests a second per account, no rate-limit
  headers); every other call counts against the app's ten-second burst limit. Two
  :class:`~naturalead_sync.pacing.Pacer` windows keep the connector under both, so a run meets
  no avoidable 429.
- Retries: urllib3's ``Retry`` inside the SDK, with ``allowed_methods=None`` (the SDK's
  documented example leaves POST out, so searches and batch reads would never be retried),
  core's attempt and backoff bounds, ``Retry-After`` honoured, and never a retry at once
  (HubSpot's 429s often carry no ``Retry-After``).
- Timeouts: every call passes core's timeout.
- Errors: the SDK raises a different ``ApiException`` class per API package, and urllib3 errors
  when the network fails; all become :class:`~naturalead_sync.ConnectorError` (or
  :class:`~naturalead_sync.BudgetExhausted` for the daily limit) with the fix in the message
  and never the token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import hubspot.crm.associations.v4 as associations_v4
import hubspot.crm.objects as objects
import hubspot.oauth as oauth
import urllib3
from hubspot.crm.objects import (
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObject,
)
from urllib3.util.retry import Retry

from naturalead_sync import (
    BudgetExhausted,
    ConnectorContext,
    ConnectorError,
    TokenRefresher,
    TokenResponse,
)
from naturalead_sync.pacing import Pacer

from .settings import HubSpotSettings

__all__ = ["HubSpotApi", "SearchPage"]

log = logging.getLogger(__name__)

#: The SDK's error classes: each API package has its own ``ApiException``.
_API_ERRORS: tuple[type[Exception], ...] = (
    objects.ApiException,
    associations_v4.ApiException,
    oauth.ApiException,
)
#: The SDK API objects the connector uses: (package, class).
_APIS: dict[str, tuple[Any, str]] = {
    "objects": (objects, "BasicApi"),
    "search": (objects, "SearchApi"),
    "batch": (objects, "BatchApi"),
    "associations": (associations_v4, "BatchApi"),
}
_UNLIMITED = 1 << 62


class _Retry(Retry):
    """urllib3's ``Retry`` with HubSpot's 429 rule: a 429 without ``Retry-After`` is waited out
    for its bucket (one second for search, the ten-second window otherwise, at most
    ``backoff_max``), and no retry goes out at once."""

    def get_backoff_time(self) -> float:
        return max(float(self.backoff_factor), super().get_backoff_time())

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        if (
            response is not None
            and response.status == 429
            and not response.headers.get("Retry-After")
        ):
            url = str(self.history[-1].url) if self.history else ""
            bucket = 1.0 if "/search" in url else 10.0
            time.sleep(min(bucket, float(self.backoff_max)))
            return
        super().sleep(response)


class SearchPage:
    """One page of a search: its records and whether HubSpot has more after them."""

    __slots__ = ("more", "results")

    def __init__(self, results: list[SimplePublicObject], more: bool) -> None:
        self.results = results
        self.more = more


class HubSpotApi:
    """The HubSpot calls the connector makes, paced, retried and with errors translated."""

    def __init__(
        self,
        settings: HubSpotSettings,
        context: ConnectorContext,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._context = context
        self._search_pacer = Pacer(
            settings.search_requests_per_second, _UNLIMITED, 1.0, clock=clock, sleep=sleep
        )
        self._burst_pacer = Pacer(
            settings.requests_per_ten_seconds, _UNLIMITED, 10.0, clock=clock, sleep=sleep
        )
        policy = context.retry
        self._retry = _Retry(
            total=max(policy.max_attempts - 1, 0),
            backoff_factor=policy.backoff_initial,
            backoff_max=policy.backoff_max,
            backoff_jitter=policy.backoff_initial,
            status_forcelist=sorted(policy.statuses),
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        version = metadata.version("hubspot-api-client")
        self._user_agent = f"{context.user_agent} hubspot-api-client-python/{version}"
        token = settings.access_token
        #: A private app's token; an OAuth app's tokens come from ``self._oauth``.
        self._private_token = None if token is None else token.get_secret_value()
        self._oauth: TokenRefresher | None = None
        if settings.refresh_token is not None:
            secret = settings.refresh_token.get_secret_value()
            self._oauth = TokenRefresher(secret, self._exchange, clock=clock)
        self._apis: dict[str, Any] = {}
        #: Requests sent (search and others), for reports and benchmarks.
        self.requests = 0
        self.search_requests = 0

    # -- the SDK ---------------------------------------------------------------------------------

    def _build(self, package: Any, api_name: str) -> Any:
        """Build one SDK API object with our host, token, retries and user agent (what the
        SDK's ``HubSpot(api_factory=...)`` hook does, without the per-access rebuild)."""
        configuration = package.Configuration()
        configuration.host = self._settings.base_url
        configuration.retries = self._retry
        if self._token is not None:
            configuration.access_token = self._token
        api_client = package.ApiClient(configuration=configuration)
        api_client.user_agent = self._user_agent
        return getattr(package, api_name)(api_client=api_client)

    @property
    def _token(self) -> str | None:
        """The access token requests carry (None before an OAuth app's first refresh)."""
        return self._private_token if self._oauth is None else self._oauth.access_token

    def _api(self, name: str) -> Any:
        """The SDK API object ``name``, built once per token (each one holds a pool)."""
        if name not in self._apis:
            self._apis[name] = self._build(*_APIS[name])
        return self._apis[name]

    def _exchange(self, refresh_token: str) -> TokenResponse:
        """Trade the OAuth refresh token for a new access token, which the API objects built
        from now on carry. HubSpot keeps the same refresh token; a new one in the answer (a
        rotation) is handed on, to be sent at the next refresh."""
        settings = self._settings
        assert settings.client_secret is not None
        tokens = self._build(oauth, "TokensApi")
        self._burst_pacer.acquire(1)
        try:
            answer = tokens.create(
                grant_type="refresh_token",
                client_id=settings.client_id,
                client_secret=settings.client_secret.get_secret_value(),
                refresh_token=refresh_token,
                _request_timeout=self._context.timeout_seconds,
            )
        except _API_ERRORS as exc:
            status = getattr(exc, "status", None)
            raise ConnectorError(
                f"HubSpot refused the OAuth refresh (HTTP {status}): check client_id, "
                "client_secret and refresh_token in the connection's settings; a refresh token "
                "stops working when the app is uninstalled from the portal"
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable("OAuth token refresh", exc) from None
        finally:
            self._burst_pacer.record(1)
            self.requests += 1
        self._close_apis()
        rotated = answer.refresh_token
        return TokenResponse(
            str(answer.access_token),
            float(answer.expires_in or 1800),
            str(rotated) if rotated else None,
        )

    def _call(self, api: str, method: str, what: str, **kwargs: Any) -> Any:
        """Call ``method`` of SDK API ``api``, paced, with core's timeout; an OAuth app's token
        is refreshed when it nears its expiry, and once on a 401 before one more try."""
        search = api == "search"
        pacer = self._search_pacer if search else self._burst_pacer

        def send() -> Any:
            """The SDK's answer, or the ``ApiException`` it raised (a 401 may be retried)."""
            target = self._api(api)
            pacer.acquire(1)
            try:
                return getattr(target, method)(
                    **kwargs, _request_timeout=self._context.timeout_seconds
                )
            except _API_ERRORS as exc:
                return exc
            except urllib3.exceptions.HTTPError as exc:
                raise self._unreachable(what, exc) from None
            finally:
                pacer.record(1)
                self.requests += 1
                self.search_requests += search

        answer = send() if self._oauth is None else self._oauth.call(send, _refused)
        if isinstance(answer, _API_ERRORS):
            raise self._error(what, answer) from None
        return answer

    # -- the calls -------------------------------------------------------------------------------

    def search(
        self,
        object_type: str,
        filters: list[dict[str, Any]],
        properties: list[str],
        limit: int,
    ) -> SearchPage:
        """One search page of ``object_type`` (filters ANDed), sorted by id ascending.

        Callers page by id (``hs_object_id GT`` the last id seen), never by offset, so no query
        nears the 10,000-result cap and records leaving the result set mid-run (modified after
        the window) shift nothing.
        """
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            properties=properties,
            limit=limit,
            after="0",
        )
        page = self._call(
            "search",
            "do_search",
            f"search of {object_type}",
            object_type=object_type,
            public_object_search_request=request,
        )
        more = bool(page.paging and page.paging.next)
        return SearchPage(list(page.results or []), more)

    def archived(self, object_type: str, properties: list[str]) -> Iterator[SimplePublicObject]:
        """Every archived (deleted, restorable) record of ``object_type``, 100 per request."""
        after: str | None = None
        while True:
            page = self._call(
                "objects",
                "get_page",
                f"list of archived {object_type}",
                object_type=object_type,
                limit=100,
                after=after,
                properties=properties,
                archived=True,
            )
            yield from page.results or []
            following = page.paging.next.after if page.paging and page.paging.next else None
            if following is None:
                return
            if following == after:
                raise ConnectorError(
                    f"HubSpot's list of archived {object_type} repeats the page after "
                    f"{after!r}; stopping instead of looping"
                )
            after = following

    def batch_read(
        self, object_type: str, ids: list[str], properties: list[str]
    ) -> list[SimplePublicObject]:
        """The live records among ``ids`` (at most 100). Missing ids are left out; a merged-away
        id comes back as its survivor, under the survivor's id."""
        if not ids:
            return []
        request = BatchReadInputSimplePublicObjectId(
            inputs=[{"id": record_id} for record_id in ids],
            properties=properties,
            properties_with_history=[],
        )
        answer = self._call(
            "batch",
            "read",
            f"batch read of {object_type}",
            object_type=object_type,
            batch_read_input_simple_public_object_id=request,
            archived=False,
        )
        return list(answer.results or [])

    def associated(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """The ``to_type`` ids associated with each of ``ids`` (at most 100 per call)."""
        if not ids:
            return {}
        request = associations_v4.BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[{"id": record_id} for record_id in ids]
        )
        answer = self._call(
            "associations",
            "get_page",
            f"associations of {from_type} to {to_type}",
            from_object_type=from_type,
            to_object_type=to_type,
            batch_input_public_fetch_associations_batch_request=request,
        )
        found: dict[str, list[str]] = {}
        for result in answer.results or []:
            primary = [
                str(item.to_object_id)
                for item in result.to or []
                if any(kind.type_id == 578 for kind in item.association_types or [])
            ]
            others = [str(item.to_object_id) for item in result.to or []]
            found[str(result._from.id)] = list(dict.fromkeys(primary + others))
        return found

    def close(self) -> None:
        """Close the SDK's connection pools."""
        self._close_apis()

    def _close_apis(self) -> None:
        for api in self._apis.values():
            pool = getattr(api.api_client.rest_client, "pool_manager", None)
            if pool is not None:
                pool.clear()
        self._apis.clear()

    # -- errors ----------------------------------------------------------------------------------

    def _unreachable(self, what: str, exc: Exception) -> ConnectorError:
        reason = getattr(exc, "reason", None) or exc
        return ConnectorError(
            f"HubSpot could not be reached for the {what} at {self._settings.base_url} "
            f"({type(reason).__name__}) after the allowed retries; check the network and "
            "settings.base_url, then run again: the checkpoint is kept"
        )

    def _error(self, what: str, exc: Exception) -> ConnectorError:
        status = getattr(exc, "status", None)
        body = _body(getattr(exc, "body", None))
        category = body.get("category") or body.get("policyName") or ""
        message = str(body.get("message") or getattr(exc, "reason", "") or "")
        label = f"HTTP {status}{f' {category}' if category else ''}"
        if status == 401:
            token = self._token or ""
            hint = f"…{token[-4:]}" if len(token) >= 8 else "(too short to be a token)"
            return ConnectorError(
                f"HubSpot refused the access token {hint} ({label}) on the {what}: set "
                "settings.access_token to a private app's token (pat-...) or check the OAuth "
                "settings; the token may be revoked or from another portal"
            )
        if status == 403:
            return ConnectorError(
                f"HubSpot refused the {what} ({label}: {message}). Give the private app (or "
                f"OAuth app) the scopes {', '.join(self._settings.scopes)}"
            )
        if status == 429 and body.get("policyName") == "DAILY":
            return BudgetExhausted(
                f"HubSpot's daily API limit is spent ({what}). The checkpoint is kept; run again "
                "after midnight in the portal's time zone"
            )
        if status == 429:
            return ConnectorError(
                f"HubSpot kept answering 429 ({category or 'rate limit'}) to the {what} after "
                "the allowed retries; another app may share the limit: lower "
                "settings.requests_per_ten_seconds or settings.search_requests_per_second"
            )
        if status is not None and status >= 500:
            return ConnectorError(
                f"HubSpot failed on the {what} ({label}) after the allowed retries; run again "
                "later: the checkpoint is kept"
            )
        return ConnectorError(
            f"HubSpot rejected the {what} ({label}): {message or 'no message'}. Check the "
            "property names in settings.properties"
        )


def _refused(answer: Any) -> bool:
    """Whether HubSpot refused the access token (a 401: revoked or expired early)."""
    return isinstance(answer, _API_ERRORS) and getattr(answer, "status", None) == 401


def _body(raw: Any) -> dict[str, Any]:
    """A HubSpot error body as a dict (empty when it is not JSON)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
