"""The HubSpot connector runs the conformance suite every connector runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from naturalead_sync.conformance import ConnectorConformance
from naturalead_sync.loopback import LoopbackServer, serve
from naturalead_sync_hubspot.emulator import DEFAULT_TOKEN, EmulatorLimits, HubSpotEmulator

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


class HubSpotHarness:
    """A HubSpot emulator whose clock stands still between ``advance`` calls."""

    connector = "hubspot"
    deletes: Literal["feed", "reconcile"] = "feed"

    def __init__(self, emulator: HubSpotEmulator, server: LoopbackServer) -> None:
        self.emulator = emulator
        self.settings: Mapping[str, Any] = {
            "access_token": DEFAULT_TOKEN,
            "base_url": server.url,
            "search_requests_per_second": 50,
            "requests_per_ten_seconds": 1000,
        }

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.emulator.now(), UTC)

    def advance(self, seconds: float) -> None:
        self.emulator.advance(seconds)

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        return self.emulator.seed_contacts(count, same_timestamp=same_time)

    def update(self, native_id: str, marker: str) -> None:
        self.emulator.update("contacts", native_id, {"firstname": marker})

    def delete(self, native_id: str) -> None:
        self.emulator.archive("contacts", native_id)


class TestHubSpotConformance(ConnectorConformance):
    @pytest.fixture
    def source(self) -> Iterator[HubSpotHarness]:
        limits = EmulatorLimits(ten_second_max=1000, search_per_second=100)
        emulator = HubSpotEmulator(clock=lambda: T0, limits=limits)
        with serve(emulator) as server:
            yield HubSpotHarness(emulator, server)
