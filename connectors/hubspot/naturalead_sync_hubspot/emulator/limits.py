"""HubSpot's request limits: a rolling ten-second window per app, a per-second bucket for
search, and a daily budget per account.

The ten-second and search windows run on real time (``time.monotonic``) so tests can use
short windows; the daily budget resets when the emulator clock's UTC date changes. Only
requests that are let through count; a 429 answer does not.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EmulatorLimits", "RateLimiter", "Verdict"]


@dataclass
class EmulatorLimits:
    """The limits the emulator enforces (the defaults are a Professional/Enterprise private
    app's). ``retry_after_seconds`` set: 429s carry ``Retry-After``; None: they do not, as
    HubSpot often sends none. ``enforce=False`` counts and reports but never answers 429."""

    ten_second_max: int = 190
    window_seconds: float = 10.0
    daily_max: int = 1_000_000
    search_per_second: int = 5
    search_window_seconds: float = 1.0
    retry_after_seconds: float | None = None
    enforce: bool = True


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided: ``policy`` is None (let through), ``"TEN_SECONDLY_ROLLING"``,
    ``"SECONDLY"`` (search) or ``"DAILY"``; ``remaining`` is left in the ten-second window."""

    policy: str | None
    remaining: int
    daily_remaining: int


class RateLimiter:
    """Counts requests per bucket (an app: a static token, or an OAuth client) and per day."""

    def __init__(
        self, limits: EmulatorLimits, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._windows: dict[str, deque[float]] = {}
        self._search: deque[float] = deque()
        self._day = ""
        self._daily = 0

    def _window(self, bucket: str, now: float) -> deque[float]:
        window = self._windows.setdefault(bucket, deque())
        while window and window[0] <= now - self.limits.window_seconds:
            window.popleft()
        return window

    def check(self, bucket: str, day: str, *, search: bool) -> Verdict:
        """Count one request from ``bucket`` on the emulator's UTC date ``day``, unless a
        limit is reached (and enforced)."""
        limits, now = self.limits, self._monotonic()
        if day != self._day:
            self._day, self._daily = day, 0
        window = self._window(bucket, now)
        while self._search and self._search[0] <= now - limits.search_window_seconds:
            self._search.popleft()
        policy = None
        if self._daily >= limits.daily_max:
            policy = "DAILY"
        elif search and len(self._search) >= limits.search_per_second:
            policy = "SECONDLY"
        elif not search and len(window) >= limits.ten_second_max:
            policy = "TEN_SECONDLY_ROLLING"
        if policy is None or not limits.enforce:
            policy = None
            self._daily += 1
            (self._search if search else window).append(now)
        return Verdict(
            policy,
            max(0, limits.ten_second_max - len(window)),
            max(0, limits.daily_max - self._daily),
        )

    def status(self, bucket: str) -> Verdict:
        """The budget left for ``bucket``, counting nothing."""
        window = self._window(bucket, self._monotonic())
        return Verdict(
            None,
            max(0, self.limits.ten_second_max - len(window)),
            max(0, self.limits.daily_max - self._daily),
        )
