"""End to end: Pipedrive emulator -> connector (httpx over loopback) -> engine -> sandbox.
Each test drives the emulator's clock and the engine's ``now`` together."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from naturalead_sync import (
    ConnectionReport,
    ConnectorContext,
    ConnectorError,
    Lead,
    SourceRecord,
    hookimpl,
)
from naturalead_sync.loopback import LoopbackServer, serve
from naturalead_sync.sandbox import Sandbox
from naturalead_sync_pipedrive import PipedriveConnector, PipedriveSettings
from naturalead_sync_pipedrive.api import PipedriveApi
from naturalead_sync_pipedrive.emulator import (
    DEFAULT_API_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_OAUTH_TOKEN,
    DEFAULT_REFRESH_TOKEN,
    EmulatorClock,
    EmulatorLimits,
    PipedriveEmulator,
)
from support import FakeClock, crm_config, lines, stored, sync_at

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAST = EmulatorLimits(burst_limit=10_000)


@dataclass
class Company:
    """An emulator on loopback, a sandbox and a folder for config and state."""

    emulator: PipedriveEmulator
    server: LoopbackServer
    sandbox: Sandbox
    folder: Path

    def config(
        self, connection: str = "", settings: str = "", auth: str = "", root: str = ""
    ) -> Path:
        return crm_config(
            self.folder,
            "pipedrive",
            "pipedrive",
            connection=lines(connection, 'settle = "0s"'),
            settings=f"""{auth or f'api_token = "{DEFAULT_API_TOKEN}"'}
{root or f'base_url = "{self.server.url}"'}
{lines(settings, "requests_per_two_seconds = 1000")}""",
        )

    def sync(self, plugin: object | None = None, **config: Any) -> ConnectionReport:
        plugins = () if plugin is None else (plugin,)
        report: ConnectionReport = sync_at(
            self.config(**config), self.sandbox, self.emulator.now(), *plugins
        )
        return report

    def log_count(self, status: int) -> int:
        return sum(1 for r in self.emulator.request_log if r.status == status)


def company_at(folder: Path, limits: EmulatorLimits = FAST) -> Iterator[Company]:
    emulator = PipedriveEmulator(clock=EmulatorClock(T0, frozen=True), limits=limits)
    sandbox = Sandbox(folder / "sandbox.db", requests_per_window=1000, window_seconds=1.0)
    with serve(emulator) as server:
        yield Company(emulator, server, sandbox, folder)
    sandbox.close()


@pytest.fixture
def company(tmp_path: Path) -> Iterator[Company]:
    yield from company_at(tmp_path)


def test_initial_then_incremental_sync_with_the_default_mapping(company: Company) -> None:
    ids = company.emulator.seed_persons(250)
    company.emulator.advance(1)
    first = company.sync()
    assert (first.status, first.created) == ("ok", 250), first.error
    person = company.emulator.person(ids[0])
    assert person is not None
    lead = stored(company.sandbox, str(ids[0]))
    assert lead["name"] == person["name"]
    primary = [e["value"] for e in person["emails"] if e["primary"]]
    assert lead.get("email") == (primary[0].lower() if primary else None)
    labelled = next(i for i in ids if (company.emulator.person(i) or {}).get("label_ids"))
    assert stored(company.sandbox, str(labelled))["tags"]
    assert set(["Hot", "Warm", "Cold", "Customer"]) >= set(
        stored(company.sandbox, str(labelled))["tags"]
    )
    with_org = next(i for i in ids if (company.emulator.person(i) or {}).get("org_id"))
    org = company.emulator.store.orgs[(company.emulator.person(with_org) or {})["org_id"]]
    owner = company.emulator.store.users[(company.emulator.person(with_org) or {})["owner_id"]]
    custom = stored(company.sandbox, str(with_org))["customFields"]
    assert (custom["organization"], custom["owner"]) == (org.name, owner.name)
    assert "organization_id" not in custom and "owner_id" not in custom

    company.emulator.advance(60)
    company.emulator.update_person(ids[3], name="Renamed Person")
    new = company.emulator.create_person("New Person", emails=["New.Lead@Example.com"])
    company.emulator.advance(1)
    second = company.sync()
    assert (second.status, second.created, second.updated) == ("ok", 1, 1), second.error
    assert stored(company.sandbox, str(ids[3]))["name"] == "Renamed Person"
    assert stored(company.sandbox, str(new["id"]))["email"] == "new.lead@example.com"
    lists = [r for r in company.emulator.request_log if r.path.startswith("/api/v2/persons")]
    assert all("api_token" not in r.path for r in lists)


def test_organization_and_owner_names_are_fetched_once_per_run(company: Company) -> None:
    ids = company.emulator.seed_persons(1_100)
    company.emulator.advance(1)
    first = company.sync()
    assert (first.status, first.created) == ("ok", 1_100), first.error
    log = company.emulator.request_log
    pages = sum(r.route == "persons.list" for r in log)
    asked = [
        org_id
        for r in log
        if r.route == "organizations.list"
        for org_id in parse_qs(urlsplit(r.path).query)["ids"][0].split(",")
    ]
    assert pages == 3 and asked  # (page after page of the same organizations)
    assert len(asked) == len(set(asked))  # each organization asked for once in the run
    assert sum(r.route == "users.list" for r in log) == 1
    named = [stored(company.sandbox, str(i))["customFields"] for i in ids]
    store = company.emulator.store
    assert {c["organization"] for c in named if "organization" in c} <= {
        o.name for o in store.orgs.values()
    }
    assert {c["owner"] for c in named} <= {u.name for u in store.users.values()}

    # A deleted organization and an owner Pipedrive no longer lists fall back to nothing.
    company.emulator.advance(60)
    person = company.emulator.create_person("Orphan", org_id=1, owner_id=3)
    company.emulator.delete_org(1)
    del store.users[3]  # Pipedrive deletes no users; stands for an id /v1/users leaves out
    company.emulator.advance(1)
    company.emulator.request_log.clear()
    second = company.sync()
    assert (second.status, second.created) == ("ok", 1), second.error
    custom = stored(company.sandbox, str(person["id"]))["customFields"]
    assert "organization" not in custom and "owner" not in custom
    routes = [r.route for r in company.emulator.request_log]
    assert (routes.count("organizations.list"), routes.count("users.list")) == (1, 1)


def test_ties_across_pages_and_changes_during_the_run(company: Company) -> None:
    ids = company.emulator.seed_persons(1_100, same_update_time=True)
    company.emulator.advance(1)
    first = company.sync()
    assert (first.status, first.created) == ("ok", 1_100), first.error
    pages = [r for r in company.emulator.request_log if r.route == "persons.list"]
    assert len(pages) == 3  # 500 + 500 + 100, all sharing one update_time

    company.emulator.advance(60)
    early, late = ids[10], ids[1_050]  # one already read, one not yet read when it changes

    class ChangeDuringRun:
        done = False

        @hookimpl
        def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead:
            if not self.done and record.id == str(ids[50]):
                self.done = True
                company.emulator.update_person(early, name="Early Change")
                company.emulator.update_person(late, name="Late Change")
            return lead

    for person_id in ids:  # a bulk edit: every person in one second
        company.emulator.update_person(person_id, last_name="Bulk")
    company.emulator.advance(1)
    during = company.sync(plugin=ChangeDuringRun())
    assert during.status == "ok", during.error
    # The late change moved its person past the window before its page was read.
    assert stored(company.sandbox, str(late))["name"] != "Late Change"
    company.emulator.advance(60)
    after = company.sync()
    assert after.status == "ok", after.error
    assert stored(company.sandbox, str(early))["name"] == "Early Change"
    assert stored(company.sandbox, str(late))["name"] == "Late Change"


def test_reconciliation_deletes_soft_deleted_and_merged_persons(company: Company) -> None:
    ids = company.emulator.seed_persons(40)
    company.emulator.advance(1)
    assert company.sync().status == "ok"
    company.emulator.advance(60)
    company.emulator.delete_person(ids[0])
    winner = company.emulator.merge_persons(ids[1], ids[2])
    company.emulator.advance(1)
    plain = company.sync()
    assert (plain.status, plain.deleted, plain.updated) == ("ok", 0, 1)  # no delete feed
    company.emulator.advance(60)
    reconciled = company.sync(connection="reconcile_deletes = true")
    assert (reconciled.status, reconciled.deleted) == ("ok", 2), reconciled.error
    assert company.sandbox.lead(str(ids[0])) is None and company.sandbox.lead(str(ids[1])) is None
    assert stored(company.sandbox, str(winner["id"]))["name"] == winner["name"]
    assert len(company.sandbox.leads()) == 38
    listing = [r for r in company.emulator.request_log if "sort_by=id" in r.path]
    assert len(listing) == 1  # 38 live ids: one page
    first_key = company.emulator.store.fields.custom("person")[0].key
    assert f"custom_fields={first_key}&" in listing[0].path + "&"  # one custom field, not all


def test_custom_fields_by_name_with_enum_and_set_labels(company: Company) -> None:
    region = company.emulator.add_person_field("Region", "enum", ["North", "South"])
    topics = company.emulator.add_person_field("Topics", "set", ["Billing", "Onboarding", "API"])
    options = {
        key: {o.label: o.id for o in company.emulator.store.fields.get("person", key).options}
        for key in (region, topics)
    }
    person = company.emulator.create_person(
        "Field Person",
        emails=["field@example.com"],
        custom_fields={
            region: options[region]["South"],
            topics: [options[topics]["Billing"], options[topics]["API"]],
        },
    )
    company.emulator.advance(1)
    report = company.sync(settings='custom_fields = ["Region", "topics"]')
    assert (report.status, report.created) == ("ok", 1), report.error
    custom = stored(company.sandbox, str(person["id"]))["customFields"]
    assert (custom["Region"], custom["Topics"]) == ("South", "Billing, API")
    assert region not in custom and topics not in custom

    wrong = company.sync(settings='custom_fields = ["Regoin"]')
    assert wrong.status == "failed"
    assert "'Regoin'" in (wrong.error or "") and "'Region'" in (wrong.error or "")


def test_leads_mode_joins_persons_and_follows_person_changes(company: Company) -> None:
    persons = company.emulator.seed_persons(3)
    leads = [
        company.emulator.create_lead(f"Deal {n}", person_id=person_id)["id"]
        for n, person_id in enumerate(persons)
    ]
    company.emulator.advance(1)
    first = company.sync(settings='object = "leads"')
    assert (first.status, first.created) == ("ok", 3), first.error
    person = company.emulator.person(persons[1]) or {}
    lead = stored(company.sandbox, leads[1])
    assert lead["name"] == person["name"]
    assert lead["customFields"]["title"] == "Deal 1"
    assert company.sandbox.lead(str(persons[1])) is None  # the lead's UUID, not the person id

    company.emulator.advance(60)
    company.emulator.update_person(persons[2], emails=["moved@example.com"])
    company.emulator.advance(1)
    followed = company.sync(settings='object = "leads"')
    assert (followed.status, followed.updated) == ("ok", 1), followed.error
    assert stored(company.sandbox, leads[2])["email"] == "moved@example.com"

    company.emulator.advance(60)
    company.emulator.archive_lead(leads[0])
    company.emulator.advance(1)
    archived = company.sync(settings='object = "leads"')
    assert (archived.status, archived.deleted) == ("ok", 1), archived.error
    assert company.sandbox.lead(leads[0]) is None


def test_spurious_429s_are_retried_and_the_run_completes(company: Company) -> None:
    company.emulator.seed_persons(600)
    company.emulator.advance(1)
    company.emulator.script("429", "429", path_contains="/api/v2/persons")
    report = company.sync()
    assert (report.status, report.created) == ("ok", 600), report.error
    assert company.log_count(429) == 2


def test_pacing_on_the_ratelimit_headers_meets_no_429(tmp_path: Path) -> None:
    limits = EmulatorLimits(burst_limit=4, burst_window_seconds=0.3)
    for company in company_at(tmp_path, limits):
        company.emulator.seed_persons(1_000)
        company.emulator.advance(1)
        report = company.sync(settings="page_size = 100\nrequests_per_two_seconds = 1000")
        assert (report.status, report.created) == ("ok", 1_000), report.error
        assert company.log_count(429) == 0
        assert company.log_count(200) >= 11  # fields and ten pages, four at a time


def test_daily_budget_spent_mid_run_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    # personFields (20), users (20), the organizations (10) and two pages (10 each) fit;
    # the third page does not.
    for company in company_at(tmp_path, EmulatorLimits(burst_limit=10_000, daily_budget=70)):
        company.emulator.seed_persons(1_200)
        company.emulator.advance(1)
        stopped = company.sync()
        assert stopped.status == "failed"
        assert "daily API token budget" in (stopped.error or "")
        assert stopped.created == 1_000
        assert company.log_count(429) == 0  # the spent budget was seen in the headers
        company.emulator.reset_limits()  # the server's midnight
        resumed = company.sync()
        assert (resumed.status, resumed.created) == ("ok", 200), resumed.error
        assert len(company.sandbox.leads()) == 1_200


def test_bad_token_says_what_to_fix_and_never_shows_the_token(
    company: Company, caplog: pytest.LogCaptureFixture
) -> None:
    company.emulator.seed_persons(1)
    caplog.set_level(logging.DEBUG)
    bad_token = "0000000000000000000000000000000000bad0dead"
    bad = company.sync(auth=f'api_token = "{bad_token}"')
    assert bad.status == "failed"
    assert "settings.api_token" in (bad.error or "") and "…dead" in (bad.error or "")
    assert "401" in (bad.error or "")
    assert bad_token not in caplog.text and bad_token not in (bad.error or "")
    assert DEFAULT_API_TOKEN not in caplog.text


def test_oauth_bearer_token_syncs(company: Company) -> None:
    company.emulator.seed_persons(5)
    company.emulator.advance(1)
    report = company.sync(auth=f'access_token = "{DEFAULT_OAUTH_TOKEN}"')
    assert (report.status, report.created) == ("ok", 5), report.error


def test_oauth_token_is_refreshed_when_it_expires_mid_run(company: Company) -> None:
    company.emulator.seed_persons(1_100)
    company.emulator.advance(1)

    class ExpireTheToken:
        done = False

        @hookimpl
        def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead:
            if not self.done:  # after the first page, Pipedrive's clock passes the hour
                self.done = True
                company.emulator.advance(3_600)
            return lead

    oauth = (
        f'client_id = "{DEFAULT_CLIENT_ID}"\nclient_secret = "{DEFAULT_CLIENT_SECRET}"\n'
        f'refresh_token = "{DEFAULT_REFRESH_TOKEN}"'
    )
    # No base_url: every API request goes to the api_domain of the token answer.
    endpoint = f'oauth_url = "{company.server.url}/oauth/token"'
    report = company.sync(plugin=ExpireTheToken(), auth=oauth, root=endpoint)
    assert (report.status, report.created) == ("ok", 1_100), report.error
    log = company.emulator.request_log
    refreshes = [r for r in log if r.route == "oauth.token" and r.status == 200]
    expired = [r for r in log if r.status == 401]
    assert (len(refreshes), len(expired)) == (2, 1)
    assert {r.auth for r in log if r.status == 200 and r.route != "oauth.token"} == {"oauth"}


def test_oauth_token_is_refreshed_before_it_expires() -> None:
    sent: list[str] = []

    def pipedrive(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/oauth/token":
            token = {"access_token": f"a{len(sent)}", "expires_in": 3599}
            return httpx.Response(200, json={**token, "api_domain": "https://acme.pipedrive.com"})
        assert request.url.host == "acme.pipedrive.com"
        return httpx.Response(200, json={"success": True, "data": []})

    settings = PipedriveSettings(
        client_id="app", client_secret="secret", refresh_token="refresh-1234"
    )
    clock = FakeClock()
    api = PipedriveApi(
        settings,
        ConnectorContext(connection="unit"),
        transport=httpx.MockTransport(pipedrive),
        clock=clock,
        sleep=clock.sleep,
    )
    api.get("/api/v2/persons")
    clock.advance(3_550)  # within a minute of the expiry: refreshed before the request
    api.get("/api/v2/persons")
    assert sent == ["/oauth/token", "/api/v2/persons", "/oauth/token", "/api/v2/persons"]
    api.close()


OAUTH_CLIENT_SECRET = "client-secret-0000000000"


def _oauth_api(pipedrive: Callable[[httpx.Request], httpx.Response]) -> PipedriveApi:
    """A PipedriveApi of an OAuth app (refresh token ``refresh-1234``) on a mock Pipedrive."""
    settings = PipedriveSettings(
        client_id="app", client_secret=OAUTH_CLIENT_SECRET, refresh_token="refresh-1234"
    )
    context = ConnectorContext(connection="unit")
    return PipedriveApi(settings, context, transport=httpx.MockTransport(pipedrive))


class OAuthPipedrive:
    """A mock Pipedrive whose token endpoint rotates refresh tokens (``refresh-1111``, …;
    unless ``rotate`` is false) and refuses the access tokens in ``revoked``; records what each
    request carried."""

    def __init__(self, revoked: set[str], *, rotate: bool = True) -> None:
        self.revoked = revoked
        self.rotate = rotate
        self.sent: list[tuple[str, str]] = []  # (path, refresh token or access token sent)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.sent.append(
                (request.url.path, parse_qs(request.content.decode())["refresh_token"][0])
            )
            n = sum(1 for path, _ in self.sent if path == "/oauth/token")
            token = {"access_token": f"access-{n}", "expires_in": 3599}
            if self.rotate:
                token["refresh_token"] = f"refresh-{n}{n}{n}{n}"
            return httpx.Response(200, json=token)
        bearer = request.headers["Authorization"].removeprefix("Bearer ")
        self.sent.append((request.url.path, bearer))
        if bearer in self.revoked:
            return httpx.Response(401, json={"success": False, "error": "unauthorized access"})
        return httpx.Response(200, json={"success": True, "data": []})


def test_a_401_gets_one_new_token_and_one_more_try() -> None:
    pipedrive = OAuthPipedrive(revoked={"access-1"})  # revoked before its expiry
    api = _oauth_api(pipedrive)
    assert api.get("/api/v2/persons")["success"] is True
    assert pipedrive.sent == [
        ("/oauth/token", "refresh-1234"),
        ("/api/v2/persons", "access-1"),
        ("/oauth/token", "refresh-1111"),  # the rotated refresh token
        ("/api/v2/persons", "access-2"),
    ]
    api.close()


@pytest.mark.parametrize("rotate", [True, False])
def test_a_token_refused_twice_is_a_clear_error_after_one_refresh(rotate: bool) -> None:
    pipedrive = OAuthPipedrive(revoked={"access-1", "access-2"}, rotate=rotate)
    api = _oauth_api(pipedrive)
    with pytest.raises(ConnectorError, match="HTTP 401") as refused:
        api.get("/api/v2/persons")
    assert [path for path, _ in pipedrive.sent] == [
        "/oauth/token",
        "/api/v2/persons",
        "/oauth/token",
        "/api/v2/persons",
    ]
    message = str(refused.value)
    # What was refused is the access token; the refresh token named is the configured one.
    rotated = ", rotated during this run" if rotate else ""
    assert (
        "refused the access token got with settings.refresh_token (the one ending in "
        f"…1234{rotated}) twice (HTTP 401 unauthorized access) on /api/v2/persons" in message
    )
    assert "2222" not in message and "1111" not in message
    secrets = ("refresh-1234", "refresh-2222", "access-1", "access-2", OAUTH_CLIENT_SECRET)
    assert not [secret for secret in secrets if secret in message]
    api.close()


def test_a_refused_refresh_says_what_to_fix_and_never_shows_a_secret() -> None:
    sent: list[str] = []

    def pipedrive(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(400, json={"success": False, "error": "invalid_grant"})

    api = _oauth_api(pipedrive)
    with pytest.raises(ConnectorError, match="refused the OAuth refresh") as refused:
        api.get("/api/v2/persons")
    message = str(refused.value)
    assert "HTTP 400 invalid_grant" in message and "…1234" in message
    assert "refresh-1234" not in message and OAUTH_CLIENT_SECRET not in message
    assert sent == ["/oauth/token"]  # no API request without a token
    api.close()


def _api(answer: httpx.Response) -> PipedriveApi:
    settings = PipedriveSettings(api_token="t" * 40, company_domain="acme")
    context = ConnectorContext(connection="unit")
    return PipedriveApi(settings, context, transport=httpx.MockTransport(lambda _: answer))


def test_an_html_403_block_is_a_clear_error() -> None:
    page = "<html><title>Attention Required! | Cloudflare</title></html>"
    api = _api(httpx.Response(403, html=page))
    with pytest.raises(ConnectorError, match="blocked the token"):
        api.get("/api/v2/persons")


def test_check_proves_the_token_and_warns_on_a_low_budget(tmp_path: Path) -> None:
    for company in company_at(tmp_path, EmulatorLimits(burst_limit=10_000, daily_budget=300)):
        settings = PipedriveSettings(
            api_token=DEFAULT_API_TOKEN,
            base_url=company.server.url,
        )
        connector = PipedriveConnector(settings, ConnectorContext(connection="check"))
        warnings = connector.check()  # 10 + 20 + 20 of 300: no warning
        assert warnings == []
        assert [r.route for r in company.emulator.request_log] == [
            "persons.list",
            "users.list",
            "personFields",
        ]
        company.emulator.limiter.spent = 250
        assert "nearly spent" in connector.check()[0]
        connector.close()


def test_check_fails_on_a_token_that_cannot_read_the_owners(tmp_path: Path) -> None:
    for company in company_at(tmp_path):
        company.emulator.add_oauth_token("contacts-only", scopes=["contacts:read"])
        settings = PipedriveSettings(access_token="contacts-only", base_url=company.server.url)
        connector = PipedriveConnector(settings, ConnectorContext(connection="check"))
        with pytest.raises(ConnectorError, match=r"forbade /v1/users .*users:read"):
            connector.check()
        connector.close()
