"""Crash safety: a run killed with SIGKILL at ten chosen moments, then run again, leaves the
sandbox exactly as an uninterrupted run does. Real processes, loopback HTTP, SQLite.

The moments: while the run reads its source (a seeded delay, before any request), while a
batch is in flight (the sandbox has the request but has not applied it), between the API's
answer and the checkpoint (the sandbox applied the batch; the run dies before it hears back),
after the answer arrived (the run may or may not have checkpointed), and around the delete.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from naturalead_sync.loopback import HTTPAnswer
from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox, serve
from naturalead_sync.state import StateStore
from support import config_text, lead_row, spawn, write_csv

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


Moment = Literal["reading", "in-flight", "applied", "answered"]


@dataclass(frozen=True)
class Kill:
    """Where to SIGKILL a run: in ``phase``, at its ``request``-th sync request (or, for
    ``reading``, after a seeded delay before any request)."""

    sort: bool
    phase: int
    moment: Moment
    request: int = 0


class _Killer:
    """The sandbox's HTTP face, which SIGKILLs the run from inside a request when told to:
    before applying it (``in-flight``) or after applying it, before answering (``applied``)."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.pid: int | None = None
        self.target: tuple[Moment, int] | None = None
        self.count = 0
        self.fired = threading.Event()

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        self.count += 1
        hit = self.target is not None and self.count == self.target[1]
        if hit and self.target is not None and self.target[0] == "in-flight":
            self._fire()
            return HTTPAnswer(503, {}, b"", action="drop")
        answer = self.box.handle(method, path, headers, body)
        if hit:
            self._fire()
            return answer._replace(action="drop")
        return answer

    def _fire(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        self.fired.set()


def _run(folder: Path, killer: _Killer, phase: int, sort: bool, kill: Kill | None = None) -> int:
    """Run once; with ``kill``, SIGKILL the run at that moment."""
    write_csv(folder / "leads.csv", _rows(phase, sort))
    env = {**os.environ, "NL_KEY": DEFAULT_KEY}
    killer.count = 0
    killer.fired.clear()
    killer.target = None
    if kill is not None and kill.moment in ("in-flight", "applied"):
        killer.target = (kill.moment, kill.request)
    with spawn(_command(folder), env=env) as process:
        killer.pid = process.pid
        deadline = time.monotonic() + 120
        if kill is not None and kill.moment == "reading":
            # The run has opened its state and reads the file (deletes first, then changes):
            # kill it a seeded few milliseconds later, before its first request.
            while not (folder / "state.db").exists():
                running = process.poll() is None
                assert time.monotonic() < deadline and running, "the run never began"
                time.sleep(0.001)
            time.sleep(random.Random(kill.request).uniform(0, 0.005))
            process.send_signal(signal.SIGKILL)
        elif kill is not None and kill.moment == "answered":
            while process.poll() is None and killer.count < kill.request:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.002)
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
    killer.target = None
    assert "Traceback" not in stderr, stderr
    return process.wait(timeout=0)


def _sync_twice(folder: Path, box: Sandbox, kill: Kill | None, sort: bool) -> list[tuple[Any, ...]]:
    killer = _Killer(box)
    with serve(killer) as server:
        _prepare(folder, server.url, sort)
        for phase in (1, 2):
            if kill is not None and kill.phase == phase:
                assert _run(folder, killer, phase, sort, kill) == -signal.SIGKILL
                if kill.moment == "reading":
                    assert killer.count == 0, "killed after its first request, not while reading"
                if sort and phase == 1 and kill.request >= 3:
                    # A sorted file moves the cursor mid-run: the killed run left one behind.
                    with StateStore(folder / "state.db") as store:
                        assert store.get_cursor("csv", "changed") is not None
            assert _run(folder, killer, phase, sort) == 0
    return _comparable(box)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    folder = tmp_path_factory.mktemp("reference")
    box = Sandbox(folder / "sandbox.db", requests_per_window=6, window_seconds=0.3)
    try:
        return _sync_twice(folder, box, None, sort=False)
    finally:
        box.close()


# Phase 1 sends 30 upserts; phase 2 sends 1 delete, then 7 upserts. A sorted file moves the
# cursor mid-run, so a kill there leaves a cursor behind.
KILLS = [
    Kill(False, 1, "reading", request=7),  # seed 7: while the first sync reads its file
    Kill(False, 1, "in-flight", 1),  # the first batch never applied
    Kill(False, 1, "applied", 16),  # applied mid-way, the answer lost with the run
    Kill(False, 1, "answered", 22),  # answered: checkpointed or not
    Kill(True, 1, "applied", 3),
    Kill(True, 1, "in-flight", 29),  # one batch before the end
    Kill(False, 2, "applied", 1),  # the delete applied, its checkpoint never written
    Kill(True, 2, "in-flight", 1),  # the delete never applied
    Kill(False, 2, "applied", 4),  # among the changes
    Kill(True, 2, "answered", 8),  # the last batch answered
]


@pytest.mark.parametrize(
    "kill",
    KILLS,
    ids=[f"{k.phase}-{k.moment}-{k.request}-{'sorted' if k.sort else 'unsorted'}" for k in KILLS],
)
def test_sigkill_then_rerun_gives_the_uninterrupted_state(
    tmp_path: Path, reference: list[tuple[Any, ...]], kill: Kill
) -> None:
    box = Sandbox(tmp_path / "sandbox.db", requests_per_window=6, window_seconds=0.3)
    try:
        final = _sync_twice(tmp_path / "run", box, kill, sort=kill.sort)
        assert len(final) == N + 200 - 99
        assert final == reference
        assert max(r.items for r in box.request_log) <= 100
    finally:
        box.close()
