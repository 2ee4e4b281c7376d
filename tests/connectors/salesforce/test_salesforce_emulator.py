"""Conformance of the Salesforce emulator, driven by simple-salesforce through LoopbackSession."""

from __future__ import annotations

import base64
import json
import random
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import phonenumbers
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.bulk2 import SFBulk2Handler, SFBulk2Type
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from naturalead_sync_salesforce.emulator import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    Clock,
    LoopbackServer,
    SalesforceEmulator,
    normalize_id,
    serve,
    sfid18,
)
from naturalead_sync_salesforce.emulator.evaluate import key_range
from naturalead_sync_salesforce.emulator.soql import parse
from naturalead_sync_salesforce.testing import LoopbackSession
from support import spawn

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FIELDS = "Id, FirstName, LastName, Email, Phone, SystemModstamp"


def soql_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def cursor_soql(stamp: datetime, last_id: str, limit: int | None = None) -> str:
    t = soql_time(stamp)
    where = f"SystemModstamp > {t} OR (SystemModstamp = {t} AND Id > '{last_id}')"
    tail = f" LIMIT {limit}" if limit else ""
    return f"SELECT {FIELDS} FROM Lead WHERE {where} ORDER BY SystemModstamp, Id{tail}"


@pytest.fixture
def emulator() -> SalesforceEmulator:
    return SalesforceEmulator(Clock(START, frozen=True))


@pytest.fixture
def server(emulator: SalesforceEmulator) -> Iterator[LoopbackServer]:
    with serve(emulator) as running:
        yield running


@pytest.fixture
def sf(emulator: SalesforceEmulator, server: LoopbackServer) -> Salesforce:
    """A client on a token minted without a login (session id + instance URL)."""
    token = emulator.credentials.issue_token()
    return Salesforce(
        instance_url=server.url, session_id=token, session=LoopbackSession(server.url)
    )


def login(server: LoopbackServer, **kwargs: Any) -> Salesforce:
    return Salesforce(session=LoopbackSession(server.url), **kwargs)


def first_error(error: Any) -> dict[str, Any]:
    """The first entry of the JSON error list a simple-salesforce exception carries."""
    content: list[dict[str, Any]] = error.value.content
    return content[0]


def error_code(error: Any) -> str:
    return str(first_error(error)["errorCode"])


def sobject(sf: Salesforce, name: str = "Lead") -> SFType:
    """``sf.Lead`` typed (simple-salesforce's ``__getattr__`` returns a union)."""
    api = getattr(sf, name)
    assert isinstance(api, SFType)
    return api


def bulk2(sf: Salesforce) -> SFBulk2Type:
    """``sf.bulk2.Lead`` typed."""
    handler = sf.bulk2
    assert isinstance(handler, SFBulk2Handler)
    return handler.Lead


# -- ids, transport, seed data ----------------------------------------------------------------


def test_ids_carry_the_documented_checksum() -> None:
    assert sfid18("00QE000000Ft9Ah") == "00QE000000Ft9AhMAJ"
    assert sfid18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert normalize_id("00QE000000Ft9Ah") == "00QE000000Ft9AhMAJ"
    assert normalize_id("00QE000000Ft9AhMAA") is None
    assert normalize_id("not an id") is None


def test_loopback_session_routes_https_to_the_emulator(server: LoopbackServer) -> None:
    session = LoopbackSession(server.url)
    assert session.get("https://acme.my.salesforce.com/_emulator/stats", timeout=5).ok
    assert session.get(f"{server.url}/_emulator/stats", timeout=5).ok
    assert LoopbackSession(server.url.removeprefix("http://")).netloc == session.netloc
    assert session.trust_env is False
    with pytest.raises(requests.ConnectionError):  # plain http goes where it says
        session.get("http://127.0.0.1:9/", timeout=5)


def test_seeded_leads_are_realistic_unique_and_valid(emulator: SalesforceEmulator) -> None:
    ids = emulator.seed_leads(300)
    leads = emulator.records("Lead")
    assert [lead["Id"] for lead in leads] == ids
    phones = [lead["Phone"] for lead in leads]
    assert len(set(phones)) == 300
    assert phones[0] == "+14155550000"
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in phones)
    assert [lead["Email"] for lead in leads[:2]] == ["lead1@example.com", "lead2@example.com"]
    assert all(lead["Company"] and lead["Status"] and lead["LeadSource"] for lead in leads)
    assert all(lead["Title"] for lead in leads)
    stamps = [lead["SystemModstamp"] for lead in leads]
    assert stamps[-1] == START and stamps[0] == START - timedelta(seconds=299)
    assert emulator.seed_contacts(2) and emulator.records("Contact")[1]["Phone"] == "+14155550301"
    same = SalesforceEmulator(Clock(START, frozen=True), seed=0)
    same.seed_leads(300)
    assert [lead["LastName"] for lead in same.records("Lead")] == [
        lead["LastName"] for lead in leads
    ]


