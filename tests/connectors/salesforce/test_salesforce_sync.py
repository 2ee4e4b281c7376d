"""End to end: Salesforce emulator -> connector (simple-salesforce over loopback HTTP) -> engine
-> sandbox. The connector is the production class with only its session swapped
(:meth:`SalesforceConnector.session`), registered by a test plugin; the engine's ``now`` is the
emulator's clock."""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import ValidationError

from naturalead_sync import (
    BudgetExhausted,
    ConnectionReport,
    ConnectorContext,
    ConnectorError,
    Window,
)
from naturalead_sync.http import RetryPolicy
from naturalead_sync.sandbox import Sandbox
from naturalead_sync_salesforce import SalesforceConnector, SalesforceSettings
from naturalead_sync_salesforce.emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    Clock,
    LoopbackServer,
    SalesforceEmulator,
    serve,
)
from naturalead_sync_salesforce.testing import emulated_connector, rsa_key_pair
from support import Register, crm_config, stored, sync_at

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PASSWORD_LOGIN = f"""
username = "{DEFAULT_USERNAME}"
password = "{DEFAULT_PASSWORD}"
security_token = "{DEFAULT_SECURITY_TOKEN}"
domain = "test"
"""


@dataclass
class Org:
    """An emulator on loopback, a sandbox and a folder for config and state."""

    emulator: SalesforceEmulator
    server: LoopbackServer
    sandbox: Sandbox
    folder: Path

    @property
    def connector(self) -> type[SalesforceConnector]:
        return emulated_connector(self.server.url)

    def sync(
        self, settings: str = "", login: str = PASSWORD_LOGIN, name: str = "sf"
    ) -> ConnectionReport:
        path = crm_config(
            self.folder,
            name,
            "salesforce-emulated",
            retry='max_attempts = 3\nbackoff_initial = "10ms"\nbackoff_max = "50ms"',
            settings=f"{login}\n{settings}",
        )
        report: ConnectionReport = sync_at(
            path, self.sandbox, self.emulator.now(), Register(self.connector)
        )
        return report

    def direct(self, **settings: Any) -> SalesforceConnector:
        """A connector built by hand (for check() and the login flows)."""
        config = SalesforceSettings(**(settings or self.password_settings()))
        context = ConnectorContext(
            connection="direct", base_dir=self.folder, retry=RetryPolicy(max_attempts=1)
        )
        return self.connector(config, context)

    @staticmethod
    def password_settings() -> dict[str, Any]:
        return {
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "security_token": DEFAULT_SECURITY_TOKEN,
        }

    def count(self, endpoint: str) -> int:
        return sum(1 for r in self.emulator.request_log if r.endpoint == endpoint)

    def jwt_login(self) -> str:
        """The settings of a JWT bearer login, its connected app registered with a new key."""
        private, public = rsa_key_pair()
        (self.folder / "sf.key").write_text(private)
        self.emulator.credentials.add_connected_app(
            DEFAULT_CONSUMER_KEY,
            DEFAULT_CONSUMER_SECRET,
            jwt_public_key=public,
            run_as=DEFAULT_USERNAME,
        )
        return f"""
username = "{DEFAULT_USERNAME}"
consumer_key = "{DEFAULT_CONSUMER_KEY}"
private_key_file = "sf.key"
domain = "test"
"""


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    emulator = SalesforceEmulator(Clock(START, frozen=True))
    sandbox = Sandbox(tmp_path / "sandbox.db", requests_per_window=1000, window_seconds=1.0)
    with serve(emulator) as server:
        yield Org(emulator, server, sandbox, tmp_path)
    sandbox.close()


def settle(org: Org) -> None:
    """Move past the connector's settle time (three minutes)."""
    org.emulator.advance(300)


# -- syncing ------------------------------------------------------------------------------------


