"""The HubSpot emulator answers the real hubspot-api-client 12 the way HubSpot does."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import pytest
import urllib3
from email_validator import validate_email
from hubspot import HubSpot
from hubspot.crm import contacts as contacts_api
from hubspot.crm import objects as objects_api
from hubspot.crm.associations import v4 as associations_api
from hubspot.crm.objects import leads as leads_api
from hubspot.crm.objects.exceptions import (
    ForbiddenException,
    NotFoundException,
    ServiceException,
    UnauthorizedException,
)
from urllib3.util.retry import Retry

from naturalead_sync_hubspot.emulator import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_TOKEN,
    EmulatorLimits,
    HubSpotEmulator,
    LoopbackServer,
    serve,
)
from support import FakeClock

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
READ_ONLY_TOKEN = "pat-na1-11111111-2222-4333-8444-555555555555"
RATE_HEADERS = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining")


@pytest.fixture
def hubspot_emulator() -> HubSpotEmulator:
    """A fresh, empty emulator with default limits."""
    return HubSpotEmulator()


@pytest.fixture
def server(hubspot_emulator: HubSpotEmulator) -> Iterator[LoopbackServer]:
    with serve(hubspot_emulator) as running:
        yield running


@pytest.fixture
def client(server: LoopbackServer) -> HubSpot:
    return HubSpot(access_token=DEFAULT_TOKEN, host=server.url)


def error(exc: Any) -> dict[str, Any]:
    """The JSON body of an SDK ``ApiException``."""
    body: dict[str, Any] = json.loads(exc.body)
    return body


def raw(
    server: LoopbackServer,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = DEFAULT_TOKEN,
) -> tuple[int, dict[str, str], Any]:
    """One request without the SDK: status, headers, decoded JSON (None when empty)."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return (
            response.status,
            dict(response.getheaders()),
            json.loads(payload) if payload else None,
        )
    finally:
        connection.close()


def id_window(
    lo_ms: int, hi_ms: int, last_id: str, *, after: str = "0", limit: int = 200
) -> objects_api.PublicObjectSearchRequest:
    """The connector's incremental query: a modified-time window paged by id."""
    return objects_api.PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(lo_ms)},
                    {"propertyName": "lastmodifieddate", "operator": "LTE", "value": str(hi_ms)},
                    {"propertyName": "hs_object_id", "operator": "GT", "value": last_id},
                ]
            }
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=["email", "phone"],
        limit=limit,
        after=after,
    )


def search_ids(client: HubSpot, object_type: str = "contacts", **request: Any) -> list[str]:
    found = client.crm.objects.search_api.do_search(
        object_type, objects_api.PublicObjectSearchRequest(**request)
    )
    return [record.id for record in found.results]


# -- list and get ---------------------------------------------------------------------------


def test_get_page_lists_in_id_order_with_absolute_next_link(
    hubspot_emulator: HubSpotEmulator, client: HubSpot, server: LoopbackServer
) -> None:
    ids = hubspot_emulator.seed_contacts(25)
    api = client.crm.objects.basic_api
    page = api.get_page("contacts", limit=10, properties=["email", "phone"])
    assert [record.id for record in page.results] == ids[:10]
    first = page.results[0]
    assert set(first.properties) == {
        "email",
        "phone",
        "createdate",
        "hs_object_id",
        "lastmodifieddate",
    }
    assert first.properties["hs_object_id"] == first.id
    assert isinstance(first.created_at, datetime) and isinstance(first.updated_at, datetime)
    assert (
        first.created_at.isoformat(timespec="milliseconds")[:23]
        == (first.properties["createdate"][:23])
    )
    assert first.archived is False
    assert page.paging.next.after == str(int(ids[9]) + 1)
    assert page.paging.next.link.startswith(f"{server.url}/crm/v3/objects/contacts?")
    assert f"after={page.paging.next.after}" in page.paging.next.link

    seen = [record.id for record in page.results]
    while page.paging is not None:
        page = api.get_page("contacts", limit=10, after=page.paging.next.after)
        seen += [record.id for record in page.results]
    assert seen == ids
    assert set(page.results[0].properties) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }

    status, headers, body = raw(
        server, "GET", "/crm/v3/objects/contacts?limit=2&properties=email,phone"
    )
    assert status == 200 and headers["Content-Type"] == "application/json;charset=utf-8"
    assert set(body["results"][0]["properties"]) >= {"email", "phone"}
    assert headers["X-HubSpot-RateLimit-Max"] == "190"
    assert headers["X-HubSpot-RateLimit-Daily"] == "1000000"
    assert headers["X-HubSpot-Correlation-Id"]


