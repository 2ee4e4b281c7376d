"""Person endpoints: ``/api/v2/persons`` (list, get), ``/api/v2/personFields``, and the
legacy ``/v1/persons`` and ``/v1/recents``.

The v2 list cursor is base64url JSON ``{"field", "fieldValue", "sortDirection", "id"}`` of
the next page's first row (times as epoch seconds); it must come back with the same
``sort_by``/``sort_direction`` or the request is a 400. Rows updated while a client pages
move within the keyset instead of shifting offsets.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from naturalead_sync.loopback import HTTPAnswer

from .clock import TimestampError, format_v1, parse_iso, parse_v1
from .index import SORT_FIELDS, SortField
from .protocol import ApiError, EmulatorOptions, Request, offset_page, success
from .records import Person
from .shapes import INCLUDE_FIELDS, person_v1, person_v2
from .store import NotFound, Store

__all__ = [
    "decode_cursor",
    "encode_cursor",
    "get_person",
    "id_set",
    "list_person_fields_v2",
    "list_persons",
    "list_persons_v1",
    "page_limit",
    "recents",
]

MAX_LIMIT = 500
MAX_IDS = 100
MAX_CUSTOM_FIELDS = 15
RECENT_ITEMS = (
    *("activity", "activityType", "deal", "file", "filter", "note", "person"),
    *("organization", "pipeline", "product", "stage", "user"),
)
_SORTS: dict[str, SortField] = {name: name for name in SORT_FIELDS}


def page_limit(request: Request, options: EmulatorOptions, *, clamp: bool = False) -> int:
    """``limit`` (default 100): above 500 a 400 or clamped, per ``limit_over_max``."""
    limit = request.integer("limit", 100, minimum=1)
    assert limit is not None
    if limit > MAX_LIMIT and not clamp and options.limit_over_max == "error":
        raise ApiError.invalid("limit", f"must be <= {MAX_LIMIT}, got {limit}")
    return min(limit, MAX_LIMIT)


def _time(request: Request, name: str, strict: bool) -> float | None:
    raw = request.one(name)
    if raw is None:
        return None
    try:
        return parse_iso(raw, strict=strict)
    except TimestampError as error:
        raise ApiError.invalid(name, str(error)) from None


def encode_cursor(key: tuple[int, int], field: SortField, direction: str) -> str:
    """The opaque v2 cursor of the next page's first row, keyed ``(sort value, id)``."""
    payload = {"field": field, "fieldValue": key[0], "sortDirection": direction, "id": key[1]}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str, field: SortField, direction: str) -> tuple[int, int]:
    """The ``(sort value, id)`` key of a cursor; a 400 when it is not one of this sort."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        key = (payload["fieldValue"], payload["id"])
        valid = payload["field"] == field and payload["sortDirection"] == direction
    except (ValueError, binascii.Error, KeyError, TypeError):
        valid = False
    if not valid or not all(isinstance(part, int) for part in key):
        raise ApiError.invalid("cursor", "invalid cursor for this sort")
    return key


def id_set(request: Request) -> set[int] | None:
    """The v2 ``ids`` filter (at most 100 integers), or None when absent."""
    raw = request.names("ids")
    if raw is not None and (len(raw) > MAX_IDS or not all(item.isdigit() for item in raw)):
        raise ApiError.invalid("ids", f"must be at most {MAX_IDS} comma-separated integers")
    return None if raw is None else {int(item) for item in raw}


def _shape_options(request: Request) -> tuple[list[str] | None, list[str]]:
    """The ``custom_fields`` subset (at most 15) and the ``include_fields`` extras."""
    custom = request.names("custom_fields")
    if custom is not None and len(custom) > MAX_CUSTOM_FIELDS:
        raise ApiError.invalid("custom_fields", f"at most {MAX_CUSTOM_FIELDS} keys")
    include = request.names("include_fields") or []
    unknown = [name for name in include if name not in INCLUDE_FIELDS]
    if unknown:
        raise ApiError.invalid("include_fields", f"unknown field(s) {', '.join(unknown)}")
    return custom, include


def list_persons(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /api/v2/persons``."""
    limit = page_limit(request, options)
    sort_by = _SORTS[request.choice("sort_by", SORT_FIELDS)]
    direction = request.choice("sort_direction", ("asc", "desc"))
    since = _time(request, "updated_since", options.strict_timestamps)
    until = _time(request, "updated_until", options.strict_timestamps)
    custom, include = _shape_options(request)
    ids = id_set(request)
    filter_id = request.integer("filter_id", minimum=1)
    quick = {name: request.integer(name, minimum=1) for name in ("owner_id", "org_id", "deal_id")}
    cursor = request.one("cursor")
    start = None if not cursor else decode_cursor(cursor, sort_by, direction)
    matches: Callable[[Person], bool] | None = None
    if filter_id is not None:
        try:
            matches, ids = store.filter_matches(filter_id), None
        except NotFound:
            raise ApiError(404, "Filter not found", error_info="Object was not found.") from None
    elif quick["deal_id"] is not None:  # the emulator has no deals, so no person is on one
        return success([], {"next_cursor": None})
    elif quick["owner_id"] is not None or quick["org_id"] is not None:
        owner, org = quick["owner_id"], quick["org_id"]

        def matches(person: Person) -> bool:
            return (owner is None or person.owner_id == owner) and (
                org is None or person.org_id == org
            )

    rows, next_key = store.index.page(
        store.persons,
        sort_by=sort_by,
        descending=direction == "desc",
        limit=limit,
        since=since,
        until=until,
        start=start,
        ids=ids,
        matches=matches,
    )
    data = [person_v2(store, row, custom_keys=custom, include=include) for row in rows]
    next_cursor = None if next_key is None else encode_cursor(next_key, sort_by, direction)
    return success(data, {"next_cursor": next_cursor})


