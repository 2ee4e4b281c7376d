"""The state database: locking, unreadable files, newer and older versions, checkpoints."""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from naturalead_sync import StateError, StateLocked
from naturalead_sync.state import SCHEMA_VERSION, LedgerWrite, StateStore, encode_moment
from support import database_dump, downgrade_state_to_schema_1


def test_second_run_on_a_locked_state_is_refused(tmp_path: Path) -> None:
    first = StateStore(tmp_path / "state.db")
    first.lock()
    second = StateStore(tmp_path / "state.db")
    with pytest.raises(StateLocked, match="another naturalead-sync run is using"):
        second.lock()
    first.close()
    second.lock()  # released with the first
    second.close()


def test_unreadable_file_is_a_clear_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    before = path.read_bytes()
    with pytest.raises(StateError, match="cannot be read"):
        StateStore(path)
    assert path.read_bytes() == before


def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    before = path.read_bytes()
    with pytest.raises(StateError, match="newer naturalead-sync"):
        StateStore(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    before = path.read_bytes()
    with pytest.raises(StateError, match="not a naturalead-sync state file"):
        StateStore(path)
    assert path.read_bytes() == before  # its journal mode included


def test_checkpoint_commits_ledger_and_cursor_together(tmp_path: Path) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with StateStore(tmp_path / "s.db") as store:
        store.checkpoint(
            "c", [LedgerWrite("p_1", "1", "accepted", "h1", moment)], cursor=("changed", moment)
        )
        store.checkpoint(
            "c", [LedgerWrite("p_2", "2", "rejected", "h2", moment, "bad phone")], run_id=7
        )
        store.checkpoint(
            "c", [LedgerWrite("p_2", "2", "rejected", "h2", moment, "bad phone")], run_id=8
        )
    with StateStore(tmp_path / "s.db") as store:
        assert store.get_cursor("c", "changed") == moment
        entries = store.entries("c", ["p_1", "p_2", "p_3"])
        assert entries["p_1"].accepted_hash == "h1"
        assert (entries["p_2"].status, entries["p_2"].attempts) == ("rejected", 2)
        assert store.failed_before("c", 8) == []
        assert store.failed_before("c", 9) == ["2"]
        # Unreadable at the source (no payload, so no hash): the refused payload's hash stays.
        store.checkpoint("c", [LedgerWrite("p_2", "2", "rejected", error="unreadable")], run_id=9)
        entry = store.entries("c", ["p_2"])["p_2"]
        assert (entry.rejected_hash, entry.error, entry.attempts) == ("h2", "unreadable", 3)
        store.reset("c")
        assert store.get_cursor("c", "changed") is None


def _layout(path: Path) -> tuple[str, list[str], set[str]]:
    """(schema version, the storage types of accepted_modified, the ledger's indexes)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        (version,) = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        kinds = [
            row[0]
            for row in db.execute(
                "SELECT DISTINCT typeof(accepted_modified) FROM ledger ORDER BY 1"
            )
        ]
        indexes = {
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='ledger' "
                "AND sql IS NOT NULL"
            )
        }
    return version, kinds, indexes


def _filled(path: Path) -> None:
    """A state with an accepted, a rejected and a deleted lead, and a cursor."""
    moment = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    with StateStore(path) as store:
        store.checkpoint(
            "c",
            [
                LedgerWrite("p_1", "1", "accepted", "h1", moment),
                LedgerWrite("p_2", "2", "rejected", "h2", moment, "bad phone"),
                LedgerWrite("p_3", "3", "accepted", "h3", moment),
                LedgerWrite("p_3", "3", "deleted"),
            ],
            run_id=4,
            cursor=("changed", moment),
        )


def test_a_schema_1_file_is_migrated_row_for_row(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _filled(path)
    with StateStore(path) as store:
        before = store.entries("c", ["p_1", "p_2", "p_3"])
    downgrade_state_to_schema_1(path)
    assert _layout(path) == ("1", ["null", "text"], {"ledger_status"})

    with StateStore(path) as store:
        assert store.entries("c", ["p_1", "p_2", "p_3"]) == before
        assert before["p_1"].accepted_modified == encode_moment(
            datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
        )
        assert store.failed_before("c", 5) == ["2"]
        assert store.counts("c") == {"accepted": 1, "rejected": 1, "deleted": 1}
        assert store.get_cursor("c", "changed") == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert _layout(path) == (str(SCHEMA_VERSION), ["integer", "null"], {"ledger_rejected"})


def test_a_schema_1_file_the_migration_cannot_read_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _filled(path)
    downgrade_state_to_schema_1(path)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE ledger SET accepted_modified='yesterday' WHERE lead_id='p_1'")
    before = database_dump(path)
    with pytest.raises(StateError, match="cannot be read"):
        StateStore(path)
    assert database_dump(path) == before


def test_a_schema_1_file_is_not_migrated_while_a_run_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _filled(path)
    downgrade_state_to_schema_1(path)
    before = database_dump(path)
    with open(f"{path}.lock", "a+") as held:  # a run of the older version
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(StateLocked, match="another naturalead-sync run is using"):
            StateStore(path)
        assert database_dump(path) == before
    with StateStore(path):  # once that run is over
        pass
    assert _layout(path)[0] == str(SCHEMA_VERSION)


def test_the_failed_leads_are_found_without_reading_the_accepted_ones(tmp_path: Path) -> None:
    """The queries of the failed leads run as long with 5,000 accepted leads as with 50
    (counted in SQLite's virtual machine steps, not in time)."""
    moment = datetime(2026, 1, 2, tzinfo=UTC)

    def steps(accepted: int) -> list[int]:
        with StateStore(tmp_path / f"{accepted}.db") as store:
            writes = [
                LedgerWrite(f"a{i}", f"a{i}", "accepted", "h", moment) for i in range(accepted)
            ]
            writes += [
                LedgerWrite(f"r{i}", f"r{i}", "rejected", "h", moment, "bad") for i in range(3)
            ]
            store.checkpoint("c", writes, run_id=1)
            counted = [0]

            def count() -> int:
                counted[0] += 1
                return 0

            store._db.set_progress_handler(count, 1)
            found = [
                len(store.failed_before("c", 2)),
                len(list(store.failed("c"))),
                len(list(store.failed())),
            ]
            assert found == [3, 3, 3]
            return counted

    assert steps(5000) == steps(50)


def test_opening_the_state_writes_nothing_while_a_run_is_writing(tmp_path: Path) -> None:
    """`state show` and `check` open the state while a run may be mid-checkpoint: opening an
    up-to-date file reads it and takes no write lock (which would wait for the run)."""
    path = tmp_path / "s.db"
    _filled(path)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as run:
        run.execute("BEGIN IMMEDIATE")  # a checkpoint in progress
        run.execute("UPDATE ledger SET attempts=attempts WHERE lead_id='p_1'")
        with StateStore(path) as store:
            assert store.counts("c") == {"accepted": 1, "rejected": 1, "deleted": 1}
        run.execute("COMMIT")