def test_archived_list_holds_only_archived_records(
    hubspot_emulator: HubSpotEmulator, client: HubSpot, server: LoopbackServer
) -> None:
    ids = hubspot_emulator.seed_contacts(5)
    hubspot_emulator.archive("contacts", ids[1])
    client.crm.objects.basic_api.archive("contacts", ids[3])

    archived = client.crm.objects.basic_api.get_page("contacts", archived=True)
    assert [record.id for record in archived.results] == [ids[1], ids[3]]
    assert all(record.archived is True for record in archived.results)
    assert all(isinstance(record.archived_at, datetime) for record in archived.results)
    active = client.crm.objects.basic_api.get_page("contacts")
    assert [record.id for record in active.results] == [ids[0], ids[2], ids[4]]
    _, _, lower = raw(server, "GET", "/crm/v3/objects/contacts?archived=true")
    assert [record["id"] for record in lower["results"]] == [ids[1], ids[3]]
    assert lower["results"][0]["archivedAt"].endswith("Z")

    hubspot_emulator.restore("contacts", ids[1])
    again = client.crm.objects.basic_api.get_page("contacts", archived=True)
    assert [record.id for record in again.results] == [ids[3]]


def test_get_by_id_follows_merges_and_404s_unknown_ids(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    primary = hubspot_emulator.create(
        "contacts", {"email": "ada@example.com", "firstname": "Ada", "phone": None}
    )
    other = hubspot_emulator.create(
        "contacts", {"email": "ada.l@example.com", "firstname": "A.", "phone": "+14155550101"}
    )
    merged = client.crm.contacts.basic_api.merge(
        contacts_api.PublicMergeInput(primary_object_id=primary, object_id_to_merge=other)
    )
    assert merged.id not in (primary, other)
    assert merged.properties["hs_merged_object_ids"] == f"{primary};{other}"
    assert merged.properties["firstname"] == "Ada"  # the primary wins
    assert merged.properties["phone"] == "+14155550101"  # where the primary has nothing

    alias = client.crm.objects.basic_api.get_by_id(
        "contacts", other, properties=["email", "hs_merged_object_ids"]
    )
    assert alias.id == merged.id and alias.properties["email"] == "ada@example.com"
    by_email = client.crm.objects.basic_api.get_by_id("0-1", "ada@example.com", id_property="email")
    assert by_email.id == merged.id
    archived = client.crm.objects.basic_api.get_page("contacts", archived=True)
    assert archived.results == []

    with pytest.raises(NotFoundException) as missing:
        client.crm.objects.basic_api.get_by_id("contacts", "999999")
    assert error(missing.value)["category"] == "OBJECT_NOT_FOUND"
    assert (
        error(missing.value)["correlationId"] == missing.value.headers["X-HubSpot-Correlation-Id"]
    )


# -- search ---------------------------------------------------------------------------------


def test_search_pages_an_id_window_like_the_connector(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    hubspot_emulator.set_time(START)  # the clock keeps running; seeds take the ms before now
    ids = hubspot_emulator.seed_contacts(450)
    newest = client.crm.objects.basic_api.get_by_id("contacts", ids[-1])
    now_ms = round(newest.updated_at.timestamp() * 1000)
    assert now_ms < hubspot_emulator.now() * 1000
    lo = now_ms - 449 + 100  # seeded timestamps are distinct: the first 100 fall out
    api = client.crm.objects.search_api

    page = api.do_search("contacts", id_window(lo, now_ms, "0"))
    assert page.total == 350
    assert [record.id for record in page.results] == ids[100:300]
    assert page.paging.next.after == "200" and page.paging.next.link is None
    assert set(page.results[0].properties) == {
        "email",
        "phone",
        "createdate",
        "hs_object_id",
        "lastmodifieddate",
    }
    assert isinstance(page.results[0].updated_at, datetime)
    last = api.do_search("contacts", id_window(lo, now_ms, "0", after="200"))
    assert [record.id for record in last.results] == ids[300:]
    assert last.paging is None

    restarted = api.do_search("contacts", id_window(lo, now_ms, ids[299]))
    assert restarted.total == 150 and restarted.results[0].id == ids[300]

    hubspot_emulator.touch("contacts", ids[:5])  # a bulk update: one shared timestamp
    stamps = {
        r.properties["lastmodifieddate"]
        for r in api.do_search("contacts", id_window(now_ms + 1, now_ms + 10**6, "0")).results
    }
    assert len(stamps) <= 1
    hubspot_emulator.advance(1)
    hubspot_emulator.touch("contacts", ids[:5])
    bumped = api.do_search("contacts", id_window(now_ms + 1, now_ms + 10**6, "0"))
    assert [r.id for r in bumped.results] == ids[:5]
    assert len({r.properties["lastmodifieddate"] for r in bumped.results}) == 1


def test_search_filters_operators_and_sorts(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    hubspot_emulator.limits.search_per_second = 1000
    clock_ids = []
    for n, (first, last, status) in enumerate(
        [("Ada", "Lovelace", "NEW"), ("Grace", "Hopper", None), ("Alan", "Turing", "OPEN")]
    ):
        hubspot_emulator.advance(1)
        clock_ids.append(
            hubspot_emulator.create(
                "contacts",
                {
                    "firstname": first,
                    "lastname": last,
                    "email": f"{first.lower()}@corp{n}.example.com",
                    "hs_lead_status": status,
                },
            )
        )
    ada, grace, alan = clock_ids

    def ids(*filters: dict[str, Any], **extra: Any) -> list[str]:
        return search_ids(client, filter_groups=[{"filters": list(filters)}], **extra)

    assert ids() == [ada, grace, alan]  # creation order by default
    assert ids({"propertyName": "firstname", "operator": "EQ", "value": "ADA"}) == [ada]
    assert ids({"propertyName": "hs_lead_status", "operator": "NEQ", "value": "new"}) == [
        grace,
        alan,
    ]
    in_lower = {"propertyName": "hs_lead_status", "operator": "IN", "values": ["new", "open"]}
    assert ids(in_lower) == [ada, alan]
    in_upper = {"propertyName": "hs_lead_status", "operator": "IN", "values": ["NEW"]}
    assert ids(in_upper) == []  # HubSpot wants IN values lower-case
    assert ids({"propertyName": "hs_lead_status", "operator": "NOT_HAS_PROPERTY"}) == [grace]
    assert ids({"propertyName": "hs_lead_status", "operator": "HAS_PROPERTY"}) == [ada, alan]
    token = {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@corp1.example.com"}
    assert ids(token) == [grace]
    stamps = {
        key: client.crm.objects.basic_api.get_by_id("contacts", key).created_at
        for key in (grace, alan)
    }
    between = {
        "propertyName": "createdate",
        "operator": "BETWEEN",
        "value": stamps[grace].astimezone(UTC).isoformat(),  # ISO is accepted too
        "highValue": str(round(stamps[alan].timestamp() * 1000)),
    }
    assert ids(between) == [grace, alan]
    assert ids({"propertyName": "hs_object_id", "operator": "LTE", "value": grace}) == [ada, grace]
    either = [
        {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "alan"}]},
        {"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "lovelace"}]},
    ]
    assert search_ids(client, filter_groups=either) == [ada, alan]
    by_name = [{"propertyName": "lastname", "direction": "DESCENDING"}]
    assert search_ids(client, sorts=by_name) == [alan, ada, grace]
    assert search_ids(client, sorts=["-hs_object_id"]) == [alan, grace, ada]
    assert search_ids(client, query="hopper") == [grace]
    quiet = {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}
    assert ids(quiet) == []  # contacts have no hs_lastmodifieddate: the filter silently fails


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"filter_groups": [{"filters": []}] * 6}, "filter groups"),
        (
            {
                "filter_groups": [
                    {"filters": [{"propertyName": "a", "operator": "HAS_PROPERTY"}] * 7}
                ]
            },
            "filters in a group",
        ),
        (
            {
                "filter_groups": [
                    {"filters": [{"propertyName": "a", "operator": "HAS_PROPERTY"}] * 6}
                ]
                * 4
            },
            "Too many filters",
        ),
        ({"limit": 201}, "limit"),
        ({"sorts": ["createdate", "hs_object_id"]}, "one sort"),
        ({"query": "x" * 3001}, "query"),
        (
            {
                "filter_groups": [
                    {"filters": [{"propertyName": "a", "operator": "LIKE", "value": "x"}]}
                ]
            },
            "operator",
        ),
    ],
)
def test_search_validation_errors_are_400(
    client: HubSpot, request_fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(objects_api.ApiException) as bad:
        search_ids(client, **request_fields)
    assert bad.value.status == 400
    assert error(bad.value)["category"] == "VALIDATION_ERROR"
    assert message in error(bad.value)["message"]


@pytest.mark.parametrize(
    ("mode", "after", "limit"), [("after", "10000", 10), ("after_plus_limit", "9950", 100)]
)
def test_search_stops_at_the_10k_cap(mode: str, after: str, limit: int) -> None:
    emulator = HubSpotEmulator(search_cap_mode=mode)
    started = time.perf_counter()
    emulator.seed_contacts(10_050)
    assert time.perf_counter() - started < 3.0  # quick enough to seed per test
    with serve(emulator) as server:
        api = HubSpot(access_token=DEFAULT_TOKEN, host=server.url).crm.objects.search_api
        hi = int(emulator.now() * 1000)
        near = api.do_search("contacts", id_window(0, hi, "0", after="9900", limit=100))
        assert near.total == 10_050 and len(near.results) == 100
        assert near.paging.next.after == "10000"
        with pytest.raises(objects_api.ApiException) as capped:
            api.do_search("contacts", id_window(0, hi, "0", after=after, limit=limit))
    assert capped.value.status == 400
    assert error(capped.value)["category"] == "VALIDATION_ERROR"
    assert "10000" in error(capped.value)["message"]


def test_search_sees_writes_only_after_the_index_lag() -> None:
    clock = FakeClock(START)
    emulator = HubSpotEmulator(clock=clock, index_lag_seconds=30)
    contact = emulator.create("contacts", {"email": "late@example.com", "firstname": "Late"})
    with serve(emulator) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        everyone: dict[str, Any] = {"properties": ["firstname"]}
        assert search_ids(client, **everyone) == []
        assert client.crm.objects.basic_api.get_by_id("contacts", contact).id == contact
        clock.advance(30)
        assert search_ids(client, **everyone) == [contact]
        emulator.update("contacts", contact, {"firstname": "Later"})
        clock.advance(10)
        stale = client.crm.objects.search_api.do_search(
            "contacts", objects_api.PublicObjectSearchRequest(properties=["firstname"])
        )
        assert stale.results[0].properties["firstname"] == "Late"
        fresh = client.crm.objects.basic_api.get_by_id(
            "contacts", contact, properties=["firstname"]
        )
        assert fresh.properties["firstname"] == "Later"
        clock.advance(20)
        settled = client.crm.objects.search_api.do_search(
            "contacts", objects_api.PublicObjectSearchRequest(properties=["firstname"])
        )
        assert settled.results[0].properties["firstname"] == "Later"
        assert settled.results[0].updated_at.timestamp() == START + 30


def test_search_page_is_fast_on_a_large_store() -> None:
    emulator = HubSpotEmulator(limits=EmulatorLimits(enforce=False))
    emulator.seed_contacts(50_000)
    hi = int(emulator.now() * 1000)
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "Host": "hubspot.test"}
    timings = []
    for n, last_id in enumerate(("0", "20000", "40000")):
        body = id_window(n, hi, last_id).to_dict()
        payload = {
            "filterGroups": body["filter_groups"],
            "sorts": body["sorts"],
            "properties": body["properties"],
            "limit": 200,
            "after": "0",
        }
        started = time.perf_counter()
        answer = emulator.handle(
            "POST", "/crm/v3/objects/contacts/search", headers, json.dumps(payload).encode()
        )
        timings.append(time.perf_counter() - started)
        assert answer.status == 200 and len(json.loads(answer.body)["results"]) == 200
    assert min(timings) < 0.05, timings


