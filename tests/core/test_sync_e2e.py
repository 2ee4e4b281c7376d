"""End to end, in-process: the custom connector reads a CSV, the engine syncs it into the
sandbox through the real client and transport, the state lives in SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from naturalead_sync import Connector, Lead, SourceRecord, Window, hookimpl
from naturalead_sync.config import load_config
from naturalead_sync.engine import RunOptions
from naturalead_sync.runner import run
from naturalead_sync.sandbox import Faults, Sandbox
from naturalead_sync.state import StateStore
from support import config_text, lead_row, make_config, sandbox_runtime, stored, write_csv


def fresh() -> str:
    """A modification time inside the next run's window (a second ago)."""
    return (datetime.now(UTC) - timedelta(seconds=1)).isoformat()


def sync(tmp_path: Path, sandbox: Sandbox, options: RunOptions | None = None, **kw: str):  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, **kw)
    return run(sandbox_runtime(config, sandbox), options=options).connections[0]


def test_initial_sync_sends_every_lead_in_full_batches(tmp_path: Path, sandbox: Sandbox) -> None:
    write_csv(tmp_path / "leads.csv", [lead_row(n) for n in range(250)])
    report = sync(tmp_path, sandbox)
    assert report.status == "ok", report.error
    assert (report.records_fetched, report.created, report.rejected) == (250, 250, 0)
    assert report.upsert_requests == 3
    assert [r.items for r in sandbox.request_log] == [100, 100, 50]
    stored = {lead["lead_id"]: lead for lead in sandbox.leads()}
    assert len(stored) == 250
    assert stored["7"]["name"] == "First7 Last7"
    assert stored["7"]["phone"] == "+14155550007"
    assert stored["7"]["customFields"] == {"company": "Company 0"}
    assert stored["7"]["source"] == "custom"


