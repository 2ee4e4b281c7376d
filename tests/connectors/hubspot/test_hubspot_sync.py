"""End to end: HubSpot emulator -> connector (the real SDK over loopback HTTP) -> engine ->
sandbox. Each test drives the emulator's clock and the engine's ``now`` together."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from naturalead_sync import ConnectionReport, Lead, SourceRecord, hookimpl
from naturalead_sync.loopback import LoopbackServer, serve
from naturalead_sync.sandbox import Sandbox
from naturalead_sync.state import StateStore
from naturalead_sync_hubspot.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_TOKEN,
    EmulatorLimits,
    HubSpotEmulator,
)
from support import crm_config, lines, stored, sync_at

FAST = EmulatorLimits(ten_second_max=1000, search_per_second=100)
#: The settings of the emulator's OAuth app (no access_token: the connector refreshes).
OAUTH_APP = (
    f'client_id = "{DEFAULT_CLIENT_ID}"\nclient_secret = "{DEFAULT_CLIENT_SECRET}"\n'
    f'refresh_token = "{DEFAULT_REFRESH_TOKEN}"'
)


@dataclass
class Hub:
    """An emulator on loopback, a sandbox and a folder for config and state."""

    emulator: HubSpotEmulator
    server: LoopbackServer
    sandbox: Sandbox
    folder: Path

    def config(
        self,
        connection: str = "",
        settings: str = "",
        token: str | None = DEFAULT_TOKEN,
        backoff_max: str = "100ms",
    ) -> Path:
        auth = "" if token is None else f'access_token = "{token}"'
        return crm_config(
            self.folder,
            "hubspot",
            "hubspot",
            connection=lines(connection, 'settle = "0s"'),
            retry=f'backoff_max = "{backoff_max}"',
            settings=f"""{auth}