# -- batch read, merge, GDPR ----------------------------------------------------------------


def test_batch_read_is_200_when_complete_and_207_when_not(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    ids = hubspot_emulator.seed_contacts(4)
    batch = client.crm.objects.batch_api

    def read(*keys: str, archived: bool = False) -> Any:
        request = objects_api.BatchReadInputSimplePublicObjectId(
            inputs=[objects_api.SimplePublicObjectId(id=key) for key in keys], properties=["email"]
        )
        return batch.read("contacts", request, archived=archived)

    complete = read(ids[0], ids[1])
    assert isinstance(complete, objects_api.BatchResponseSimplePublicObject)
    assert complete.status == "COMPLETE" and [r.id for r in complete.results] == ids[:2]
    assert isinstance(complete.started_at, datetime) and isinstance(complete.completed_at, datetime)

    survivor = hubspot_emulator.merge("contacts", ids[0], ids[1])
    hubspot_emulator.archive("contacts", ids[2])
    partial = read(ids[1], ids[2], ids[3], "424242")
    assert isinstance(partial, objects_api.BatchResponseSimplePublicObjectWithErrors)
    assert [r.id for r in partial.results] == [survivor, ids[3]]
    assert partial.num_errors == 1 and partial.status == "COMPLETE"
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": [ids[2], "424242"]}

    archived = read(ids[2], archived=True)
    assert [r.id for r in archived.results] == [ids[2]] and archived.results[0].archived is True

    with pytest.raises(objects_api.ApiException) as too_many:
        read(*[str(n) for n in range(101)])
    assert too_many.value.status == 400


def test_gdpr_purge_leaves_no_trace(hubspot_emulator: HubSpotEmulator, client: HubSpot) -> None:
    ids = hubspot_emulator.seed_contacts(3)
    hubspot_emulator.archive("contacts", ids[2])
    contacts = client.crm.contacts.basic_api
    contacts.purge(contacts_api.PublicGdprDeleteInput(object_id=ids[0]))
    contacts.purge(contacts_api.PublicGdprDeleteInput(object_id=ids[2]))
    email = client.crm.objects.basic_api.get_by_id("contacts", ids[1], properties=["email"])
    contacts.purge(
        contacts_api.PublicGdprDeleteInput(object_id=email.properties["email"], id_property="email")
    )
    contacts.purge(
        contacts_api.PublicGdprDeleteInput(object_id="nobody@example.com", id_property="email")
    )

    for gone in ids:
        with pytest.raises(NotFoundException):
            client.crm.objects.basic_api.get_by_id("contacts", gone)
    assert client.crm.objects.basic_api.get_page("contacts", archived=True).results == []
    request = objects_api.BatchReadInputSimplePublicObjectId(
        inputs=[objects_api.SimplePublicObjectId(id=gone) for gone in ids]
    )
    assert client.crm.objects.batch_api.read("contacts", request).errors[0].context == {"ids": ids}
    with pytest.raises(contacts_api.ApiException) as unknown:
        contacts.purge(contacts_api.PublicGdprDeleteInput(object_id="31337"))
    assert unknown.value.status == 404


def test_writes_through_the_api(hubspot_emulator: HubSpotEmulator, client: HubSpot) -> None:
    api = client.crm.objects.basic_api
    created = api.create(
        "contacts",
        objects_api.SimplePublicObjectInputForCreate(
            properties={"email": "new@example.com", "firstname": "New", "hs_object_id": "1"}
        ),
    )
    assert created.properties["email"] == "new@example.com" and created.id != "1"
    with pytest.raises(objects_api.ApiException) as conflict:
        api.create(
            "contacts",
            objects_api.SimplePublicObjectInputForCreate(properties={"email": "NEW@example.com"}),
        )
    assert conflict.value.status == 409
    assert error(conflict.value)["message"] == f"Contact already exists. Existing ID: {created.id}"
    with pytest.raises(objects_api.ApiException) as unknown:
        api.create(
            "contacts",
            objects_api.SimplePublicObjectInputForCreate(properties={"shoe_size": "44"}),
        )
    assert unknown.value.status == 400
    assert error(unknown.value)["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"

    hubspot_emulator.advance(5)
    updated = api.update(
        "contacts",
        created.id,
        objects_api.SimplePublicObjectInput(properties={"firstname": "Newer"}),
    )
    assert updated.properties["firstname"] == "Newer"
    assert (updated.updated_at - created.updated_at).total_seconds() == pytest.approx(5, abs=0.01)
    history = api.get_by_id("contacts", created.id, properties_with_history=["firstname"])
    assert [v.value for v in history.properties_with_history["firstname"]] == ["Newer", "New"]

    api.archive("contacts", created.id)
    assert hubspot_emulator.get("contacts", created.id)["email"] == "new@example.com"
    assert api.get_page("contacts").results == []

    with pytest.raises(objects_api.ApiException) as orphan:
        api.create(
            "leads", objects_api.SimplePublicObjectInputForCreate(properties={"hs_lead_name": "x"})
        )
    assert orphan.value.status == 400


# -- leads ----------------------------------------------------------------------------------


def test_leads_search_and_v4_association_reads(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    contact = hubspot_emulator.seed_contacts(1)[0]
    lead = hubspot_emulator.create(
        "leads", {"hs_lead_name": "Big deal", "hs_lead_type": "NEW_BUSINESS"}
    )
    hubspot_emulator.associate_lead(lead, contact)
    loner = hubspot_emulator.create("0-136", {"hs_lead_name": "Nobody's"})
    via_api = client.crm.objects.basic_api.create(
        "leads",
        objects_api.SimplePublicObjectInputForCreate(
            properties={"hs_lead_name": "Via API"},
            associations=[
                {
                    "to": {"id": contact},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 578}],
                }
            ],
        ),
    )

    request = leads_api.PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
    )
    found = client.crm.objects.leads.search_api.do_search(request)
    assert [r.id for r in found.results] == [lead, loner, via_api.id]
    assert set(found.results[0].properties) == {"createdate", "hs_lastmodifieddate", "hs_object_id"}

    listed = client.crm.objects.basic_api.get_page("leads", associations=["contacts"])
    assert listed.results[0].associations["contacts"].results[0].id == contact
    assert listed.results[1].associations is None

    fetch = associations_api.BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[associations_api.PublicFetchAssociationsBatchRequest(id=lead)]
    )
    answer = client.crm.associations.v4.batch_api.get_page("leads", "contacts", fetch)
    assert isinstance(answer, associations_api.BatchResponsePublicAssociationMultiWithLabel)
    assert answer.results[0]._from.id == lead
    assert answer.results[0].to[0].to_object_id == contact
    assert answer.results[0].to[0].association_types[0].type_id == 578

    back = associations_api.BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[associations_api.PublicFetchAssociationsBatchRequest(id=contact)]
    )
    reverse = client.crm.associations.v4.batch_api.get_page("0-1", "0-136", back)
    assert [to.to_object_id for to in reverse.results[0].to] == [lead, via_api.id]

    fetch.inputs.append(associations_api.PublicFetchAssociationsBatchRequest(id=loner))
    partial = client.crm.associations.v4.batch_api.get_page("leads", "contacts", fetch)
    assert isinstance(
        partial, associations_api.BatchResponsePublicAssociationMultiWithLabelWithErrors
    )
    assert partial.num_errors == 1 and partial.errors[0].context == {"fromObjectId": [loner]}