def get_person(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /api/v2/persons/{id}``; a soft-deleted person per ``deleted_person_get``."""
    raw = request.params["id"]
    if not raw.isdigit():
        raise ApiError.invalid("id", f"must be an integer, got '{raw}'")
    custom, include = _shape_options(request)
    person = store.persons.get(int(raw))
    if person is None or (person.is_deleted and options.deleted_person_get == "404"):
        raise ApiError(404, "Entity was not found", error_info="Object was not found.")
    return success(person_v2(store, person, custom_keys=custom, include=include))


def list_person_fields_v2(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /api/v2/personFields``: cursor pages (the cursor is an encoded offset)."""
    limit = page_limit(request, options)
    cursor = request.one("cursor")
    offset = 0
    if cursor:
        try:
            offset = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        except (ValueError, binascii.Error):
            raise ApiError.invalid("cursor", "invalid cursor") from None
    fields = store.fields.fields("person")
    page = [made.v2() for made in fields[offset : offset + limit]]
    more = offset + limit < len(fields)
    next_cursor = base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if more else None
    return success(page, {"next_cursor": next_cursor})


def _org_counts(store: Store) -> Counter[int]:
    return Counter(p.org_id for p in store.persons.values() if p.org_id and not p.is_deleted)


def list_persons_v1(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/persons`` (out of support): id order, ``start``/``limit``, ``user_id``."""
    start = request.integer("start", 0)
    limit = page_limit(request, options, clamp=True)
    assert start is not None
    owner = request.integer("user_id", minimum=1)
    rows, _ = store.index.page(
        store.persons,
        sort_by="id",
        descending=False,
        limit=start + limit + 1,
        matches=None if owner is None else (lambda person: person.owner_id == owner),
    )
    page, additional = offset_page(rows, start, limit)
    counts = _org_counts(store)
    empty = options.empty_v1_contacts
    data = [person_v1(store, row, people_count=counts, empty_placeholder=empty) for row in page]
    return success(data, additional)


def recents(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/recents``: persons changed since ``since_timestamp`` (clamped to
    ``recents_days`` back), oldest change first, v1 person shapes."""
    raw = request.one("since_timestamp")
    if not raw:
        raise ApiError(400, "since_timestamp is required")
    try:
        since = parse_v1(raw)
    except TimestampError as error:
        raise ApiError.invalid("since_timestamp", str(error)) from None
    items = request.names("items") or list(RECENT_ITEMS)
    unknown = [item for item in items if item not in RECENT_ITEMS]
    if unknown:
        raise ApiError.invalid("items", f"unknown item type(s) {', '.join(unknown)}")
    start = request.integer("start", 0)
    limit = page_limit(request, options, clamp=True)
    assert start is not None
    since = max(since, store.seconds() - options.recents_days * 86_400)
    rows: list[Person] = []
    if "person" in items:
        rows, _ = store.index.page(
            store.persons,
            sort_by="update_time",
            descending=False,
            limit=start + limit + 1,
            since=since,
        )
    page, additional = offset_page(rows, start, limit)
    counts = _org_counts(store)
    empty = options.empty_v1_contacts
    data: list[dict[str, Any]] = [
        {
            "item": "person",
            "id": row.id,
            "data": person_v1(store, row, people_count=counts, empty_placeholder=empty),
        }
        for row in page
    ]
    last = format_v1(page[-1].update_time) if page else None
    additional = {"since_timestamp": format_v1(since), "last_timestamp_on_page": last} | additional
    return success(data, additional)