# -- logins -----------------------------------------------------------------------------------


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_every_login_flow_gives_a_working_session(
    emulator: SalesforceEmulator, server: LoopbackServer
) -> None:
    emulator.seed_leads(3)
    private, public = _rsa_pair()
    emulator.credentials.add_connected_app(
        DEFAULT_CONSUMER_KEY,
        DEFAULT_CONSUMER_SECRET,
        jwt_public_key=public,
        run_as=DEFAULT_USERNAME,
    )
    user = {"username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}
    app = {"consumer_key": DEFAULT_CONSUMER_KEY, "consumer_secret": DEFAULT_CONSUMER_SECRET}
    flows: dict[str, dict[str, Any]] = {
        "soap": {**user, "security_token": DEFAULT_SECURITY_TOKEN, "domain": "test"},
        "ipfilter": {**user, "organizationId": emulator.org_id[:15]},
        "oauth password": {**user, **app},
        "client credentials": {**app, "domain": "acme.my"},
        "jwt": {
            "username": DEFAULT_USERNAME,
            "consumer_key": DEFAULT_CONSUMER_KEY,
            "privatekey": private,
        },
    }
    host = server.url.removeprefix("http://")
    for name, kwargs in flows.items():
        sf = login(server, **kwargs)
        assert sf.sf_instance == host, name
        assert sf.query("SELECT Id FROM Lead")["totalSize"] == 3, name
    assert [r.endpoint for r in emulator.request_log].count("login") == len(flows)


def test_bad_credentials_fail_like_salesforce(
    emulator: SalesforceEmulator, server: LoopbackServer
) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as soap:
        login(server, username=DEFAULT_USERNAME, password="wrong", security_token="x")
    assert soap.value.code == "INVALID_LOGIN"
    with pytest.raises(SalesforceAuthenticationFailed) as retired:
        login(
            server,
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            security_token=DEFAULT_SECURITY_TOKEN,
            version="65.0",
        )
    assert retired.value.code == "UNSUPPORTED_API_VERSION"
    with pytest.raises(SalesforceAuthenticationFailed) as oauth:
        login(
            server,
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            consumer_key=DEFAULT_CONSUMER_KEY,
            consumer_secret="wrong",
        )
    assert oauth.value.code == "invalid_client"
    private, _ = _rsa_pair()  # no public key registered for the app
    with pytest.raises(SalesforceAuthenticationFailed) as jwt:
        login(server, username=DEFAULT_USERNAME, consumer_key="unknown", privatekey=private)
    assert jwt.value.code == "invalid_client_id"
    emulator.credentials.add_user("plain@example.com", "pw")  # no token: SOAP without one
    assert login(server, username="plain@example.com", password="pw", security_token="")
    with pytest.raises(SalesforceAuthenticationFailed):  # the token is needed
        login(server, username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD, security_token="")
    with pytest.raises(SalesforceAuthenticationFailed):  # another org
        login(server, username=DEFAULT_USERNAME, password=DEFAULT_PASSWORD, organizationId="x")


def test_expired_sessions_are_refreshed_or_raised(
    emulator: SalesforceEmulator, server: LoopbackServer, sf: Salesforce
) -> None:
    emulator.seed_leads(2)
    soap = login(
        server,
        username=DEFAULT_USERNAME,
        password=DEFAULT_PASSWORD,
        security_token=DEFAULT_SECURITY_TOKEN,
    )
    emulator.credentials.expire_sessions()
    assert soap.query("SELECT Id FROM Lead")["totalSize"] == 2  # re-logged in
    assert [(r.endpoint, r.status) for r in list(emulator.request_log)[-3:]] == [
        ("query", 401),
        ("login", 200),
        ("query", 200),
    ]
    with pytest.raises(SalesforceExpiredSession) as direct:  # direct auth cannot refresh
        sf.query("SELECT Id FROM Lead")
    assert direct.value.status == 401 and error_code(direct) == "INVALID_SESSION_ID"

    emulator.script("expired", endpoint="query", times=4)
    with pytest.raises(SalesforceExpiredSession):
        soap.query("SELECT Id FROM Lead")
    assert [r.fault for r in emulator.request_log].count("expired") == 4

    emulator.credentials.token_lifetime = 60
    fresh = emulator.credentials.issue_token()
    emulator.advance(61)
    assert emulator.credentials.session(fresh) is None


# -- query ------------------------------------------------------------------------------------


def test_query_records_have_the_rest_shape(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    lead_id = emulator.create(
        "Lead", LastName="Doe", FirstName="Jane", Company="Acme", City="Paris", AnnualRevenue=1e6
    )
    result = sf.query(
        "select id, name, email, isdeleted, systemmodstamp, address, annualrevenue, "
        f"DoNotCall FROM lead WHERE Id = '{lead_id[:15]}'"
    )
    assert result["totalSize"] == 1 and result["done"] is True
    assert "nextRecordsUrl" not in result
    record = result["records"][0]
    assert list(record) == [
        "attributes",
        "Id",
        "Name",
        "Email",
        "IsDeleted",
        "SystemModstamp",
        "Address",
        "AnnualRevenue",
        "DoNotCall",
    ]
    assert record["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v59.0/sobjects/Lead/{lead_id}",
    }
    assert record["Name"] == "Jane Doe" and record["Email"] is None
    assert record["IsDeleted"] is False and record["DoNotCall"] is False
    assert record["SystemModstamp"] == "2024-05-01T12:00:00.000+0000"
    assert datetime.fromisoformat(record["SystemModstamp"]) == START
    assert record["Address"]["city"] == "Paris" and record["Address"]["street"] is None
    assert record["AnnualRevenue"] == 1_000_000.0


def test_paging_follows_next_records_url_with_batch_size(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    ids = emulator.seed_leads(450)
    headers = {"Sforce-Query-Options": "batchSize=200"}
    first = sf.query("SELECT Id FROM Lead ORDER BY SystemModstamp", headers=headers)
    assert first["totalSize"] == 450 and len(first["records"]) == 200
    locator_path = first["nextRecordsUrl"]
    assert locator_path.startswith("/services/data/v59.0/query/01g")
    assert locator_path.endswith("-200")
    rows = list(sf.query_all_iter("SELECT Id FROM Lead ORDER BY SystemModstamp", headers=headers))
    assert [r["Id"] for r in rows] == ids
    pages = [r.path for r in emulator.request_log if r.endpoint == "query_more"]
    assert [p.rsplit("-", 1)[1] for p in pages] == ["200", "400"]
    small = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(small["records"]) == 200  # clamped to the minimum
    default = SalesforceEmulator(Clock(START, frozen=True))
    default.seed_leads(2001)
    with serve(default) as other:
        client = Salesforce(
            instance_url=other.url,
            session_id=default.credentials.issue_token(),
            session=LoopbackSession(other.url),
        )
        page = client.query("SELECT Id FROM Lead", include_deleted=True)
        assert len(page["records"]) == 2000
        assert page["nextRecordsUrl"].endswith("-2000")
        assert (
            len(client.query_more(page["nextRecordsUrl"], identifier_is_url=True)["records"]) == 1
        )


def test_a_cursor_keeps_the_result_set_of_its_first_call(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    ids = emulator.seed_leads(450)
    first = sf.query(
        "SELECT Id, Email FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"}
    )
    emulator.advance(5)
    emulator.update(ids[300], Email="changed@example.com")
    emulator.delete(ids[399])
    emulator.create("Lead", LastName="New", Company="Late Inc")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["totalSize"] == 450 and len(second["records"]) == 200
    emails = {r["Id"]: r["Email"] for r in second["records"]}
    assert emails[ids[300]] == "lead301@example.com" and ids[399] in emails
    again = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)  # re-readable
    assert again["records"] == second["records"]
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.query_more("/services/data/v59.0/query/01gDn0000000099AAA-200", identifier_is_url=True)
    assert error_code(bad) == "INVALID_QUERY_LOCATOR"
    emulator.advance(2 * 86400 + 1)
    with pytest.raises(SalesforceMalformedRequest):
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)


def test_the_compound_cursor_pages_through_ties(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    emulator.seed_leads(50)
    emulator.advance(10)
    tied = emulator.seed_leads(450, same_stamp=True)
    stamp, last_id, seen = START - timedelta(days=1), "", []
    while True:
        page = sf.query(cursor_soql(stamp, last_id, limit=200))["records"]
        if not page:
            break
        seen += [r["Id"] for r in page]
        stamp = datetime.fromisoformat(page[-1]["SystemModstamp"])
        last_id = page[-1]["Id"]
    assert len(seen) == 500 == len(set(seen)) and seen[-450:] == tied
    strict = (
        f"SELECT Id FROM Lead WHERE SystemModstamp > {soql_time(START + timedelta(seconds=10))}"
    )
    assert sf.query(strict)["totalSize"] == 0  # a strict '>' cursor loses the ties
    t = soql_time(START - timedelta(days=1))
    upper = (
        f"SELECT Id FROM Lead WHERE (SystemModstamp > {t} OR (SystemModstamp = {t} AND Id > ''))"
        f" AND SystemModstamp <= {soql_time(START)} ORDER BY SystemModstamp, Id"
    )
    assert key_range(parse(upper).where).exact
    assert sf.query(upper)["totalSize"] == 50  # the upper bound leaves the later batch out


def test_cursor_plan_matches_a_full_scan(emulator: SalesforceEmulator) -> None:
    rng = random.Random(7)
    for _ in range(6):
        emulator.seed_leads(rng.randint(1, 40), same_stamp=rng.random() < 0.5)
        emulator.advance(rng.choice((0, 1, 3)))
    for record_id in rng.sample([r["Id"] for r in emulator.records("Lead")], 20):
        emulator.delete(record_id)
    everything = emulator.records("Lead", include_deleted=True)
    keys = [(r["SystemModstamp"], r["Id"]) for r in everything]
    for _ in range(40):
        stamp, last_id = rng.choice(keys)
        stamp += timedelta(seconds=rng.choice((0, 0, -1, 1)))
        query = parse(cursor_soql(stamp, last_id))
        assert key_range(query.where).exact
        for deleted in (False, True):
            got = [r["Id"] for r in emulator.select(query, include_deleted=deleted)]
            want = [
                r["Id"]
                for r in everything
                if (r["SystemModstamp"], r["Id"]) > (stamp, last_id)
                and (deleted or not r["IsDeleted"])
            ]
            assert got == want


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("LastName = 'doe'", ["a", "b"]),
        ("LastName != 'Doe'", ["c", "d"]),
        ("Email = null", ["c", "d"]),
        ("Email != null AND DoNotCall = true", ["b"]),
        ("NOT Email = null", ["a", "b"]),
        ("Company IN ('Acme', 'globex')", ["a", "c"]),
        ("Company NOT IN ('Acme')", ["b", "c", "d"]),
        ("Title LIKE 'vp%'", ["a", "d"]),
        ("Title LIKE '_EO'", ["b"]),
        ("NumberOfEmployees >= 50", ["b", "c"]),
        ("AnnualRevenue < 10.5", ["a"]),
        ("ConvertedDate = 2000-01-02", []),
        ("(LastName = 'Doe' OR Company = 'Globex') AND DoNotCall = false", ["a", "c"]),
        ("CreatedDate >= 2024-05-01T12:00:02+00:00", ["c", "d"]),
        ("CreatedDate <= 2024-05-01T14:00:01.000+02:00", ["a", "b"]),
    ],
)
def test_soql_where_semantics(
    emulator: SalesforceEmulator, where: str, expected: list[str]
) -> None:
    people: dict[str, dict[str, Any]] = {
        "a": {"LastName": "Doe", "Company": "Acme", "Email": "a@x.io", "Title": "VP Sales"},
        "b": {"LastName": "DOE", "Company": "Initech", "Email": "b@x.io", "Title": "CEO"},
        "c": {"LastName": "Roe", "Company": "Globex", "Title": "CTO", "NumberOfEmployees": 50},
        "d": {"LastName": "Poe", "Company": "Hooli", "Title": "vp ops"},
    }
    people["a"]["AnnualRevenue"] = 10.0
    people["b"].update(DoNotCall=True, NumberOfEmployees=500)
    names = {}
    for name, fields in people.items():
        names[emulator.create("Lead", **fields)] = name
        emulator.advance(1)
    query = parse(f"SELECT Id FROM Lead WHERE {where} ORDER BY CreatedDate")
    assert [names[r["Id"]] for r in emulator.select(query, include_deleted=False)] == expected


