"""The custom connector (a CSV file) runs the conformance suite every connector runs."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Literal

import pytest

from naturalead_sync.conformance import ConnectorConformance
from support import SourceClock

COLUMNS = ["id", "first_name", "last_name", "phone", "email", "updated_at", "deleted"]


class CsvHarness(SourceClock):
    """A CSV file of leads with a clock; every change rewrites the file atomically (a run that
    is reading it keeps the old one, as with any file replaced under a reader)."""

    connector = "custom"
    deletes: Literal["feed", "reconcile"] = "feed"

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.path = folder / "leads.csv"
        self.settings: dict[str, Any] = {"path": str(self.path), "deleted_column": "deleted"}
        self.rows: dict[str, dict[str, str]] = {}
        self._write()

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        ids = []
        for n, stamp in self.numbered(count, same_time=same_time):
            self.rows[str(n)] = {
                "id": str(n),
                "first_name": f"First{n}",
                "last_name": f"Last{n}",
                "phone": f"+1{(212, 415, 617)[n % 3]}555{n:04d}",
                "email": f"lead{n}@example.com",
                "updated_at": stamp.isoformat(),
                "deleted": "",
            }
            ids.append(str(n))
        self._write()
        return ids

    def update(self, native_id: str, marker: str) -> None:
        self.rows[native_id].update(first_name=marker, updated_at=self.clock.isoformat())
        self._write()

    def delete(self, native_id: str) -> None:
        self.rows[native_id].update(deleted="true", updated_at=self.clock.isoformat())
        self._write()

    def _write(self) -> None:
        scratch = self.path.with_suffix(".tmp")
        with scratch.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows.values())
        os.replace(scratch, self.path)


class TestCustomConformance(ConnectorConformance):
    @pytest.fixture
    def source(self, tmp_path: Path) -> CsvHarness:
        return CsvHarness(tmp_path)
