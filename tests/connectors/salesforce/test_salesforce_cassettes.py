"""vcrpy cassettes of the connector's Salesforce conversations: fast replays that pin the wire
format (simple-salesforce, no server), recorded from the emulator with every secret filtered
out (the Authorization header, the password and token in the SOAP login, the session id in
its answer).

Re-record with ``NATURALEAD_RECORD_CASSETTES=1`` (see the connector's README).
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import vcr

from naturalead_sync import ConnectorContext, Window
from naturalead_sync.http import RetryPolicy
from naturalead_sync_salesforce import SalesforceConnector, SalesforceSettings
from naturalead_sync_salesforce.emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    Clock,
    SalesforceEmulator,
)
from naturalead_sync_salesforce.testing import emulated_connector
from support import cassette

CASSETTES = Path(__file__).parent / "cassettes"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = Window(T0 - timedelta(hours=1), T0 + timedelta(minutes=1))
_SECRETS = [
    (re.compile(rb"<n1:password>.*?</n1:password>"), b"<n1:password>REDACTED</n1:password>"),
    (re.compile(rb"<sessionId>.*?</sessionId>"), b"<sessionId>REDACTED</sessionId>"),
]


def _scrub(body: Any) -> Any:
    if isinstance(body, str):
        body = body.encode()
    if not isinstance(body, bytes):
        return body
    for pattern, replacement in _SECRETS:
        body = pattern.sub(replacement, body)
    return body


def _request(request: Any) -> Any:
    request.body = _scrub(request.body)
    return request


def _response(response: dict[str, Any]) -> dict[str, Any]:
    response["body"]["string"] = _scrub(response["body"]["string"])
    return response


RECORDER = vcr.VCR(
    match_on=["method", "path", "query", "body"],
    filter_headers=["authorization"],
    before_record_request=_request,
    before_record_response=_response,
    decode_compressed_response=True,
)


def connector(url: str, **options: Any) -> SalesforceConnector:
    settings = SalesforceSettings(
        username=DEFAULT_USERNAME,
        password=DEFAULT_PASSWORD,
        security_token=DEFAULT_SECURITY_TOKEN,
        batch_size=200,
        **options,
    )
    context = ConnectorContext(connection="cassette", retry=RetryPolicy(max_attempts=1))
    return emulated_connector(url)(settings, context)


def org() -> SalesforceEmulator:
    """The org every cassette is recorded from: fixed data, a clock that stands still."""
    emulator = SalesforceEmulator(Clock(T0 - timedelta(minutes=10), frozen=True), seed=7)
    ids = emulator.seed_leads(230)
    emulator.advance(60)
    emulator.delete(ids[0])
    emulator.merge(ids[1], ids[2])
    emulator.set_time(T0)
    return emulator


def recorded(name: str) -> AbstractContextManager[str]:
    """The base URL to use inside the cassette ``name`` (see ``support.cassette``)."""
    return cassette(RECORDER, CASSETTES / f"{name}.yaml", org)


def test_changes_replay_from_the_cassette() -> None:
    with recorded("changes") as url:
        sf = connector(url)
        records = list(sf.fetch_changed(WINDOW))
        sf.close()
    assert len(records) == 228  # 230 seeded, less the deleted one and the merged-away one
    assert [(r.modified_at, r.id) for r in records] == sorted(
        (r.modified_at, r.id) for r in records
    )
    first = records[0]
    assert first.modified_at.utcoffset() == timedelta(0) and len(first.id) == 18
    lead = sf.to_lead(first)
    assert lead.lead_id == first.id and lead.name and lead.email and lead.phone
    assert set(lead.custom_fields) == {"Company", "Status", "LeadSource", "Title"}


def test_a_bulk_backfill_replays_from_the_cassette() -> None:
    with recorded("bulk") as url:
        sf = connector(url, bulk_threshold=100)
        records = list(sf.fetch_changed(Window(None, WINDOW.end)))
        sf.close()
    assert len(records) == 228  # COUNT(), describe, the job, 2 polls, 1 CSV chunk
    assert [(r.modified_at, r.id) for r in records] == sorted(
        (r.modified_at, r.id) for r in records
    )
    assert records[0].fields["IsConverted"] is False
    assert str(records[0].fields["SystemModstamp"]).endswith(".000+0000")


def test_deletes_and_reads_by_id_replay_from_the_cassette() -> None:
    with recorded("deletes") as url:
        sf = connector(url)
        deleted = list(sf.fetch_deleted(WINDOW))
        again = [r.id for r in sf.fetch_by_ids([*deleted, "00Q000000000000AAA", "bad id"])]
        sf.close()
    assert len(deleted) == 2  # the deleted lead and the merged-away one
    assert again == []  # neither a deleted id nor an unknown one reads back


def test_cassettes_hold_no_secret() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert [f.name for f in files] == ["bulk.yaml", "changes.yaml", "deletes.yaml"]
    for file in files:
        text = file.read_text()
        assert "<sessionId>REDACTED</sessionId>" in text
        assert DEFAULT_PASSWORD not in text and DEFAULT_SECURITY_TOKEN not in text
        assert "authorization" not in text.lower() and "Bearer" not in text
