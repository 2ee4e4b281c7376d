"""The pacer on a simulated clock: limits hold in every window, and no time is wasted."""

from __future__ import annotations

import random

import pytest
from naturalead_sync.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_any_window(stamps: list[tuple[float, int]], window: float) -> tuple[int, int]:
    """The most requests and items whose stamps fall in any half-open window."""
    most_requests = most_items = 0
    for i, (start, _) in enumerate(stamps):
        inside = [n for t, n in stamps[i:] if t < start + window]
        most_requests = max(most_requests, len(inside))
        most_items = max(most_items, sum(inside))
    return most_requests, most_items


@pytest.mark.parametrize("latency", [0.0, 0.05, 0.4])
def test_request_limit_holds_and_time_is_near_the_minimum(latency: float) -> None:
    clock = FakeClock()
    pacer = Pacer(50, 5000, 60.0, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(200):  # 20,000 leads
        pacer.acquire(100)
        clock.now += latency
        pacer.record(100)
        stamps.append((clock.now, 100))
    assert max_in_any_window(stamps, 60.0) == (50, 5000)
    # 200 requests = 4 windows of 50: the last starts 3 windows in. Sequential requests add
    # their latency (50 per window), and stamping on the answer adds one latency per window.
    minimum = 3 * 60.0
    assert clock.now <= minimum + 50 * latency + 4 * latency + 1e-6


def test_item_limit_holds_with_uneven_batches() -> None:
    clock = FakeClock()
    pacer = Pacer(50, 500, 10.0, clock=clock, sleep=clock.sleep)
    rng = random.Random(7)
    stamps = []
    for _ in range(300):
        items = rng.randint(1, 100)
        pacer.acquire(items)
        clock.now += 0.01
        pacer.record(items)
        stamps.append((clock.now, items))
    requests, items = max_in_any_window(stamps, 10.0)
    assert requests <= 50
    assert items <= 500


def test_defer_blocks_until_the_given_time() -> None:
    clock = FakeClock()
    pacer = Pacer(50, 5000, 60.0, clock=clock, sleep=clock.sleep)
    pacer.defer(12.5)
    pacer.acquire(1)
    assert clock.now == pytest.approx(12.5)
    assert pacer.waited == pytest.approx(12.5)
