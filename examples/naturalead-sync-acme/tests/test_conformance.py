"""The acme connector against its emulator: naturalead-sync's conformance suite, then
this connector's own checks. Run with ``pytest``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import pytest

from naturalead_sync import ConnectorContext, SourceRecord
from naturalead_sync.conformance import ConnectorConformance
from naturalead_sync.loopback import LoopbackServer, serve
from naturalead_sync_acme import AcmeConnector, AcmeSettings
from naturalead_sync_acme.emulator import DEFAULT_TOKEN, AcmeEmulator


class AcmeHarness:
    """The conformance suite's handle on the emulator."""

    connector = "acme"
    deletes: Literal["feed", "reconcile"] = "feed"

    def __init__(self, emulator: AcmeEmulator, server: LoopbackServer) -> None:
        self.emulator = emulator
        self.settings: dict[str, Any] = {"base_url": server.url, "api_token": DEFAULT_TOKEN}

    def now(self) -> datetime:
        return self.emulator.now()

    def advance(self, seconds: float) -> None:
        self.emulator.advance(seconds)

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        return self.emulator.create(count, same_time=same_time)

    def update(self, native_id: str, marker: str) -> None:
        self.emulator.update(native_id, first_name=marker)

    def delete(self, native_id: str) -> None:
        self.emulator.delete(native_id)


@pytest.fixture
def harness() -> Iterator[AcmeHarness]:
    emulator = AcmeEmulator()
    with serve(emulator) as server:
        yield AcmeHarness(emulator, server)


class TestConformance(ConnectorConformance):
    @pytest.fixture
    def source(self, harness: AcmeHarness) -> AcmeHarness:
        return harness


def test_to_lead_maps_name_phone_email_and_company() -> None:
    settings = AcmeSettings(base_url="http://unused.invalid", api_token="t")
    connector = AcmeConnector(settings, ConnectorContext(connection="unit"))
    fields = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+442071234567",
        "email": "ada@example.com",
        "company": "Engines",
    }
    record = SourceRecord("7", datetime.fromisoformat("2026-01-05T09:00:00+00:00"), fields)
    lead = connector.to_lead(record)
    connector.close()
    assert (lead.lead_id, lead.name) == ("7", "Ada Lovelace")
    assert lead.custom_fields == {"company": "Engines"}
