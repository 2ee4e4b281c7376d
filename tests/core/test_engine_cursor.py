"""Cursor rules with an ordered connector: ties across batches, failures mid-run, records
changed during the run, order violations. The connector is a real Connector over a list."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from naturalead_sync import Connector, ConnectorSettings, Lead, SourceRecord, Window, hookimpl
from naturalead_sync.config import Config, load_config
from naturalead_sync.engine import RunOptions
from naturalead_sync.report import ConnectionReport
from naturalead_sync.runner import run
from naturalead_sync.sandbox import Faults, Sandbox
from naturalead_sync.state import StateStore
from support import sandbox_runtime, stored

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE: dict[str, SourceRecord] = {}
HOOKS: dict[str, Any] = {}


class MemoryConnector(Connector):
    """An ordered source held in SOURCE, sorted by (modified_at, id) like a CRM query."""

    name = "memory"
    Settings = ConnectorSettings

    def fetch_changed(self, window: Window) -> Iterable[SourceRecord]:
        rows = sorted(
            (r for r in SOURCE.values() if r.modified_at in window),
            key=lambda r: (r.modified_at, r.id),
        )
        for index, record in enumerate(rows):
            if "during" in HOOKS:
                HOOKS["during"](index)
            yield record

    def fetch_by_ids(self, ids: list[str]) -> Iterable[SourceRecord]:
        return [SOURCE[i] for i in ids if i in SOURCE]

    def to_lead(self, record: SourceRecord) -> Lead:
        return Lead(lead_id=record.id, name=record.fields["name"])


class Plugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(MemoryConnector)


@pytest.fixture(autouse=True)
def _clean() -> None:
    SOURCE.clear()
    HOOKS.clear()


def put(record_id: str, modified: datetime, name: str | None = None) -> None:
    SOURCE[record_id] = SourceRecord(record_id, modified, {"name": name or f"Lead {record_id}"})


def config(tmp_path: Path, limits: str = "") -> Config:
    path = tmp_path / "c.toml"
    path.write_text(
        '[destination]\nsandbox = "sb.db"\n[destination.retry]\nmax_attempts = 2\n'
        'backoff_initial = "1ms"\nbackoff_max = "2ms"\n[destination.limits]\n'
        f'{limits}\n[state]\npath = "state.db"\n'
        '[[connections]]\nname = "mem"\nconnector = "memory"\nlookback = "1m"\n'
    )
    return load_config(path)


def sync(
    tmp_path: Path, sandbox: Sandbox, options: RunOptions | None = None, limits: str = ""
) -> ConnectionReport:
    runtime = sandbox_runtime(config(tmp_path, limits), sandbox)
    runtime.pm.register(Plugin(), name="memory-plugin")
    return run(runtime, options=options).connections[0]


def cursor(tmp_path: Path) -> datetime | None:
    with StateStore(tmp_path / "state.db") as store:
        return store.get_cursor("mem", "changed")


@pytest.mark.parametrize(
    "limits",
    ["", 'requests_per_window = 1\nwindow = "0.2s"'],
    ids=["unpaced", "paced: batches wait in the ready queue"],
)
def test_failure_mid_run_keeps_cursor_before_the_first_unsent_record(
    tmp_path: Path, sandbox: Sandbox, limits: str
) -> None:
    for n in range(300):
        put(f"r{n:03d}", T0 + timedelta(seconds=n // 120))  # big groups of equal times
    sandbox.script("ok", "500", "500")  # first batch lands, then the second keeps failing
    failed = sync(tmp_path, sandbox, limits=limits)
    assert failed.status == "failed" and "failed 2 times" in (failed.error or "")
    assert len(sandbox.leads()) == 100
    # r000..r099 (time T0) are done; r100.. are not; the cursor may not pass T0.
    assert cursor(tmp_path) == T0
    resumed = sync(tmp_path, sandbox)
    assert resumed.status == "ok"
    assert resumed.skipped_unchanged == 100  # the overlap costs no request
    assert resumed.upsert_requests == 2  # only the 200 never accepted
    assert len(sandbox.leads()) == 300


def test_ties_across_batch_boundaries_lose_nothing(tmp_path: Path, sandbox: Sandbox) -> None:
    for n in range(250):
        put(f"t{n:03d}", T0)
    sync(tmp_path, sandbox)
    assert len(sandbox.leads()) == 250
    assert cursor(tmp_path) is not None


def test_record_changed_during_the_run_is_picked_up_next_run(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    for n in range(150):
        put(f"c{n:03d}", T0 + timedelta(seconds=n))

    def change_first_record(index: int) -> None:
        if index == 140:  # c000 was already sent; it changes now, mid-run
            put("c000", datetime.now(UTC), name="Changed while syncing")

    HOOKS["during"] = change_first_record
    sync(tmp_path, sandbox)
    HOOKS.clear()
    assert stored(sandbox, "c000")["name"] == "Lead c000"
    second = sync(tmp_path, sandbox)
    assert stored(sandbox, "c000")["name"] == "Changed while syncing"
    assert second.upsert_requests == 1


def test_out_of_order_records_disable_mid_run_checkpoints(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(250):
        put(f"o{n:03d}", T0 + timedelta(seconds=n))

    original = MemoryConnector.fetch_changed

    def shuffled(self: MemoryConnector, window: Window) -> Iterable[SourceRecord]:
        rows = list(original(self, window))
        return rows[120:] + rows[:120]

    sandbox.faults = Faults()
    MemoryConnector.fetch_changed = shuffled  # type: ignore[method-assign]
    try:
        sandbox.script("ok", "ok", "500", "500")
        failed = sync(tmp_path, sandbox)
    finally:
        MemoryConnector.fetch_changed = original  # type: ignore[method-assign]
    assert failed.status == "failed"
    assert "out of modification order" in caplog.text
    # Two batches landed, but records before them in time did not: no cursor was saved.
    assert cursor(tmp_path) is None
    sync(tmp_path, sandbox)
    assert len(sandbox.leads()) == 250


def test_batches_accepted_before_a_failure_are_not_sent_again(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    for n in range(300):
        put(f"a{n:03d}", T0 + timedelta(seconds=n))
    sandbox.script("ok", "ok", "500", "500")  # the third batch fails for good
    paced = 'requests_per_window = 1\nwindow = "0.1s"'  # batches queue behind the pacer
    failed = sync(tmp_path, sandbox, limits=paced)
    assert failed.status == "failed"
    assert len(sandbox.leads()) == 200
    with StateStore(tmp_path / "state.db") as store:
        assert store.counts("mem")["accepted"] == 200
    resumed = sync(tmp_path, sandbox, limits=paced)
    assert (resumed.status, resumed.upsert_requests) == ("ok", 1)
    assert len(sandbox.leads()) == 300


def test_reconcile_deletes_without_an_id_listing_asks_for_the_synced_ids(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    for n in range(150):
        put(f"x{n:03d}", T0)
    path = tmp_path / "c.toml"
    path.write_text(
        '[destination]\nsandbox = "sb.db"\n[state]\npath = "state.db"\n'
        '[[connections]]\nname = "mem"\nconnector = "memory"\nreconcile_deletes = true\n'
    )

    def once() -> ConnectionReport:
        runtime = sandbox_runtime(load_config(path), sandbox)
        runtime.pm.register(Plugin(), name="memory-plugin")
        return run(runtime).connections[0]

    assert once().status == "ok"
    del SOURCE["x007"], SOURCE["x140"]  # gone from the source, with no delete feed
    report = once()
    assert (report.status, report.deleted) == ("ok", 2)
    assert sandbox.lead("x007") is None and sandbox.lead("x140") is None
    assert len(sandbox.leads()) == 148
