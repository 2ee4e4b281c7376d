"""TokenRefresher on a fake clock and a fake token endpoint: the margin, one refresh and one
retry on a refused token, rotated refresh tokens, and failures that leak no secret."""

from __future__ import annotations

import pytest

from naturalead_sync import ConnectorError
from naturalead_sync.oauth import REFRESH_MARGIN, TokenRefresher, TokenResponse
from support import FakeClock

REFRESH = "refresh-secret-0001"


class Endpoint:
    """A token endpoint: ``access-secret-1``, ``-2``… valid ``lifetime`` seconds; rotates
    the refresh token when asked."""

    def __init__(self, lifetime: float = 1800.0, *, rotate: bool = False) -> None:
        self.lifetime = lifetime
        self.rotate = rotate
        self.sent: list[str] = []  # the refresh token each exchange was given
        self.refuse = False
        self.raised: list[ConnectorError] = []

    def __call__(self, refresh_token: str) -> TokenResponse:
        self.sent.append(refresh_token)
        if self.refuse:  # the connector's own error, as HubSpot's and Pipedrive's word it
            self.raised.append(
                ConnectorError(
                    "the CRM refused the OAuth refresh (HTTP 400): check client_id, "
                    f"client_secret and refresh_token (the one ending in …{refresh_token[-4:]})"
                )
            )
            raise self.raised[-1]
        n = len(self.sent)
        rotated = f"refresh-secret-{n + 1:04d}" if self.rotate else None
        return TokenResponse(f"access-secret-{n}", self.lifetime, rotated)


def refresher(endpoint: Endpoint, clock: FakeClock) -> TokenRefresher:
    return TokenRefresher(REFRESH, endpoint, clock=clock)


def accepted(_: object) -> bool:
    return False


def test_the_first_call_gets_a_token_and_later_calls_reuse_it() -> None:
    endpoint, clock = Endpoint(), FakeClock()
    tokens = refresher(endpoint, clock)
    assert (tokens.due, tokens.access_token) == (True, None)
    assert tokens.call(lambda: tokens.access_token, accepted) == "access-secret-1"
    clock.advance(100)
    assert tokens.call(lambda: tokens.access_token, accepted) == "access-secret-1"
    assert endpoint.sent == [REFRESH]


@pytest.mark.parametrize(
    ("elapsed", "refreshed"),
    [
        (1800 - REFRESH_MARGIN - 0.001, False),  # just outside the margin: kept
        (1800 - REFRESH_MARGIN, True),  # at the margin: replaced before the request
        (1800 + 5, True),  # already expired
    ],
)
def test_a_token_is_replaced_within_the_margin_of_its_expiry(
    elapsed: float, refreshed: bool
) -> None:
    endpoint, clock = Endpoint(), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    clock.advance(elapsed)
    assert tokens.due is refreshed
    token = tokens.call(lambda: tokens.access_token, accepted)
    assert token == ("access-secret-2" if refreshed else "access-secret-1")
    assert len(endpoint.sent) == (2 if refreshed else 1)


@pytest.mark.parametrize("lifetime", [30.0, REFRESH_MARGIN, 2 * REFRESH_MARGIN - 1])
def test_a_short_lived_token_is_kept_for_half_its_lifetime(lifetime: float) -> None:
    """A token that lives less than twice the margin is replaced half-way through its life,
    not before every request (each refresh is one more call against the CRM's limits)."""
    endpoint, clock = Endpoint(lifetime=lifetime), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    clock.advance(lifetime / 2 - 0.001)
    for _ in range(3):
        assert not tokens.due
        assert tokens.call(lambda: tokens.access_token, accepted) == "access-secret-1"
    clock.advance(0.001)
    assert tokens.due
    assert tokens.call(lambda: tokens.access_token, accepted) == "access-secret-2"
    assert len(endpoint.sent) == 2


def test_a_token_without_lifetime_is_due_at_once() -> None:
    endpoint, clock = Endpoint(lifetime=0), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    assert tokens.due


