"""vcrpy cassettes of the connector's Pipedrive conversations: fast replays that pin the wire
format (httpx, no server), recorded from the emulator with the token filtered out.

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
from naturalead_sync_pipedrive import PipedriveConnector, PipedriveSettings
from naturalead_sync_pipedrive.emulator import (
    DEFAULT_API_TOKEN,
    EmulatorClock,
    EmulatorLimits,
    PipedriveEmulator,
)
from support import cassette

CASSETTES = Path(__file__).parent / "cassettes"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = Window(None, T0 + timedelta(seconds=1))
RECORDER = vcr.VCR(
    match_on=["method", "path", "query", "body"],
    filter_headers=["x-api-token", "authorization"],
    filter_query_parameters=["api_token"],
    decode_compressed_response=True,
)


def connector(base_url: str, **settings: Any) -> PipedriveConnector:
    context = ConnectorContext(connection="cassette", retry=RetryPolicy(max_attempts=1))
    config = PipedriveSettings(
        api_token=DEFAULT_API_TOKEN,
        base_url=base_url,
        custom_fields=["Lead source", "Interests"],
        **settings,
    )
    return PipedriveConnector(config, context)


def company() -> PipedriveEmulator:
    """The company every cassette is recorded from: fixed data, a clock that stands still."""
    emulator = PipedriveEmulator(
        clock=EmulatorClock(T0, frozen=True), limits=EmulatorLimits(burst_limit=1000), seed=7
    )
    ids = emulator.seed_persons(120)
    emulator.delete_person(ids[0])
    emulator.merge_persons(ids[1], ids[2])
    emulator.advance(1)
    return emulator


def recorded(name: str) -> AbstractContextManager[str]:
    """The base URL to use inside the cassette ``name`` (see ``support.cassette``)."""
    return cassette(RECORDER, CASSETTES / f"{name}.yaml", company)


def test_changes_replay_from_the_cassette() -> None:
    with recorded("changes") as url:
        pipedrive = connector(url, page_size=50)
        records = list(pipedrive.fetch_changed(WINDOW))
        pipedrive.close()
    assert len(records) == 118  # 120 seeded, less one deleted and one merged away
    assert len({r.id for r in records}) == len(records)
    times = [r.modified_at for r in records]
    assert times == sorted(times) and times[0].utcoffset() == timedelta(0)
    decoded = [pipedrive.to_lead(r).custom_fields for r in records]
    sources = {c["Lead source"] for c in decoded if "Lead source" in c}
    assert sources and sources <= {"Web", "Referral", "Event", "Cold call"}
    assert all("owner" in c for c in decoded)  # names learnt during the replayed run
    assert any("organization" in c for c in decoded)


def test_reconciliation_and_batch_reads_replay_from_the_cassette() -> None:
    with recorded("ids") as url:
        pipedrive = connector(url)
        live = list(pipedrive.fetch_all_ids() or [])
        again = list(pipedrive.fetch_by_ids(["1", "2", "3", "999999"]))
        pipedrive.close()
    assert len(live) == 118 and "1" not in live and "2" not in live
    assert [r.id for r in again] == ["3"]  # deleted, merged away and unknown ids are left out


def test_cassettes_hold_no_token() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert [f.name for f in files] == ["changes.yaml", "ids.yaml"]
    for file in files:
        text = file.read_text()
        assert DEFAULT_API_TOKEN not in text and "x-api-token" not in text.lower()