def test_initial_then_incremental_sync(org: Org) -> None:
    ids = org.emulator.seed_leads(250)
    settle(org)
    first = org.sync()
    assert (first.status, first.created) == ("ok", 250), first.error
    lead = stored(org.sandbox, ids[0])
    record = org.emulator.get(ids[0])
    assert record is not None and len(ids[0]) == 18
    assert lead["name"] == f"{record['FirstName']} {record['LastName']}"
    assert lead["email"] == record["Email"] and lead["phone"] == record["Phone"]
    assert lead["customFields"] == {
        key: record[key] for key in ("Company", "Status", "LeadSource", "Title")
    }
    # Deletes, COUNT() (250 is under bulk_threshold), then changes.
    assert org.count("query") == 3 and org.count("query_more") == 0

    org.emulator.update(ids[3], FirstName="Renamed", Phone=None, MobilePhone="+14155559999")
    new = org.emulator.create(
        "Lead", LastName="New", Company="Acme", Status="Open", Email="new.lead@example.com"
    )
    settle(org)
    second = org.sync()
    assert (second.status, second.created, second.updated) == ("ok", 1, 1), second.error
    renamed = stored(org.sandbox, ids[3])
    assert renamed["name"].startswith("Renamed ") and renamed["phone"] == "+14155559999"
    assert stored(org.sandbox, new)["email"] == "new.lead@example.com"
    # Incremental runs use getDeleted for deletes, and one query page for changes.
    assert org.count("deleted") == 1


def test_many_records_with_one_stamp_across_pages(org: Org) -> None:
    org.emulator.seed_leads(2500, same_stamp=True)
    settle(org)
    report = org.sync('batch_size = 500\nfields = ["Industry"]')
    assert (report.status, report.created) == ("ok", 2500), report.error
    assert len(org.sandbox.leads()) == 2500
    assert org.count("query_more") == 4  # 5 pages of 500, one cursor


def test_lost_query_locator_restarts_after_the_compound_cursor(org: Org) -> None:
    ids = org.emulator.seed_leads(450, same_stamp=True)
    settle(org)
    connector = org.direct(**org.password_settings(), batch_size=200, bulk_threshold=0)
    window = Window(None, org.emulator.now())
    seen = []
    for record in connector.fetch_changed(window):
        seen.append(record.id)
        if len(seen) == 200:
            org.emulator.advance(3 * 86400)  # the locator (2 days) is gone
    connector.close()
    assert seen == sorted(ids)  # every tied record once, in Id order
    assert org.count("query") == 2


def test_late_commit_is_caught_by_the_next_runs_lookback(org: Org) -> None:
    ids = org.emulator.seed_leads(10)
    settle(org)
    assert org.sync().status == "ok"
    served_at = org.emulator.now()
    org.emulator.update(ids[0], Title="Served")
    settle(org)
    assert org.sync().updated == 1
    # A transaction stamped before the record just served commits only now.
    late = org.emulator.late_commit(
        "Lead", served_at - timedelta(minutes=1), LastName="Late", Company="Slow", Status="Open"
    )
    org.emulator.advance(60)
    report = org.sync()
    assert (report.status, report.created) == ("ok", 1), report.error
    assert stored(org.sandbox, late)["name"] == "Late"


def test_contacts_sync_end_to_end(org: Org) -> None:
    ids = org.emulator.seed_contacts(30)
    org.emulator.seed_leads(5)  # not read
    settle(org)
    first = org.sync('object = "Contact"')
    assert (first.status, first.created) == ("ok", 30), first.error
    record = org.emulator.get(ids[0])
    assert record is not None and ids[0].startswith("003")
    contact = stored(org.sandbox, ids[0])
    assert contact["name"] == f"{record['FirstName']} {record['LastName']}"
    assert (contact["email"], contact["phone"]) == (record["Email"], record["Phone"])
    assert contact["customFields"] == {"Title": record["Title"], "LeadSource": record["LeadSource"]}

    account = org.emulator.new_id("001")
    org.emulator.update(ids[1], Department="Finance", AccountId=account, Phone=None)
    org.emulator.update(ids[2], MobilePhone="+14155559998", Phone=None)
    org.emulator.delete(ids[3])
    settle(org)
    second = org.sync('object = "Contact"')
    assert (second.status, second.updated, second.deleted) == ("ok", 2, 1), second.error
    moved = stored(org.sandbox, ids[1])["customFields"]
    assert (moved["Department"], moved["AccountId"]) == ("Finance", account)
    assert stored(org.sandbox, ids[2])["phone"] == "+14155559998"
    assert org.count("deleted") == 1  # getDeleted on sobjects/Contact
    assert len(org.sandbox.leads()) == 29


