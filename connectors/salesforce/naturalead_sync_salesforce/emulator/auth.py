"""Logins: users, connected apps, sessions, the SOAP ``login()`` call and the OAuth token endpoint.

- SOAP (``POST /services/Soap/u/{version}``): the password must be password + security token,
  except for a user registered without a token, or a login whose ``LoginScopeHeader`` names the
  org (simple-salesforce's ``organizationId`` flow, taken as coming from a trusted IP range).
  Versions 65.0 and later answer the fault ``UNSUPPORTED_API_VERSION`` (SOAP ``login()`` is
  retired from 65.0; the fault code is our choice).
- OAuth (``POST /services/oauth2/token``): ``password`` (password with or without the token),
  ``client_credentials`` (Basic header or form fields; the app needs a run-as user) and the JWT
  bearer grant (RS256 against the app's registered public key; ``aud`` must be
  ``https://login|test.salesforce.com`` or a ``*.salesforce.com`` My Domain; ``exp`` is checked
  against wall-clock time, since clients sign with the real clock while tests move the org's).
  Every failure is a 400 ``{"error", "error_description"}``.
- Sessions never expire unless :attr:`Credentials.token_lifetime` (seconds of the org's clock)
  is set, :meth:`Credentials.expire_sessions` is called or an ``expired`` fault revokes one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import jwt

from naturalead_sync.loopback import HTTPAnswer

from .clock import Clock
from .errors import json_answer

__all__ = [
    "DEFAULT_CONSUMER_KEY",
    "DEFAULT_CONSUMER_SECRET",
    "DEFAULT_PASSWORD",
    "DEFAULT_SECURITY_TOKEN",
    "DEFAULT_USERNAME",
    "Credentials",
    "Session",
]

DEFAULT_USERNAME = "sync.user@example.com"
DEFAULT_PASSWORD = "emulator-password"
DEFAULT_SECURITY_TOKEN = "EMULATORSECURITYTOKEN"
DEFAULT_CONSUMER_KEY = "3MVG9emulator.consumer.key"
DEFAULT_CONSUMER_SECRET = "emulator-consumer-secret"

_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_AUDIENCE = re.compile(r"^https://[\w.-]+\.salesforce\.com$")
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True)
class Session:
    """An access token and whom it belongs to; ``issued_at`` is on the org's clock."""

    token: str
    username: str
    user_id: str
    issued_at: datetime


@dataclass(frozen=True)
class _User:
    username: str
    password: str
    security_token: str
    user_id: str


@dataclass(frozen=True)
class _App:
    consumer_key: str
    consumer_secret: str
    jwt_public_key: str | bytes | None
    run_as: str | None


class _Refused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


