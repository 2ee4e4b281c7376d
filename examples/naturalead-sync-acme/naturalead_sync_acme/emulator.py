"""A stand-in for Acme CRM's API, for tests and for trying a config offline.

Serve it with ``naturalead_sync.loopback.serve(AcmeEmulator())``. It answers what the
connector calls, the way the real API should; make it answer the way *your* CRM does
(its paging, its errors, its limits), so the tests prove the connector against it:

- ``GET /api/contacts?modified_since=&modified_before=&limit=&after=``: contacts with
  ``modified_since <= modified_at < modified_before``, sorted by (modified_at, id); ``next``
  is an opaque cursor (the last record's position), null on the last page.
- ``GET /api/contacts?ids=a,b``: those contacts. ``GET /api/deleted?since=&before=``: deletions.
- ``GET /api/me``: the token's owner. Without ``Authorization: Bearer <token>``: 401.

Its clock stands still until :meth:`advance`, so tests decide what "now" is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from naturalead_sync.loopback import HTTPAnswer

__all__ = ["DEFAULT_TOKEN", "AcmeEmulator"]

DEFAULT_TOKEN = "acme-test-token"


def _answer(status: int, body: Any) -> HTTPAnswer:
    return HTTPAnswer(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


class AcmeEmulator:
    """Contacts in memory behind Acme CRM's (emulated) API."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self._now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._contacts: dict[str, dict[str, Any]] = {}
        self._deleted: dict[str, datetime] = {}
        self._next_id = 1
        self._lock = threading.Lock()

    # -- what tests do ----------------------------------------------------------------------------

    def now(self) -> datetime:
        """The emulator's clock."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self._now += timedelta(seconds=seconds)

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        """Add ``count`` contacts modified just before now (all at now with ``same_time``)."""
        with self._lock:
            ids = []
            for offset in range(count, 0, -1):
                number, self._next_id = self._next_id, self._next_id + 1
                moment = self._now if same_time else self._now - timedelta(milliseconds=offset)
                self._contacts[str(number)] = {
                    "id": str(number),
                    "first_name": f"First{number}",
                    "last_name": f"Last{number}",
                    "phone": f"+1{(212, 415, 617)[number % 3]}555{number % 10_000:04d}",
                    "email": f"contact{number}@example.com",
                    "company": f"Company {number % 7}",
                    "modified_at": moment.isoformat(),
                }
                ids.append(str(number))
            return ids

    def update(self, contact_id: str, **fields: Any) -> None:
        """Change a contact; its modified_at becomes now."""
        with self._lock:
            self._contacts[contact_id].update(fields, modified_at=self._now.isoformat())

    def delete(self, contact_id: str) -> None:
        """Delete a contact; it shows in ``/api/deleted`` from now on."""
        with self._lock:
            del self._contacts[contact_id]
            self._deleted[contact_id] = self._now

    # -- the API ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """Answer one request (served by ``naturalead_sync.loopback.serve``)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        if lowered.get("authorization") != f"Bearer {self.token}":
            return _answer(401, {"error": "invalid token"})
        url = urlsplit(path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        with self._lock:
            if method == "GET" and url.path == "/api/me":
                return _answer(200, {"name": "Emulated user"})
            if method == "GET" and url.path == "/api/contacts":
                return _answer(200, self._contacts_page(query))
            if method == "GET" and url.path == "/api/deleted":
                return _answer(200, {"data": self._deletions(query)})
        return _answer(404, {"error": "not found"})

    def _contacts_page(self, query: dict[str, str]) -> dict[str, Any]:
        if "ids" in query:
            wanted = query["ids"].split(",")
            return {
                "data": [self._contacts[i] for i in wanted if i in self._contacts],
                "next": None,
            }
        since = datetime.fromisoformat(query.get("modified_since") or "0001-01-01T00:00:00+00:00")
        before = datetime.fromisoformat(query["modified_before"])
        limit = int(query.get("limit") or 100)

        def key(contact: dict[str, Any]) -> tuple[datetime, int]:
            return datetime.fromisoformat(contact["modified_at"]), int(contact["id"])

        rows = sorted((c for c in self._contacts.values() if since <= key(c)[0] < before), key=key)
        if after := query.get("after"):
            moment, _, number = after.partition("|")
            position = (datetime.fromisoformat(moment), int(number))
            rows = [row for row in rows if key(row) > position]
        page = rows[:limit]
        last = page[-1] if len(rows) > limit else None
        return {"data": page, "next": f"{last['modified_at']}|{last['id']}" if last else None}

    def _deletions(self, query: dict[str, str]) -> list[dict[str, str]]:
        since = datetime.fromisoformat(query.get("since") or "0001-01-01T00:00:00+00:00")
        before = datetime.fromisoformat(query["before"])
        return [
            {"id": contact_id, "deleted_at": moment.isoformat()}
            for contact_id, moment in self._deleted.items()
            if since <= moment < before
        ]