# -- Bulk API 2.0 backfills ---------------------------------------------------------------------

#: Lead fields of every type a Bulk CSV flattens to text: numbers, booleans, dates, datetimes.
TYPED_FIELDS = [
    "Score__c",
    "NumberOfEmployees",
    "AnnualRevenue",
    "HasOptedOutOfEmail",
    "EmailBouncedDate",
    "ConvertedDate",
    "Industry",
]


def test_a_large_backfill_reads_through_bulk_then_increments_by_rest(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("naturalead_sync_salesforce.api.BULK_CHUNK", 100)
    ids = org.emulator.seed_leads(250)
    settle(org)
    first = org.sync("bulk_threshold = 100")
    assert (first.status, first.created) == ("ok", 250), first.error
    calls = [(r.method, r.endpoint) for r in org.emulator.request_log]
    assert calls == [
        ("POST", "login"),
        ("GET", "query"),  # deletes: queryAll on IsDeleted
        ("GET", "query"),  # SELECT COUNT(): 250 > bulk_threshold
        ("GET", "describe"),  # field types, to read the CSV
        ("POST", "bulk"),  # the job
        ("GET", "bulk"),  # InProgress
        ("GET", "bulk"),  # JobComplete
        ("GET", "bulk_results"),  # 3 chunks of 100 rows at most
        ("GET", "bulk_results"),
        ("GET", "bulk_results"),
    ]
    assert org.emulator.api_usage[0] == 9  # every call but the login
    record = org.emulator.get(ids[0])
    assert record is not None
    assert stored(org.sandbox, ids[0])["customFields"] == {
        key: record[key] for key in ("Company", "Status", "LeadSource", "Title")
    }

    org.emulator.update(ids[3], Title="CFO")
    settle(org)
    second = org.sync("bulk_threshold = 100")
    assert (second.status, second.updated) == ("ok", 1), second.error
    later = [r.endpoint for r in list(org.emulator.request_log)[len(calls) :]]
    assert later == ["login", "deleted", "query"]  # incremental: no COUNT, no Bulk
    assert stored(org.sandbox, ids[3])["customFields"]["Title"] == "CFO"


def test_a_bulk_backfill_stopped_half_way_resumes_by_rest(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("naturalead_sync_salesforce.api.BULK_CHUNK", 100)
    org.emulator.seed_leads(250)
    settle(org)
    org.emulator.script("ok", "ok", "quota", endpoint="bulk_results")
    first = org.sync("bulk_threshold = 100")
    assert first.status == "failed" and "API limit is reached" in str(first.error)
    assert len(org.sandbox.leads()) == 200  # the records of the first two chunks
    second = org.sync("bulk_threshold = 100")
    assert (second.status, second.created) == ("ok", 50), second.error
    # The ordered backfill left a checkpoint, so this run was incremental: REST, no new job.
    assert second.cursor_before is not None and first.cursor_after is None
    assert org.count("bulk") == 3 and org.count("bulk_results") == 3


def test_a_lead_from_bulk_equals_the_same_lead_from_rest(org: Org) -> None:
    ids = org.emulator.seed_leads(40)
    org.emulator.update(
        ids[0],
        AnnualRevenue=2500000.0,
        HasOptedOutOfEmail=True,
        EmailBouncedDate=START - timedelta(days=3),
        MobilePhone="+14155559997",
        Phone=None,
        Title=None,
    )
    org.emulator.convert(ids[1])
    settle(org)
    window = Window(None, org.emulator.now())
    login = org.password_settings()
    bulk = org.direct(**login, fields=TYPED_FIELDS, bulk_threshold=10)
    rest = org.direct(**login, fields=TYPED_FIELDS, bulk_threshold=0)
    from_bulk, from_rest = list(bulk.fetch_changed(window)), list(rest.fetch_changed(window))
    bulk.close()
    rest.close()
    assert org.count("bulk_results") == 1 and len(from_rest) == 40
    assert from_bulk == from_rest
    assert [bulk.to_lead(r) for r in from_bulk] == [rest.to_lead(r) for r in from_rest]
    converted = rest.to_lead(next(r for r in from_rest if r.id == ids[1])).custom_fields
    assert converted["IsConverted"] == "true" and converted["ConvertedDate"]
    first = next(r for r in from_bulk if r.id == ids[0]).fields
    assert (first["AnnualRevenue"], first["HasOptedOutOfEmail"]) == (2500000.0, True)
    assert first["EmailBouncedDate"].endswith(".000+0000") and first["Title"] is None


def test_bulk_csv_cells_take_their_column_types_json_values() -> None:
    """Pure conversion, for the types the emulator's Lead lacks (percent, an undescribed
    field) and CSV shapes Salesforce does not send (a blank line; a row cut short, which
    stops the backfill after the rows before it)."""
    from naturalead_sync_salesforce.connector import _bulk_rows
    from naturalead_sync_salesforce.errors import SalesforceCallError

    types = {
        "id": "id",
        "systemmodstamp": "datetime",
        "isconverted": "boolean",
        "numberofemployees": "int",
        "annualrevenue": "currency",
        "probability__c": "percent",
        "score__c": "double",
        "lastactivitydate": "date",
        "title": "string",
    }
    text = (
        "Id,SystemModstamp,IsConverted,NumberOfEmployees,AnnualRevenue,Probability__c,"
        "score__c,LastActivityDate,Title,Undescribed__c\n"
        "00Q000000000001AAA,2026-03-02T09:00:01.000Z,true,50,2500000.5,12.5,7,2026-03-01,CTO,x\n"
        "\n"
        "00Q000000000002AAA,2026-03-02T09:00:02.000Z,false,,,,,,,\n"
        "00Q000000000003AAA,2026-03-02T09:00:03.000Z,false,-3,0,100,1.5,\n"
    )
    rows: list[dict[str, Any]] = []
    with pytest.raises(
        SalesforceCallError,
        match=r"a row of 8 cells under a header of 10 \(record 00Q000000000003AAA\): the "
        "results are damaged",
    ):
        rows.extend(_bulk_rows(csv.reader(io.StringIO(text, newline="")), types, "Lead"))
    typed = [{key: (value, type(value).__name__) for key, value in row.items()} for row in rows]
    assert typed == [
        {
            "Id": ("00Q000000000001AAA", "str"),
            "SystemModstamp": ("2026-03-02T09:00:01.000+0000", "str"),
            "IsConverted": (True, "bool"),
            "NumberOfEmployees": (50, "int"),
            "AnnualRevenue": (2500000.5, "float"),
            "Probability__c": (12.5, "float"),
            "score__c": (7.0, "float"),
            "LastActivityDate": ("2026-03-01", "str"),
            "Title": ("CTO", "str"),
            "Undescribed__c": ("x", "str"),
        },
        {
            "Id": ("00Q000000000002AAA", "str"),
            "SystemModstamp": ("2026-03-02T09:00:02.000+0000", "str"),
            "IsConverted": (False, "bool"),
            **dict.fromkeys(
                [
                    "NumberOfEmployees",
                    "AnnualRevenue",
                    "Probability__c",
                    "score__c",
                    "LastActivityDate",
                    "Title",
                    "Undescribed__c",
                ],
                (None, "NoneType"),
            ),
        },
    ]


STAMP = "2026-03-02T09:00:01.000Z"


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        # fields put Id last: a row long enough to hold it is named by it
        (
            ["SystemModstamp,Title,Id", f"{STAMP},CTO,00Q000000000002AAA,x"],
            "record 00Q000000000002AAA",
        ),
        (["Title,ID,SystemModstamp", "CTO,00Q000000000002AAA"], "record 00Q000000000002AAA"),
        # too short to hold it: the row's number in the chunk (blank lines are no rows)
        (
            ["SystemModstamp,Title,Id", f"{STAMP},CEO,00Q000000000001AAA", "", f"{STAMP},CTO"],
            "row 2 of the chunk",
        ),
        (["SystemModstamp,Title", f"{STAMP},CTO,00Q000000000001AAA"], "row 1 of the chunk"),
    ],
)
def test_a_damaged_bulk_row_is_named_by_its_id_wherever_the_column_is(
    lines: list[str], named: str
) -> None:
    """Pure parsing: ``fields`` may put the Id in any column, or a row may stop before it."""
    from naturalead_sync_salesforce.connector import _bulk_rows
    from naturalead_sync_salesforce.errors import SalesforceCallError

    text = "\n".join(lines) + "\n"
    types = {"id": "id", "systemmodstamp": "datetime", "title": "string"}
    with pytest.raises(SalesforceCallError, match="results are damaged") as damaged:
        list(_bulk_rows(csv.reader(io.StringIO(text, newline="")), types, "Lead"))
    assert f"cells under a header of {lines[0].count(',') + 1} ({named}): " in str(damaged.value)