def test_unchanged_rerun_sends_nothing_and_a_change_sends_only_itself(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    rows = [lead_row(n) for n in range(120)]
    write_csv(tmp_path / "leads.csv", rows)
    sync(tmp_path, sandbox)
    sent_before = len(sandbox.request_log)

    again = sync(tmp_path, sandbox, options=RunOptions(full_refresh=False))
    assert again.upsert_requests == 0
    assert len(sandbox.request_log) == sent_before

    rows[5] = lead_row(5, fresh(), email="new5@example.com")
    write_csv(tmp_path / "leads.csv", rows)
    changed = sync(tmp_path, sandbox)
    assert (changed.upsert_requests, changed.updated, changed.created) == (1, 1, 0)
    assert sandbox.request_log[-1].items == 1
    assert stored(sandbox, "5")["email"] == "new5@example.com"


def test_partial_failure_records_rejections_and_resyncs_only_failed(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    rows = [lead_row(n) for n in range(10)]
    rows[3]["phone"] = "not a phone"  # rejected locally
    rows[4]["phone"] = rows[2]["phone"]  # collides in the sandbox: rejected by the API
    write_csv(tmp_path / "leads.csv", rows)
    report = sync(tmp_path, sandbox)
    assert report.status == "rejected"
    reasons = {r.lead_id: (r.where, r.reason) for r in report.rejections}
    assert reasons["3"][0] == "local" and "phone" in reasons["3"][1]
    assert reasons["4"][0] == "api" and "already belongs" in reasons["4"][1]
    assert {lead["lead_id"] for lead in sandbox.leads()} == {str(n) for n in range(10)} - {"3", "4"}

    # Unchanged: nothing is resent, the failures stay listed.
    quiet = sync(tmp_path, sandbox)
    assert quiet.upsert_requests == 0
    assert quiet.skipped_still_failing == 2
    assert quiet.status == "ok"

    # Fix the data in the source without touching its modification time (a fix the cursor
    # cannot see): the failed-lead pass fetches them again by id and sends only those.
    rows[3]["phone"] = "+14155559993"
    rows[4]["phone"] = "+14155559994"
    write_csv(tmp_path / "leads.csv", rows)
    fixed = sync(tmp_path, sandbox)
    assert fixed.failed_refetched == 2
    assert fixed.upsert_requests == 1
    assert sandbox.request_log[-1].items == 2
    assert fixed.status == "ok"
    with StateStore(tmp_path / "state.db") as store:
        assert list(store.failed()) == []


def test_deletes_reach_the_sandbox(tmp_path: Path, sandbox: Sandbox) -> None:
    rows = [lead_row(n) for n in range(20)]
    write_csv(tmp_path / "leads.csv", rows)
    sync(tmp_path, sandbox)
    rows[0] = lead_row(0, fresh(), deleted="true")
    rows[1] = lead_row(1, fresh(), deleted="yes")
    write_csv(tmp_path / "leads.csv", rows)
    report = sync(tmp_path, sandbox)
    assert (report.deleted, report.delete_requests) == (2, 1)
    assert sandbox.lead("0") is None and sandbox.lead("1") is None
    assert len(sandbox.leads()) == 18
    assert sync(tmp_path, sandbox).delete_requests == 0


def test_mass_delete_guard_stops_and_the_flag_allows(tmp_path: Path, sandbox: Sandbox) -> None:
    rows = [lead_row(n) for n in range(40)]
    write_csv(tmp_path / "leads.csv", rows)
    sync(tmp_path, sandbox)
    write_csv(tmp_path / "leads.csv", rows[:10])  # 30 of 40 vanished from a full export
    blocked = sync(tmp_path, sandbox, connection="reconcile_deletes = true")
    assert blocked.status == "failed"
    assert "--allow-mass-delete" in (blocked.error or "")
    assert len(sandbox.leads()) == 40
    allowed = sync(
        tmp_path, sandbox, RunOptions(allow_mass_delete=True), connection="reconcile_deletes = true"
    )
    assert (allowed.status, allowed.deleted) == ("ok", 30)
    assert len(sandbox.leads()) == 10


def test_older_version_never_overwrites_newer(tmp_path: Path, sandbox: Sandbox) -> None:
    write_csv(tmp_path / "leads.csv", [lead_row(1, "2026-05-01T00:00:00Z", email="new@x.com")])
    sync(tmp_path, sandbox)
    write_csv(tmp_path / "leads.csv", [lead_row(1, "2026-04-01T00:00:00Z", email="old@x.com")])
    report = sync(tmp_path, sandbox, RunOptions(full_refresh=True))
    assert report.skipped_stale == 1
    assert stored(sandbox, "1")["email"] == "new@x.com"


def test_duplicate_ids_in_one_file_send_the_newest(tmp_path: Path, sandbox: Sandbox) -> None:
    write_csv(
        tmp_path / "leads.csv",
        [
            lead_row(1, "2026-05-02T00:00:00Z", email="newest@x.com"),
            lead_row(1, "2026-05-01T00:00:00Z", email="older@x.com"),
        ],
    )
    report = sync(tmp_path, sandbox)
    assert report.upsert_requests == 1
    assert sandbox.request_log[-1].items == 1
    assert stored(sandbox, "1")["email"] == "newest@x.com"


def test_dry_run_sends_nothing_and_writes_no_state(tmp_path: Path, sandbox: Sandbox) -> None:
    rows = [lead_row(n) for n in range(5)]
    write_csv(tmp_path / "leads.csv", rows)
    sync(tmp_path, sandbox)
    rows[0] = lead_row(0, fresh(), email="changed@x.com")
    rows.append(lead_row(9, fresh()))
    rows[1] = lead_row(1, fresh(), deleted="1")
    write_csv(tmp_path / "leads.csv", rows)
    requests = len(sandbox.request_log)
    plan = sync(tmp_path, sandbox, RunOptions(dry_run=True))
    assert (plan.created, plan.updated, plan.deleted) == (1, 1, 1)
    assert plan.planned == {"create": ["9"], "update": ["0"], "delete": ["1"]}
    assert len(sandbox.request_log) == requests
    real = sync(tmp_path, sandbox)
    assert (real.created, real.updated, real.deleted) == (1, 1, 1)


@pytest.mark.parametrize("fault", ["500", "drop", "slow", "429"])
def test_transient_faults_are_retried_to_the_right_final_state(
    tmp_path: Path, sandbox: Sandbox, fault: str
) -> None:
    sandbox.faults = Faults(slow_seconds=3.0)  # beyond the 2 s client timeout
    sandbox.script(fault, fault)
    write_csv(tmp_path / "leads.csv", [lead_row(n) for n in range(150)])
    report = sync(tmp_path, sandbox)
    assert report.status == "ok", report.error
    assert len(sandbox.leads()) == 150
    assert report.retries + report.rate_limited == 2


def test_whole_batch_400_is_split_to_isolate_the_bad_lead(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(whole_batch_400=True)
    rows = [lead_row(n) for n in range(100)]
    rows[37]["phone"] = rows[36]["phone"]  # valid locally, refused by the API
    write_csv(tmp_path / "leads.csv", rows)
    report = sync(tmp_path, sandbox)
    assert report.status == "rejected"
    assert [r.lead_id for r in report.rejections] == ["37"]
    assert len(sandbox.leads()) == 99
    assert max(r.items for r in sandbox.request_log) == 100


@pytest.mark.parametrize("options", [RunOptions(), RunOptions(full_refresh=True)])
def test_a_failed_lead_read_twice_in_a_run_is_counted_once(
    tmp_path: Path, sandbox: Sandbox, options: RunOptions
) -> None:
    # Modified a second ago, so the next run's window (lookback) reads them again, as does
    # --full-refresh: the failed-lead pass at the end must not read them a second time.
    rows = [lead_row(n, fresh()) for n in range(4)]
    rows[1]["phone"] = "not a phone"
    write_csv(tmp_path / "leads.csv", rows)
    assert sync(tmp_path, sandbox).rejected == 1
    again = sync(tmp_path, sandbox, options=options)
    assert (again.skipped_still_failing, again.failed_refetched) == (1, 0)
    assert again.status == "ok"


def test_a_misspelt_mapping_field_is_named_with_the_closest_one(
    tmp_path: Path, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    write_csv(tmp_path / "leads.csv", [lead_row(n) for n in range(150)])
    text = config_text().replace("{last_name}", "{last_nam}")
    (tmp_path / "naturalead-sync.toml").write_text(text.replace('= "company"', '= "compnay"'))
    config = load_config(tmp_path / "naturalead-sync.toml")
    report = run(sandbox_runtime(config, sandbox)).connections[0]
    assert report.status == "ok", report.error  # the leads still go, without those values
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [  # once, from the first 100 records, not once per chunk
        "connections[csv].mapping.name: field 'last_nam' is in none of the first 100 records; "
        "did you mean 'last_name'? (a misspelt field maps to nothing)",
        "connections[csv].mapping.custom_fields.company: field 'compnay' is in none of the "
        "first 100 records; did you mean 'company'? (a misspelt field maps to nothing)",
    ]
    # An incremental run's few records say too little of the source: no warning.
    rows = [lead_row(n) for n in range(150)]
    rows[7] = lead_row(7, fresh())
    write_csv(tmp_path / "leads.csv", rows)
    caplog.clear()
    assert run(sandbox_runtime(config, sandbox)).connections[0].records_fetched == 1
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def test_csv_with_bad_rows_reports_them_and_syncs_the_rest(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    rows = [lead_row(n) for n in range(8)]
    rows[1]["id"] = ""
    rows[2]["updated_at"] = "last tuesday"
    rows[3]["email"] = "x" * 300 + "@example.com"
    rows[4]["first_name"] = "Zoë Ñúñez 李"
    rows[5]["company"] = "x" * 200_000  # beyond the csv module's default field limit
    write_csv(tmp_path / "leads.csv", rows)
    with (tmp_path / "leads.csv").open("ab") as handle:
        handle.write(b"99,Bad\xff\xfeBytes,X,+14155550099,b@example.com,C,2026-01-01T00:00:00Z,\n")
    report = sync(tmp_path, sandbox, connection='lead_id_prefix = "f_"')
    assert report.status == "rejected"
    found = {(r.lead_id, r.where) for r in report.rejections}
    assert ("leads.csv line 3", "source") in found  # no id: named by its line
    assert ("f_2", "source") in found  # unreadable time: named by its id
    assert ("f_3", "local") in found  # email too long
    assert ("f_99", "source") in found  # bytes that are not UTF-8
    assert ("f_5", "local") in found  # a 200,000-character custom field
    assert {lead["lead_id"] for lead in sandbox.leads()} == {"f_0", "f_4", "f_6", "f_7"}
    assert stored(sandbox, "f_4")["name"] == "Zoë Ñúñez 李 Last4"


def test_an_unreadable_record_is_a_failed_lead_until_it_reads(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    rows = [lead_row(n) for n in range(4)]
    rows[2]["updated_at"] = "last tuesday"  # unreadable: the source reader rejects it
    write_csv(tmp_path / "leads.csv", rows)
    first = sync(tmp_path, sandbox)
    assert (first.status, first.created, first.rejected) == ("rejected", 3, 1)

    def failed() -> list[tuple[str, int, str]]:
        with StateStore(tmp_path / "state.db") as state:
            return [(e.lead_id, e.attempts, e.error or "") for _, e in state.failed()]

    [(lead_id, attempts, error)] = failed()
    assert (lead_id, attempts) == ("2", 1) and "'last tuesday'" in error
    # The next run reads it again (the CSV reader reads every row) and rejects it again.
    again = sync(tmp_path, sandbox)
    assert (again.rejected, [r.lead_id for r in again.rejections]) == (1, ["2"])
    assert [(lead, tries) for lead, tries, _ in failed()] == [("2", 2)]
    rows[2]["updated_at"] = "2026-01-01T00:00:00Z"  # fixed, its time still before the cursor
    write_csv(tmp_path / "leads.csv", rows)
    fixed = sync(tmp_path, sandbox)
    assert (fixed.status, fixed.failed_refetched, fixed.created) == ("ok", 1, 1), fixed.error
    assert failed() == [] and stored(sandbox, "2")["name"] == "First2 Last2"


@pytest.mark.parametrize("bad_first", [False, True])
def test_an_unreadable_row_beside_a_readable_one_of_the_same_lead_leaves_it_synced(
    tmp_path: Path, sandbox: Sandbox, bad_first: bool
) -> None:
    good, bad = lead_row(2), lead_row(2, "last tuesday", email="old2@example.com")
    rows = [lead_row(0), *([bad, good] if bad_first else [good, bad]), lead_row(3)]
    write_csv(tmp_path / "leads.csv", rows)
    first = sync(tmp_path, sandbox)
    assert ([r.lead_id for r in first.rejections], first.created) == (["2"], 3)
    with StateStore(tmp_path / "state.db") as state:  # the readable version is the ledger's
        assert state.entries("csv", ["2"])["2"].status == "accepted"
        assert list(state.failed()) == []
    assert stored(sandbox, "2")["email"] == "lead2@example.com"
    assert sync(tmp_path, sandbox).upsert_requests == 0  # and stays unchanged


class _Unreadable(Connector):
    """Four records modified an hour ago, every one yielded whatever the window; those in
    ``bad`` cannot be read, by any call (as a CRM record whose modification time is garbled).
    No complete id listing: reconciliation asks for the synced ids by ``fetch_by_ids``."""

    name = "unreadable-test"
    bad: ClassVar[set[str]] = set()

    def _records(self, ids: list[str]) -> Iterator[SourceRecord]:
        moment = datetime.now(UTC) - timedelta(hours=1)
        for native in ids:
            if native in self.bad:
                self.context.report_bad_record(f"record {native}", "garbled time", native)
            else:
                yield SourceRecord(native, moment, {"name": f"Lead {native}"})

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        return self._records(["1", "2", "3", "4"])

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        return self._records(ids)

    def to_lead(self, record: SourceRecord) -> Lead:
        return Lead(lead_id=record.id, name=record.fields["name"])


class _UnreadablePlugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(_Unreadable)


def test_an_unreadable_record_is_never_taken_for_a_deleted_one(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    path = tmp_path / "naturalead-sync.toml"
    path.write_text(
        '[destination]\nsandbox = "sandbox.db"\n[state]\npath = "state.db"\n'
        '[[connections]]\nname = "mem"\nconnector = "unreadable-test"\n'
        'reconcile_deletes = true\nlookback = "5m"\n'
    )

    def sync_mem() -> Any:
        runtime = sandbox_runtime(load_config(path), sandbox)
        runtime.pm.register(_UnreadablePlugin())
        return run(runtime).connections[0]

    _Unreadable.bad = set()
    assert sync_mem().created == 4
    _Unreadable.bad = {"3"}  # reconciliation asks for it, then the changes read it
    for _ in range(2):
        report = sync_mem()
        assert (report.deleted, report.delete_requests) == (0, 0), report
        assert [r.lead_id for r in report.rejections] == ["3"]  # reported once a run
        assert {lead["lead_id"] for lead in sandbox.leads()} == {"1", "2", "3", "4"}
        with StateStore(tmp_path / "state.db") as state:
            assert [e.lead_id for _, e in state.failed()] == ["3"]
    _Unreadable.bad = set()
    healed = sync_mem()
    assert (healed.status, healed.updated, healed.upsert_requests) == ("ok", 1, 1)
    with StateStore(tmp_path / "state.db") as state:
        assert list(state.failed()) == []


def test_library_entry_point_syncs_from_a_config_file(tmp_path: Path) -> None:
    from naturalead_sync import RunOptions, sync

    write_csv(tmp_path / "leads.csv", [lead_row(n) for n in range(3)])
    make_config(tmp_path)  # writes naturalead-sync.toml (sandbox.db, state.db beside it)
    plan = sync(tmp_path / "naturalead-sync.toml", options=RunOptions(dry_run=True))
    assert (plan.exit_code, plan.connections[0].created) == (0, 3)
    report = sync(tmp_path / "naturalead-sync.toml", ["csv"])
    assert (report.exit_code, report.connections[0].created) == (0, 3)
    assert len(Sandbox(tmp_path / "sandbox.db").leads()) == 3