base_url = "{self.server.url}"
{lines(settings, "search_requests_per_second = 50", "requests_per_ten_seconds = 500")}""",
        )

    def sync(self, plugin: object | None = None, **config: Any) -> ConnectionReport:
        now = datetime.fromtimestamp(self.emulator.now(), UTC)
        plugins = () if plugin is None else (plugin,)
        report: ConnectionReport = sync_at(self.config(**config), self.sandbox, now, *plugins)
        return report


#: The emulator's clock stands still between ``advance`` calls, so every write in between
#: shares one millisecond (ties on lastmodifieddate are the rule here, not the exception).
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()


def frozen() -> float:
    return T0


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    emulator = HubSpotEmulator(clock=frozen, limits=FAST)
    sandbox = Sandbox(tmp_path / "sandbox.db", requests_per_window=1000, window_seconds=1.0)
    with serve(emulator) as server:
        yield Hub(emulator, server, sandbox, tmp_path)
    sandbox.close()


def searches(emulator: HubSpotEmulator) -> int:
    return sum(1 for r in emulator.request_log if r.search)


def test_initial_then_incremental_sync(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(250)
    first = hub.sync()
    assert (first.status, first.created) == ("ok", 250), first.error
    assert len(hub.sandbox.leads()) == 250
    lead = stored(hub.sandbox, ids[0])
    contact = hub.emulator.get("contacts", ids[0])
    name = f"{contact['firstname']} {contact['lastname']}"
    assert lead["name"] == name and lead["email"] == contact["email"]
    assert lead["phone"].startswith("+")
    assert lead["customFields"]["company"] == contact["company"]
    assert set(lead["customFields"]) <= {"company", "lifecyclestage", "hs_lead_status"}

    hub.emulator.advance(60)
    hub.emulator.update("contacts", ids[3], {"firstname": "Renamed"})
    new = hub.emulator.create("contacts", {"firstname": "New", "email": "new.lead@example.com"})
    hub.emulator.advance(1)
    second = hub.sync()
    assert (second.status, second.created, second.updated) == ("ok", 1, 1), second.error
    assert stored(hub.sandbox, ids[3])["name"].startswith("Renamed ")
    assert stored(hub.sandbox, new)["email"] == "new.lead@example.com"

    hub.emulator.advance(60)
    before = len(hub.emulator.request_log)
    third = hub.sync()
    # The lookback reads the last ten minutes again: every record, skipped as unchanged.
    assert (third.status, third.upsert_requests, third.skipped_unchanged) == ("ok", 0, 251)
    # One archived page, one merge search, and two search pages for the 251 in the lookback.
    assert len(hub.emulator.request_log) - before == 4


def test_first_sync_pages_by_id_at_200_per_request_past_the_10k_cap(hub: Hub) -> None:
    hub.emulator.seed_contacts(10_050, same_timestamp=True)
    hub.emulator.advance(1)
    report = hub.sync()
    assert (report.status, report.created) == ("ok", 10_050), report.error
    assert len(hub.sandbox.leads()) == 10_050
    changed = [r for r in hub.emulator.request_log if r.search and r.status == 200]
    assert len(changed) == 51 + 1  # 10,050 / 200 pages, plus the merge search
    assert all(r.status != 400 for r in hub.emulator.request_log)


def test_ties_on_lastmodifieddate_across_pages_and_changes_during_the_run(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(300)
    hub.emulator.advance(1)
    assert hub.sync().status == "ok"
    hub.emulator.advance(60)
    for record_id in ids:  # a bulk update: 300 records, one millisecond
        hub.emulator.update("contacts", record_id, {"lastname": "Bulk"})
    hub.emulator.advance(1)

    early, late = ids[10], ids[290]  # one already read, one not yet read when it changes

    class ChangeDuringRun:
        done = False

        @hookimpl
        def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead:
            if not self.done and record.id == ids[50]:
                self.done = True
                hub.emulator.update("contacts", early, {"firstname": "Early"})
                hub.emulator.update("contacts", late, {"firstname": "Late"})
            return lead

    during = hub.sync(plugin=ChangeDuringRun())
    assert during.status == "ok", during.error
    bulk = [lead for lead in hub.sandbox.leads() if lead["name"].endswith(" Bulk")]
    # Every tied record arrived across the two search pages, except the one changed again
    # before its page was read: it now belongs to the next window.
    assert len(bulk) == 299
    assert not stored(hub.sandbox, late)["name"].endswith(" Bulk")
    hub.emulator.advance(60)
    after = hub.sync()
    assert after.status == "ok"
    assert stored(hub.sandbox, early)["name"] == "Early Bulk"
    assert stored(hub.sandbox, late)["name"] == "Late Bulk"
    assert all(lead["name"].endswith(" Bulk") for lead in hub.sandbox.leads())


def test_search_index_lag_is_caught_by_the_next_run(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(20)
    hub.emulator.advance(1)
    assert hub.sync().status == "ok"
    hub.emulator.index_lag_seconds = 30.0
    hub.emulator.advance(60)
    hub.emulator.update("contacts", ids[5], {"firstname": "Lagging"})
    hub.emulator.advance(5)  # the window ends after the change, but the index has not caught up
    missed = hub.sync()
    assert (missed.status, missed.upsert_requests) == ("ok", 0)
    hub.emulator.advance(60)
    caught = hub.sync()  # its window starts a lookback (10 minutes) before the cursor
    assert (caught.status, caught.updated) == ("ok", 1)
    assert stored(hub.sandbox, ids[5])["name"].startswith("Lagging ")


def test_default_settle_keeps_the_window_behind_the_index(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(5)
    hub.emulator.index_lag_seconds = 30.0
    hub.emulator.advance(45)
    hub.emulator.update("contacts", ids[1], {"firstname": "Fresh"})
    hub.emulator.advance(5)
    report = hub.sync(connection='settle = "1m"')
    # Nothing younger than a minute is read, so nothing is read before the index has it.
    assert (report.status, report.created) == ("ok", 0)
    hub.emulator.advance(60)
    assert hub.sync(connection='settle = "1m"').created == 5
    assert stored(hub.sandbox, ids[1])["name"].startswith("Fresh ")


def test_archived_contacts_are_deleted_once(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(30)
    hub.emulator.advance(1)
    assert hub.sync().status == "ok"
    hub.emulator.advance(60)
    hub.emulator.archive("contacts", ids[0])
    hub.emulator.archive("contacts", ids[1])
    hub.emulator.advance(1)
    report = hub.sync()
    assert (report.status, report.deleted, report.delete_requests) == ("ok", 2, 1)
    assert hub.sandbox.lead(ids[0]) is None and hub.sandbox.lead(ids[1]) is None
    hub.emulator.advance(60)
    again = hub.sync()
    assert (again.deleted, again.delete_requests) == (0, 0)
    hub.emulator.restore("contacts", ids[0])
    hub.emulator.advance(1)
    restored = hub.sync()
    assert (restored.status, restored.created) == ("ok", 1)
    assert hub.sandbox.lead(ids[0]) is not None


def test_a_merge_deletes_the_absorbed_ids_before_the_survivor_arrives(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(10)
    hub.emulator.advance(1)
    assert hub.sync().status == "ok"
    absorbed_phone = stored(hub.sandbox, ids[2])["phone"]
    hub.emulator.advance(60)
    survivor = hub.emulator.merge("contacts", ids[2], ids[3])
    hub.emulator.advance(1)
    report = hub.sync()
    assert report.status == "ok", report.error
    assert (report.deleted, report.created, report.rejected) == (2, 1, 0)
    assert hub.sandbox.lead(ids[2]) is None and hub.sandbox.lead(ids[3]) is None
    # The survivor carries the primary's phone, which Naturalead held under the old id.
    assert stored(hub.sandbox, survivor)["phone"] == absorbed_phone


def test_gdpr_deletes_are_found_by_reconciliation(hub: Hub) -> None:
    ids = hub.emulator.seed_contacts(120)
    hub.emulator.advance(1)
    assert hub.sync().status == "ok"
    hub.emulator.gdpr_delete("contacts", ids[7])
    hub.emulator.gdpr_delete("contacts", ids[115])
    hub.emulator.advance(60)
    plain = hub.sync()
    assert plain.deleted == 0  # no trace in the archived list or the search
    reconciled = hub.sync(connection="reconcile_deletes = true")
    assert (reconciled.status, reconciled.deleted) == ("ok", 2)
    assert hub.sandbox.lead(ids[7]) is None and hub.sandbox.lead(ids[115]) is None
    assert len(hub.sandbox.leads()) == 118


@pytest.mark.parametrize("fault", ["429", "503", "500", "drop"])
def test_hubspot_faults_are_retried_and_the_run_completes(hub: Hub, fault: str) -> None:
    hub.emulator.seed_contacts(450)
    hub.emulator.advance(1)
    hub.emulator.script(fault, fault, path_contains="/search")
    hub.emulator.script(fault, path_contains="archived=")
    report = hub.sync()
    assert (report.status, report.created) == ("ok", 450), report.error
    faulted = [r for r in hub.emulator.request_log if r.action == fault]
    assert len(faulted) == 3


@pytest.mark.parametrize(
    ("told", "throttled"),
    [(5, False), (50, True)],
    ids=["paced: no 429", "told 50/s, the 429s (no Retry-After) are waited out"],
)
def test_search_pacing_against_the_5_per_second_limit(hub: Hub, told: int, throttled: bool) -> None:
    strict = HubSpotEmulator(
        clock=frozen, limits=EmulatorLimits(ten_second_max=1000, search_per_second=5)
    )
    strict.seed_contacts(1_400)
    strict.advance(1)
    with serve(strict) as server:
        other = Hub(strict, server, hub.sandbox, hub.folder)
        report = other.sync(settings=f"search_requests_per_second = {told}", backoff_max="2s")
    assert (report.status, report.created) == ("ok", 1_400), report.error
    rejected = [r for r in strict.request_log if r.status == 429]
    assert bool(rejected) is throttled
    assert searches(strict) - len(rejected) == 8  # 7 pages of 200, plus the merge search


def test_daily_limit_stops_cleanly_and_the_next_run_resumes(hub: Hub) -> None:
    hub.emulator.seed_contacts(50)
    hub.emulator.advance(1)
    hub.emulator.script(*["429-daily"] * 4, path_contains="/search")  # every allowed try
    stopped = hub.sync()
    assert stopped.status == "failed"
    assert "daily API limit" in (stopped.error or "")
    resumed = hub.sync()
    assert (resumed.status, resumed.created) == ("ok", 50)


def test_leads_mode_takes_the_person_from_the_primary_contact(hub: Hub) -> None:
    contacts = hub.emulator.seed_contacts(3)
    lead_ids = [
        hub.emulator.create("leads", {"hs_lead_name": f"Deal {n}", "hs_lead_type": "NEW_BUSINESS"})
        for n in range(3)
    ]
    for lead_id, contact_id in zip(lead_ids, contacts, strict=True):
        hub.emulator.associate_lead(lead_id, contact_id)
    hub.emulator.advance(1)
    report = hub.sync(settings='object = "leads"')
    assert (report.status, report.created) == ("ok", 3), report.error
    contact = hub.emulator.get("contacts", contacts[1])
    lead = stored(hub.sandbox, lead_ids[1])
    assert lead["name"] == f"{contact['firstname']} {contact['lastname']}"
    assert lead["email"] == contact["email"]
    assert lead["customFields"]["hs_lead_name"] == "Deal 1"
    assert hub.sandbox.lead(contacts[1]) is None  # the lead's own id, not the contact's

    hub.emulator.advance(60)
    hub.emulator.update("contacts", contacts[2], {"email": "moved@example.com"})
    hub.emulator.advance(1)
    followed = hub.sync(settings='object = "leads"')
    assert (followed.status, followed.updated) == ("ok", 1), followed.error
    assert stored(hub.sandbox, lead_ids[2])["email"] == "moved@example.com"


def test_bad_token_and_missing_scope_say_what_to_fix(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.emulator.seed_contacts(1)
    caplog.set_level(logging.DEBUG)
    bad = hub.sync(token="pat-na1-00000000-0000-0000-0000-00000000dead")
    assert bad.status == "failed"
    assert "settings.access_token" in (bad.error or "") and "…dead" in (bad.error or "")
    hub.emulator.add_token("pat-na1-leads-only-0000000000000000beef", ["crm.objects.leads.read"])
    scoped = hub.sync(token="pat-na1-leads-only-0000000000000000beef")
    assert scoped.status == "failed"
    assert "crm.objects.contacts.read" in (scoped.error or "")
    secrets = (DEFAULT_TOKEN, "pat-na1-00000000-0000-0000-0000-00000000dead")
    assert not [s for s in secrets if s in caplog.text or s in (bad.error or "")]


def test_a_refused_oauth_refresh_says_what_to_fix_and_never_shows_a_secret(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.emulator.seed_contacts(1)
    caplog.set_level(logging.DEBUG)
    stale = "stale-refresh-token-0000000000000000cafe"
    oauth = (
        f'client_id = "{DEFAULT_CLIENT_ID}"\nclient_secret = "{DEFAULT_CLIENT_SECRET}"\n'
        f'refresh_token = "{stale}"'
    )
    report = hub.sync(token=None, settings=oauth)
    error = report.error or ""
    assert report.status == "failed"
    assert "refused the OAuth refresh (HTTP 400)" in error and "refresh_token" in error
    assert not [s for s in (stale, DEFAULT_CLIENT_SECRET) if s in caplog.text or s in error]
    # Nothing but the refused refresh went out: no API request without a token.
    assert [(r.path, r.status) for r in hub.emulator.request_log] == [("/oauth/v1/token", 400)]


def test_an_unreachable_oauth_endpoint_says_so(hub: Hub) -> None:
    hub.emulator.seed_contacts(1)
    hub.emulator.script(*["drop"] * 5, path_contains="/oauth/v1/token")  # every allowed try
    report = hub.sync(token=None, settings=OAUTH_APP)
    assert report.status == "failed"
    assert "HubSpot could not be reached for the OAuth token refresh at " in (report.error or "")


def test_cursor_ends_at_the_frozen_window(hub: Hub) -> None:
    hub.emulator.seed_contacts(3)
    hub.emulator.advance(1)
    now = datetime.fromtimestamp(hub.emulator.now(), UTC)
    assert hub.sync(connection='settle = "30s"').status == "ok"
    with StateStore(hub.folder / "state.db") as store:
        assert store.get_cursor("hubspot", "changed") == now - timedelta(seconds=30)


@pytest.mark.parametrize("rotate", [False, True], ids=["same refresh token", "rotated"])
def test_oauth_token_is_refreshed_when_it_expires_mid_run(hub: Hub, rotate: bool) -> None:
    """HubSpot keeps the refresh token; were it to rotate it, the new one is sent next (the
    emulator refuses the old one then)."""
    hub.emulator.seed_contacts(450)
    hub.emulator.advance(1)
    hub.emulator.rotate_refresh_tokens = rotate

    class ExpireTheToken:
        done = False

        @hookimpl
        def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead:
            if not self.done:  # after the first page, HubSpot's clock passes the 30 minutes
                self.done = True
                hub.emulator.advance(1900)
            return lead

    report = hub.sync(plugin=ExpireTheToken(), token=None, settings=OAUTH_APP)
    assert (report.status, report.created) == ("ok", 450), report.error
    refreshes = [r for r in hub.emulator.request_log if r.path.startswith("/oauth/v1/token")]
    expired = [r for r in hub.emulator.request_log if r.status == 401]
    assert (len(refreshes), len(expired)) == (2, 1)