def test_merges_and_purges_carry_lead_associations(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    first, second = hubspot_emulator.seed_contacts(2)
    lead = hubspot_emulator.create("leads", {"hs_lead_name": "One"})
    other = hubspot_emulator.create("leads", {"hs_lead_name": "Two"})
    hubspot_emulator.associate_lead(lead, second)
    contact = hubspot_emulator.merge("contacts", first, second)
    survivor = hubspot_emulator.merge("leads", other, lead)
    assert hubspot_emulator.get("leads", lead)["hs_lead_name"] == "Two"
    assert hubspot_emulator.get("leads", survivor)["hs_merged_object_ids"] == f"{lead};{other}"

    fetch = associations_api.BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[associations_api.PublicFetchAssociationsBatchRequest(id=lead)]
    )
    moved = client.crm.associations.v4.batch_api.get_page("leads", "contacts", fetch)
    assert moved.results[0]._from.id == survivor and moved.results[0].to[0].to_object_id == contact

    hubspot_emulator.gdpr_delete("contacts", second)  # the merged-away id reaches the survivor
    with pytest.raises(KeyError):
        hubspot_emulator.get("contacts", contact)
    gone = client.crm.associations.v4.batch_api.get_page("leads", "contacts", fetch)
    assert gone.results == [] and gone.num_errors == 1


