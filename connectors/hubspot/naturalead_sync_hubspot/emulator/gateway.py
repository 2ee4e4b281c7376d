"""What stands in front of the CRM endpoints: tokens, scopes, rate limits and OAuth refresh."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .limits import EmulatorLimits, RateLimiter, Verdict
from .wire import AUTH_MESSAGE, ApiError, Reply, Request

__all__ = ["SCOPES_MESSAGE", "Gateway", "Token"]

SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about "
    "required scopes here: https://developers.hubspot.com/scopes."
)
_LIMIT_WORDS = {
    "TEN_SECONDLY_ROLLING": "ten_secondly_rolling",
    "SECONDLY": "secondly",
    "DAILY": "daily",
}


@dataclass(frozen=True)
class Token:
    """An access token the emulator accepts. ``bucket`` names the app whose ten-second
    window it spends; ``static`` (a private-app token) gets the daily rate-limit headers."""

    scopes: frozenset[str]
    bucket: str
    static: bool
    expires_ms: int | None = None


@dataclass(frozen=True)
class _Grant:
    client_id: str
    client_secret: str
    scopes: frozenset[str]


def _oauth_error(status: str, message: str) -> ApiError:
    return ApiError(400, status, message, fields={"status": status, "message": message})


class Gateway:
    """Authenticates, authorizes and rate-limits API requests, and refreshes OAuth tokens."""

    def __init__(self, limits: EmulatorLimits, rng: random.Random) -> None:
        self.limiter = RateLimiter(limits)
        self.oauth_token_seconds = 1800.0
        #: Answer each refresh with a new refresh token, the one sent then refused.
        self.rotate_refresh_tokens = False
        self._rng = rng
        self._tokens: dict[str, Token] = {}
        self._grants: dict[str, _Grant] = {}

    @property
    def limits(self) -> EmulatorLimits:
        """The limits enforced."""
        return self.limiter.limits

    def add_token(self, token: str, scopes: Iterable[str]) -> None:
        """Accept a private-app ``token`` with ``scopes``."""
        self._tokens[token] = Token(frozenset(scopes), f"token:{token}", static=True)

    def add_refresh_token(
        self, refresh_token: str, client_id: str, client_secret: str, scopes: Iterable[str]
    ) -> None:
        """Accept ``refresh_token`` of OAuth client ``client_id``."""
        self._grants[refresh_token] = _Grant(client_id, client_secret, frozenset(scopes))

    def authenticate(self, headers: Mapping[str, str], now_ms: int) -> Token:
        """The token of a ``Bearer`` header (lower-case header names); 401 otherwise."""
        scheme, _, sent = headers.get("authorization", "").strip().partition(" ")
        token = self._tokens.get(sent.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise ApiError(401, "INVALID_AUTHENTICATION", AUTH_MESSAGE)
        if token.expires_ms is not None and token.expires_ms <= now_ms:
            ago = math.ceil((now_ms - token.expires_ms) / 1000)
            message = f"The OAuth token used to make this call expired {ago} second(s) ago."
            raise ApiError(401, "EXPIRED_AUTHENTICATION", message)
        return token

    def authorize(self, token: Token, needed: Iterable[str], *, search: bool) -> None:
        """403 ``MISSING_SCOPES`` unless ``token`` has every scope ``needed``."""
        missing = sorted(set(needed) - token.scopes)
        if missing:
            raise ApiError(
                403,
                "MISSING_SCOPES",
                SCOPES_MESSAGE,
                headers=self.headers(token, self.limiter.status(token.bucket), search=search),
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": missing},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )

    def admit(self, token: Token, *, search: bool, day: str) -> dict[str, str]:
        """Count the request; its rate-limit headers, or a 429 :class:`ApiError`."""
        verdict = self.limiter.check(token.bucket, day, search=search)
        if verdict.policy is not None:
            raise self.too_many(verdict.policy, token, search=search)
        return self.headers(token, verdict, search=search)

    def headers(self, token: Token, verdict: Verdict, *, search: bool) -> dict[str, str]:
        """The ``X-HubSpot-RateLimit-*`` headers (none on search answers)."""
        if search:
            return {}
        limits = self.limits
        headers = {
            "X-HubSpot-RateLimit-Max": str(limits.ten_second_max),
            "X-HubSpot-RateLimit-Remaining": str(verdict.remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(limits.window_seconds * 1000)),
        }
        if token.static:
            headers["X-HubSpot-RateLimit-Daily"] = str(limits.daily_max)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(verdict.daily_remaining)
        return headers

    def too_many(self, policy: str, token: Token, *, search: bool) -> ApiError:
        """The 429 for ``policy`` (``TEN_SECONDLY_ROLLING``, ``SECONDLY`` or ``DAILY``)."""
        status = self.limiter.status(token.bucket)
        spent = Verdict(
            policy,
            0 if policy == "TEN_SECONDLY_ROLLING" else status.remaining,
            0 if policy == "DAILY" else status.daily_remaining,
        )
        headers = self.headers(token, spent, search=search)
        if self.limits.retry_after_seconds is not None:
            headers["Retry-After"] = str(math.ceil(self.limits.retry_after_seconds))
        message = f"You have reached your {_LIMIT_WORDS[policy]} limit."
        fields = {"status": "error", "message": message, "errorType": "RATE_LIMIT"}
        fields["policyName"] = policy
        if policy == "DAILY":
            fields["requestId"] = self.new_uuid()
        return ApiError(429, "RATE_LIMIT", message, headers=headers, fields=fields)

    def new_uuid(self) -> str:
        """A random (seeded) UUID4 string, for correlation and request ids."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def refresh(self, request: Request, now_ms: int) -> Reply:
        """``POST /oauth/v1/token`` with ``grant_type=refresh_token``: a new access token."""
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if form.get("grant_type") != "refresh_token":
            raise _oauth_error("UNSUPPORTED_GRANT_TYPE", "grant_type must be refresh_token")
        grant = self._grants.get(form.get("refresh_token", ""))
        if grant is None:
            raise _oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        if form.get("client_id") != grant.client_id:
            raise _oauth_error("BAD_CLIENT_ID", "missing or invalid client id")
        if form.get("client_secret") != grant.client_secret:
            raise _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        access = f"emu-oauth-{self._rng.getrandbits(128):032x}"
        lifetime = round(self.oauth_token_seconds * 1000)
        bucket = f"oauth:{grant.client_id}"
        self._tokens[access] = Token(
            grant.scopes, bucket, static=False, expires_ms=now_ms + lifetime
        )
        refresh_token = form["refresh_token"]
        if self.rotate_refresh_tokens:
            del self._grants[refresh_token]
            refresh_token = f"emu-refresh-{self._rng.getrandbits(128):032x}"
            self._grants[refresh_token] = grant
        body = {
            "token_type": "bearer",
            "refresh_token": refresh_token,
            "access_token": access,
            "expires_in": round(self.oauth_token_seconds),
        }
        return Reply(200, body)
