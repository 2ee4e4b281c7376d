"""The pacer on a simulated clock: limits hold in every window, and no time is wasted."""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta
from pathlib import Path

import pytest

from naturalead_sync.client import NaturaleadClient
from naturalead_sync.config import LimitsConfig
from naturalead_sync.pacing import Pacer
from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox, SandboxTransport, serve
from support import FakeClock, max_in_any_window


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


@pytest.mark.parametrize("over_loopback", [False, True])
def test_real_client_against_sandbox_keeps_every_window_under_the_limit(
    tmp_path: Path, over_loopback: bool
) -> None:
    """15 requests at 5 per 0.5 s against the sandbox's own limiter: no 429, no wasted wait."""
    window, per_window, batches = 0.5, 5, 15
    box = Sandbox(tmp_path / "sb.db", requests_per_window=per_window, window_seconds=window)
    limits = LimitsConfig(requests_per_window=per_window, window=timedelta(seconds=window))
    with contextlib.ExitStack() as stack:
        if over_loopback:
            server = stack.enter_context(serve(box))
            client = NaturaleadClient(server.url, DEFAULT_KEY, limits=limits)
        else:
            client = NaturaleadClient(
                "http://sandbox.invalid",
                DEFAULT_KEY,
                limits=limits,
                transport=SandboxTransport(box),
            )
        for b in range(batches):
            client.upsert("t", [{"lead_id": f"{b}-{i}"} for i in range(100)])
        client.close()
    log = box.request_log
    box.close()
    assert len(log) == batches and all(r.status == 200 for r in log)
    assert client.stats.rate_limited == 0
    stamps = [(r.received, r.items) for r in log]
    assert max_in_any_window(stamps, window)[0] <= per_window
    # The pacer never waits longer than the limit demands: the theoretical minimum, plus at
    # most the first window's spread (a later window that runs faster than the first waits
    # for the first one's stamps to age out), whatever the machine's load.
    minimum = (batches // per_window - 1) * window
    first_window_spread = log[per_window - 1].received - log[0].received
    assert client.pacer.waited <= minimum + first_window_spread + 0.05


def test_a_run_counts_the_requests_of_the_run_before_it() -> None:
    before = FakeClock(100.0)
    first = Pacer(3, 1000, 10.0, clock=before, sleep=before.sleep)
    for _ in range(3):
        first.acquire(1)
        first.record(1)
        before.advance(1.0)
    saved = first.recent()  # ages 3, 2 and 1 seconds
    assert [age for age, _ in saved] == [3.0, 2.0, 1.0]
    after = FakeClock(5000.0)  # another process: another monotonic clock
    second = Pacer(3, 1000, 10.0, clock=after, sleep=after.sleep)
    second.preload(saved, elapsed=2.0)  # started two seconds later
    # The oldest of the three left the window 10 s after it was sent: 5 s from now.
    assert second.wait_needed(1) == 5.0
    second.preload([(9.5, 1)], elapsed=1.0)  # already out of the window: ignored
    assert second.wait_needed(1) == 5.0