def test_a_refused_token_is_refreshed_once_and_the_call_sent_once_more() -> None:
    endpoint, clock = Endpoint(), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    seen: list[str | None] = []

    def send() -> int:
        seen.append(tokens.access_token)
        return 401 if len(seen) == 1 else 200

    assert tokens.call(send, lambda status: status == 401) == 200
    assert (seen, len(endpoint.sent)) == (["access-secret-1", "access-secret-2"], 2)


def test_a_token_refused_twice_returns_the_second_answer_without_a_third_try() -> None:
    endpoint, clock = Endpoint(), FakeClock()
    tokens = refresher(endpoint, clock)
    asked: list[int] = []

    def refused(status: int) -> bool:
        asked.append(status)
        return status == 401

    sends: list[str | None] = []

    def send() -> int:
        sends.append(tokens.access_token)
        return 401

    answer = tokens.call(send, refused)
    assert answer == 401  # the caller's own 401 error handling sees it
    assert (sends, len(endpoint.sent), asked) == (["access-secret-1", "access-secret-2"], 2, [401])


def test_an_accepted_answer_is_returned_as_is_and_costs_no_refresh() -> None:
    endpoint, clock = Endpoint(), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    assert tokens.call(lambda: 404, lambda status: status == 401) == 404
    assert len(endpoint.sent) == 1


def test_a_rotated_refresh_token_is_sent_at_the_next_refresh() -> None:
    endpoint, clock = Endpoint(rotate=True), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    assert tokens.refresh_token == "refresh-secret-0002"
    clock.advance(1800)
    tokens.call(lambda: None, lambda _: False)
    assert endpoint.sent == [REFRESH, "refresh-secret-0002"]
    assert tokens.refresh_token == "refresh-secret-0003"


def test_without_rotation_the_same_refresh_token_is_kept() -> None:
    endpoint, clock = Endpoint(), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    tokens.refresh()
    assert endpoint.sent == [REFRESH, REFRESH]
    assert tokens.refresh_token == REFRESH


def test_a_refused_refresh_raises_the_connectors_error_and_changes_nothing() -> None:
    endpoint, clock = Endpoint(rotate=True), FakeClock()
    tokens = refresher(endpoint, clock)
    tokens.refresh()
    clock.advance(1800)
    endpoint.refuse = True
    sent: list[int] = []
    with pytest.raises(ConnectorError, match="refused the OAuth refresh") as refused:
        tokens.call(lambda: sent.append(1), accepted)
    assert sent == []  # nothing goes out without a valid token
    # The exchange's error reaches the caller as it was raised: not wrapped, nothing chained,
    # nothing added, so no secret can slip in on the way.
    assert refused.value is endpoint.raised[-1]
    assert refused.value.__cause__ is None and refused.value.__context__ is None
    message = str(refused.value)
    assert "…0002" in message
    for secret in ("refresh-secret-0002", REFRESH, "access-secret-1"):
        assert secret not in message
    # Nothing was adopted: the old token stays due, and the same refresh token is tried again.
    assert (tokens.due, tokens.access_token, tokens.refresh_token) == (
        True,
        "access-secret-1",
        "refresh-secret-0002",
    )
    endpoint.refuse = False
    assert tokens.call(lambda: tokens.access_token, accepted) == "access-secret-3"
    assert endpoint.sent[-2:] == ["refresh-secret-0002", "refresh-secret-0002"]


def test_no_repr_shows_a_token() -> None:
    endpoint, clock = Endpoint(rotate=True), FakeClock()
    tokens = refresher(endpoint, clock)
    before = repr(tokens)
    tokens.refresh()
    answer = TokenResponse("access-secret", 1800.0, "rotated-secret")
    for text in (before, repr(tokens), repr(answer), str(answer)):
        for secret in (
            REFRESH,
            "refresh-secret-0002",
            "access-secret-1",
            "access-secret",
            "rotated-secret",
        ):
            assert secret not in text, text
    assert "1800" in repr(answer)
