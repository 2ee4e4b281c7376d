"""The state store: cursors, the per-lead ledger, failed leads and run history, in SQLite.

One file, WAL journal, one transaction per checkpoint. A run holds an exclusive lock on
``<path>.lock`` for its whole life, so two runs never share a state database; the lock dies
with the process, so a killed run never leaves a stale lock behind.

The ledger has one row per lead the connection ever sent or rejected:

- ``accepted_hash`` / ``accepted_modified``: the payload hash and source modification time
  (microseconds since the Unix epoch) of the last version Naturalead accepted (used to skip
  unchanged payloads and stale versions);
- ``status``: ``accepted``, ``rejected`` or ``deleted``;
- ``rejected_hash`` / ``error`` / ``attempts`` / ``rejected_run``: the last rejected payload,
  why, how many times in a row, and in which run.

A state file written by an older naturalead-sync is migrated when it is opened, in one
transaction; one written by a newer one is refused and left untouched.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, NamedTuple

from .errors import StateError, StateLocked

__all__ = ["SCHEMA_VERSION", "LedgerEntry", "LedgerWrite", "StateStore", "encode_moment"]

#: 1: the first layout. 2: ``accepted_modified`` in microseconds instead of ISO text (a
#: fifth of the cost to encode), and an index of the rejected leads only instead of one of every
#: status (written on every accepted lead, read only for the failed ones).
SCHEMA_VERSION = 2
log = logging.getLogger(__name__)
_LEDGER = """CREATE TABLE {name} (
    connection TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    native_id TEXT NOT NULL,
    status TEXT NOT NULL,
    accepted_hash TEXT,
    accepted_modified INTEGER,
    rejected_hash TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    rejected_run INTEGER,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection, lead_id)
) WITHOUT ROWID"""
#: The failed leads' queries name it (``INDEXED BY``): without statistics, SQLite would rather
#: scan the connection's whole ledger by its primary key.
_LEDGER_INDEX = (
    "CREATE INDEX ledger_rejected ON ledger (connection, rejected_run) WHERE status='rejected'"
)
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}')",
    """CREATE TABLE cursors (
    connection TEXT NOT NULL,
    stream TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection, stream)
)""",
    _LEDGER.format(name="ledger"),
    _LEDGER_INDEX,
    """CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    report TEXT
)""",
)
#: From version 1: the ledger copied into the new layout, its ISO times turned into
#: microseconds (by ``_iso_to_moment``, registered on the connection).
_FROM_1 = (
    _LEDGER.format(name="ledger_v2"),
    "INSERT INTO ledger_v2 SELECT connection, lead_id, native_id, status, accepted_hash, "
    "iso_to_moment(accepted_modified), rejected_hash, error, attempts, rejected_run, "
    "updated_at FROM ledger",
    "DROP TABLE ledger",  # and its index of every status
    "ALTER TABLE ledger_v2 RENAME TO ledger",
    _LEDGER_INDEX,
    "INSERT OR REPLACE INTO meta VALUES ('schema_version', '2')",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def encode_time(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so that string order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def decode_time(text: str | None) -> datetime | None:
    """The inverse of :func:`encode_time`."""
    return None if text is None else datetime.fromisoformat(text)


def encode_moment(moment: datetime) -> int:
    """A timezone-aware time as whole microseconds since the Unix epoch: exact, ordered like
    time, and cheap (how the ledger stores modification times)."""
    return (moment - _EPOCH) // _MICROSECOND


def _iso_to_moment(text: str | None) -> int | None:
    return None if text is None else encode_moment(datetime.fromisoformat(text))


class LedgerEntry(NamedTuple):
    """What the ledger knows of one lead (a named tuple: one is read per lead and run)."""

    lead_id: str
    native_id: str
    status: str
    accepted_hash: str | None
    accepted_modified: int | None  # see encode_moment
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
            try:
                self._check_version()
            except BaseException:
                self.close()
                raise
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"state database {self.path} cannot be read ({exc}); it is not a "
                "naturalead-sync state file or it is damaged. Move it away to start afresh "
                "(every lead will be re-sent once, harmlessly)"
            ) from None

    def _check_version(self) -> None:
        """Create the schema in a new file, migrate an older one, refuse a newer one (before
        anything is written to it, the journal mode included)."""
        version = self._version()
        self._db.execute("PRAGMA synchronous=NORMAL")  # a setting of the connection
        if version == SCHEMA_VERSION:
            return  # nothing to write: a reader never waits for a run's checkpoint here
        if version is not None:
            # A run of the older version may still be writing the old layout: migrate only
            # while holding the run lock.
            self.lock()
        self._db.execute("PRAGMA journal_mode=WAL")  # a setting of the file, kept
        with self.transaction():  # read again under the write lock: one process migrates
            version = self._version()
            if version == SCHEMA_VERSION:
                return
            if version is None:
                statements = _SCHEMA
            else:
                log.info("migrating state database %s to schema %d", self.path, SCHEMA_VERSION)
                self._db.create_function("iso_to_moment", 1, _iso_to_moment, deterministic=True)
                statements = _FROM_1
            for statement in statements:
                self._db.execute(statement)

    def _version(self) -> int | None:
        """The schema version of the file (None when it is empty)."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            if tables:
                raise StateError(
                    f"{self.path} is an SQLite database but not a naturalead-sync state file; "
                    "point state.path elsewhere. Nothing was changed"
                )
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        # Version 1 created its tables, then recorded its version: a file killed in between
        # has version 1's tables.
        version = int(row[0]) if row else 1
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} was written by a newer naturalead-sync "
                f"(schema {version}, this one knows {SCHEMA_VERSION}); upgrade "
                "naturalead-sync. Nothing was changed"
            )
        return version

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
                found[row[0]] = LedgerEntry._make(row)
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
                # (an unreadable record has no payload: the hash of one refused before stays)
                "rejected_hash=COALESCE(excluded.rejected_hash, ledger.rejected_hash), "
                "error=excluded.error, "
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
            "rejected_hash, error, attempts, rejected_run FROM ledger INDEXED BY ledger_rejected "
            "WHERE status='rejected'"
        )
        params: tuple[str, ...] = ()
        if connection is not None:
            query += " AND connection=?"
            params = (connection,)
        for row in self._db.execute(query + " ORDER BY updated_at", params).fetchall():
            yield row[0], LedgerEntry._make(row[1:])

    def failed_before(self, connection: str, run_id: int) -> list[str]:
        """Native ids of leads rejected in runs before ``run_id`` (to fetch them again)."""
        return [
            row[0]
            for row in self._db.execute(
                "SELECT native_id FROM ledger INDEXED BY ledger_rejected "
                "WHERE connection=? AND status='rejected' "
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

    def counts(self, connection: str) -> dict[str, int]:
        """How many ledger rows of ``connection`` have each status (one pass over them)."""
        counted = dict.fromkeys(("accepted", "rejected", "deleted"), 0)
        counted.update(
            self._db.execute(
                "SELECT status, COUNT(*) FROM ledger WHERE connection=? GROUP BY status",
                (connection,),
            )
        )
        return counted

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


def _modified(write: LedgerWrite) -> int | None:
    """The encoded modification time of ``write``, if it has one."""
    return encode_moment(write.modified_at) if write.modified_at else None


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