def test_a_compound_field_keeps_the_backfill_on_rest(org: Org) -> None:
    org.emulator.seed_leads(30)
    settle(org)
    connector = org.direct(**org.password_settings(), fields=["Address"], bulk_threshold=10)
    records = list(connector.fetch_changed(Window(None, org.emulator.now())))
    connector.close()
    assert len(records) == 30 and records[0].fields["Address"]["country"] == "United States"
    assert org.count("describe") == 1 and org.count("bulk") == 0


def test_a_failed_bulk_job_fails_the_run_and_the_next_one_succeeds(org: Org) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    org.emulator.script("job_failed", endpoint="bulk")
    failed = org.sync("bulk_threshold = 100")
    assert failed.status == "failed" and "ended Failed" in str(failed.error)
    assert "bulk_threshold = 0" in str(failed.error) and org.sandbox.leads() == []
    again = org.sync("bulk_threshold = 100")
    assert (again.status, again.created) == ("ok", 150), again.error


def test_a_bulk_job_past_its_max_wait_is_aborted(org: Org) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    report = org.sync('bulk_threshold = 100\nbulk_max_wait = "100ms"')
    assert report.status == "failed" and "after bulk_max_wait (0.1 s)" in str(report.error)
    bulk = [r.method for r in org.emulator.request_log if r.endpoint == "bulk"]
    assert bulk == ["POST", "GET", "PATCH"]  # created, polled once, aborted


