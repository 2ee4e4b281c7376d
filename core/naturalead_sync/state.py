"""The state store: cursors, the per-lead ledger, failed leads and run history, in SQLite.

One file, WAL journal, one transaction per checkpoint. A run holds an exclusive lock on
``<path>.lock`` for its whole life, so two runs never share a state database; the lock dies
with the process, so a killed run never leaves a stale lock behind.

The ledger has one row per lead the connection ever sent or rejected:

- ``accepted_hash`` / ``accepted_modified``: the payload hash and source modification time of
  the last version Naturalead accepted (used to skip unchanged payloads and stale versions);
- ``status``: ``accepted``, ``rejected`` or ``deleted``;
- ``rejected_hash`` / ``error`` / ``attempts`` / ``rejected_run``: the last rejected payload,
  why, how many times in a row, and in which run.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, NamedTuple

from .errors import StateError, StateLocked

__all__ = ["SCHEMA_VERSION", "LedgerEntry", "LedgerWrite", "StateStore"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (
    connection TEXT NOT NULL,
    stream TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection, stream)
);
CREATE TABLE IF NOT EXISTS ledger (
    connection TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    native_id TEXT NOT NULL,
    status TEXT NOT NULL,
    accepted_hash TEXT,
    accepted_modified TEXT,
    rejected_hash TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    rejected_run INTEGER,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection, lead_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_status ON ledger (connection, status);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    report TEXT
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def encode_time(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so that string order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def decode_time(text: str | None) -> datetime | None:
    """The inverse of :func:`encode_time`."""
    return None if text is None else datetime.fromisoformat(text)


class LedgerEntry(NamedTuple):
    """What the ledger knows of one lead (a named tuple: one is read per lead and run)."""

    lead_id: str
    native_id: str
    status: str
    accepted_hash: str | None
    accepted_modified: datetime | None
    rejected_hash: str | None
    error: str | None
    attempts: int
    rejected_run: int | None


class LedgerWrite(NamedTuple):
    """One change to the ledger, committed with the checkpoint that follows it (a named
    tuple: one is made per lead sent)."""

    lead_id: str
    native_id: str
    status: str  # "accepted", "rejected" or "deleted"
    payload_hash: str | None = None
    modified_at: datetime | None = None
    error: str | None = None


class StateStore:
    """SQLite-backed state of every connection in one config."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_file: IO[str] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state database {self.path} cannot be read ({exc}); it is not a "
                "naturalead-sync state file or it is damaged. Move it away to start afresh "
                "(every lead will be re-sent once, harmlessly)"
            ) from None

    def _check_version(self) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state database {self.path} was written by a newer naturalead-sync "
                    f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade "
                    "naturalead-sync. Nothing was changed"
                )
        elif tables:
            raise StateError(
                f"{self.path} is an SQLite database but not a naturalead-sync state file; "
                "point state.path elsewhere. Nothing was changed"
            )
        self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    # -- locking and transactions ----------------------------------------------------------

    def lock(self) -> None:
        """Take the run lock, or raise :class:`StateLocked` if another run holds it."""
        if self._lock_file is not None:
            return
        handle = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StateLocked(
                f"another naturalead-sync run is using {self.path}; wait for it to finish "
                "(two runs at once could send the same leads twice)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database and release the run lock."""
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def transaction(self) -> _Transaction:
        """A context manager: BEGIN IMMEDIATE … COMMIT (or ROLLBACK on error)."""
        return _Transaction(self._db)

    # -- cursors ----------------------------------------------------------------------------

    def get_cursor(self, connection: str, stream: str) -> datetime | None:
        """The cursor of ``stream`` (``changed`` or ``deleted``), or None before a first run."""
        row = self._db.execute(
            "SELECT value FROM cursors WHERE connection=? AND stream=?", (connection, stream)
        ).fetchone()
        return decode_time(row[0]) if row else None

    def _set_cursor(self, connection: str, stream: str, value: datetime | None) -> None:
        if value is None:
            self._db.execute(
                "DELETE FROM cursors WHERE connection=? AND stream=?", (connection, stream)
            )
            return
        self._db.execute(
            "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (connection, stream) "
            "DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
            (connection, stream, encode_time(value), _now()),
        )

    # -- ledger -------------------------------------------------------------------------------

    def entries(self, connection: str, lead_ids: Sequence[str]) -> dict[str, LedgerEntry]:
        """Ledger rows for ``lead_ids`` (absent ids are left out)."""
        found: dict[str, LedgerEntry] = {}
        for start in range(0, len(lead_ids), 500):
            chunk = lead_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                "SELECT lead_id, native_id, status, accepted_hash, accepted_modified, "
                "rejected_hash, error, attempts, rejected_run FROM ledger "
                f"WHERE connection=? AND lead_id IN ({marks})",
                (connection, *chunk),
            ):
                found[row[0]] = _entry(row)
        return found

    def checkpoint(
        self,
        connection: str,
        writes: Sequence[LedgerWrite],
        *,
        run_id: int | None = None,
        cursor: tuple[str, datetime | None] | None = None,
    ) -> None:
        """Commit ledger changes and (optionally) move a cursor, in one transaction.

        A cursor of ``(stream, None)`` forgets that stream's cursor.
        """
        now = _now()
        with self.transaction():
            # In order, one statement per run of writes with the same status.
            for status, run in itertools.groupby(writes, attrgetter("status")):
                self._write(connection, status, run, run_id, now)
            if cursor is not None:
                self._set_cursor(connection, *cursor)

    def _write(
        self,
        connection: str,
        status: str,
        writes: Iterable[LedgerWrite],
        run_id: int | None,
        now: str,
    ) -> None:
        """Apply consecutive ``writes`` that share ``status``, in order."""
        if status == "accepted":
            self._db.executemany(
                "INSERT INTO ledger (connection, lead_id, native_id, status, accepted_hash, "
                "accepted_modified, attempts, updated_at) VALUES (?, ?, ?, 'accepted', ?, ?, 0, ?) "
                "ON CONFLICT (connection, lead_id) DO UPDATE SET status='accepted', "
                "native_id=excluded.native_id, accepted_hash=excluded.accepted_hash, "
                "accepted_modified=excluded.accepted_modified, rejected_hash=NULL, error=NULL, "
                "attempts=0, rejected_run=NULL, updated_at=excluded.updated_at",
                [
                    (connection, w.lead_id, w.native_id, w.payload_hash, _modified(w), now)
                    for w in writes
                ],
            )
        elif status == "rejected":
            self._db.executemany(
                "INSERT INTO ledger (connection, lead_id, native_id, status, rejected_hash, "
                "error, attempts, rejected_run, updated_at) "
                "VALUES (?, ?, ?, 'rejected', ?, ?, 1, ?, ?) "
                "ON CONFLICT (connection, lead_id) DO UPDATE SET status='rejected', "
                "rejected_hash=excluded.rejected_hash, error=excluded.error, "
                "attempts=ledger.attempts + 1, rejected_run=excluded.rejected_run, "
                "updated_at=excluded.updated_at",
                [
                    (connection, w.lead_id, w.native_id, w.payload_hash, w.error, run_id, now)
                    for w in writes
                ],
            )
        else:
            self._db.executemany(
                "INSERT INTO ledger (connection, lead_id, native_id, status, updated_at) "
                "VALUES (?, ?, ?, 'deleted', ?) ON CONFLICT (connection, lead_id) DO UPDATE SET "
                "status='deleted', accepted_hash=NULL, rejected_hash=NULL, error=NULL, "
                "attempts=0, rejected_run=NULL, updated_at=excluded.updated_at",
                [(connection, w.lead_id, w.native_id, now) for w in writes],
            )

    def failed(self, connection: str | None = None) -> Iterator[tuple[str, LedgerEntry]]:
        """Every rejected lead, as (connection, entry), oldest first."""
        query = (
            "SELECT connection, lead_id, native_id, status, accepted_hash, accepted_modified, "
            "rejected_hash, error, attempts, rejected_run FROM ledger WHERE status='rejected'"
        )
        params: tuple[str, ...] = ()
        if connection is not None:
            query += " AND connection=?"
            params = (connection,)
        for row in self._db.execute(query + " ORDER BY updated_at", params).fetchall():
            yield row[0], _entry(row[1:])

    def failed_before(self, connection: str, run_id: int) -> list[str]:
        """Native ids of leads rejected in runs before ``run_id`` (to fetch them again)."""
        return [
            row[0]
            for row in self._db.execute(
                "SELECT native_id FROM ledger WHERE connection=? AND status='rejected' "
                "AND (rejected_run IS NULL OR rejected_run < ?)",
                (connection, run_id),
            )
        ]

    def recent_sends(self) -> tuple[list[tuple[float, int]], float]:
        """The requests the last run sent inside its final pacing window, as (seconds ago,
        items), and how many seconds ago that was (wall clock); empty when unknown."""
        row = self._db.execute("SELECT value FROM meta WHERE key='recent_sends'").fetchone()
        if row is None:
            return [], 0.0
        try:
            saved = json.loads(row[0])
            sends = [(float(age), int(items)) for age, items in saved["sent"]]
            return sends, max(time.time() - float(saved["at"]), 0.0)
        except (ValueError, KeyError, TypeError):
            return [], 0.0

    def save_recent_sends(self, sends: list[tuple[float, int]]) -> None:
        """Keep the last pacing window's requests for the next run (see :meth:`recent_sends`)."""
        value = json.dumps({"at": time.time(), "sent": sends})
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('recent_sends', ?)", (value,))

    def live_native_ids(self, connection: str) -> Iterator[tuple[str, str]]:
        """(lead_id, native_id) of every lead not deleted, for reconciliation."""
        yield from self._db.execute(
            "SELECT lead_id, native_id FROM ledger WHERE connection=? AND status!='deleted'",
            (connection,),
        )

    def count(self, connection: str, status: str) -> int:
        """How many ledger rows of ``connection`` have ``status``."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM ledger WHERE connection=? AND status=?", (connection, status)
        ).fetchone()
        return int(row[0])

    # -- runs ---------------------------------------------------------------------------------

    def start_run(self, connection: str) -> int:
        """Record the start of a run; returns its id."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (connection, started_at, status) VALUES (?, ?, 'running')",
                (connection, _now()),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, report: dict[str, Any]) -> None:
        """Record the end of a run with its report."""
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET finished_at=?, status=?, report=? WHERE id=?",
                (_now(), status, json.dumps(report, default=str), run_id),
            )

    def runs(self, connection: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        query = "SELECT id, connection, started_at, finished_at, status FROM runs"
        params: tuple[Any, ...] = ()
        if connection is not None:
            query += " WHERE connection=?"
            params = (connection,)
        rows = self._db.execute(query + " ORDER BY id DESC LIMIT ?", (*params, limit))
        keys = ("id", "connection", "started_at", "finished_at", "status")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def connections(self) -> list[str]:
        """Every connection the state knows of."""
        rows = self._db.execute(
            "SELECT connection FROM cursors UNION SELECT connection FROM ledger "
            "UNION SELECT connection FROM runs ORDER BY 1"
        )
        return [row[0] for row in rows]

    def reset(self, connection: str) -> None:
        """Forget everything about ``connection``: the next run is a first run."""
        with self.transaction():
            for table in ("cursors", "ledger", "runs"):
                self._db.execute(f"DELETE FROM {table} WHERE connection=?", (connection,))


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    """A ledger entry from its row (columns in :class:`LedgerEntry`'s order)."""
    lead_id, native_id, status, accepted_hash, modified, rejected_hash, error, attempts, run = row
    return LedgerEntry(
        lead_id,
        native_id,
        status,
        accepted_hash,
        decode_time(modified),
        rejected_hash,
        error,
        attempts,
        run,
    )


def _modified(write: LedgerWrite) -> str | None:
    """The encoded modification time of ``write``, if it has one."""
    return encode_time(write.modified_at) if write.modified_at else None


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
