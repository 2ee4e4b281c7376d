"""Credentials: API tokens, OAuth access tokens (scopes, ``api_domain``, expiry) and the
OAuth refresh endpoint.

A request authenticates with ``x-api-token``, else ``Authorization: Bearer``, else the
``api_token`` query parameter (when the emulator accepts it). An API token sees everything; an
OAuth token needs one of the route's scopes, or gets 403 ``Scope and URL mismatch``. A user
has one active API token: adding another for the same user revokes the old one, as
regenerating does in Pipedrive. ``POST /oauth/token`` (``grant_type=refresh_token``, client
credentials in Basic auth, form body) answers with a fresh access token; the refresh token
stays the same and the old access token stays valid until it expires.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import parse_qs

from naturalead_sync.loopback import HTTPAnswer

from .clock import EmulatorClock
from .protocol import Request, json_answer

__all__ = [
    "DEFAULT_API_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_OAUTH_TOKEN",
    "DEFAULT_REFRESH_TOKEN",
    "OAUTH_SCOPES",
    "AuthKind",
    "Credential",
    "TokenRegistry",
]

DEFAULT_API_TOKEN = "5f3d0c2b9a8e7d6c5b4a39281706f5e4d3c2b1a0"
DEFAULT_OAUTH_TOKEN = "v1u:emulator-oauth-access-token"
DEFAULT_REFRESH_TOKEN = "emulator-oauth-refresh-token"
DEFAULT_CLIENT_ID = "emulator-client-id"
DEFAULT_CLIENT_SECRET = "emulator-client-secret"
#: Scopes of the default OAuth token: read persons and organizations, leads, deal fields,
#: recents and users.
OAUTH_SCOPES = ("base", "contacts:read", "leads:read", "deals:read", "recents:read", "users:read")
AuthKind = Literal["api_token", "oauth"]


@dataclass(frozen=True, slots=True)
class Credential:
    """One accepted token. ``expires_at`` (emulator-clock seconds) only for OAuth tokens;
    ``api_domain`` None means "the base URL the request came to"."""

    token: str
    kind: AuthKind
    user_id: int = 1
    scopes: frozenset[str] = frozenset()
    api_domain: str | None = None
    expires_at: float | None = None
    refresh_token: str | None = None

    def allows(self, needed: Collection[str]) -> bool:
        """Whether this credential may call a route needing one of ``needed``."""
        return self.kind == "api_token" or not needed or bool(self.scopes & set(needed))


class TokenRegistry:
    """The accepted tokens, by token string, and the one OAuth client."""

    def __init__(self, clock: EmulatorClock) -> None:
        self._clock = clock
        self._tokens: dict[str, Credential] = {}
        self.client_id = DEFAULT_CLIENT_ID
        self.client_secret = DEFAULT_CLIENT_SECRET

    def add_api_token(self, token: str, *, user_id: int = 1) -> Credential:
        """Accept API token ``token`` for ``user_id``, revoking that user's previous one."""
        for known in list(self._tokens.values()):
            if known.kind == "api_token" and known.user_id == user_id:
                del self._tokens[known.token]
        credential = Credential(token, "api_token", user_id)
        self._tokens[token] = credential
        return credential

    def add_oauth_token(
        self,
        access_token: str,
        *,
        user_id: int = 1,
        scopes: Collection[str] = OAUTH_SCOPES,
        api_domain: str | None = None,
        expires_in: float = 3599.0,
        refresh_token: str | None = None,
    ) -> Credential:
        """Accept OAuth ``access_token`` until ``expires_in`` seconds from now (emulator clock)."""
        credential = Credential(
            access_token,
            "oauth",
            user_id,
            frozenset(scopes),
            api_domain,
            self._clock.timestamp() + expires_in,
            refresh_token,
        )
        self._tokens[access_token] = credential
        return credential

    def revoke(self, token: str) -> bool:
        """Stop accepting ``token``; True when it was known."""
        return self._tokens.pop(token, None) is not None

    def lookup(self, token: str) -> Credential | None:
        """The credential of ``token``, or None when unknown or expired."""
        credential = self._tokens.get(token)
        if credential is None:
            return None
        if credential.expires_at is not None and credential.expires_at <= self._clock.timestamp():
            return None
        return credential

    def find(self, request: Request, *, query_token: bool) -> Credential | None:
        """The credential of the token a request sent (header first), None if refused."""
        token = request.headers.get("x-api-token", "").strip()
        if not token:
            scheme, _, bearer = request.headers.get("authorization", "").strip().partition(" ")
            token = bearer.strip() if scheme.lower() == "bearer" else ""
        if not token and query_token:
            token = (request.one("api_token") or "").strip()
        return self.lookup(token) if token else None

    def _client_ok(self, authorization: str) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except ValueError:
            return False
        return decoded == f"{self.client_id}:{self.client_secret}"

    def token_endpoint(self, request: Request, default_domain: str) -> HTTPAnswer:
        """``POST /oauth/token`` with ``grant_type=refresh_token``: a new access token."""
        if not self._client_ok(request.headers.get("authorization", "")):
            return json_answer(401, {"success": False, "error": "invalid_client"})
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return json_answer(
                400, {"error": "unsupported_grant_type", "message": "only refresh_token"}
            )
        previous = next(
            (c for c in self._tokens.values() if c.refresh_token == form.get("refresh_token")),
            None,
        )
        if previous is None or not form.get("refresh_token"):
            return json_answer(400, {"error": "invalid_grant", "message": "Invalid refresh token"})
        expires_in = 3599
        fresh = replace(
            previous,
            token=f"v1u:{secrets.token_urlsafe(24)}",
            expires_at=self._clock.timestamp() + expires_in,
        )
        self._tokens[fresh.token] = fresh
        return json_answer(
            200,
            {
                "access_token": fresh.token,
                "token_type": "bearer",
                "expires_in": expires_in,
                "refresh_token": fresh.refresh_token,
                "scope": " ".join(sorted(fresh.scopes)),
                "api_domain": fresh.api_domain or default_domain,
            },
        )