def test_a_bulk_job_whose_poll_fails_is_aborted(org: Org) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    org.emulator.script("ok", "quota", endpoint="bulk")  # created; the first poll refused
    report = org.sync("bulk_threshold = 100")
    assert report.status == "failed" and "API limit is reached (Bulk job status" in str(
        report.error
    )
    bulk = [r.method for r in org.emulator.request_log if r.endpoint == "bulk"]
    assert bulk == ["POST", "GET", "PATCH"]  # created, polled, aborted


@pytest.mark.parametrize("fault", ["503", "drop"])
def test_a_bulk_job_creation_is_sent_once(org: Org, fault: str) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    org.emulator.script(fault, endpoint="bulk")  # the job creation
    report = org.sync("bulk_threshold = 100")
    assert report.status == "failed" and org.sandbox.leads() == []
    error = str(report.error)
    assert "the creation of the Bulk API 2.0 query job for the Lead backfill" in error
    assert "sent once (a second request could start a second job)" in error
    assert "run again" in error and "retries" not in error
    bulk = [r.method for r in org.emulator.request_log if r.endpoint == "bulk"]
    assert bulk == ["POST"]  # not resent, although the connection allows 3 attempts
    assert len(org.emulator.bulk) == (1 if fault == "drop" else 0)  # a dropped one was made
    again = org.sync("bulk_threshold = 100")
    assert (again.status, again.created) == ("ok", 150), again.error


def test_a_call_sent_once_gives_its_callers_reason(org: Org) -> None:
    """Why a call goes out once is its caller's to say: the error gives that reason, not the
    Bulk job creation's."""
    connector = org.direct()

    def dropped(sf: Any) -> Any:
        raise requests.ConnectionError("dropped after it went out")

    with pytest.raises(ConnectorError) as failed:
        connector.api.call("report export", dropped, sent_once="a second one would bill twice")
    connector.close()
    message = str(failed.value)
    assert "for the report export (ConnectionError), sent once (a second one" in message
    assert "would bill twice); check the network" in message
    assert "second job" not in message and "retries" not in message


