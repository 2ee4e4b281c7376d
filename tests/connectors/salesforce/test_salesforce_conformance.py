"""The Salesforce connector runs the conformance suite every connector runs, through
simple-salesforce against the emulator (a test subclass routes its session there)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from naturalead_sync.conformance import ConnectorConformance
from naturalead_sync_salesforce.emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    Clock,
    LoopbackServer,
    SalesforceEmulator,
    serve,
)
from naturalead_sync_salesforce.testing import emulated_connector
from support import Register


class SalesforceHarness:
    """A Salesforce emulator whose clock stands still between ``advance`` calls."""

    connector = "salesforce-emulated"
    registered_name = "salesforce"
    deletes: Literal["feed", "reconcile"] = "feed"

    def __init__(self, emulator: SalesforceEmulator, server: LoopbackServer) -> None:
        self.emulator = emulator
        self.plugins = [Register(emulated_connector(server.url))]
        self.settings: dict[str, Any] = {
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "security_token": DEFAULT_SECURITY_TOKEN,
            "batch_size": 200,
        }

    def now(self) -> datetime:
        return self.emulator.now()

    def advance(self, seconds: float) -> None:
        self.emulator.advance(seconds)

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        return self.emulator.seed_leads(count, same_stamp=same_time)

    def update(self, native_id: str, marker: str) -> None:
        self.emulator.update(native_id, FirstName=marker)

    def delete(self, native_id: str) -> None:
        self.emulator.delete(native_id)


class TestSalesforceConformance(ConnectorConformance):
    @pytest.fixture
    def source(self) -> Iterator[SalesforceHarness]:
        emulator = SalesforceEmulator(Clock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), frozen=True))
        with serve(emulator) as server:
            yield SalesforceHarness(emulator, server)
