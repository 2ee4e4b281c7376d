"""SQLite persistence of the sandbox: API keys (as SHA-256 hashes) and leads.

The database file outlives the process, so ``naturalead-sync sandbox leads`` can show what a
run left behind. It uses WAL mode so a reader in another process does not block the server.
The store is not thread-safe by itself: :class:`~naturalead_sync.sandbox.Sandbox` serialises
every call under one lock.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["LEAD_FIELDS", "Store", "hash_key"]

# Lead keys the API payload can set, in the order a stored lead shows them.
LEAD_FIELDS = ("name", "phone", "email", "customFields", "tags")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    scopes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id TEXT NOT NULL UNIQUE,
    name TEXT,
    phone TEXT,
    email TEXT,
    custom_fields TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL DEFAULT 'api',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS leads_phone ON leads (phone) WHERE phone IS NOT NULL
    AND phone != '';
"""

_COLUMNS = {"customFields": "custom_fields"}


def hash_key(key: str) -> str:
    """The SHA-256 hex digest under which an API key is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lead(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "lead_id": row["lead_id"],
        "name": row["name"],
        "phone": row["phone"],
        "email": row["email"],
        "customFields": json.loads(row["custom_fields"]),
        "tags": json.loads(row["tags"]),
        "source": row["source"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


class Store:
    """Keys and leads in one SQLite database (``":memory:"`` for a throwaway one)."""

    def __init__(self, path: str | Path, default_key: str, default_scopes: Iterable[str]) -> None:
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        if not memory:
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO api_keys (key_hash, scopes) VALUES (?, ?)",
            (hash_key(default_key), json.dumps(sorted(set(default_scopes)))),
        )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed on success, rolled back on any exception."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- keys -----------------------------------------------------------------------------

    def add_key(self, key: str, scopes: Iterable[str]) -> None:
        """Store ``key`` (hashed) with ``scopes``, replacing the scopes of a known key."""
        self._db.execute(
            "INSERT OR REPLACE INTO api_keys (key_hash, scopes) VALUES (?, ?)",
            (hash_key(key), json.dumps(sorted(set(scopes)))),
        )

    def scopes(self, key: str) -> frozenset[str] | None:
        """The scopes of ``key``, or None when the key is unknown."""
        row = self._db.execute(
            "SELECT scopes FROM api_keys WHERE key_hash = ?", (hash_key(key),)
        ).fetchone()
        return None if row is None else frozenset(json.loads(row["scopes"]))

    # -- leads ----------------------------------------------------------------------------

    def lead(self, lead_id: str) -> dict[str, Any] | None:
        """The stored lead with ``lead_id``, or None."""
        row = self._db.execute("SELECT * FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
        return None if row is None else _lead(row)

    def phone_owner(self, phone: str) -> str | None:
        """The ``lead_id`` of the lead holding ``phone``, or None."""
        # The partial index serves only queries that repeat its condition.
        row = self._db.execute(
            "SELECT lead_id FROM leads WHERE phone = ? AND phone IS NOT NULL AND phone != ''",
            (phone,),
        ).fetchone()
        return None if row is None else str(row["lead_id"])

    def leads(
        self, *, order: str = "lead_id", skip: int = 0, limit: int = -1
    ) -> list[dict[str, Any]]:
        """Stored leads ordered by ``lead_id`` or ``id``, ``skip``/``limit`` applied."""
        column = "id" if order == "id" else "lead_id"
        rows = self._db.execute(
            f"SELECT * FROM leads ORDER BY {column} LIMIT ? OFFSET ?", (limit, skip)
        ).fetchall()
        return [_lead(row) for row in rows]

    def upsert(self, lead_id: str, values: dict[str, Any], source: str | None) -> bool:
        """Create or update one lead; only the keys in ``values`` change. True when created.

        ``source`` is written on create (``"api"`` when None) and on update only when given.
        """
        now = _now()
        encoded = {
            _COLUMNS.get(key, key): json.dumps(value) if key in ("customFields", "tags") else value
            for key, value in values.items()
            if key in LEAD_FIELDS
        }
        if source is not None:
            encoded["source"] = source
        exists = self._db.execute("SELECT 1 FROM leads WHERE lead_id = ?", (lead_id,)).fetchone()
        if exists is None:
            encoded.setdefault("source", "api")
            columns = ["lead_id", "created_at", "updated_at", *encoded]
            self._db.execute(
                f"INSERT INTO leads ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                (lead_id, now, now, *encoded.values()),
            )
            return True
        encoded["updated_at"] = now
        self._db.execute(
            f"UPDATE leads SET {', '.join(f'{column} = ?' for column in encoded)} "
            "WHERE lead_id = ?",
            (*encoded.values(), lead_id),
        )
        return False

    def delete(self, lead_id: str) -> bool:
        """Delete the lead with ``lead_id``; True when there was one."""
        cursor = self._db.execute("DELETE FROM leads WHERE lead_id = ?", (lead_id,))
        return cursor.rowcount > 0
