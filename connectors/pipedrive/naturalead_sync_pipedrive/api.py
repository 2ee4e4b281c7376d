"""Pipedrive over httpx: the one place that sends requests, paces them under Pipedrive's two
limits, pages through lists and turns failures into naturalead-sync's errors.

- Client: core's (:meth:`ConnectorContext.http_client`): timeout, user agent, and retries of
  429, 5xx and transport errors, bounded. The credential goes in a header (``x-api-token`` or
  ``Authorization: Bearer``), never in the URL, so no log line can carry it.
- OAuth app (``client_id``/``client_secret``/``refresh_token``): the refresh token is traded
  at ``settings.token_url`` (form body, client credentials in Basic auth) when and as often as
  :class:`~naturalead_sync.TokenRefresher` says (before the first request, shortly
  before the access token expires, once on a 401; a rotated refresh token is kept); requests
  then go to the ``api_domain`` of the answer (unless ``base_url`` overrides it).
- Burst limit (rolling 2 s per token): a :class:`~naturalead_sync.pacing.Pacer` at
  ``requests_per_two_seconds``, and the ``x-ratelimit-remaining``/``x-ratelimit-reset``
  headers of every answer: at 0 remaining nothing is sent before the window frees a slot.
  A run alone on its token therefore meets no 429; a 429 still arrives when something else
  shares the token, and defers every request by ``x-ratelimit-reset`` before core retries it.
  Pipedrive answers an API token that keeps sending after 429s with a Cloudflare HTML 403,
  which becomes a :class:`~naturalead_sync.ConnectorError` saying so.
- Daily budget (tokens per company per day): read from ``x-daily-ratelimit-token-remaining``.
  A request costing more than what is left is not sent, and a 429 that is a spent budget
  (the header says so, or the burst headers show free slots) is not retried: both raise
  :class:`~naturalead_sync.BudgetExhausted`, so the run stops with its checkpoint kept
  instead of retrying until the server's midnight.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from naturalead_sync import (
    BudgetExhausted,
    ConnectorContext,
    ConnectorError,
    TokenRefresher,
    TokenResponse,
)
from naturalead_sync.http import redact_url
from naturalead_sync.pacing import Pacer

from .settings import PipedriveSettings

__all__ = ["IDS_PER_REQUEST", "PipedriveApi", "token_cost"]

log = logging.getLogger(__name__)

#: The most ids one v2 ``ids`` filter takes.
IDS_PER_REQUEST = 100
_UNLIMITED = 1 << 62
_BURST_WINDOW = 2.0
#: Token cost of the endpoints the connector calls (``x-token-cost`` in Pipedrive's OpenAPI
#: files), by path suffix; the first match wins.
_COSTS = (
    ("/oauth/token", 0),
    ("/leads/archived", 40),
    ("/leads", 20),
    ("Fields", 20),
    ("/leadLabels", 10),
    ("/users/me", 2),
    ("/users", 20),
    ("/persons", 10),
)
#: Warn in ``check`` when less than this share of the daily budget is left.
_LOW_BUDGET = 0.1


def token_cost(path: str) -> int:
    """The daily-budget tokens one request to ``path`` costs (10 when unknown)."""
    return next((cost for suffix, cost in _COSTS if path.endswith(suffix)), 10)


def _header_int(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _header_float(response: httpx.Response, name: str) -> float | None:
    try:
        return float(response.headers[name])
    except (KeyError, ValueError):
        return None


class _Limits:
    """What the answers said about both limits, and the counters for reports."""

    def __init__(self) -> None:
        self.daily_left: int | None = None
        self.daily_limit: int | None = None
        self.requests = 0
        self.rejected_429 = 0


class _LimitTransport(httpx.BaseTransport):
    """Paces every attempt (core's retries included) and reads the limit headers."""

    def __init__(self, inner: httpx.BaseTransport, pacer: Pacer, limits: _Limits) -> None:
        self.inner = inner
        self.pacer = pacer
        self.limits = limits

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        cost = token_cost(request.url.path)
        left = self.limits.daily_left
        if left is not None and left < cost:
            raise self._spent(request)
        self.pacer.acquire(1)
        try:
            response = self.inner.handle_request(request)
        finally:
            self.pacer.record(1)
            self.limits.requests += 1
        self._read_headers(response)
        if response.status_code == 429:
            self.limits.rejected_429 += 1
            remaining = _header_int(response, "x-ratelimit-remaining")
            daily = self.limits.daily_left
            if (daily is not None and daily < cost) or (daily is None and remaining):
                response.close()
                raise self._spent(request)
            self.pacer.defer(max(_header_float(response, "x-ratelimit-reset") or 0.0, 1.0))
        return response

    def _read_headers(self, response: httpx.Response) -> None:
        daily = _header_int(response, "x-daily-ratelimit-token-remaining")
        if daily is not None:
            self.limits.daily_left = daily
            self.limits.daily_limit = _header_int(response, "x-daily-ratelimit-token-limit")
        remaining = _header_int(response, "x-ratelimit-remaining")
        reset = _header_float(response, "x-ratelimit-reset")
        if remaining == 0 and reset is not None:
            self.pacer.defer(reset)

    def _spent(self, request: httpx.Request) -> BudgetExhausted:
        return BudgetExhausted(
            f"Pipedrive's daily API token budget is spent ({redact_url(request.url)} costs "
            f"{token_cost(request.url.path)} tokens, {self.limits.daily_left} left): the run "
            "stopped with its checkpoint kept and resumes after the budget resets at the "
            "server's midnight; buy more tokens or sync less often to avoid it"
        )

    def close(self) -> None:
        self.inner.close()


class PipedriveApi:
    """The Pipedrive calls the connector makes: paced, paged, with errors translated."""

    def __init__(
        self,
        settings: PipedriveSettings,
        context: ConnectorContext,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        pacer = Pacer(
            settings.requests_per_two_seconds, _UNLIMITED, _BURST_WINDOW, clock=clock, sleep=sleep
        )
        self.limits = _Limits()
        headers = {"Accept": "application/json"}
        #: An OAuth app's access tokens; None with an API token or a fixed access token.
        self._oauth: TokenRefresher | None = None
        #: The setting that holds the credential, named in errors.
        self._credential_setting = "api_token"
        if settings.api_token is not None:
            self._fixed_credential = settings.api_token.get_secret_value()
            headers["x-api-token"] = self._fixed_credential
        elif settings.access_token is not None:
            self._credential_setting = "access_token"
            self._fixed_credential = settings.access_token.get_secret_value()
            headers["Authorization"] = f"Bearer {self._fixed_credential}"
        else:
            assert settings.refresh_token is not None
            self._credential_setting = "refresh_token"
            self._fixed_credential = ""  # the refresh token in use is self._oauth's
            secret = settings.refresh_token.get_secret_value()
            self._oauth = TokenRefresher(secret, self._exchange, clock=clock)
        inner = _LimitTransport(transport or httpx.HTTPTransport(), pacer, self.limits)
        self._client = context.http_client(base_url=settings.root, headers=headers, transport=inner)

    @property
    def _credential_hint(self) -> str:
        """``settings.<_credential_setting>`` as errors name it: by the last four characters of
        the configured secret (never more), and for an OAuth app whether Pipedrive rotated
        that refresh token during the run (the rotated one is in no config)."""
        secret, rotated = self._fixed_credential, ""
        if self._oauth is not None:
            assert self._settings.refresh_token is not None
            secret = self._settings.refresh_token.get_secret_value()
            if self._oauth.refresh_token != secret:
                rotated = ", rotated during this run"
        return f"settings.{self._credential_setting} (the one ending in …{secret[-4:]}{rotated})"

    # -- one request ------------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """``GET path`` and its JSON body, checked for ``success``; errors become
        :class:`~naturalead_sync.ConnectorError` with what to do next."""
        body = self.find(path, params)
        if body is None:
            raise ConnectorError(
                f"Pipedrive has no {path} (HTTP 404): check company_domain/base_url"
            )
        return body

    def find(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Like :meth:`get`, but None when Pipedrive answers 404 (a record that is gone)."""
        if self._oauth is None:
            response = self._send(path, params)
        else:
            response = self._oauth.call(lambda: self._send(path, params), _refused)
        body = self._json(response)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise self._error(path, response, body)
        if body is None or body.get("success") is not True:
            raise ConnectorError(
                f"Pipedrive answered {path} with HTTP {response.status_code} but no successful "
                f"JSON body ({_message(body) or 'not JSON'}); run again (the checkpoint is kept)"
            )
        return body

    def _send(self, path: str, params: dict[str, Any] | None) -> httpx.Response:
        """``GET path``; a transport failure becomes a ConnectorError."""
        try:
            return self._client.get(path, params=params)
        except httpx.TransportError as exc:
            raise ConnectorError(
                f"could not reach Pipedrive at {self._client.base_url} ({path}): "
                f"{type(exc).__name__}; check company_domain/base_url and the network, then "
                "run again (the checkpoint is kept)"
            ) from None

    def _exchange(self, refresh_token: str) -> TokenResponse:
        """Trade the refresh token for an access token, sent from now on; follow the answer's
        ``api_domain``."""
        settings = self._settings
        assert settings.client_id is not None and settings.client_secret is not None
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        client = (settings.client_id, settings.client_secret.get_secret_value())
        try:
            response = self._client.post(settings.token_url, data=form, auth=client)
        except httpx.TransportError as exc:
            raise ConnectorError(
                f"could not reach Pipedrive's OAuth endpoint {settings.token_url}: "
                f"{type(exc).__name__}; check oauth_url and the network, then run again"
            ) from None
        body = self._json(response) or {}
        token, domain = body.get("access_token"), body.get("api_domain")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            said = body.get("message") or body.get("error") or "no access_token"
            raise ConnectorError(
                f"Pipedrive refused the OAuth refresh (HTTP {response.status_code} {said}): "
                "check client_id, client_secret and refresh_token (the one ending in "
                f"…{refresh_token[-4:]}); a refresh token expires after 60 days unused or "
                "when the app is uninstalled"
            )
        self._client.headers["Authorization"] = f"Bearer {token}"
        if settings.base_url is None and isinstance(domain, str) and domain.startswith("http"):
            self._client.base_url = httpx.URL(domain.rstrip("/"))
        rotated = body.get("refresh_token")
        expires_in = float(body.get("expires_in") or 3599)
        return TokenResponse(token, expires_in, str(rotated) if rotated else None)

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any] | None:
        if "json" not in response.headers.get("content-type", ""):
            return None
        try:
            parsed = response.json()
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    def _error(
        self, path: str, response: httpx.Response, body: dict[str, Any] | None
    ) -> ConnectorError:
        status = response.status_code
        said = _message(body)
        hint = self._credential_hint
        if status == 401 and self._oauth is not None:
            return ConnectorError(
                f"Pipedrive refused the access token got with {hint} twice (HTTP 401 "
                f"{said or 'unauthorized'}) on {path}, a new one fetched after the first "
                "refusal: check that the OAuth app is still installed and its user active, and "
                "that base_url (if set) is the company's"
            )
        if status == 401:
            return ConnectorError(
                f"Pipedrive refused the credentials (HTTP 401 {said or 'unauthorized'}) on "
                f"{path}: check {hint}; a regenerated API token replaces the old one"
            )
        if status == 403 and body is None:
            return ConnectorError(
                f"Pipedrive blocked the token (HTTP 403 HTML page) on {path}: it kept sending "
                "after 429s. Wait a few minutes, lower settings.requests_per_two_seconds to "
                "the plan's burst limit and make sure nothing else uses the same token"
            )
        if status == 403:
            return ConnectorError(
                f"Pipedrive forbade {path} (HTTP 403 {said or 'forbidden'}): the user of {hint} "
                f"needs to see persons, and an OAuth app the scopes {self._settings.scopes}"
            )
        if status == 429:
            return ConnectorError(
                f"Pipedrive kept answering 429 (burst limit) on {path} after every allowed "
                "retry: lower settings.requests_per_two_seconds to the plan's burst limit and "
                "check that nothing else shares the token; the checkpoint is kept"
            )
        if status == 402:
            return ConnectorError(
                f"Pipedrive says the company account is not open (HTTP 402 on {path}): "
                "check the subscription"
            )
        if status >= 500:
            return ConnectorError(
                f"Pipedrive failed on {path} (HTTP {status}) after the allowed retries; run "
                "again later: the checkpoint is kept"
            )
        return ConnectorError(
            f"Pipedrive rejected {path} (HTTP {status}): {said or 'no message'}; check the "
            "connection's settings"
        )

    # -- lists ------------------------------------------------------------------------------

    def cursor_pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a v2 list, following ``additional_data.next_cursor``; stops with a
        ConnectorError when Pipedrive hands back a cursor it already gave (no progress)."""
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            body = self.get(path, {**params, "cursor": cursor} if cursor else params)
            rows = body.get("data") or []
            if rows:
                yield rows
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return
            if cursor in seen or not rows:
                raise ConnectorError(
                    f"Pipedrive's {path} paging made no progress (cursor repeated or an empty "
                    "page with a next cursor); stopping instead of looping"
                )
            seen.add(cursor)

    def offset_pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a v1 list, by ``start``/``limit`` (the nested
        ``additional_data.pagination`` form and the flat one are both read)."""
        start = 0
        while True:
            body = self.get(path, {**params, "start": start})
            rows = body.get("data") or []
            if rows:
                yield rows
            extra = body.get("additional_data") or {}
            paging = extra.get("pagination") or extra
            if not paging.get("more_items_in_collection") or not rows:
                return
            following = paging.get("next_start")
            start = int(following) if following is not None else start + len(rows)

    # -- reports ----------------------------------------------------------------------------

    def budget_warnings(self) -> list[str]:
        """A warning when less than a tenth of the daily token budget is left."""
        left, limit = self.limits.daily_left, self.limits.daily_limit
        if left is None or not limit or left >= _LOW_BUDGET * limit:
            return []
        return [
            f"Pipedrive's daily token budget is nearly spent ({left} of {limit} left; a page "
            f"of persons costs 10): runs may stop early until the server's midnight"
        ]

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _refused(response: httpx.Response) -> bool:
    """Whether Pipedrive refused the access token (a 401: revoked or expired early); such a
    response is closed, since the request is sent again with a new token."""
    if response.status_code != 401:
        return False
    response.close()
    return True


def _message(body: dict[str, Any] | None) -> str:
    """Pipedrive's ``error`` (and ``error_info``) from an error envelope."""
    if not body:
        return ""
    parts = [str(body[key]) for key in ("error", "error_info") if body.get(key)]
    return ": ".join(parts)
