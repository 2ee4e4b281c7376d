"""Pacing across runs: a run that starts right after another must not meet a 429.

The limit is per API key and sliding, so the requests a run sends in its last window still
count when the next run starts. Each run builds a new client whose pacer starts empty, so a run
started within one window of the previous run's last requests can send a full window at once
and meet the API's 429: an avoidable 429 (issue #7's goal is 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from naturalead_sync.runner import run
from naturalead_sync.sandbox import Sandbox
from support import lead_row, make_config, sandbox_runtime, write_csv

LIMIT = 5
WINDOW = 3.0  # long enough that the second run starts inside it, even on a loaded machine


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Sandbox]:
    """The sandbox both runs sync into, closed when the test ends, passed or failed."""
    sandbox = Sandbox(tmp_path / "sandbox.db", requests_per_window=LIMIT, window_seconds=WINDOW)
    yield sandbox
    sandbox.close()


def test_back_to_back_runs_meet_no_429(tmp_path: Path, box: Sandbox) -> None:
    config = make_config(
        tmp_path, limits=f'requests_per_window = {LIMIT}\nwindow = "{WINDOW}s"\nbatch_size = 1'
    )
    rows = [lead_row(n) for n in range(LIMIT)]
    write_csv(tmp_path / "leads.csv", rows)
    first = run(sandbox_runtime(config, box)).connections[0]
    assert (first.status, first.upsert_requests) == ("ok", LIMIT)

    changed = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    write_csv(
        tmp_path / "leads.csv", [lead_row(n, changed, email=f"new{n}@x.com") for n in range(LIMIT)]
    )
    second = run(sandbox_runtime(config, box)).connections[0]
    assert second.status == "ok", second.error
    assert [lead["email"] for lead in box.leads()] == [f"new{n}@x.com" for n in range(LIMIT)]
    assert second.rate_limited == 0, "the second run met a 429 its pacer could have avoided"