def test_archived_email_lookup_skips_restored_records(
    hubspot_emulator: HubSpotEmulator, client: HubSpot
) -> None:
    contact = hubspot_emulator.create("contacts", {"email": "back@example.com"})
    hubspot_emulator.archive("contacts", contact)
    api = client.crm.objects.basic_api
    found = api.get_by_id("contacts", "back@example.com", id_property="email", archived=True)
    assert found.id == contact and found.archived is True
    hubspot_emulator.restore("contacts", contact)
    with pytest.raises(NotFoundException):
        api.get_by_id("contacts", "back@example.com", id_property="email", archived=True)
    assert api.get_by_id("contacts", "back@example.com", id_property="email").id == contact


# -- auth, limits, faults -------------------------------------------------------------------


def test_401_and_403_are_sdk_exceptions_with_hubspot_bodies(
    hubspot_emulator: HubSpotEmulator, server: LoopbackServer
) -> None:
    stranger = HubSpot(access_token="pat-na1-not-a-token", host=server.url)
    with pytest.raises(UnauthorizedException) as unauthorized:
        stranger.crm.objects.basic_api.get_page("contacts")
    assert error(unauthorized.value)["category"] == "INVALID_AUTHENTICATION"
    assert not any(name in unauthorized.value.headers for name in RATE_HEADERS)

    hubspot_emulator.add_token(READ_ONLY_TOKEN, ["crm.objects.contacts.read"])
    reader = HubSpot(access_token=READ_ONLY_TOKEN, host=server.url)
    assert reader.crm.objects.basic_api.get_page("contacts").results == []
    with pytest.raises(leads_api.ApiException) as no_leads:
        reader.crm.objects.leads.basic_api.get_page()
    assert no_leads.value.status == 403
    body = error(no_leads.value)
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"] == {"requiredGranularScopes": ["crm.objects.leads.read"]}
    with pytest.raises(ForbiddenException):
        reader.crm.objects.basic_api.archive("contacts", "1001")

    status, headers, _ = raw(server, "DELETE", "/crm/v3/objects/contacts/1001")
    assert status == 204 and headers["Content-Type"] == "application/json;charset=utf-8"
    assert headers["X-HubSpot-Correlation-Id"]
    assert raw(server, "GET", "/crm/v3/objects/deals")[0] == 400
    assert raw(server, "GET", "/crm/v3/nowhere")[0] == 404