def test_bulk_polls_and_results_are_retried(org: Org) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    org.emulator.script("ok", "503", "drop", endpoint="bulk")  # created; the first poll fails
    org.emulator.script("503", endpoint="bulk_results")
    report = org.sync("bulk_threshold = 100")
    assert (report.status, report.created) == ("ok", 150), report.error
    calls = [
        (r.method, r.endpoint, r.fault)
        for r in org.emulator.request_log
        if r.endpoint in ("bulk", "bulk_results")
    ]
    assert calls == [
        ("POST", "bulk", "ok"),
        ("GET", "bulk", "503"),
        ("GET", "bulk", "drop"),  # answered InProgress, unread
        ("GET", "bulk", None),  # JobComplete
        ("GET", "bulk_results", "503"),
        ("GET", "bulk_results", None),
    ]


def test_a_bulk_job_abort_is_retried(org: Org) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    org.emulator.script("ok", "quota", "503", endpoint="bulk")  # created; poll refused; abort
    report = org.sync("bulk_threshold = 100")
    assert report.status == "failed" and "API limit is reached" in str(report.error)
    bulk = [(r.method, r.status) for r in org.emulator.request_log if r.endpoint == "bulk"]
    assert bulk == [("POST", 200), ("GET", 403), ("PATCH", 503), ("PATCH", 200)]


def test_an_expired_session_during_bulk_logs_in_again_once(org: Org) -> None:
    org.emulator.seed_leads(150)
    settle(org)
    org.emulator.script("expired", endpoint="bulk_results")
    report = org.sync("bulk_threshold = 100")
    assert (report.status, report.created) == ("ok", 150), report.error
    assert org.count("login") == 2 and org.count("bulk_results") == 2


# -- deletes and conversions --------------------------------------------------------------------


def test_deletes_hard_deletes_and_merges_come_from_get_deleted(org: Org) -> None:
    ids = org.emulator.seed_leads(20)
    settle(org)
    assert org.sync().status == "ok"
    org.emulator.delete(ids[0])
    org.emulator.hard_delete(ids[1])
    org.emulator.merge(ids[2], ids[3], ids[4])
    settle(org)
    report = org.sync()
    assert (report.status, report.deleted) == ("ok", 4), report.error
    assert org.count("deleted") == 1
    live = {lead["lead_id"] for lead in org.sandbox.leads()}
    assert live == set(ids) - {ids[0], ids[1], ids[3], ids[4]}


def test_deletes_fall_back_to_query_all(org: Org) -> None:
    ids = org.emulator.seed_leads(20)
    settle(org)
    assert org.sync().status == "ok"
    org.emulator.delete(ids[0])
    org.emulator.purge_delete_log()  # getDeleted no longer covers the window
    settle(org)
    purged = org.sync()
    assert (purged.status, purged.deleted) == ("ok", 1), purged.error
    assert org.count("deleted") == 1
    org.emulator.advance(20 * 86400)  # past getDeleted's 15 days: queryAll only
    org.emulator.delete(ids[1])
    settle(org)
    old = org.sync()
    assert (old.status, old.deleted) == ("ok", 1), old.error
    assert org.count("deleted") == 1
    assert {lead["lead_id"] for lead in org.sandbox.leads()} == set(ids[2:])


@pytest.mark.parametrize("converted", ["update", "delete"])
def test_converted_leads(org: Org, converted: str) -> None:
    ids = org.emulator.seed_leads(5)
    settle(org)
    setting = f'converted = "{converted}"'
    assert org.sync(setting).status == "ok"
    made = org.emulator.convert(ids[0])
    settle(org)
    report = org.sync(setting)
    assert report.status == "ok", report.error
    if converted == "delete":
        assert (report.deleted, report.updated) == (1, 0)
        assert len(org.sandbox.leads()) == 4
        return
    assert (report.deleted, report.updated) == (0, 1)
    custom = stored(org.sandbox, ids[0])["customFields"]
    assert custom["IsConverted"] == "true" and custom["Status"] == "Closed - Converted"
    assert custom["ConvertedContactId"] == made["ContactId"]
    assert "IsConverted" not in stored(org.sandbox, ids[1])["customFields"]


# -- limits, faults, sessions -------------------------------------------------------------------


