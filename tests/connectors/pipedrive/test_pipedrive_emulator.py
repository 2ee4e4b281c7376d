"""Conformance of the Pipedrive emulator with the reference, driven over loopback with httpx."""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import phonenumbers
import pytest

from naturalead_sync_pipedrive.emulator import (
    DEFAULT_API_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_OAUTH_TOKEN,
    DEFAULT_REFRESH_TOKEN,
    EmulatorClock,
    EmulatorLimits,
    EmulatorOptions,
    LoopbackServer,
    PipedriveEmulator,
    phone_for,
    serve,
)
from support import FakeClock, spawn

#: The frozen emulator clock's start in the fixtures.
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
PERSONS = "/api/v2/persons"
HASH = re.compile(r"^[0-9a-f]{40}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LEAD_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
V2_PERSON_KEYS = {
    "id",
    "name",
    "first_name",
    "last_name",
    "owner_id",
    "org_id",
    "add_time",
    "update_time",
    "emails",
    "phones",
    "is_deleted",
    "visible_to",
    "label_ids",
    "picture_id",
    "custom_fields",
}
LEAD_FORMAT = "%Y-%m-%dT%H:%M:%S.000Z"
V1_FORMAT = "%Y-%m-%d %H:%M:%S"
WINDOW = {"updated_since": "2020-01-01T00:00:00Z", "updated_until": "2030-01-01T00:00:00Z"}


@pytest.fixture
def pipedrive_emulator() -> PipedriveEmulator:
    """An empty emulated company (users, labels, fields; no persons) on a frozen clock at
    :data:`START`, with a burst limit high enough never to interfere."""
    return PipedriveEmulator(
        clock=EmulatorClock(START, frozen=True), limits=EmulatorLimits(burst_limit=100_000)
    )


@pytest.fixture
def pipedrive_server(pipedrive_emulator: PipedriveEmulator) -> Iterator[LoopbackServer]:
    """:func:`pipedrive_emulator` served on a loopback port."""
    with serve(pipedrive_emulator) as server:
        yield server


@pytest.fixture
def pipedrive_client(pipedrive_server: LoopbackServer) -> Iterator[httpx.Client]:
    """An httpx client for the served emulator, sending the default API token."""
    with httpx.Client(
        base_url=pipedrive_server.url, headers={"x-api-token": DEFAULT_API_TOKEN}, timeout=10
    ) as client:
        yield client


def iso(base: datetime, seconds: float = 0, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    """``base + seconds`` formatted (RFC3339 by default)."""
    return (base + timedelta(seconds=seconds)).strftime(fmt)


def ok(response: httpx.Response) -> Any:
    """The ``data`` of a successful envelope."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def all_pages(client: httpx.Client, **params: Any) -> list[list[dict[str, Any]]]:
    """Every v2 persons page for ``params``, following ``next_cursor``."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(PERSONS, params=query).json()
        pages.append(body["data"])
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            return pages


def error_of(response: httpx.Response, status: int) -> str:
    """The ``error`` of an error envelope with ``status`` (checking the envelope's keys)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None and body["additional_data"] is None
    assert body["error_info"]
    return str(body["error"])


# -- v2 persons --------------------------------------------------------------------------


def test_v2_pages_by_update_time_with_cursor_limit_500(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    """1,200 persons come back in pages of 500/500/200, update_time ascending, ties by id."""
    pipedrive_emulator.seed_persons(1_200)
    pages = all_pages(pipedrive_client, limit=500, sort_by="update_time", **WINDOW)
    assert [len(page) for page in pages] == [500, 500, 200]
    rows = [row for page in pages for row in page]
    assert len({row["id"] for row in rows}) == 1_200
    keys = [(row["update_time"], row["id"]) for row in rows]
    assert keys == sorted(keys)
    assert len({row["update_time"] for row in rows}) < 1_200  # bulk edits tie
    first = rows[0]
    assert set(first) == V2_PERSON_KEYS
    assert RFC3339.match(first["update_time"]) and RFC3339.match(first["add_time"])
    assert isinstance(first["visible_to"], int) and first["is_deleted"] is False
    assert all(HASH.match(key) for key in first["custom_fields"])
    assert len(first["custom_fields"]) == 8
    for row in rows:
        for entries in (row["emails"], row["phones"]):
            assert all(set(entry) == {"value", "primary", "label"} for entry in entries)
            assert sum(entry["primary"] for entry in entries) == (1 if entries else 0)
    cursor = pipedrive_client.get(PERSONS, params={"limit": 500, "sort_by": "update_time"})
    decoded = json.loads(
        base64.urlsafe_b64decode(cursor.json()["additional_data"]["next_cursor"] + "==")
    )
    assert decoded["field"] == "update_time" and decoded["sortDirection"] == "asc"
    assert decoded["id"] == rows[500]["id"]


def test_default_order_limit_and_descending(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(150)
    default = pipedrive_client.get(PERSONS).json()
    assert [row["id"] for row in default["data"]] == list(range(1, 101))
    assert default["additional_data"]["next_cursor"] is not None
    pages = all_pages(pipedrive_client, sort_by="id", sort_direction="desc", limit=60)
    assert [row["id"] for page in pages for row in page] == list(range(150, 0, -1))


def test_updated_since_is_inclusive_and_until_exclusive(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    t0 = pipedrive_emulator.now()
    a = pipedrive_emulator.create_person("A")["id"]
    pipedrive_emulator.advance(1)
    b = pipedrive_emulator.create_person("B")["id"]
    pipedrive_emulator.advance(1)
    c = pipedrive_emulator.create_person("C")["id"]

    def ids(**params: str) -> list[int]:
        data = ok(pipedrive_client.get(PERSONS, params={"sort_by": "update_time", **params}))
        return [row["id"] for row in data]

    assert ids(updated_since=iso(t0, 1), updated_until=iso(t0, 2)) == [b]
    assert ids(updated_since=iso(t0, 1)) == [b, c]
    assert ids(updated_until=iso(t0, 1)) == [a]
    assert ids(updated_since=iso(t0, 3_601, "%Y-%m-%dT%H:%M:%S+01:00")) == [b, c]
    assert ids(updated_since=iso(t0, 3)) == []


def test_shared_update_time_across_pages(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    """250 persons in one second page by id within the second, none lost or repeated."""
    t0 = pipedrive_emulator.now()
    made = pipedrive_emulator.seed_persons(250, same_update_time=True)
    pages = all_pages(pipedrive_client, limit=100, sort_by="update_time", **WINDOW)
    assert [len(page) for page in pages] == [100, 100, 50]
    rows = [row for page in pages for row in page]
    assert [row["id"] for row in rows] == made
    assert {row["update_time"] for row in rows} == {iso(t0, -3_600)}


def test_rows_updated_while_paging_move_instead_of_shifting(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(30)
    params: dict[str, str | int] = {"limit": 10, "sort_by": "update_time", **WINDOW}
    first = pipedrive_client.get(PERSONS, params=params).json()
    seen = [row["id"] for row in first["data"]]
    pipedrive_emulator.advance(60)
    pipedrive_emulator.update_person(seen[0], name="Edited")  # read already: moves to the end
    cursor = first["additional_data"]["next_cursor"]
    rest: list[int] = []
    while cursor:
        body = pipedrive_client.get(PERSONS, params={**params, "cursor": cursor}).json()
        rest += [row["id"] for row in body["data"]]
        cursor = body["additional_data"]["next_cursor"]
    assert set(seen + rest) == set(range(1, 31))
    assert rest[-1] == seen[0] and len(rest) == 21


def test_ids_and_quick_filters(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(40)
    data = ok(pipedrive_client.get(PERSONS, params={"ids": "3,1,2,999999"}))
    assert [row["id"] for row in data] == [1, 2, 3]
    too_many = ",".join(str(n) for n in range(1, 102))
    assert "ids" in error_of(pipedrive_client.get(PERSONS, params={"ids": too_many}), 400)
    owned = ok(pipedrive_client.get(PERSONS, params={"owner_id": 2, "limit": 500}))
    assert owned and all(row["owner_id"] == 2 for row in owned)
    expected = [p for p in range(1, 41) if (pipedrive_emulator.person(p) or {})["owner_id"] == 2]
    assert [row["id"] for row in owned] == expected
    assert ok(pipedrive_client.get(PERSONS, params={"deal_id": 1})) == []
    hot = pipedrive_emulator.add_filter(owner_id=3)
    filtered = ok(pipedrive_client.get(PERSONS, params={"filter_id": hot, "owner_id": 2}))
    assert filtered and all(row["owner_id"] == 3 for row in filtered)
    assert error_of(pipedrive_client.get(PERSONS, params={"filter_id": 99}), 404)
    subset = ok(pipedrive_client.get(PERSONS, params={"custom_fields": "", "limit": 1}))
    assert subset[0]["custom_fields"] == {}
    extras = ok(pipedrive_client.get(PERSONS, params={"include_fields": "open_deals_count"}))
    assert extras[0]["open_deals_count"] == 0 and "notes_count" not in extras[0]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"updated_since": "2026-03-02T09:00:00.000Z"}, "updated_since"),
        ({"updated_until": "2026-03-02 09:00:00"}, "updated_until"),
        ({"limit": "501"}, "limit"),
        ({"limit": "1.0"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"sort_by": "name"}, "sort_by"),
        ({"sort_direction": "up"}, "sort_direction"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"custom_fields": ",".join(f"k{n}" for n in range(16))}, "custom_fields"),
        ({"include_fields": "secret_count"}, "include_fields"),
    ],
)
def test_v2_validation_errors_are_400(
    pipedrive_client: httpx.Client, params: dict[str, str], name: str
) -> None:
    assert error_of(pipedrive_client.get(PERSONS, params=params), 400).startswith(
        f"Validation failed: {name}:"
    )


def test_cursor_from_another_sort_is_refused(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(5)
    cursor = pipedrive_client.get(PERSONS, params={"limit": 2}).json()["additional_data"]
    params = {"limit": 2, "sort_by": "update_time", "cursor": cursor["next_cursor"]}
    assert "cursor" in error_of(pipedrive_client.get(PERSONS, params=params), 400)


def test_lenient_switches_accept_fractions_and_clamp_limit() -> None:
    emulator = PipedriveEmulator(
        clock=EmulatorClock(frozen=True),
        options=EmulatorOptions(strict_timestamps=False, limit_over_max="clamp"),
        persons=600,
    )
    headers = {"x-api-token": DEFAULT_API_TOKEN}
    query = "limit=900&updated_since=2020-01-01T00:00:00.500Z"
    answer = emulator.handle("GET", f"{PERSONS}?{query}", headers, b"")
    assert answer.status == 200 and len(json.loads(answer.body)["data"]) == 500


# -- deletes, merges, persons by id --------------------------------------------------------


def test_deleted_persons_are_not_listed_and_purged_after_30_days(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(5)
    t0 = pipedrive_emulator.now()
    pipedrive_emulator.advance(120)
    deleted = pipedrive_emulator.delete_person(2)
    assert deleted["is_deleted"] is True and deleted["update_time"] == iso(t0, 120)
    listed = ok(pipedrive_client.get(PERSONS, params={"sort_by": "update_time", **WINDOW}))
    assert sorted(row["id"] for row in listed) == [1, 3, 4, 5]
    assert [row["id"] for row in ok(pipedrive_client.get(PERSONS, params={"ids": "2,3"}))] == [3]
    one = ok(pipedrive_client.get(f"{PERSONS}/2"))
    assert one["is_deleted"] is True and one["update_time"] == iso(t0, 120)
    pipedrive_emulator.advance(30 * 86_400)
    gone = pipedrive_client.get(f"{PERSONS}/2")
    assert error_of(gone, 404) == "Entity was not found"
    assert gone.json()["error_info"] == "Object was not found."
    assert pipedrive_emulator.person(2) is None
    assert error_of(pipedrive_client.get(f"{PERSONS}/abc"), 400).startswith("Validation failed")


def test_deleted_person_get_switch_answers_404() -> None:
    emulator = PipedriveEmulator(options=EmulatorOptions(deleted_person_get="404"), persons=2)
    emulator.delete_person(1)
    answer = emulator.handle("GET", f"{PERSONS}/1", {"x-api-token": DEFAULT_API_TOKEN}, b"")
    assert answer.status == 404


def test_merge_deletes_the_loser_and_enriches_the_winner(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(3)
    loser = pipedrive_emulator.create_person(
        "Loser", emails=["loser@example.com"], phones=["+14155550999"]
    )
    lead = pipedrive_emulator.create_lead("Loser lead", person_id=loser["id"])
    t0 = pipedrive_emulator.now()
    pipedrive_emulator.advance(10)
    winner = pipedrive_emulator.merge_persons(loser["id"], 1)
    assert winner["update_time"] == iso(t0, 10)
    data = ok(pipedrive_client.get(PERSONS, params={"ids": f"1,{loser['id']}"}))
    assert [row["id"] for row in data] == [1]
    emails = data[0]["emails"]
    assert {"value": "loser@example.com", "primary": False, "label": "work"} in emails
    assert sum(entry["primary"] for entry in emails) == 1
    assert ok(pipedrive_client.get(f"{PERSONS}/{loser['id']}"))["is_deleted"] is True
    moved = ok(pipedrive_client.get(f"/v1/leads/{lead['id']}"))
    assert moved["person_id"] == 1 and moved["update_time"] == iso(t0, 10, LEAD_FORMAT)


def test_person_edit_does_not_bump_linked_leads(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    t0 = pipedrive_emulator.now()
    person = pipedrive_emulator.create_person("Jane", emails=["jane@example.com"])
    lead = pipedrive_emulator.create_lead("Jane lead", person_id=person["id"])
    pipedrive_emulator.advance(300)
    pipedrive_emulator.update_person(person["id"], emails=["jane@new.example.com"])
    again = ok(pipedrive_client.get(f"/v1/leads/{lead['id']}"))
    assert again["update_time"] == lead["update_time"] == iso(t0, 0, LEAD_FORMAT)
    assert ok(pipedrive_client.get(f"{PERSONS}/{person['id']}"))["update_time"] == iso(t0, 300)


# -- leads ---------------------------------------------------------------------------------


def test_v1_leads_and_archived_leads(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(20)
    lead_ids = pipedrive_emulator.seed_leads(25, archived=5)
    first = pipedrive_client.get("/v1/leads", params={"limit": 10}).json()
    assert first["additional_data"] == {
        "pagination": {"start": 0, "limit": 10, "more_items_in_collection": True, "next_start": 10}
    }
    rows = first["data"]
    rows += ok(pipedrive_client.get("/api/v1/leads", params={"start": 10, "limit": 10}))
    assert len(rows) == 20 and not any(row["is_archived"] for row in rows)
    assert set(row["id"] for row in rows) == set(lead_ids[5:])
    archived = ok(pipedrive_client.get("/v1/leads/archived"))
    assert {row["id"] for row in archived} == set(lead_ids[:5])
    assert all(row["is_archived"] for row in archived)
    adds = [row["add_time"] for row in rows]
    assert adds == sorted(adds)  # default order: add_time ascending
    lead = rows[0]
    assert UUID.match(lead["id"]) and LEAD_TIME.match(lead["update_time"])
    assert lead["visible_to"] == "3" and lead["source_name"] in ("API", "Manually created")
    deal_keys = {made.key for made in pipedrive_emulator.store.fields.custom("deal")}
    for row in rows:
        stored = pipedrive_emulator.store.leads[row["id"]].custom_fields
        assert {k for k in row if HASH.match(k)} == set(stored) & deal_keys  # unset: omitted
    by_update = ok(
        pipedrive_client.get("/v1/leads", params={"sort": "update_time ASC", "limit": 500})
    )
    updates = [row["update_time"] for row in by_update]
    assert updates == sorted(updates)
    since = updates[10]
    recent = ok(pipedrive_client.get("/v1/leads", params={"updated_since": since[:19] + "Z"}))
    assert {row["id"] for row in recent} >= {row["id"] for row in by_update[11:]}
    person_id = next(row["person_id"] for row in rows if row["person_id"])
    linked = ok(pipedrive_client.get("/v1/leads", params={"person_id": person_id}))
    assert linked and all(row["person_id"] == person_id for row in linked)
    assert any(row["person_id"] is None and row["organization_id"] for row in rows + archived)
    missing = pipedrive_client.get("/v1/leads/adf21080-0e10-11eb-879b-05d71fb426ec")
    assert error_of(missing, 404) == "requested lead not found"
    assert error_of(pipedrive_client.get("/v1/leads", params={"sort": "name ASC"}), 400)


def test_archive_and_convert_move_leads(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    org_only = pipedrive_emulator.create_lead(
        "Org lead", organization_id=1, value={"amount": 5, "currency": "EUR"}
    )
    assert org_only["person_id"] is None and org_only["value"] == {"amount": 5, "currency": "EUR"}
    pipedrive_emulator.advance(5)
    pipedrive_emulator.archive_lead(org_only["id"])
    assert ok(pipedrive_client.get("/v1/leads")) == []
    assert [row["id"] for row in ok(pipedrive_client.get("/v1/leads/archived"))] == [org_only["id"]]
    with pytest.raises(ValueError, match="read-only"):
        pipedrive_emulator.update_lead(org_only["id"], title="nope")
    other = pipedrive_emulator.create_lead("Other", organization_id=2)
    pipedrive_emulator.convert_lead(other["id"])
    assert error_of(pipedrive_client.get(f"/v1/leads/{other['id']}"), 404)


def test_flat_lead_pagination_switch() -> None:
    emulator = PipedriveEmulator(
        options=EmulatorOptions(lead_pagination="flat"), persons=5, leads=3
    )
    answer = emulator.handle("GET", "/v1/leads?limit=2", {"x-api-token": DEFAULT_API_TOKEN}, b"")
    assert json.loads(answer.body)["additional_data"] == {
        "start": 0,
        "limit": 2,
        "more_items_in_collection": True,
    }


def test_lead_labels(pipedrive_client: httpx.Client) -> None:
    labels = ok(pipedrive_client.get("/v1/leadLabels"))
    assert [label["name"] for label in labels] == ["Hot", "Warm", "Cold"]
    assert UUID.match(labels[0]["id"]) and LEAD_TIME.match(labels[0]["add_time"])
    assert set(labels[0]) == {"id", "name", "color", "add_time", "update_time"}


# -- fields --------------------------------------------------------------------------------


def test_person_fields_with_hash_keys_and_options(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    key = pipedrive_emulator.add_person_field("Tier", "enum", ["Gold", "Silver"])
    assert HASH.match(key)
    body = pipedrive_client.get("/v1/personFields", params={"limit": 500}).json()
    assert body["additional_data"]["pagination"]["more_items_in_collection"] is False
    fields = {field["key"]: field for field in body["data"]}
    assert fields["name"]["edit_flag"] is False and fields["email"]["field_type"] == "varchar"
    labels = fields["label_ids"]["options"]
    assert [(o["label"], o["color"]) for o in labels][:2] == [("Hot", "red"), ("Warm", "yellow")]
    tier = fields[key]
    assert tier["edit_flag"] is True and tier["field_type"] == "enum"
    assert [option["label"] for option in tier["options"]] == ["Gold", "Silver"]
    types = {field["field_type"] for field in body["data"] if field["edit_flag"]}
    assert {"enum", "set", "monetary", "double", "text", "date", "address"} <= types
    pipedrive_emulator.rename_person_field(key, "Customer tier")
    renamed = ok(pipedrive_client.get("/v1/personFields", params={"limit": 500}))
    assert {field["key"]: field["name"] for field in renamed}[key] == "Customer tier"
    v2 = ok(pipedrive_client.get("/api/v2/personFields", params={"limit": 500}))
    tier2 = next(field for field in v2 if field["field_code"] == key)
    assert tier2["is_custom_field"] is True and tier2["field_name"] == "Customer tier"
    assert next(f for f in v2 if f["field_code"] == "emails")["is_custom_field"] is False
    page = pipedrive_client.get("/api/v2/personFields", params={"limit": 5}).json()
    assert len(page["data"]) == 5 and page["additional_data"]["next_cursor"]


def test_custom_values_in_v2_and_v1_forms(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    fields = {made.name: made for made in pipedrive_emulator.store.fields.custom("person")}
    source, interests, budget = fields["Lead source"], fields["Interests"], fields["Budget"]
    values = {
        source.key: source.options[1].id,
        interests.key: [interests.options[0].id, interests.options[2].id],
        budget.key: {"value": 2300, "currency": "EUR"},
    }
    person = pipedrive_emulator.create_person("Custom", custom_fields=values)
    v2 = ok(pipedrive_client.get(f"{PERSONS}/{person['id']}"))["custom_fields"]
    assert v2[source.key] == source.options[1].id
    assert v2[interests.key] == [interests.options[0].id, interests.options[2].id]
    assert v2[budget.key] == {"value": 2300, "currency": "EUR"}
    assert v2[fields["Score"].key] is None
    v1 = ok(pipedrive_client.get("/v1/persons"))[0]
    assert v1[source.key] == str(source.options[1].id)
    assert v1[interests.key] == f"{interests.options[0].id},{interests.options[2].id}"
    assert v1[budget.key] == 2300 and v1[f"{budget.key}_currency"] == "EUR"
    assert v1["phone"] == [{"value": "", "primary": True}] and v1["active_flag"] is True
    assert v1["owner_id"]["value"] == 1 and v1["update_time"] == iso(
        pipedrive_emulator.now(), 0, V1_FORMAT
    )
    with pytest.raises(ValueError, match="option id"):
        pipedrive_emulator.create_person("Bad", custom_fields={source.key: 999})
    deal_fields = ok(pipedrive_client.get("/v1/dealFields"))
    assert ok(pipedrive_client.get("/v1/leadFields")) == deal_fields
    assert {field["name"] for field in deal_fields if field["edit_flag"]} >= {"Deal source"}


# -- auth and routing ----------------------------------------------------------------------


def test_token_auth_header_query_and_401(
    pipedrive_server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{pipedrive_server.url}/v1/users/me"
    me = ok(httpx.get(url, headers={"x-api-token": DEFAULT_API_TOKEN}))
    assert me["company_domain"] == "emulated" and me["id"] == 1
    # The token in the query on purpose (the connector never does): httpx would log the URL.
    caplog.set_level(logging.WARNING, logger="httpx")
    assert ok(httpx.get(url, params={"api_token": DEFAULT_API_TOKEN}))["id"] == 1
    for headers in ({}, {"x-api-token": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{pipedrive_server.url}{PERSONS}", headers=headers)
        assert error_of(response, 401) == "unauthorized access"
        assert response.json()["errorCode"] == 401


def test_query_token_switch_off() -> None:
    emulator = PipedriveEmulator(options=EmulatorOptions(query_token=False))
    answer = emulator.handle("GET", f"/v1/users/me?api_token={DEFAULT_API_TOKEN}", {}, b"")
    assert answer.status == 401
    assert emulator.request_log[-1].path == "/v1/users/me?api_token=%2A%2A%2A"


def test_oauth_bearer_scopes_expiry_and_refresh(
    pipedrive_emulator: PipedriveEmulator, pipedrive_server: LoopbackServer
) -> None:
    t0 = pipedrive_emulator.now()
    bearer = {"Authorization": f"Bearer {DEFAULT_OAUTH_TOKEN}"}
    with httpx.Client(base_url=pipedrive_server.url, headers=bearer) as client:
        assert ok(client.get(PERSONS)) == []
        assert ok(client.get("/v1/leads")) == []
    pipedrive_emulator.add_oauth_token("leads-only", scopes=["leads:read"])
    narrow = httpx.get(
        f"{pipedrive_server.url}{PERSONS}", headers={"Authorization": "Bearer leads-only"}
    )
    assert error_of(narrow, 403) == "Scope and URL mismatch"
    refreshed = httpx.post(
        f"{pipedrive_server.url}/oauth/token",
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        data={"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN},
    )
    assert refreshed.status_code == 200
    token = refreshed.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3599
    assert token["api_domain"] == pipedrive_server.url
    assert token["refresh_token"] == DEFAULT_REFRESH_TOKEN and "contacts:read" in token["scope"]
    pipedrive_emulator.advance(3_600)  # the default token has expired, the new one not yet
    expired = httpx.get(f"{pipedrive_server.url}{PERSONS}", headers=bearer)
    assert error_of(expired, 401) == "unauthorized access"
    fresh = {"Authorization": f"Bearer {token['access_token']}"}
    pipedrive_emulator.set_time(t0 + timedelta(seconds=3_000))
    assert ok(httpx.get(f"{token['api_domain']}{PERSONS}", headers=fresh)) == []
    bad_client = httpx.post(
        f"{pipedrive_server.url}/oauth/token",
        auth=("someone", "else"),
        data={"grant_type": "refresh_token", "refresh_token": DEFAULT_REFRESH_TOKEN},
    )
    assert bad_client.status_code == 401


def test_routing_prefixes_hosts_and_methods(pipedrive_client: httpx.Client) -> None:
    assert ok(pipedrive_client.get("/api/v1/users/me"))["company_domain"] == "emulated"
    assert ok(pipedrive_client.get("/v1/users/me", headers={"Host": "acme.localhost"}))["id"] == 1
    assert error_of(pipedrive_client.get("/v2/persons"), 404) == "Not found"
    assert error_of(pipedrive_client.get("/api/v2/leads"), 404).startswith("Unknown method")
    assert error_of(pipedrive_client.post(PERSONS, json={"name": "x"}), 405)


# -- rate limits ---------------------------------------------------------------------------


def limited(limits: EmulatorLimits) -> tuple[PipedriveEmulator, FakeClock]:
    clock = FakeClock(100.0)
    return PipedriveEmulator(limits=limits, monotonic=clock, persons=3), clock


@pytest.fixture
def burst() -> Iterator[tuple[PipedriveEmulator, FakeClock, httpx.Client]]:
    """A lite-plan emulator on a hand-moved monotonic clock, blocking after 3 ignored 429s."""
    emulator, clock = limited(EmulatorLimits(block_after_429s=3, block_seconds=30))
    with (
        serve(emulator) as server,
        httpx.Client(base_url=server.url, headers={"x-api-token": DEFAULT_API_TOKEN}) as client,
    ):
        yield emulator, clock, client


def test_burst_limit_429_with_ratelimit_headers(
    burst: tuple[PipedriveEmulator, FakeClock, httpx.Client],
) -> None:
    emulator, clock, client = burst
    remaining = []
    for _ in range(20):
        response = client.get(PERSONS)
        assert response.status_code == 200
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
        assert response.headers["x-ratelimit-limit"] == "20"
    assert remaining == list(range(19, -1, -1))
    refused = client.get(PERSONS)
    assert error_of(refused, 429) == "request over limit"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-reset"] == "2"
    assert "retry-after" not in refused.headers
    clock.advance(2.0)
    again = client.get(PERSONS)
    assert again.status_code == 200 and again.headers["x-ratelimit-remaining"] == "19"
    assert emulator.request_log[20].action == "burst" and emulator.request_log[20].cost == 0


def test_repeated_429s_end_in_an_html_403(
    burst: tuple[PipedriveEmulator, FakeClock, httpx.Client],
) -> None:
    emulator, clock, client = burst
    for _ in range(20):
        client.get(PERSONS)
    assert [client.get(PERSONS).status_code for _ in range(3)] == [429, 429, 429]
    blocked = client.get(PERSONS)
    assert blocked.status_code == 403
    assert blocked.headers["content-type"].startswith("text/html")
    assert "Cloudflare" in blocked.text
    with pytest.raises(json.JSONDecodeError):
        blocked.json()
    clock.advance(29)
    assert client.get(PERSONS).status_code == 403
    clock.advance(1)
    assert client.get(PERSONS).status_code == 200
    assert emulator.stats()["by_action"]["blocked"] == 2


def test_oauth_burst_is_four_times_larger_and_retry_after_switch() -> None:
    emulator, _ = limited(EmulatorLimits(retry_after=True))
    headers = {"Authorization": f"Bearer {DEFAULT_OAUTH_TOKEN}"}
    statuses = [emulator.handle("GET", "/v1/users/me", headers, b"").status for _ in range(81)]
    assert statuses == [200] * 80 + [429]
    refused = emulator.handle("GET", "/v1/users/me", headers, b"")
    assert refused.headers["Retry-After"] == "2" and refused.headers["x-ratelimit-limit"] == "80"


def test_daily_budget_is_spent_by_endpoint_costs() -> None:
    emulator, clock = limited(
        EmulatorLimits(daily_budget=25, burst_limit=1_000, daily_window_seconds=600)
    )
    headers = {"x-api-token": DEFAULT_API_TOKEN}

    def get(path: str) -> tuple[int, str]:
        answer = emulator.handle("GET", path, headers, b"")
        return answer.status, answer.headers.get("x-daily-ratelimit-token-remaining", "-")

    assert get(PERSONS) == (200, "15")  # list: 10 tokens
    assert get(PERSONS) == (200, "5")
    assert get(PERSONS) == (429, "5")  # 5 left is less than 10
    assert get(f"{PERSONS}/1") == (200, "4")  # a get costs 1
    assert get("/v1/leads") == (429, "4")  # 20
    assert emulator.stats()["daily_remaining"] == 4
    clock.advance(600)
    assert get("/v1/leads") == (200, "5")


def test_daily_headers_can_go_missing() -> None:
    emulator, _ = limited(EmulatorLimits(daily_headers_drop_rate=1.0))
    answer = emulator.handle("GET", PERSONS, {"x-api-token": DEFAULT_API_TOKEN}, b"")
    assert answer.status == 200 and answer.headers["x-ratelimit-limit"] == "20"
    assert "x-daily-ratelimit-token-remaining" not in answer.headers


# -- faults, admin, concurrency, data, performance, CLI -----------------------------------


def test_scripted_faults(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(3)
    pipedrive_emulator.script(
        "500", "503", "502", "429", "non_json", "success_false", path_contains="persons"
    )
    statuses = [pipedrive_client.get(PERSONS) for _ in range(6)]
    assert [r.status_code for r in statuses] == [500, 503, 502, 429, 200, 200]
    assert statuses[2].headers["content-type"].startswith("text/html")
    assert statuses[3].headers["x-ratelimit-remaining"] == "0"
    assert statuses[4].text.startswith("<html>")
    assert statuses[5].json()["success"] is False
    pipedrive_emulator.script("truncated", "drop", "slow", slow_seconds=0.3)
    with pytest.raises(json.JSONDecodeError):
        pipedrive_client.get(PERSONS).json()
    with pytest.raises(httpx.RemoteProtocolError):
        pipedrive_client.get(PERSONS)
    started = time.monotonic()
    assert ok(pipedrive_client.get(PERSONS))
    assert time.monotonic() - started >= 0.3
    actions = [record.action for record in pipedrive_emulator.request_log]
    assert actions == [
        "500",
        "503",
        "502",
        "429",
        "non_json",
        "success_false",
        "truncated",
        "drop",
        "slow",
    ]
    with pytest.raises(ValueError, match="unknown fault"):
        pipedrive_emulator.script("teapot")


def test_admin_interface(
    pipedrive_emulator: PipedriveEmulator, pipedrive_server: LoopbackServer
) -> None:
    t0 = pipedrive_emulator.now()
    with httpx.Client(base_url=f"{pipedrive_server.url}/_emulator") as admin:
        seeded = admin.post("/seed", json={"persons": 12, "leads": 4, "archived_leads": 1})
        assert seeded.json() == {"persons": 12, "person_ids": [1, 12], "leads": 4}
        assert admin.post("/clock", json={"advance": 90}).json() == {
            "now": (t0 + timedelta(seconds=90)).isoformat()
        }
        made = admin.post("/persons", json={"name": "Zoë", "emails": ["zoe@example.com"]}).json()
        assert made["id"] == 13 and made["update_time"] == iso(t0, 90)
        assert admin.patch("/persons/13", json={"name": "Zoé"}).json()["name"] == "Zoé"
        assert admin.post("/persons/13/merge", json={"into": 1}).json()["id"] == 1
        assert admin.get("/persons/13").json()["is_deleted"] is True
        assert admin.delete("/persons/2").json()["is_deleted"] is True
        assert admin.get("/persons/999").status_code == 404
        assert admin.patch("/persons/1", json={"owner_id": 99}).status_code == 400
        key = admin.post("/personFields", json={"name": "Size", "field_type": "double"}).json()
        assert HASH.match(key["key"])
        assert admin.post("/faults", json={"faults": ["503"], "path_contains": "leads"}).json() == {
            "pending": 1
        }
        lead = admin.post("/leads", json={"title": "Via admin", "person_id": 1}).json()
        assert admin.post(f"/leads/{lead['id']}/archive").json()["is_archived"] is True
        leads = httpx.get(
            f"{pipedrive_server.url}/v1/leads", headers={"x-api-token": DEFAULT_API_TOKEN}
        )
        assert leads.status_code == 503
        stats = admin.get("/stats").json()
        assert stats["persons"] == 11 and stats["deleted_persons"] == 2
        assert stats["leads"] == 3 and stats["archived_leads"] == 2
        assert stats["by_status"] == {"503": 1} and stats["faults_pending"] == 0
        assert admin.get("/requests", params={"limit": 1}).json()[0]["route"] == "leads.list"
        token = admin.post("/tokens", json={"kind": "api_token", "token": "t2", "user_id": 2})
        assert token.status_code == 200
        me = httpx.get(f"{pipedrive_server.url}/v1/users/me", headers={"x-api-token": "t2"})
        assert ok(me)["id"] == 2
        assert admin.get("/nowhere").status_code == 404


def test_concurrent_requests_are_served_consistently(
    pipedrive_emulator: PipedriveEmulator, pipedrive_server: LoopbackServer
) -> None:
    pipedrive_emulator.seed_persons(200)
    statuses: list[int] = []

    def worker() -> None:
        with httpx.Client(
            base_url=pipedrive_server.url, headers={"x-api-token": DEFAULT_API_TOKEN}
        ) as client:
            for _ in range(10):
                statuses.append(client.get(PERSONS, params={"limit": 50}).status_code)
                pipedrive_emulator.update_person(1, name="Busy")

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 60
    assert len(pipedrive_emulator.request_log) == 60


def test_seeded_data_is_realistic_and_deterministic() -> None:
    emulator = PipedriveEmulator(seed=7, persons=2_000)
    persons = [emulator.store.persons[n] for n in range(1, 2_001)]
    phones = [entry["value"] for p in persons for entry in p.phones]
    assert len(phones) == len(set(phones)) > 1_900
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(phone)) for phone in phones[:300])
    emails = [entry["value"] for p in persons for entry in p.emails]
    assert len(emails) == len(set(emails))
    assert all(
        p.emails[0] == {"value": f"person{p.id}@example.com", "primary": True, "label": "work"}
        for p in persons
        if p.emails
    )
    assert all(p.phones[0]["value"] == phone_for(p.id) for p in persons if p.phones)
    assert 40 < sum(not p.emails for p in persons) < 200
    assert any(not name.isascii() for name in (p.name for p in persons))
    assert sum(p.org_id is not None for p in persons) > 1_200
    same = PipedriveEmulator(seed=7)
    other = PipedriveEmulator(seed=8)
    keys = [made.key for made in emulator.store.fields.custom("person")]
    assert keys == [made.key for made in same.store.fields.custom("person")]
    assert keys != [made.key for made in other.store.fields.custom("person")]
    assert phonenumbers.is_valid_number(phonenumbers.parse("+12135559999"))


def test_v1_recents_clamps_and_requires_since(
    pipedrive_emulator: PipedriveEmulator, pipedrive_client: httpx.Client
) -> None:
    pipedrive_emulator.seed_persons(10)
    body = pipedrive_client.get(
        "/v1/recents", params={"since_timestamp": "2000-01-01 00:00:00", "items": "person"}
    ).json()
    since = iso(pipedrive_emulator.now(), -30 * 86_400, V1_FORMAT)
    assert body["additional_data"]["since_timestamp"] == since
    assert all(item["item"] == "person" for item in body["data"])
    assert error_of(pipedrive_client.get("/v1/recents"), 400) == "since_timestamp is required"
    bad = pipedrive_client.get("/v1/recents", params={"since_timestamp": "2026-01-01T00:00:00Z"})
    assert error_of(bad, 400).startswith("Validation failed: since_timestamp")


@pytest.fixture(scope="module")
def big() -> PipedriveEmulator:
    """50,000 persons, limits off (shared by the performance tests)."""
    return PipedriveEmulator(limits=EmulatorLimits(enabled=False), persons=50_000)


def test_a_500_row_window_page_of_50k_persons_is_fast(big: PipedriveEmulator) -> None:
    headers = {"x-api-token": DEFAULT_API_TOKEN}
    query = f"{PERSONS}?limit=500&sort_by=update_time&updated_since=2020-01-01T00:00:00Z"
    query += "&updated_until=2099-01-01T00:00:00Z"
    timings, cursor = [], ""
    for _ in range(5):
        started = time.perf_counter()
        answer = big.handle("GET", query + cursor, headers, b"")
        timings.append(time.perf_counter() - started)
        body = json.loads(answer.body)
        assert len(body["data"]) == 500
        cursor = f"&cursor={body['additional_data']['next_cursor']}"
    assert min(timings) < 0.1, timings
    with serve(big) as server:
        started = time.perf_counter()
        response = httpx.get(f"{server.url}{query}{cursor}", headers=headers)
        assert len(ok(response)) == 500
        assert time.perf_counter() - started < 0.5


def test_cli_serves_until_stopped() -> None:
    module = "naturalead_sync_pipedrive.emulator"
    with spawn([sys.executable, "-m", module, "--persons", "7"], issuer=module) as process:
        first = process.readline()
        url = first.split(" at ")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        token_line = process.readline()
        assert DEFAULT_API_TOKEN in token_line
        data = ok(httpx.get(f"{url}{PERSONS}", headers={"x-api-token": DEFAULT_API_TOKEN}))
        assert len(data) == 7


def test_organizations_by_ids_and_users(
    pipedrive_emulator: PipedriveEmulator,
    pipedrive_server: LoopbackServer,
    pipedrive_client: httpx.Client,
) -> None:
    orgs = "/api/v2/organizations"
    pipedrive_emulator.delete_org(2)
    body = pipedrive_client.get(orgs, params={"ids": "1,2,3,999", "limit": 2}).json()
    assert [org["id"] for org in body["data"]] == [1, 3]  # deleted and unknown left out
    org = body["data"][0]
    assert set(org) >= {"id", "name", "owner_id", "add_time", "update_time", "is_deleted"}
    assert RFC3339.match(org["update_time"]) and isinstance(org["owner_id"], int)
    assert body["additional_data"] == {"next_cursor": None}
    paged = pipedrive_client.get(orgs, params={"limit": 2}).json()
    assert [o["id"] for o in paged["data"]] == [1, 3]
    rest = {"limit": 2, "cursor": paged["additional_data"]["next_cursor"]}
    assert [o["id"] for o in ok(pipedrive_client.get(orgs, params=rest))] == [4, 5]
    too_many = ",".join(str(n) for n in range(1, 102))
    assert error_of(pipedrive_client.get(orgs, params={"ids": too_many}), 400).startswith(
        "Validation failed: ids"
    )

    users = ok(pipedrive_client.get("/v1/users"))
    assert [(u["id"], u["is_you"]) for u in users] == [(1, True), (2, False), (3, False)]
    assert users[1]["name"] == "Björn Seller" and users[1]["active_flag"] is True
    costs = {r.route: r.cost for r in pipedrive_emulator.request_log}
    assert (costs["organizations.list"], costs["users.list"]) == (10, 20)
    pipedrive_emulator.add_oauth_token("contacts-only", scopes=["contacts:read"])
    narrow = httpx.get(
        f"{pipedrive_server.url}/v1/users", headers={"Authorization": "Bearer contacts-only"}
    )
    assert error_of(narrow, 403) == "Scope and URL mismatch"  # users need users:read