def test_ten_second_window_answers_429_and_recovers(server: LoopbackServer) -> None:
    emulator = server.app
    assert isinstance(emulator, HubSpotEmulator)
    emulator.limits.ten_second_max = 3
    emulator.limits.window_seconds = 1.0
    api = HubSpot(access_token=DEFAULT_TOKEN, host=server.url).crm.objects.basic_api
    remaining = [
        api.get_page_with_http_info("contacts")[2]["X-HubSpot-RateLimit-Remaining"]
        for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(objects_api.ApiException) as limited:
        api.get_page("contacts")
    assert limited.value.status == 429
    body = error(limited.value)
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["correlationId"] == limited.value.headers["X-HubSpot-Correlation-Id"]
    assert "Retry-After" not in limited.value.headers
    assert limited.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"

    time.sleep(1.05)
    emulator.limits.retry_after_seconds = 1.5
    assert api.get_page("contacts").results == []
    emulator.limits.daily_max = emulator.stats()["requests"] - 1
    # The SDK's default urllib3 Retry(3) waits out a Retry-After on GET: retry nothing here.
    once = HubSpot(access_token=DEFAULT_TOKEN, host=server.url, retry=Retry(0))
    with pytest.raises(objects_api.ApiException) as daily:
        once.crm.objects.basic_api.get_page("contacts")
    assert error(daily.value)["policyName"] == "DAILY"
    assert daily.value.headers["Retry-After"] == "2"
    assert daily.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_search_has_its_own_bucket_and_no_rate_headers(server: LoopbackServer) -> None:
    emulator = server.app
    assert isinstance(emulator, HubSpotEmulator)
    emulator.limits.search_per_second = 2
    emulator.limits.search_window_seconds = 1.0
    emulator.limits.ten_second_max = 2
    api = HubSpot(access_token=DEFAULT_TOKEN, host=server.url).crm.objects.search_api
    request = objects_api.PublicObjectSearchRequest()
    for _ in range(2):
        _, status, headers = api.do_search_with_http_info("contacts", request)
        assert status == 200 and not any(name in headers for name in RATE_HEADERS)
    with pytest.raises(objects_api.ApiException) as limited:
        api.do_search("contacts", request)
    assert limited.value.status == 429
    assert error(limited.value)["policyName"] == "SECONDLY"
    assert not any(name in limited.value.headers for name in (*RATE_HEADERS, "Retry-After"))
    page = HubSpot(access_token=DEFAULT_TOKEN, host=server.url).crm.objects.basic_api
    assert page.get_page_with_http_info("contacts")[2]["X-HubSpot-RateLimit-Remaining"] == "1"
    time.sleep(1.05)
    assert api.do_search("contacts", request).total == 0


def test_scripted_faults_meet_the_retry_path(
    hubspot_emulator: HubSpotEmulator, server: LoopbackServer
) -> None:
    retry = Retry(
        total=3,
        backoff_factor=0,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,
        raise_on_status=False,
    )
    hubspot_emulator.seed_contacts(3)
    patient = HubSpot(access_token=DEFAULT_TOKEN, host=server.url, retry=retry)
    hubspot_emulator.script("503", "drop", path_contains="/search")
    found = patient.crm.objects.search_api.do_search(
        "contacts", objects_api.PublicObjectSearchRequest(limit=2)
    )
    assert found.total == 3 and len(found.results) == 2
    searches = [(r.status, r.action) for r in hubspot_emulator.request_log if r.search]
    assert searches == [(503, "503"), (200, "drop"), (200, "ok")]

    hubspot_emulator.script("502")
    plain = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
    with pytest.raises(ServiceException) as failed:
        plain.crm.objects.basic_api.get_page("contacts")
    assert failed.value.status == 502

    hubspot_emulator.slow_seconds = 0.5
    hubspot_emulator.script("slow")
    impatient = HubSpot(access_token=DEFAULT_TOKEN, host=server.url, retry=Retry(0))
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        impatient.crm.objects.basic_api.get_page("contacts", _request_timeout=0.1)

    hubspot_emulator.script("429")
    with pytest.raises(objects_api.ApiException) as scripted:
        plain.crm.objects.basic_api.get_page("contacts")
    assert error(scripted.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert all(DEFAULT_TOKEN not in str(record) for record in hubspot_emulator.request_log)
    assert hubspot_emulator.request_log[-1].token_hint == DEFAULT_TOKEN[-4:]
    stats = hubspot_emulator.stats()
    assert stats["faults"] == 5 and stats["rate_limited"] == 1 and stats["search_requests"] == 3
    assert stats["by_kind"]["list"] == 3 and stats["records_returned"] == 2 + 2 + 3


def test_oauth_refresh_issues_expiring_tokens(
    hubspot_emulator: HubSpotEmulator, server: LoopbackServer
) -> None:
    anonymous = HubSpot(host=server.url)
    token = anonymous.oauth.tokens_api.create(
        grant_type="refresh_token",
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        refresh_token=DEFAULT_REFRESH_TOKEN,
    )
    assert token.expires_in == 1800 and token.token_type == "bearer"
    assert token.refresh_token == DEFAULT_REFRESH_TOKEN
    user = HubSpot(access_token=token.access_token, host=server.url)
    _, _, headers = user.crm.objects.basic_api.get_page_with_http_info("contacts")
    assert "X-HubSpot-RateLimit-Max" in headers and "X-HubSpot-RateLimit-Daily" not in headers

    hubspot_emulator.advance(1801)
    with pytest.raises(UnauthorizedException) as expired:
        user.crm.objects.basic_api.get_page("contacts")
    assert error(expired.value)["category"] == "EXPIRED_AUTHENTICATION"

    from hubspot.oauth import ApiException as OAuthError

    with pytest.raises(OAuthError) as refused:
        anonymous.oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
            refresh_token="stale",
        )
    assert refused.value.status == 400 and error(refused.value)["status"] == "BAD_REFRESH_TOKEN"


# -- scenario API and admin -----------------------------------------------------------------


def test_seeded_contacts_are_realistic_and_unique(hubspot_emulator: HubSpotEmulator) -> None:
    ids = hubspot_emulator.seed_contacts(300)
    contacts = [hubspot_emulator.get("contacts", i) for i in ids]
    phones = [c["phone"] for c in contacts] + [
        c["mobilephone"] for c in contacts if c.get("mobilephone")
    ]
    assert len(set(phones)) == len(phones) == 400
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p or "")) for p in phones)
    assert len({c["email"] for c in contacts}) == 300
    assert validate_email(contacts[7]["email"] or "", check_deliverability=False)
    assert len({c["lastmodifieddate"] for c in contacts}) == 300
    assert contacts[-1]["createdate"] == contacts[-1]["lastmodifieddate"]
    newest = datetime.fromisoformat(contacts[-1]["createdate"] or "")
    assert newest.timestamp() < hubspot_emulator.now()
    assert all(c["firstname"] and c["company"] and c["lifecyclestage"] for c in contacts)
    same = hubspot_emulator.seed_contacts(3, same_timestamp=True)
    stamps = {hubspot_emulator.get("contacts", i)["createdate"] for i in same}
    assert len(stamps) == 1


def test_admin_api_seeds_moves_the_clock_and_queues_faults(server: LoopbackServer) -> None:
    status, _, seeded = raw(server, "POST", "/_emulator/seed", {"count": 12}, token=None)
    assert status == 200 and seeded["count"] == 12 and len(seeded["ids"]) == 10
    before = raw(server, "POST", "/_emulator/clock", {"advance": 3600}, token=None)[2]["now"]
    assert raw(server, "POST", "/_emulator/clock", {"set": START}, token=None)[2][
        "now"
    ] == pytest.approx(START, abs=1)
    assert before > START
    queued = raw(
        server, "POST", "/_emulator/faults", {"script": ["504"], "slow_seconds": 0.2}, token=None
    )
    assert queued[2] == {"queued": 1}
    assert raw(server, "GET", "/crm/v3/objects/contacts")[0] == 504
    stats = raw(server, "GET", "/_emulator/stats", token=None)[2]
    assert stats["contacts"] == 12 and stats["requests"] == 1 and stats["faults"] == 1
    assert raw(server, "POST", "/_emulator/faults", {"script": ["boom"]}, token=None)[0] == 400
    assert raw(server, "GET", "/_emulator/nothing", token=None)[0] == 404
