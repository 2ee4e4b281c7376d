"""OAuth access tokens got with a refresh token: when to refresh, what to keep, when to retry.

A connector whose CRM hands out short-lived access tokens (HubSpot's and Pipedrive's OAuth
apps) builds one :class:`TokenRefresher` with the refresh token from its settings and an
``exchange`` function. The rules live here:

- a new access token before the first request, and again :data:`REFRESH_MARGIN` seconds
  before the one in use expires, or half-way through its lifetime when that is later (a token
  that lives less than twice the margin is not replaced before every request, each refresh
  being one more call against the CRM's limits);
- when the CRM refuses the token anyway (a 401: revoked, or expired early), one new token and
  one more try of that request, no more;
- a refresh token the server rotates is kept, and sent at the next refresh.

What depends on the CRM stays in the connector's ``exchange``: the token endpoint, the request
form, how the new access token reaches the requests that follow, and the error that says why a
refresh was refused. Nothing here logs, and no repr shows a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["REFRESH_MARGIN", "TokenRefresher", "TokenResponse"]

#: Seconds before the server's expiry at which an access token is replaced (half-way through
#: its lifetime instead, for a token that lives less than twice this).
REFRESH_MARGIN = 60.0

_Answer = TypeVar("_Answer")


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """What a token endpoint answered to a refresh: the new access token, its lifetime in
    seconds, and a new refresh token when the server rotates them (None when it does not)."""

    access_token: str = field(repr=False)
    expires_in: float
    refresh_token: str | None = field(default=None, repr=False)


class TokenRefresher:
    """An OAuth access token kept fresh with a refresh token, for one API client.

    ``exchange(refresh_token)`` trades the refresh token at the CRM's token endpoint, puts the
    new access token where the connector's requests will find it, and returns the
    :class:`TokenResponse`; when the CRM refuses, it raises the connector's own error (with no
    secret in it), and nothing here changes. ``clock`` is monotonic seconds.
    """

    __slots__ = ("_access_token", "_clock", "_exchange", "_expires_at", "_margin", "_refresh_token")

    def __init__(
        self,
        refresh_token: str,
        exchange: Callable[[str], TokenResponse],
        *,
        margin: float = REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh_token = refresh_token
        self._exchange = exchange
        self._margin = margin
        self._clock = clock
        self._access_token: str | None = None
        self._expires_at: float | None = None

    @property
    def access_token(self) -> str | None:
        """The access token in use; None before the first refresh."""
        return self._access_token

    @property
    def refresh_token(self) -> str:
        """The refresh token the next refresh sends: the newest, when the server rotates them."""
        return self._refresh_token

    @property
    def due(self) -> bool:
        """Whether a request must wait for a new access token: there is none yet, or the one in
        use is within the margin of its expiry, or past half its lifetime when that is later."""
        return self._expires_at is None or self._clock() >= self._expires_at

    def refresh(self) -> str:
        """Trade the refresh token for a new access token now, and return it."""
        answer = self._exchange(self._refresh_token)
        self._access_token = answer.access_token
        if answer.refresh_token:
            self._refresh_token = answer.refresh_token
        lifetime = answer.expires_in
        self._expires_at = self._clock() + max(lifetime - self._margin, lifetime / 2)
        return answer.access_token

    def call(self, send: Callable[[], _Answer], refused: Callable[[_Answer], bool]) -> _Answer:
        """``send()`` with a fresh access token, refreshed first when :attr:`due`.

        When ``refused(answer)`` says the server turned the token down (a 401), the token is
        refreshed once and ``send()`` runs once more; that second answer is returned whatever it
        is, so a token refused twice reaches the caller's own error handling. ``refused`` is
        asked about the first answer only, and may release it (close a response) when it says
        yes, since that answer is dropped.
        """
        if self.due:
            self.refresh()
        answer = send()
        if refused(answer):
            self.refresh()
            answer = send()
        return answer

    def __repr__(self) -> str:
        state = "no access token yet" if self._access_token is None else "an access token"
        return f"<TokenRefresher with {state}, expires_at={self._expires_at}>"
