"""Crash safety: a run killed with SIGKILL at seeded moments, then run again, leaves the
sandbox exactly as an uninterrupted run does. Real processes, loopback HTTP, SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox, serve
from naturalead_sync.state import StateStore
from support import config_text, lead_row, write_csv

N = 3000
pytestmark = pytest.mark.slow


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(phase: int, sort: bool) -> list[dict[str, Any]]:
    # Groups of 50 leads share a modification time, so ties straddle every batch boundary.
    rows = [lead_row(n, (T0 + timedelta(seconds=n // 50)).isoformat()) for n in range(N)]
    if phase == 2:
        later = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        for n in range(0, N, 6):
            rows[n] = lead_row(n, later, company="Updated Inc")
        for n in range(3, 300, 3):
            rows[n] = lead_row(n, later, deleted="true")
        rows += [lead_row(n, later) for n in range(N, N + 200)]
    if sort:
        rows.sort(key=lambda row: datetime.fromisoformat(row["updated_at"]))
    return rows


def _comparable(box: Sandbox) -> list[tuple[Any, ...]]:
    return [
        (
            lead["lead_id"],
            lead["name"],
            lead["phone"],
            lead["email"],
            tuple(sorted(lead["customFields"].items())),
            tuple(lead["tags"]),
        )
        for lead in box.leads()
    ]


def _command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "naturalead_sync", "-c", str(folder / "c.toml"), "run"]


def _prepare(folder: Path, url: str, sort: bool) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "c.toml").write_text(
        config_text(
            destination=f'url = "{url}"\napi_key = "${{NL_KEY}}"',
            limits='requests_per_window = 6\nwindow = "0.3s"',
            settings=f"sorted = {str(sort).lower()}",
        )
    )


def _run(folder: Path, box: Sandbox, phase: int, sort: bool, kill_at: int | None = None) -> int:
    """Run once; with ``kill_at``, SIGKILL the run as soon as that many requests answered."""
    write_csv(folder / "leads.csv", _rows(phase, sort))
    env = {**os.environ, "NL_KEY": DEFAULT_KEY}
    seen = len(box.request_log)
    process = subprocess.Popen(
        _command(folder), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if kill_at is not None:
        deadline = time.monotonic() + 120
        while process.poll() is None and len(box.request_log) < seen + kill_at:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=300)
    assert b"Traceback" not in stderr, stderr.decode()
    return process.returncode


def _sync_twice(
    folder: Path, box: Sandbox, sort: bool, kill: tuple[int, int] | None
) -> list[tuple[Any, ...]]:
    with serve(box) as server:
        _prepare(folder, server.url, sort)
        for phase in (1, 2):
            if kill is not None and kill[0] == phase:
                assert _run(folder, box, phase, sort, kill[1]) == -signal.SIGKILL
                if sort and phase == 1 and kill[1] >= 3:
                    # A sorted file moves the cursor mid-run: the killed run left one behind.
                    with StateStore(folder / "state.db") as store:
                        assert store.get_cursor("csv", "changed") is not None
            assert _run(folder, box, phase, sort) == 0
    return _comparable(box)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    folder = tmp_path_factory.mktemp("reference")
    box = Sandbox(folder / "sandbox.db", requests_per_window=6, window_seconds=0.3)
    try:
        return _sync_twice(folder, box, False, None)
    finally:
        box.close()


# (sorted file?, phase, kill once this many requests were answered). Phase 1 sends 30
# upserts; phase 2 sends 1 delete, then 7 upserts.
KILLS = [
    (False, 1, 1),  # the first batch of a first sync
    (False, 1, 16),  # mid-way
    (False, 2, 1),  # right after the delete
    (False, 2, 4),  # among the changes
    (True, 1, 3),  # a sorted file: its cursor has moved
    (True, 1, 29),  # one batch before the end
    (True, 2, 1),
    (True, 2, 7),
]


@pytest.mark.parametrize(("sort", "phase", "kill_at"), KILLS)
def test_sigkill_then_rerun_gives_the_uninterrupted_state(
    tmp_path: Path, reference: list[tuple[Any, ...]], sort: bool, phase: int, kill_at: int
) -> None:
    kill = (phase, kill_at)
    box = Sandbox(tmp_path / "sandbox.db", requests_per_window=6, window_seconds=0.3)
    try:
        final = _sync_twice(tmp_path / "run", box, sort, kill)
        assert len(final) == N + 200 - 99
        assert final == reference
        assert max(r.items for r in box.request_log) <= 100
    finally:
        box.close()
