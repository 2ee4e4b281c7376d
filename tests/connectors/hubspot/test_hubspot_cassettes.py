"""vcrpy cassettes of the connector's HubSpot conversations: fast replays that pin the wire
format (the real SDK, no server), recorded from the emulator with the token filtered out.

Re-record with ``NATURALEAD_RECORD_CASSETTES=1`` (see the connector's README).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import vcr

from naturalead_sync import ConnectorContext, Window
from naturalead_sync.http import RetryPolicy
from naturalead_sync_hubspot import HubSpotConnector, HubSpotSettings
from naturalead_sync_hubspot.emulator import DEFAULT_TOKEN, HubSpotEmulator
from support import cassette

CASSETTES = Path(__file__).parent / "cassettes"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = Window(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
RECORDER = vcr.VCR(
    match_on=["method", "path", "query", "body"],
    filter_headers=["authorization"],
    decode_compressed_response=True,
)


def connector(base_url: str, **settings: Any) -> HubSpotConnector:
    context = ConnectorContext(connection="cassette", retry=RetryPolicy(max_attempts=1))
    config = HubSpotSettings(access_token=DEFAULT_TOKEN, base_url=base_url, **settings)
    return HubSpotConnector(config, context)


def portal() -> HubSpotEmulator:
    """The portal every cassette is recorded from: fixed data, a clock that stands still."""
    emulator = HubSpotEmulator(clock=lambda: T0.timestamp(), seed=7)
    ids = emulator.seed_contacts(230)
    emulator.archive("contacts", ids[0])
    emulator.merge("contacts", ids[1], ids[2])
    emulator.advance(1)
    return emulator


def recorded(name: str) -> AbstractContextManager[str]:
    """The base URL to use inside the cassette ``name`` (see ``support.cassette``)."""
    return cassette(RECORDER, CASSETTES / f"{name}.yaml", portal)


def test_changes_replay_from_the_cassette() -> None:
    with recorded("changes") as url:
        hub = connector(url)
        records = list(hub.fetch_changed(WINDOW))
        hub.close()
    assert len(records) == 228  # 230 seeded, less 1 archived, less 2 merged into 1 new one
    assert len({r.id for r in records}) == len(records)
    first = records[0]
    assert first.modified_at.utcoffset() == timedelta(0)
    assert {"firstname", "lastname", "email", "phone", "company"} <= set(first.fields)
    lead = hub.to_lead(first)
    assert lead.lead_id == first.id and lead.name and lead.email


def test_deletes_and_batch_reads_replay_from_the_cassette() -> None:
    with recorded("deletes") as url:
        hub = connector(url)
        deleted = list(hub.fetch_deleted(Window(None, WINDOW.end)))
        again = list(hub.fetch_by_ids([*deleted[:1], "999999999"]))
        hub.close()
    assert len(deleted) == 3  # the archived contact and the two merged into a new one
    assert again == []  # neither an archived id nor an unknown one reads back


def test_cassettes_hold_no_token() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert [f.name for f in files] == ["changes.yaml", "deletes.yaml"]
    for file in files:
        text = file.read_text()
        assert DEFAULT_TOKEN not in text and "authorization" not in text.lower()
