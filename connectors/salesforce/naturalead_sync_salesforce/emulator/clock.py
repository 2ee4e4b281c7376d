"""The org's clock: wall time or frozen, moved by tests."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]


class Clock:
    """The org's clock (UTC). It follows wall time from ``start`` (default: now), or stays
    still when ``frozen``; :meth:`advance` and :meth:`set_time` move it either way."""

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("the clock's start must be timezone-aware")
        self._lock = threading.Lock()
        self.frozen = frozen
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._since = time.monotonic()

    def now(self) -> datetime:
        """The current time."""
        with self._lock:
            return self._now()

    def _now(self) -> datetime:
        if self.frozen:
            return self._base
        return self._base + timedelta(seconds=time.monotonic() - self._since)

    def advance(self, seconds: float) -> datetime:
        """Move the clock ``seconds`` forward (or back, when negative); returns the new time."""
        with self._lock:
            self._base += timedelta(seconds=seconds)
            return self._now()

    def set_time(self, when: datetime) -> None:
        """Make ``when`` (timezone-aware) the current time."""
        if when.tzinfo is None:
            raise ValueError("set_time needs a timezone-aware datetime")
        with self._lock:
            self._base, self._since = when.astimezone(UTC), time.monotonic()
