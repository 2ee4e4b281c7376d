"""The Pipedrive connector runs the conformance suite every connector runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from naturalead_sync.conformance import ConnectorConformance
from naturalead_sync.loopback import LoopbackServer, serve
from naturalead_sync_pipedrive.emulator import (
    DEFAULT_API_TOKEN,
    EmulatorClock,
    EmulatorLimits,
    PipedriveEmulator,
)


class PipedriveHarness:
    """A Pipedrive emulator whose clock stands still between ``advance`` calls. Pipedrive
    lists no deleted persons: deletes come from reconciliation."""

    connector = "pipedrive"
    deletes: Literal["feed", "reconcile"] = "reconcile"

    def __init__(self, emulator: PipedriveEmulator, server: LoopbackServer) -> None:
        self.emulator = emulator
        self.settings: dict[str, Any] = {
            "api_token": DEFAULT_API_TOKEN,
            "base_url": server.url,
            "requests_per_two_seconds": 1000,
        }

    def now(self) -> datetime:
        return self.emulator.now()

    def advance(self, seconds: float) -> None:
        self.emulator.advance(seconds)

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        """Realistic persons, modified now: the seed spreads update times over 90 days, so
        each is touched (the clock stands still, so they share one second either way)."""
        ids = self.emulator.seed_persons(count, same_update_time=same_time)
        for person_id in ids:
            self.emulator.update_person(person_id)
        return [str(person_id) for person_id in ids]

    def update(self, native_id: str, marker: str) -> None:
        self.emulator.update_person(int(native_id), name=marker)

    def delete(self, native_id: str) -> None:
        self.emulator.delete_person(int(native_id))


class TestPipedriveConformance(ConnectorConformance):
    tied_records = 600  # more than a page of 500

    @pytest.fixture
    def source(self) -> Iterator[PipedriveHarness]:
        clock = EmulatorClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), frozen=True)
        emulator = PipedriveEmulator(clock=clock, limits=EmulatorLimits(enabled=False))
        with serve(emulator) as server:
            yield PipedriveHarness(emulator, server)