def test_daily_limit_stops_cleanly_and_the_next_run_resumes(org: Org) -> None:
    org.emulator.api_limit = 24
    org.emulator.set_api_usage(3)
    org.emulator.seed_leads(2500)
    settle(org)
    first = org.sync("batch_size = 200")
    assert first.status == "failed" and "max_api_share (50%)" in str(first.error)
    assert 0 < len(org.sandbox.leads()) < 2500
    assert org.emulator.api_usage[0] == 12  # half of 24, not one call more
    org.emulator.advance(86400)
    second = org.sync("batch_size = 200")
    assert second.status == "ok", second.error
    assert len(org.sandbox.leads()) == 2500
    assert second.records_fetched < 2500  # it resumed from the checkpoint


def test_request_limit_exceeded_ends_the_run_without_retrying(org: Org) -> None:
    org.emulator.seed_leads(2500)
    settle(org)
    org.emulator.script("quota", endpoint="query_more")
    report = org.sync()
    assert report.status == "failed" and "API limit is reached" in str(report.error)
    assert org.count("query_more") == 1
    assert len(org.sandbox.leads()) == 2000  # the first page is kept
    assert org.sync().status == "ok" and len(org.sandbox.leads()) == 2500


def test_server_errors_and_dropped_connections_are_retried(org: Org) -> None:
    org.emulator.seed_leads(2500)
    settle(org)
    org.emulator.script("503", "drop", endpoint="query_more")
    report = org.sync()
    assert (report.status, report.created) == ("ok", 2500), report.error
    assert org.count("query_more") == 3


def test_an_expired_session_logs_in_again_once(org: Org) -> None:
    org.emulator.seed_leads(2500)
    settle(org)
    org.emulator.script("expired", endpoint="query_more")
    report = org.sync()
    assert (report.status, report.created) == ("ok", 2500), report.error
    assert org.count("login") == 2
    org.emulator.script("expired", "expired", endpoint="query")
    again = org.sync()
    assert again.status == "failed" and "refused the session" in str(again.error)
    assert org.count("login") == 5  # the first login, then one per expired answer