def test_soql_order_limit_offset_and_count(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    for last, employees in (("b", 5), ("A", None), ("c", 50)):
        emulator.create("Lead", LastName=last, Company="X", NumberOfEmployees=employees)

    def names(soql: str) -> list[str]:
        return [r["LastName"] for r in sf.query(soql)["records"]]

    assert names("SELECT LastName FROM Lead ORDER BY LastName") == ["A", "b", "c"]
    assert names("SELECT LastName FROM Lead ORDER BY LastName DESC LIMIT 2") == ["c", "b"]
    assert names("SELECT LastName FROM Lead ORDER BY NumberOfEmployees DESC") == ["A", "c", "b"]
    nulls_last = "SELECT LastName FROM Lead ORDER BY NumberOfEmployees ASC NULLS LAST"
    assert names(nulls_last) == ["b", "c", "A"]
    assert names("SELECT LastName FROM Lead ORDER BY LastName LIMIT 1 OFFSET 1") == ["b"]
    count = sf.query("SELECT COUNT() FROM Lead WHERE NumberOfEmployees > 1")
    assert count == {"totalSize": 2, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        (
            "SELECT Id, Foo FROM Lead",
            "INVALID_FIELD",
            "ERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Lead'",
        ),
        ("SELECT Id FROM Widget", "INVALID_TYPE", "sObject type 'Widget' is not supported"),
        ("SELECT Id FRM Lead", "MALFORMED_QUERY", "unexpected token: 'FRM'"),
        ("SELECT Id FROM Lead WHERE A = 1 AND B = 2 OR C = 3", "INVALID_FIELD", "'A'"),
        (
            "SELECT Id FROM Lead WHERE LastName = 'a' AND Company = 'b' OR Email = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        (
            "SELECT Id FROM Lead WHERE SystemModstamp > '2024-05-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_FIELD", "must be of type string"),
        ("SELECT Id FROM Lead WHERE IsDeleted > true", "INVALID_QUERY_FILTER_OPERATOR", ""),
        ("SELECT Id, Id FROM Lead", "MALFORMED_QUERY", "duplicate field selected: Id"),
        ("SELECT Id FROM Lead WHERE Email = 'unterminated", "MALFORMED_QUERY", "unexpected"),
        ("SELECT Id FROM Lead OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
    ],
)
def test_query_errors_surface_as_simple_salesforce_exceptions(
    sf: Salesforce, soql: str, code: str, fragment: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query(soql)
    assert error.value.status == 400
    assert error_code(error) == code
    assert fragment in first_error(error)["message"]


# -- deletes, merges, conversions, replication ------------------------------------------------


def test_query_all_sees_the_recycle_bin_and_merges(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    a, b, c, d, e = emulator.seed_leads(5)
    emulator.advance(60)
    emulator.delete(a)
    emulator.merge(b, c)
    emulator.hard_delete(d)
    converted = emulator.convert(e)
    soql = "SELECT Id, IsDeleted, MasterRecordId, IsConverted, ConvertedDate FROM Lead"
    live = {r["Id"]: r for r in sf.query(soql)["records"]}
    everything = {r["Id"]: r for r in sf.query_all(soql, include_deleted=True)["records"]}
    assert set(live) == {b, e} and set(everything) == {a, b, c, e}
    assert everything[a]["IsDeleted"] is True and everything[a]["MasterRecordId"] is None
    assert everything[c]["IsDeleted"] is True and everything[c]["MasterRecordId"] == b
    assert live[e]["IsConverted"] is True and live[e]["ConvertedDate"] == "2024-05-01"
    contact = emulator.get(str(converted["ContactId"]))
    assert contact is not None and contact["AccountId"] == converted["AccountId"]
    assert str(converted["AccountId"]).startswith("001")
    assert str(converted["OpportunityId"]).startswith("006")
    stamps = {r["Id"]: r["SystemModstamp"] for r in emulator.records("Lead", include_deleted=True)}
    assert stamps[a] == stamps[b] == stamps[e] == START + timedelta(seconds=60)
    emulator.undelete(a)
    assert a in {r["Id"] for r in sf.query(soql)["records"]}
    assert emulator.empty_recycle_bin() == [c]
    emulator.delete(b)
    with pytest.raises(ValueError, match="recycle bin"):
        emulator.update(b, LastName="x")


def test_stamp_hooks(emulator: SalesforceEmulator) -> None:
    (lead,) = emulator.seed_leads(1)
    emulator.advance(30)
    emulator.system_update(lead, Rating="Hot")
    after = emulator.get(lead)
    assert after is not None and after["Rating"] == "Hot"
    assert after["SystemModstamp"] == START + timedelta(seconds=30)
    assert after["LastModifiedDate"] == START
    emulator.advance(30)
    emulator.formula_change(lead, Score__c=99.0)
    formula = emulator.get(lead)
    assert formula is not None and formula["Score__c"] == 99.0
    assert formula["SystemModstamp"] == START + timedelta(seconds=30)
    late = emulator.late_commit("Lead", START - timedelta(minutes=5), LastName="Late", Company="X")
    late_record = emulator.get(late)
    assert late_record is not None and late_record["SystemModstamp"] == START - timedelta(minutes=5)
    emulator.late_commit(lead, START + timedelta(seconds=10), Title="Boss")
    moved = emulator.get(lead)
    assert moved is not None and moved["LastModifiedDate"] == START + timedelta(seconds=10)
    with pytest.raises(ValueError, match="not writable"):
        emulator.update(lead, SystemModstamp=START)
    with pytest.raises(ValueError, match="No such column"):
        emulator.update(lead, Bogus=1)
    with pytest.raises(ValueError, match="takes a int"):
        emulator.update(lead, NumberOfEmployees="many")
    with pytest.raises(ValueError, match="Required fields"):
        emulator.create("Lead", LastName="NoCompany", Status=None)
    with pytest.raises(KeyError):
        emulator.update("00QDn0000009999AAA", LastName="x")


def test_get_deleted_and_updated(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    ids = emulator.seed_leads(4)
    emulator.advance(120)  # 12:02
    emulator.delete(ids[0])
    emulator.advance(60)  # 12:03
    emulator.hard_delete(ids[1])
    emulator.update(ids[2], Title="Changed")
    emulator.advance(90)  # 12:04:30
    deleted = sobject(sf).deleted(START, emulator.now())
    assert deleted["deletedRecords"] == [
        {"id": ids[0], "deletedDate": "2024-05-01T12:02:00.000+0000"},
        {"id": ids[1], "deletedDate": "2024-05-01T12:03:00.000+0000"},
    ]
    assert deleted["latestDateCovered"] == "2024-05-01T12:04:00.000+0000"
    assert deleted["earliestDateAvailable"] == "2024-04-16T12:04:00.000+0000"
    window = sobject(sf).deleted(
        START + timedelta(minutes=3), START + timedelta(minutes=4, seconds=59)
    )
    assert [d["id"] for d in window["deletedRecords"]] == [ids[1]]
    updated = sobject(sf).updated(START + timedelta(minutes=1), emulator.now())
    assert updated == {"ids": [ids[2]], "latestDateCovered": "2024-05-01T12:04:00.000+0000"}

    bad_windows = [
        (START, START + timedelta(seconds=30)),  # shorter than a minute
        (START - timedelta(days=16), START),  # older than 15 days
        (START + timedelta(hours=1), START + timedelta(hours=2)),  # in the future
        (datetime(2024, 5, 1), datetime(2024, 5, 2)),  # naive: '...:00:' from simple-salesforce
    ]
    for start, end in bad_windows:
        with pytest.raises(SalesforceMalformedRequest) as error:
            sobject(sf).deleted(start, end)
        assert error_code(error) == "INVALID_REPLICATION_DATE", (start, end)
    assert sobject(sf).updated(START - timedelta(days=29), START)["ids"] == []
    assert emulator.purge_delete_log(START + timedelta(minutes=3)) == 1
    with pytest.raises(SalesforceMalformedRequest):
        sobject(sf).deleted(START, emulator.now())
    after_purge = sobject(sf).deleted(START + timedelta(minutes=3), emulator.now())
    assert [d["id"] for d in after_purge["deletedRecords"]] == [ids[1]]
    assert after_purge["earliestDateAvailable"] == "2024-05-01T12:03:00.000+0000"


def test_replication_id_limit() -> None:
    emulator = SalesforceEmulator(Clock(START, frozen=True), replication_id_limit=2)
    emulator.seed_leads(3)
    emulator.advance(120)
    with serve(emulator) as running:
        client = Salesforce(
            instance_url=running.url,
            session_id=emulator.credentials.issue_token(),
            session=LoopbackSession(running.url),
        )
        with pytest.raises(SalesforceMalformedRequest) as error:
            sobject(client).updated(START - timedelta(hours=1), emulator.now())
    assert error_code(error) == "EXCEEDED_ID_LIMIT"


# -- sObjects, describe, limits, versions -----------------------------------------------------


def test_sobject_get_describe_and_not_found(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    (lead,) = emulator.seed_leads(1)
    record = sobject(sf).get(lead)
    assert record["Id"] == lead and record["Email"] == "lead1@example.com"
    assert record["attributes"]["type"] == "Lead" and "Address" in record
    assert sobject(sf).get(lead[:15])["Id"] == lead
    assert list(sobject(sf).get(lead, params={"fields": "Email,Phone"})) == [
        "attributes",
        "Phone",
        "Email",
    ]
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sobject(sf).get("00QDn0000009999AAA")
    assert error_code(missing) == "NOT_FOUND"
    emulator.delete(lead)
    with pytest.raises(SalesforceResourceNotFound) as deleted:
        sobject(sf).get(lead)
    assert error_code(deleted) == "ENTITY_IS_DELETED"
    fields = {f["name"]: f for f in sobject(sf).describe()["fields"]}
    assert fields["Score__c"]["calculated"] is True and fields["Score__c"]["custom"] is True
    assert fields["Street"]["compoundFieldName"] == "Address"
    assert fields["SystemModstamp"]["type"] == "datetime"
    assert fields["LastName"]["nillable"] is False
    assert sobject(sf, "Contact").metadata()["objectDescribe"]["keyPrefix"] == "003"
    listing = sf.describe()
    assert listing is not None
    assert {s["name"] for s in listing["sobjects"]} == {"Lead", "Contact"}


def test_api_usage_and_request_limit(server: LoopbackServer, emulator: SalesforceEmulator) -> None:
    emulator.api_limit = 3
    client = Salesforce(
        instance_url=server.url,
        session_id=emulator.credentials.issue_token(),
        session=LoopbackSession(server.url),
    )
    client.query("SELECT Id FROM Lead")
    assert client.api_usage["api-usage"].used == 1 and client.api_usage["api-usage"].total == 3
    assert client.limits()["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
    client.query("SELECT Id FROM Lead")
    with pytest.raises(SalesforceRefusedRequest) as refused:
        client.query("SELECT Id FROM Lead")
    assert refused.value.status == 403 and error_code(refused) == "REQUEST_LIMIT_EXCEEDED"
    emulator.advance(86400)  # the rolling day moves on
    assert client.query("SELECT Id FROM Lead")["totalSize"] == 0
    assert emulator.api_usage == (1, 3)
    emulator.set_api_usage(3)
    with pytest.raises(SalesforceRefusedRequest):
        client.limits()


def test_versions_routes_and_methods(server: LoopbackServer, emulator: SalesforceEmulator) -> None:
    http = LoopbackSession(server.url)
    listing = http.get("https://login.salesforce.com/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in listing
    assert listing[0]["label"] == "Summer '14" and listing[-1]["version"] == "66.0"
    auth = {"Authorization": f"OAuth {emulator.credentials.issue_token()}"}
    base = "https://acme.my.salesforce.com/services/data"
    assert http.get(f"{base}/v30.0/limits", headers=auth).status_code == 410
    assert http.get(f"{base}/v99.0/limits", headers=auth).status_code == 404
    assert http.get(f"{base}/v62.0/limits", headers=auth).status_code == 200
    assert http.get(f"{base}/v62.0/query", params={"q": "SELECT Id FROM Lead"}, headers=auth).ok
    wrong = http.post(f"{base}/v62.0/limits/", headers=auth)
    assert wrong.status_code == 405 and wrong.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert http.get(f"{base}/v62.0/nothing", headers=auth).json()[0]["errorCode"] == "NOT_FOUND"
    assert http.get(f"{base}/v62.0/limits").status_code == 401


# -- faults -----------------------------------------------------------------------------------


def test_transport_faults(
    emulator: SalesforceEmulator, server: LoopbackServer, sf: Salesforce
) -> None:
    emulator.script("ok", "500", endpoint="query")
    assert sf.query("SELECT Id FROM Lead")["done"] is True
    with pytest.raises(SalesforceGeneralError) as error:
        sf.query("SELECT Id FROM Lead")
    assert error.value.status == 500 and error_code(error) == "UNKNOWN_EXCEPTION"
    emulator.script("503", "drop")
    with pytest.raises(SalesforceGeneralError) as unavailable:
        sf.limits()
    assert unavailable.value.status == 503
    with pytest.raises(requests.ConnectionError):
        sobject(sf).describe()
    emulator.script("slow:0.6", endpoint="limits")
    with pytest.raises(requests.ReadTimeout):
        sf.limits(timeout=0.1)
    emulator.script("quota")
    with pytest.raises(SalesforceRefusedRequest):
        sf.limits()
    emulator.script("query_timeout", endpoint="query")
    with pytest.raises(SalesforceMalformedRequest) as timeout:
        sf.query("SELECT Id FROM Lead")
    assert error_code(timeout) == "QUERY_TIMEOUT"
    emulator.script("503", endpoint="login")
    with pytest.raises(SalesforceAuthenticationFailed) as login_error:
        login(
            server,
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            security_token=DEFAULT_SECURITY_TOKEN,
        )
    assert login_error.value.code == 503
    assert emulator.stats()["faults_pending"] == {}
    with pytest.raises(ValueError, match="not one of"):
        emulator.script("duplicate", endpoint="deleted")
    with pytest.raises(ValueError, match="unknown endpoint"):
        emulator.script("500", endpoint="nowhere")


@pytest.mark.parametrize("fault", ["duplicate", "reorder", "short"])
def test_page_boundary_faults(emulator: SalesforceEmulator, sf: Salesforce, fault: str) -> None:
    ids = emulator.seed_leads(450)
    emulator.script(fault, endpoint="query")
    headers = {"Sforce-Query-Options": "batchSize=200"}
    rows = [r["Id"] for r in sf.query_all_iter("SELECT Id FROM Lead", headers=headers)]
    if fault == "duplicate":
        assert rows == [*ids[:200], ids[199], *ids[200:]]
    elif fault == "reorder":
        assert rows == [*ids[:199], ids[200], ids[199], *ids[201:]]
    else:
        assert rows == ids
        pages = [
            r.path.rsplit("-", 1)[-1] for r in emulator.request_log if r.endpoint == "query_more"
        ]
        assert pages == ["100", "300"]


# -- Bulk API 2.0 -----------------------------------------------------------------------------


def test_bulk2_query_in_chunks(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    ids = emulator.seed_leads(5)
    emulator.delete(ids[0])
    soql = "SELECT Id, Email, IsDeleted, SystemModstamp, NumberOfEmployees FROM Lead"
    chunks = [str(chunk) for chunk in bulk2(sf).query(soql, max_records=2, wait=0)]
    assert len(chunks) == 2
    assert chunks[0].splitlines()[0] == "Id,Email,IsDeleted,SystemModstamp,NumberOfEmployees"
    rows = [line.split(",") for chunk in chunks for line in chunk.splitlines()[1:]]
    assert [r[0] for r in rows] == ids[1:]
    assert rows[0][2] == "false" and rows[0][3] == "2024-05-01T11:59:57.000Z"
    everything = "".join(bulk2(sf).query_all("SELECT Id, IsDeleted FROM Lead", wait=0))
    assert f"{ids[0]},true" in everything
    emulator.script("job_failed", endpoint="bulk")
    with pytest.raises(SalesforceOperationError):
        list(bulk2(sf).query("SELECT Id FROM Lead", wait=0))
    with pytest.raises(SalesforceMalformedRequest) as compound:
        list(bulk2(sf).query("SELECT Id, Address FROM Lead", wait=0))
    assert error_code(compound) == "INVALIDJOB"


def test_bulk2_job_states_over_http(emulator: SalesforceEmulator, server: LoopbackServer) -> None:
    emulator.seed_leads(3)
    http = LoopbackSession(server.url)
    http.headers["Authorization"] = f"Bearer {emulator.credentials.issue_token()}"
    base = "https://x.my.salesforce.com/services/data/v59.0/jobs/query"
    created = http.post(base, json={"operation": "query", "query": "SELECT Id FROM Lead"})
    job = created.json()
    assert created.status_code == 200 and job["state"] == "UploadComplete"
    assert job["id"].startswith("750") and job["apiVersion"] == 59.0
    early = http.get(f"{base}/{job['id']}/results")
    assert early.status_code == 412 and early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    states = [http.get(f"{base}/{job['id']}").json()["state"] for _ in range(3)]
    assert states == ["InProgress", "JobComplete", "JobComplete"]
    first = http.get(f"{base}/{job['id']}/results", params={"maxRecords": "2"})
    assert first.headers["Sforce-NumberOfRecords"] == "2"
    locator = first.headers["Sforce-Locator"]
    assert base64.b64decode(locator + "==") == b"2"
    last = http.get(f"{base}/{job['id']}/results", params={"maxRecords": "2", "locator": locator})
    assert (
        last.headers["Sforce-Locator"] == "null" and last.headers["Sforce-NumberOfRecords"] == "1"
    )
    other_version = base.replace("v59.0", "v60.0")
    assert http.get(f"{other_version}/{job['id']}/results").status_code == 409
    assert http.delete(f"{base}/{job['id']}").status_code == 204
    second = http.post(base, json={"operation": "queryAll", "query": "SELECT Id FROM Lead"})
    aborted = http.patch(f"{base}/{second.json()['id']}", json={"state": "Aborted"})
    assert aborted.json()["state"] == "Aborted"


# -- admin interface, CLI, threads, performance -----------------------------------------------


def test_admin_interface(emulator: SalesforceEmulator, server: LoopbackServer) -> None:
    admin = f"{server.url}/_emulator"
    seeded = requests.post(f"{admin}/seed", json={"sobject": "Contact", "count": 3}, timeout=5)
    assert seeded.json()["created"] == 3 and len(emulator.records("Contact")) == 3
    moved = requests.post(f"{admin}/clock", json={"advance": 90}, timeout=5).json()
    assert datetime.fromisoformat(moved["now"]) == START + timedelta(seconds=90)
    requests.post(f"{admin}/clock", json={"set": "2024-06-01T00:00:00+00:00"}, timeout=5)
    assert emulator.now() == datetime(2024, 6, 1, tzinfo=UTC)
    faults: dict[str, Any] = {"faults": ["500", "slow:1"], "endpoint": "query", "times": 2}
    pending = requests.post(f"{admin}/faults", json=faults, timeout=5).json()["pending"]
    assert pending == {"query": ["500", "slow:1", "500", "slow:1"]}
    assert requests.delete(f"{admin}/faults", timeout=5).json() == {"pending": {}}
    assert requests.post(f"{admin}/faults", json={"faults": ["x"]}, timeout=5).status_code == 400
    emulator.credentials.issue_token()
    assert requests.post(f"{admin}/sessions/expire", timeout=5).json() == {"expired": 1}
    stats = requests.get(f"{admin}/stats", timeout=5).json()
    assert stats["records"]["Contact"] == {"live": 3, "recycle_bin": 0, "delete_log": 0}
    assert stats["api_usage"] == {"used": 0, "limit": 15000}
    assert requests.get(f"{admin}/nothing", timeout=5).status_code == 404


def test_cli_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "naturalead_sync_salesforce.emulator", "--leads", "5"]
    with spawn(command, issuer="naturalead_sync_salesforce.emulator") as process:
        first = process.readline()
        url = first.split(" at ")[1].split(" ")[0]
        output = [process.readline() for _ in range(6)]
        assert output[0].split() == ["username", DEFAULT_USERNAME]
        token = output[5].split()[-1]
        stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
        assert stats["records"]["Lead"]["live"] == 5
        client = Salesforce(instance_url=url, session_id=token, session=LoopbackSession(url))
        assert client.query("SELECT Id FROM Lead")["totalSize"] == 5
        process.send_signal(2)  # Ctrl-C
        assert process.wait(timeout=10) == 0


def test_concurrent_requests_and_hooks(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    ids = emulator.seed_leads(300)
    failures: list[Exception] = []

    def reader() -> None:
        try:
            for _ in range(10):
                rows = sf.query_all(
                    "SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"}
                )
                assert rows["totalSize"] == 300
        except Exception as error:
            failures.append(error)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i, record_id in enumerate(ids[:100]):
        emulator.update(record_id, Title=f"T{i}")
    for thread in threads:
        thread.join()
    assert failures == []


def test_cursor_page_is_fast_with_100k_leads() -> None:
    emulator = SalesforceEmulator(Clock(START, frozen=True))
    ids = emulator.seed_leads(100_000)
    token = emulator.credentials.issue_token()
    middle = emulator.get(ids[50_000])
    assert middle is not None
    soql = cursor_soql(middle["SystemModstamp"], ids[50_000])
    path = "/services/data/v59.0/query?" + urlencode({"q": soql})
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        answer = emulator.handle("GET", path, headers, b"")
        timings.append(time.perf_counter() - started)
    body = json.loads(answer.body)
    assert body["totalSize"] == 49_999 and len(body["records"]) == 2000
    assert body["records"][0]["Id"] == ids[50_001]
    assert min(timings) < 0.2, timings