class Credentials:
    """The org's users, connected apps and live sessions (thread-safe).

    It starts with :data:`DEFAULT_USERNAME` (password :data:`DEFAULT_PASSWORD`, token
    :data:`DEFAULT_SECURITY_TOKEN`) and the app :data:`DEFAULT_CONSUMER_KEY` /
    :data:`DEFAULT_CONSUMER_SECRET`, which runs client-credentials logins as that user.
    """

    def __init__(
        self, org_id: str, clock: Clock, new_user_id: Callable[[], str], default_user_id: str
    ) -> None:
        self.org_id = org_id
        self._clock = clock
        self._new_user_id = new_user_id
        self._lock = threading.Lock()
        self._users: dict[str, _User] = {}
        self._apps: dict[str, _App] = {}
        self._sessions: dict[str, Session] = {}
        #: Seconds (org clock) a token stays valid; None: until revoked.
        self.token_lifetime: float | None = None
        default = _User(DEFAULT_USERNAME, DEFAULT_PASSWORD, DEFAULT_SECURITY_TOKEN, default_user_id)
        self._users[DEFAULT_USERNAME.lower()] = default
        self.add_connected_app(
            DEFAULT_CONSUMER_KEY, DEFAULT_CONSUMER_SECRET, run_as=DEFAULT_USERNAME
        )

    def add_user(self, username: str, password: str, security_token: str = "") -> str:
        """Register a user (or change a known user's password and token); returns its id.
        ``security_token`` ``""`` lets SOAP logins go without a token."""
        with self._lock:
            known = self._users.get(username.lower())
        # Minted outside this lock: the org's lock is always taken before it, never after.
        user_id = known.user_id if known else self._new_user_id()
        with self._lock:
            self._users[username.lower()] = _User(username, password, security_token, user_id)
        return user_id

    def add_connected_app(
        self,
        consumer_key: str,
        consumer_secret: str,
        *,
        jwt_public_key: str | bytes | None = None,
        run_as: str | None = None,
    ) -> None:
        """Register (or replace) a connected app. ``jwt_public_key`` (PEM) enables the JWT
        bearer flow for every user; ``run_as`` (a username) enables client credentials."""
        with self._lock:
            self._apps[consumer_key] = _App(consumer_key, consumer_secret, jwt_public_key, run_as)

    def issue_token(self, username: str = DEFAULT_USERNAME) -> str:
        """A valid access token for ``username`` without a login call (the "session id +
        instance URL" way of connecting)."""
        with self._lock:
            return self._issue(self._users[username.lower()]).token

    def expire_sessions(self) -> int:
        """Revoke every token, as an admin or a timeout would; returns how many."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    def revoke(self, token: str) -> None:
        """Revoke one token."""
        with self._lock:
            self._sessions.pop(token, None)

    def session(self, token: str) -> Session | None:
        """The live session of ``token``, or None (unknown, revoked or past its lifetime)."""
        with self._lock:
            found = self._sessions.get(token)
            if found is None or self.token_lifetime is None:
                return found
            age = (self._clock.now() - found.issued_at).total_seconds()
            return found if age < self.token_lifetime else None

    def _issue(self, user: _User) -> Session:
        token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(72)}"
        session = Session(token, user.username, user.user_id, self._clock.now())
        self._sessions[token] = session
        return session

    # -- SOAP login() -----------------------------------------------------------------------

    def soap_login(self, version: str, body: bytes, base_url: str) -> HTTPAnswer:
        """Answer ``POST /services/Soap/u/{version}``."""
        if float(version) >= 65.0:
            message = "login() is not available from API version 65.0; use OAuth 2.0"
            return _soap_fault("UNSUPPORTED_API_VERSION", message)
        try:
            fields = {_local(e.tag): (e.text or "") for e in ET.fromstring(body).iter()}
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", "The request is not a SOAP envelope")
        with self._lock:
            user = self._users.get(fields.get("username", "").lower())
            scoped = "organizationId" in fields
            wrong_org = scoped and fields["organizationId"] not in self._org_ids
            password = fields.get("password", "")
            if user is None or wrong_org or password not in _passwords(user, trusted=scoped):
                message = "Invalid username, password, security token; or user locked out."
                return _soap_fault("INVALID_LOGIN", message)
            session = self._issue(user)
        server = f"{base_url}/services/Soap/u/{version}/{self.org_id[:15]}"
        result = {
            "metadataServerUrl": f"{base_url}/services/Soap/m/{version}/{self.org_id[:15]}",
            "passwordExpired": "false",
            "sandbox": "false",
            "serverUrl": server,
            "sessionId": session.token,
            "userId": user.user_id,
        }
        info = {
            "organizationId": self.org_id,
            "userEmail": user.username,
            "userId": user.user_id,
            "userName": user.username,
        }
        xml = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in result.items())
        xml += "<userInfo>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in info.items())
        envelope = (
            f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}"'
            ' xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"{xml}</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return HTTPAnswer(200, {"Content-Type": "text/xml;charset=UTF-8"}, envelope.encode())

    @property
    def _org_ids(self) -> tuple[str, str]:
        return self.org_id, self.org_id[:15]

    # -- OAuth 2.0 token endpoint ------------------------------------------------------------

    def oauth_token(self, headers: dict[str, str], body: bytes, base_url: str) -> HTTPAnswer:
        """Answer ``POST /services/oauth2/token`` (form-encoded; ``headers`` lower-cased)."""
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type", "")
        try:
            with self._lock:
                if grant == "password":
                    app = self._app(form.get("client_id", ""), form.get("client_secret"))
                    user = self._users.get(form.get("username", "").lower())
                    if user is None or form.get("password") not in _passwords(user, trusted=True):
                        raise _Refused("invalid_grant", "authentication failure")
                elif grant == "client_credentials":
                    app = self._app(*_basic(headers, form))
                    user = self._users.get((app.run_as or "").lower())
                    if user is None:
                        raise _Refused("invalid_grant", "no client credentials user enabled")
                elif grant == _JWT_GRANT:
                    app, user = self._jwt(form.get("assertion", ""))
                else:
                    raise _Refused("unsupported_grant_type", "grant type not supported")
                session = self._issue(user)
        except _Refused as refused:
            error = {"error": refused.error, "error_description": refused.description}
            return json_answer(400, error)
        issued = str(int(session.issued_at.timestamp() * 1000))
        identity = f"{base_url}/id/{self.org_id}/{user.user_id}"
        signed = (identity + issued).encode()
        signature = hmac.new(app.consumer_secret.encode(), signed, hashlib.sha256)
        return json_answer(
            200,
            {
                "access_token": session.token,
                "instance_url": base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": base64.b64encode(signature.digest()).decode(),
            },
        )

    def _app(self, consumer_key: str, consumer_secret: str | None) -> _App:
        app = self._apps.get(consumer_key)
        if app is None:
            raise _Refused("invalid_client_id", "client identifier invalid")
        if consumer_secret is None or not hmac.compare_digest(consumer_secret, app.consumer_secret):
            raise _Refused("invalid_client", "invalid client credentials")
        return app

    def _jwt(self, assertion: str) -> tuple[_App, _User]:
        try:
            claims: dict[str, Any] = jwt.decode(assertion, options={"verify_signature": False})
            app = self._apps.get(str(claims.get("iss")))
            if app is None or app.jwt_public_key is None:
                raise _Refused("invalid_client_id", "client identifier invalid")
            claims = jwt.decode(
                assertion,
                app.jwt_public_key,
                algorithms=["RS256"],
                options={"require": ["exp", "sub", "aud"], "verify_aud": False},
            )
        except jwt.PyJWTError as error:
            raise _Refused("invalid_grant", f"invalid assertion: {error}") from None
        if not _AUDIENCE.match(str(claims["aud"])):
            raise _Refused("invalid_grant", "audience is invalid")
        user = self._users.get(str(claims["sub"]).lower())
        if user is None:
            raise _Refused("invalid_grant", "user hasn't approved this consumer")
        return app, user


def _passwords(user: _User, *, trusted: bool) -> set[str]:
    """The password strings that log ``user`` in (``trusted``: the token may be left off)."""
    accepted = {user.password + user.security_token}
    if trusted or not user.security_token:
        accepted.add(user.password)
    return accepted


def _basic(headers: dict[str, str], form: dict[str, str]) -> tuple[str, str | None]:
    """The client id and secret of a client-credentials request (Basic header or form)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            key, _, secret = base64.b64decode(value).decode().partition(":")
        except ValueError:
            raise _Refused("invalid_client", "invalid client credentials") from None
        return key, secret
    return form.get("client_id", ""), form.get("client_secret")


def _soap_fault(code: str, message: str) -> HTTPAnswer:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}"'
        ' xmlns:sf="urn:fault.partner.soap.sforce.com"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{code}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return HTTPAnswer(500, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode())
