"""A seeded chaos run: a CSV source that changes between runs, synced over loopback HTTP into a
sandbox that fails on purpose, until a run finds nothing left to do.

The source is the ``custom`` connector on a CSV file (what a user points it at): N leads, then
rounds of updates, deletes (rows flagged ``deleted``), inserts, and leads Naturalead must refuse
(a phone that already belongs to another lead: refused by the API; an invalid email: refused
locally). The sandbox is served with :func:`naturalead_sync.loopback.serve` and reached by the
real client through ``destination.url``; it answers 5% of requests with a 503, drops 5% of the
connections after committing, answers 3% after the client's timeout, and sends 5% spurious 429s,
all drawn from one seed, which also draws the source's changes: the same seed gives the same
fault sequence and the same end state, another seed another sequence (tested on a small N). Its
window is compressed to 1 s so the run takes seconds.

At the end the sandbox holds exactly the source's live, valid leads with their latest values, the
failed list holds exactly the refused leads with their reasons, and the sandbox's own request log
shows no sliding window of a run over the limit and no 429 that pacing could have avoided.

CI runs N = 2,000 (about 5 s). The long form (about 40 s), by hand::

    uv run pytest tests/faults/test_chaos.py --chaos-leads 20000
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from naturalead_sync.engine import RunOptions
from naturalead_sync.loopback import serve
from naturalead_sync.report import ConnectionReport
from naturalead_sync.runner import Runtime, run
from naturalead_sync.sandbox import DEFAULT_KEY, Faults, Sandbox
from naturalead_sync.state import StateStore
from support import lead_row, make_config, max_in_any_window, write_csv

SEED = 20260301
T0 = datetime(2026, 3, 1, tzinfo=UTC)
ROUND = timedelta(hours=1)
ROUNDS = 4  # the initial load and three rounds of changes
QUIET_RUNS = 5  # runs allowed after the last round to become quiet
REQUESTS_PER_WINDOW = 20
WINDOW_SECONDS = 1.0
CLIENT_TIMEOUT = 2.0  # support.config_text's retry.timeout (checked where the config is made)
FAULTS = Faults(
    error_rate=0.05,
    drop_after_commit_rate=0.05,
    slow_rate=0.03,
    # Well past the timeout: a client thread late to read on a busy machine still times out,
    # so the same seed replays the same faults.
    slow_seconds=CLIENT_TIMEOUT + 1.0,
    rate_limit_burst_rate=0.05,
    seed=SEED,
)
COLLISION = "already belongs to another lead"


@dataclass
class ChaosSource:
    """The CSV source and what the sandbox must end up holding.

    Rows stay in file order; a deleted lead keeps its row, flagged. The first ``anchors`` ids
    never change: their phones are the ones colliding leads borrow, so each collision is
    refused whichever order the retries take (an anchor always precedes its borrower in the file).
    """

    size: int
    seed: int = SEED
    rng: random.Random = field(init=False)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # lead_id -> reason fragment
    anchors: int = 50
    borrowed: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for n in range(self.size):
            self._put(n, self._stamp(0), version=0)
        self.refuse(0)

    @property
    def next_id(self) -> int:
        """The id of the next inserted lead."""
        return len(self.rows)

    def _stamp(self, round_: int) -> str:
        """A modification time inside round ``round_`` (before that round's run)."""
        return (T0 + round_ * ROUND + timedelta(seconds=self.rng.uniform(0, 1800))).isoformat()

    def _put(self, n: int, updated: str, version: int, **overrides: str) -> None:
        values = {
            "phone": f"+14152{n:06d}",
            "last_name": f"Last{n}v{version}",
            "email": f"lead{n}.v{version}@example.com",
            "company": f"Company {n % 7} v{version}",
            **overrides,
        }
        self.rows[str(n)] = lead_row(n, updated, **values)

    def refuse(self, round_: int) -> None:
        """Insert two leads the API refuses (a borrowed phone) and two refused locally."""
        for _ in range(2):
            anchor = self.rows[str(self.borrowed % self.anchors)]
            self.borrowed += 1
            self.refused[str(self.next_id)] = COLLISION
            self._put(self.next_id, self._stamp(round_), 0, phone=anchor["phone"])
        for _ in range(2):
            self.refused[str(self.next_id)] = "email"
            self._put(self.next_id, self._stamp(round_), 0, email="no-at-sign.example.com")

    def change(self, round_: int) -> None:
        """Update 5% and delete 1% of the changeable live leads, insert 2% and four refused."""
        changeable = [
            key
            for key, row in self.rows.items()
            if int(key) >= self.anchors and not row["deleted"] and key not in self.refused
        ]
        picked = self.rng.sample(changeable, len(changeable) * 6 // 100)
        cut = len(picked) * 5 // 6
        for key in picked[:cut]:
            self._put(int(key), self._stamp(round_), version=round_)
        for key in picked[cut:]:
            self.rows[key] = {**self.rows[key], "updated_at": self._stamp(round_), "deleted": "1"}
        for _ in range(self.size * 2 // 100):
            self._put(self.next_id, self._stamp(round_), version=round_)
        self.refuse(round_)

    def expected(self) -> dict[str, dict[str, Any]]:
        """What the sandbox must hold: each live, valid lead's latest values."""
        return {
            key: {
                "name": f"{row['first_name']} {row['last_name']}",
                "phone": row["phone"],
                "email": row["email"],
                "customFields": {"company": row["company"]},
            }
            for key, row in self.rows.items()
            if not row["deleted"] and key not in self.refused
        }


@dataclass
class ChaosRun:
    """One chaos run: its source, the sandbox it synced into, and each run's report."""

    source: ChaosSource
    box: Sandbox
    state_path: Path
    reports: list[ConnectionReport] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # where each run's requests end in the log

    def injected(self) -> list[tuple[int, str]]:
        """The faults the sandbox injected, in order: (request number, kind). The sandbox's
        request log is the record: it notes each request's drawn action (``ok`` for none)."""
        return [
            (n, record.action)
            for n, record in enumerate(self.box.request_log)
            if record.action != "ok"
        ]

    def held(self) -> dict[str, dict[str, Any]]:
        """What the sandbox holds, as :meth:`ChaosSource.expected` says it."""
        return {
            lead["lead_id"]: {k: lead[k] for k in ("name", "phone", "email", "customFields")}
            for lead in self.box.leads()
        }

    def failed(self) -> dict[str, str]:
        """The failed list: lead_id -> error."""
        with StateStore(self.state_path) as state:
            return {entry.lead_id: entry.error or "" for _, entry in state.failed("csv")}

    def tallies(self) -> list[tuple[Any, ...]]:
        """What each run reported doing (its counters; no times)."""
        return [
            (
                r.status,
                r.created,
                r.updated,
                r.deleted,
                r.rejected,
                r.upsert_requests,
                r.delete_requests,
                r.retries,
                r.rate_limited,
            )
            for r in self.reports
        ]


@contextmanager
def chaos_run(folder: Path, size: int, seed: int = SEED) -> Iterator[ChaosRun]:
    """Sync the ``size``-lead source through its rounds of changes into a sandbox failing by
    ``seed`` (which also draws the changes), until a run finds nothing left to do, and yield
    the run. The sandbox is closed when the ``with`` ends, on every path (a failed assertion,
    in the test or here, included); ``$NATURALEAD_API_KEY`` must hold the sandbox's key."""
    folder.mkdir(parents=True, exist_ok=True)
    box = Sandbox(
        folder / "sandbox.db",
        requests_per_window=REQUESTS_PER_WINDOW,
        window_seconds=WINDOW_SECONDS,
        faults=dataclasses.replace(FAULTS, seed=seed),
    )
    with closing(box):
        yield _converge(ChaosRun(ChaosSource(size, seed), box, folder / "state.db"), folder)


def _converge(chaos: ChaosRun, folder: Path) -> ChaosRun:
    """The runs of :func:`chaos_run`, served over loopback from ``chaos.box``."""
    box = chaos.box
    with serve(box) as server:
        config = make_config(
            folder,
            destination=f'url = "{server.url}"\napi_key = "${{NATURALEAD_API_KEY}}"',
            limits=f"requests_per_window = {REQUESTS_PER_WINDOW}\nleads_per_window = "
            f'{REQUESTS_PER_WINDOW * 100}\nwindow = "{WINDOW_SECONDS}s"',
        )
        assert config.destination.retry.timeout.total_seconds() == CLIENT_TIMEOUT

        def sync(round_: int) -> ConnectionReport:
            moment = T0 + (round_ + 1) * ROUND  # after every change of the round
            options = RunOptions(now=lambda: moment)
            chaos.reports.append(run(Runtime(config), options=options).connections[0])
            chaos.ends.append(len(box.request_log))
            return chaos.reports[-1]

        for round_ in range(ROUNDS):
            if round_:
                chaos.source.change(round_)
            write_csv(folder / "leads.csv", list(chaos.source.rows.values()))
            sync(round_)
        for extra in range(QUIET_RUNS):
            last = sync(ROUNDS + extra)
            if last.status != "failed" and last.upsert_requests + last.delete_requests == 0:
                break
        else:
            statuses = [r.status for r in chaos.reports]
            pytest.fail(f"no quiet run after {QUIET_RUNS} tries: {statuses}")
    return chaos


@pytest.fixture
def chaos_leads(request: pytest.FixtureRequest) -> int:
    """N, from ``--chaos-leads`` (tests/conftest.py)."""
    return int(request.config.getoption("--chaos-leads"))


@pytest.fixture(autouse=True)
def _api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key the configs read from ``$NATURALEAD_API_KEY``: the sandbox's."""
    monkeypatch.setenv("NATURALEAD_API_KEY", DEFAULT_KEY)


def test_seeded_chaos_converges_to_the_source(tmp_path: Path, chaos_leads: int) -> None:
    with chaos_run(tmp_path, chaos_leads) as chaos:
        box, source = chaos.box, chaos.source

        # 0 lost, 0 extra, 0 stale.
        held = chaos.held()
        expected = source.expected()
        assert sorted(expected.keys() - held.keys(), key=int) == [], "lost"
        assert sorted(held.keys() - expected.keys(), key=int) == [], "extra"
        stale = [key for key, lead in expected.items() if held[key] != lead]
        assert stale == [], f"stale: {stale[:5]} e.g. {held[stale[0]] if stale else ''}"

        # Every refused lead is in the failed list with its reason; the API's refusals were
        # reported as the API's.
        failed = chaos.failed()
        assert failed.keys() == source.refused.keys()
        assert [key for key, reason in source.refused.items() if reason not in failed[key]] == []
        by_api = {
            r.lead_id for report in chaos.reports for r in report.rejections if r.where == "api"
        }
        assert by_api == {key for key, reason in source.refused.items() if reason == COLLISION}

        # The faults happened, and each run's pacing kept every window under the limit by the
        # sandbox's clock (across runs: test_pacing_across_runs.py).
        assert {"500", "drop", "slow", "429"} <= {kind for _, kind in chaos.injected()}
        runs = [box.request_log[start:end] for start, end in pairwise([0, *chaos.ends])]
        # By the sandbox's own clock, 429s included.
        busiest = max(
            max_in_any_window([(r.received, 1) for r in log], WINDOW_SECONDS)[0] for log in runs
        )
        assert busiest <= REQUESTS_PER_WINDOW
        assert [r for r in box.request_log if r.rate_limited and r.action != "429"] == []


def test_the_same_seed_replays_the_same_faults_and_end_state(tmp_path: Path) -> None:
    """Run the short form twice with one seed: the same faults at the same requests, the same
    runs, the same end state; another seed draws another fault sequence."""
    with ExitStack() as stack:
        first, again, other = (
            stack.enter_context(chaos_run(tmp_path / name, 300, seed))
            for name, seed in (("a", SEED), ("b", SEED), ("c", SEED + 1))
        )
        faults = first.injected()
        assert len({kind for _, kind in faults}) >= 2, faults  # faults of more than one kind
        assert again.injected() == faults
        assert again.tallies() == first.tallies()
        assert again.held() == first.held() == first.source.expected()
        assert again.failed() == first.failed()
        assert other.injected() != faults
        assert other.held() == other.source.expected()