def test_an_expired_session_id_says_how_to_fix_it(
    org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    token = org.emulator.credentials.issue_token()
    login = f'session_id = "{token}"\ninstance_url = "https://{org.server.url[7:]}"'
    org.emulator.seed_leads(3)
    settle(org)
    assert org.sync(login=login).created == 3
    org.emulator.credentials.expire_sessions()
    caplog.set_level(logging.DEBUG)
    report = org.sync(login=login)
    assert report.status == "failed" and "get a new session_id" in str(report.error)
    assert token not in str(report.error) and token not in caplog.text


# -- logins and check() -------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["503", "drop"])
@pytest.mark.parametrize(
    ("flow", "path"), [("password", "/services/Soap/u/"), ("jwt", "/services/oauth2/token")]
)
def test_a_failed_login_is_sent_again(org: Org, flow: str, path: str, fault: str) -> None:
    """A login is the one POST the transport resends (a second login costs nothing): the SOAP
    login() of the password flow and the OAuth token endpoint of the others."""
    org.emulator.seed_leads(3)
    settle(org)
    org.emulator.script(fault, endpoint="login")
    report = org.sync(login=PASSWORD_LOGIN if flow == "password" else org.jwt_login())
    assert (report.status, report.created) == ("ok", 3), report.error
    logins = [
        (r.method, r.path.startswith(path), r.fault)
        for r in org.emulator.request_log
        if r.endpoint == "login"
    ]
    assert logins == [("POST", True, fault), ("POST", True, None)]


def test_every_login_flow_passes_check(org: Org) -> None:
    org.emulator.seed_leads(1)
    org.jwt_login()  # the connected app, its key in sf.key
    app = {"consumer_key": DEFAULT_CONSUMER_KEY}
    flows: dict[str, dict[str, Any]] = {
        "jwt": {"username": DEFAULT_USERNAME, **app, "private_key_file": "sf.key"},
        "client_credentials": {
            **app,
            "consumer_secret": DEFAULT_CONSUMER_SECRET,
            "domain": "acme.my",
        },
        "password": org.password_settings(),
        "session": {
            "session_id": org.emulator.credentials.issue_token(),
            "instance_url": "https://" + org.server.url.removeprefix("http://"),
        },
    }
    for flow, settings in flows.items():
        connector = org.direct(**settings)
        assert connector.settings.auth_flow == flow
        assert connector.check() == [], flow
        connector.close()
    assert org.count("login") == 3


def test_a_missing_private_key_file_says_what_to_fix(org: Org) -> None:
    jwt = {"username": DEFAULT_USERNAME, "consumer_key": DEFAULT_CONSUMER_KEY}
    connector = org.direct(**jwt, private_key_file="keys/missing.key")
    with pytest.raises(ConnectorError) as missing:
        connector.check()
    message = str(missing.value)
    assert "cannot read settings.private_key_file (No such file or directory)" in message
    assert "relative to the config file" in message
    assert org.count("login") == 0  # nothing was sent
    report = org.sync(login='username = "u"\nconsumer_key = "k"\nprivate_key_file = "no.key"')
    assert report.status == "failed" and "private_key_file" in str(report.error)


def test_check_warns_when_the_daily_usage_is_high(org: Org) -> None:
    org.emulator.set_api_usage(int(org.emulator.api_limit * 0.45))
    connector = org.direct()
    assert "runs stop at max_api_share (50%)" in connector.check()[0]
    org.emulator.set_api_usage(int(org.emulator.api_limit * 0.6))
    assert "past max_api_share" in connector.check()[0]
    connector.close()


def test_check_failures_say_what_to_fix_without_secrets(
    org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = {**org.password_settings(), "password": "not-the-password-123"}
    with pytest.raises(ConnectorError) as refused:
        org.direct(**wrong).check()
    message = str(refused.value)
    assert "refused the password login" in message and "security_token" in message
    assert "not-the-password-123" not in message + caplog.text
    assert DEFAULT_SECURITY_TOKEN not in message + caplog.text
    with pytest.raises(ConnectorError) as unknown:
        org.direct(**org.password_settings(), object="Leed").check()
    assert "Read on Leed" in str(unknown.value)
    with pytest.raises(ConnectorError) as missing:
        org.direct(**org.password_settings(), fields=["NoSuchField__c"]).fetch_by_ids(
            ["00Q000000000000AAA"]
        ).__next__()
    assert "settings.fields" in str(missing.value)
    org.emulator.script("quota", endpoint="query")
    with pytest.raises(BudgetExhausted):
        org.direct().check()


def test_settings_name_the_missing_keys() -> None:
    cases = {
        "no credentials": {},
        "the password login needs security_token": {"username": "u", "password": "p"},
        "the jwt login needs username": {"consumer_key": "k", "private_key": "x"},
        "found jwt and password": {"password": "p", "private_key": "x"},
        "the session login does not take username": {
            "session_id": "s",
            "instance_url": "https://acme.my.salesforce.com",
            "username": "u",
        },
        "My Domain": {"consumer_key": "k", "consumer_secret": "s", "domain": "login"},
    }
    for expected, settings in cases.items():
        with pytest.raises(ValidationError) as error:
            SalesforceSettings(**settings)
        assert expected in str(error.value)
        assert "secret" not in str(error.value).replace("consumer_secret", "")


def test_bulk_results_that_give_a_locator_twice_stop_instead_of_looping() -> None:
    """Pure loop logic: the calls to Salesforce are replaced by a job whose result chunks
    keep pointing back at the same locator."""
    from naturalead_sync_salesforce.api import SalesforceApi, SalesforceCallError

    class Looping(SalesforceApi):
        def __init__(self) -> None:  # no session: nothing below calls Salesforce
            self.asked: list[str] = []

        def call(self, what: str, send: Any, **options: Any) -> Any:
            return {"id": "750000000000001"}  # the job creation

        def _await_job(self, sobject: str, job_id: str) -> None:
            pass

        def _bulk_chunk(self, sobject: str, job_id: str, locator: str) -> Any:
            self.asked.append(locator)
            return {"records": "Id\n003000000000001\n", "locator": "MTAw"}

    api = Looping()
    chunks = api.bulk_query("Contact", "SELECT Id FROM Contact")
    with pytest.raises(SalesforceCallError, match="locator 'MTAw' of job 750000000000001"):
        list(itertools.islice(chunks, 5))  # a loop would read 5 chunks and not raise
    assert api.asked == ["", "MTAw"]
