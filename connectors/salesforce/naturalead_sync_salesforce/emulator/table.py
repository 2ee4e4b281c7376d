"""One sObject's records, indexed by (SystemModstamp, Id) for bisection."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any

from .schema import Record, SObjectSchema

__all__ = ["Table"]

_KEY = itemgetter(0, 1)
_Entry = tuple[datetime, str, Record]


class Table:
    """One sObject's records by id, plus the (SystemModstamp, Id) index."""

    def __init__(self, schema: SObjectSchema) -> None:
        self.schema = schema
        self.by_id: dict[str, Record] = {}
        self.index: list[_Entry] = []

    def put(self, record: Record) -> None:
        old = self.by_id.get(record["Id"])
        if old is not None:
            self._unindex(old)
        self.by_id[record["Id"]] = record
        insort(self.index, (record["SystemModstamp"], record["Id"], record), key=_KEY)

    def load(self, records: Iterable[Record]) -> None:
        """Add new records in one go (one sort instead of one insertion each)."""
        for record in records:
            self.by_id[record["Id"]] = record
            self.index.append((record["SystemModstamp"], record["Id"], record))
        self.index.sort(key=_KEY)

    def drop(self, record_id: str) -> None:
        self._unindex(self.by_id.pop(record_id))

    def _unindex(self, record: Record) -> None:
        del self.index[bisect_left(self.index, (record["SystemModstamp"], record["Id"]), key=_KEY)]

    def between(self, lo: Any, hi: Any, *, include_deleted: bool) -> list[Record]:
        """Records with ``lo <= (SystemModstamp, Id) < hi`` (None: unbounded), in index order."""
        start = 0 if lo is None else bisect_left(self.index, lo, key=_KEY)
        end = len(self.index) if hi is None else bisect_left(self.index, hi, key=_KEY)
        if include_deleted:
            return [entry[2] for entry in self.index[start:end]]
        return [entry[2] for entry in self.index[start:end] if not entry[2].get("IsDeleted")]
