"""The state database: locking, unreadable files, newer versions, checkpoints."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from naturalead_sync import StateError, StateLocked
from naturalead_sync.state import SCHEMA_VERSION, LedgerWrite, StateStore


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


def test_foreign_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StateError, match="not a naturalead-sync state file"):
        StateStore(path)


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
        store.reset("c")
        assert store.get_cursor("c", "changed") is None
