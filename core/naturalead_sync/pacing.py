"""Client-side pacing: a sliding-window limiter on requests and on items per window.

Naturalead allows 50 sync requests (POST and DELETE together) per key in any sliding 60 s,
so at most 5,000 leads a minute. The pacer keeps both counts under their limits *before*
sending, so a well-behaved run never meets a 429. Each request is stamped when its answer
arrives: the server saw it no later than that, so spacing stamps a window apart keeps the
server's own window honest even when the network's delay varies.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["Pacer"]


class Pacer:
    """At most ``max_requests`` requests and ``max_items`` items in any ``window`` seconds."""

    def __init__(
        self,
        max_requests: int,
        max_items: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_requests = max_requests
        self.max_items = max_items
        self.window = window
        self.clock = clock
        self.sleep = sleep
        self._sent: deque[tuple[float, int]] = deque()
        self._items_in_window = 0
        self._blocked_until = 0.0
        #: Total seconds spent waiting, for the report and the benchmarks.
        self.waited = 0.0

    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.window:
            self._items_in_window -= self._sent.popleft()[1]

    def wait_needed(self, items: int) -> float:
        """Seconds until a request carrying ``items`` items may be sent (0: right now)."""
        return self._wait_at(min(items, self.max_items), self.clock())

    def _wait_at(self, items: int, now: float) -> float:
        self._prune(now)
        wait = max(0.0, self._blocked_until - now)
        if len(self._sent) >= self.max_requests:
            wait = max(wait, self._sent[len(self._sent) - self.max_requests][0] + self.window - now)
        excess = self._items_in_window + items - self.max_items
        if excess > 0:
            freed = 0
            for stamp, count in self._sent:
                freed += count
                if freed >= excess:
                    wait = max(wait, stamp + self.window - now)
                    break
        return wait

    def full_since(self, moment: float) -> bool:
        """Whether the window that ends now and opened ``window`` seconds before ``moment``
        holds the most requests (those recorded after that opening)."""
        opening = moment - self.window
        return sum(1 for stamp, _ in self._sent if stamp > opening) >= self.max_requests

    def acquire(self, items: int) -> None:
        """Block until a request carrying ``items`` items fits in the window."""
        items = min(items, self.max_items)
        while (wait := self._wait_at(items, self.clock())) > 0:
            self.sleep(wait)
            self.waited += wait

    def record(self, items: int) -> None:
        """Count a request that was sent (call when its answer, or its failure, arrives)."""
        self._sent.append((self.clock(), items))
        self._items_in_window += items

    def recent(self) -> list[tuple[float, int]]:
        """The requests still inside the window, as (seconds ago, items), oldest first: what
        the next run must count (see :meth:`preload`)."""
        now = self.clock()
        self._prune(now)
        return [(now - stamp, items) for stamp, items in self._sent]

    def preload(self, recent: list[tuple[float, int]], elapsed: float) -> None:
        """Count requests an earlier run sent: ``recent`` as :meth:`recent` gave it,
        ``elapsed`` seconds ago. A run started right after another then waits where the
        server's window says so, instead of meeting a 429."""
        now = self.clock()
        earlier = [(now - age - elapsed, items) for age, items in recent if age + elapsed >= 0]
        kept = [(stamp, items) for stamp, items in earlier if stamp > now - self.window]
        self._sent = deque(sorted([*kept, *self._sent]))
        self._items_in_window = sum(items for _, items in self._sent)

    def defer(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (after a 429's ``Retry-After``, or an empty budget)."""
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)
