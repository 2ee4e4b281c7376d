"""Sorted keyset indexes over persons: ``(id, id)``, ``(update_time, id)``, ``(add_time, id)``.

A page is two bisections and a scan of at most ``limit + 1`` matching rows (filters other
than the ``update_time`` window on an ``update_time`` sort scan further). Only live persons
are indexed; the store removes a person before changing a sort field and adds it back after.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

from .records import Person

__all__ = ["SORT_FIELDS", "PersonIndex", "SortField"]

SortField = Literal["id", "update_time", "add_time"]
SORT_FIELDS: tuple[SortField, ...] = ("id", "update_time", "add_time")
Key = tuple[int, int]


class PersonIndex:
    """One sorted list of ``(value, id)`` keys per sort field."""

    def __init__(self) -> None:
        self._entries: dict[SortField, list[Key]] = {name: [] for name in SORT_FIELDS}
        self._deferred = False

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Append without sorting inside the block, sort once at its end (seeding)."""
        self._deferred = True
        try:
            yield
        finally:
            self._deferred = False
            for entries in self._entries.values():
                entries.sort()

    def add(self, person: Person) -> None:
        """Index ``person`` under its current values."""
        for name, entries in self._entries.items():
            key = (getattr(person, name), person.id)
            if self._deferred:
                entries.append(key)
            else:
                insort(entries, key)

    def remove(self, person: Person) -> None:
        """Unindex ``person`` (call before changing its sort values)."""
        for name, entries in self._entries.items():
            key = (getattr(person, name), person.id)
            position = bisect_left(entries, key)
            if position < len(entries) and entries[position] == key:
                del entries[position]

    def page(
        self,
        persons: Mapping[int, Person],
        *,
        sort_by: SortField,
        descending: bool,
        limit: int,
        since: float | None = None,
        until: float | None = None,
        start: Key | None = None,
        ids: Collection[int] | None = None,
        matches: Callable[[Person], bool] | None = None,
    ) -> tuple[list[Person], Key | None]:
        """One page of live persons ordered by ``(sort_by, id)``.

        ``since`` (inclusive) and ``until`` (exclusive) bound ``update_time``; ``start`` is
        the ``(value, id)`` key of the page's first row (the cursor); ``ids`` restricts the
        rows to those ids. Returns the rows and the key of the next page's first row, or None
        on the last page.
        """
        if ids is None:
            entries = self._entries[sort_by]
        else:
            chosen = (persons.get(person_id) for person_id in ids)
            entries = sorted(
                (getattr(p, sort_by), p.id) for p in chosen if p is not None and not p.is_deleted
            )
        low, high = 0, len(entries)
        bounded = sort_by == "update_time"
        if bounded and since is not None:
            low = bisect_left(entries, (math.ceil(since), 0))
        if bounded and until is not None:
            high = bisect_left(entries, (math.ceil(until), 0))
        if start is not None and not descending:
            low = max(low, bisect_left(entries, start))
        elif start is not None:
            high = min(high, bisect_right(entries, start))
        positions = range(high - 1, low - 1, -1) if descending else range(low, high)
        found: list[Person] = []
        for position in positions:
            key = entries[position]
            person = persons[key[1]]
            if not bounded and not _in_window(person.update_time, since, until):
                continue
            if matches is not None and not matches(person):
                continue
            if len(found) == limit:
                return found, key
            found.append(person)
        return found, None


def _in_window(value: int, since: float | None, until: float | None) -> bool:
    return (since is None or value >= since) and (until is None or value < until)
