"""Lead and account endpoints (v1): ``/v1/leads``, ``/v1/leads/archived``, ``/v1/leads/{id}``,
``/v1/leadLabels``, ``/v1/personFields``, ``/v1/dealFields``, ``/v1/leadFields`` and
``/v1/users/me``.

Lead lists page by offset (``start``/``limit``, ``limit`` clamped to 500), default order
``add_time`` ascending; ``sort`` takes ``"field ASC|DESC"`` items, comma-separated; ties
fall back to creation order. ``updated_since`` is inclusive. ``filter_id`` is not emulated
for leads (400), since saved lead filters have no documented semantics here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from naturalead_sync.loopback import HTTPAnswer

from .clock import TimestampError, format_v1, parse_iso
from .fields import Entity
from .protocol import ApiError, EmulatorOptions, Request, offset_page, success
from .records import Lead
from .shapes import lead_label, lead_v1, user_me
from .store import Store

__all__ = [
    "get_lead",
    "lead_fields",
    "lead_labels",
    "list_archived_leads",
    "list_leads",
    "person_fields",
    "users_me",
]

MAX_LIMIT = 500
SORTABLE = (
    *("id", "title", "owner_id", "creator_id", "was_seen", "expected_close_date"),
    *("next_activity_id", "add_time", "update_time"),
)


def _limits(request: Request) -> tuple[int, int]:
    start = request.integer("start", 0)
    limit = request.integer("limit", 100, minimum=1)
    assert start is not None and limit is not None
    return start, min(limit, MAX_LIMIT)


def _sorted(leads: list[Lead], sort: str | None) -> list[Lead]:
    """``leads`` in ``sort`` order (default ``add_time`` ascending), ties by creation."""
    keys: list[tuple[str, bool]] = []
    for item in (part.split() for part in (sort or "add_time ASC").split(",") if part.strip()):
        direction = item[1].upper() if len(item) == 2 else "ASC"
        if len(item) > 2 or item[0] not in SORTABLE or direction not in ("ASC", "DESC"):
            raise ApiError.invalid("sort", f"'{' '.join(item)}' is not 'field ASC|DESC'")
        keys.append((item[0], direction == "DESC"))
    ordered = sorted(leads, key=lambda lead: lead.seq)
    for name, descending in reversed(keys):  # stable sorts, least significant key first
        ordered.sort(key=_sort_key(name), reverse=descending)
    return ordered


def _sort_key(name: str) -> Callable[[Lead], tuple[bool, Any]]:
    def key(lead: Lead) -> tuple[bool, Any]:
        value = getattr(lead, name)
        return (value is None, value)

    return key


def _list(store: Store, options: EmulatorOptions, request: Request, archived: bool) -> HTTPAnswer:
    start, limit = _limits(request)
    if request.one("filter_id") is not None:
        raise ApiError(400, "filter_id is not supported by the emulator for leads")
    wanted = {
        name: request.integer(name, minimum=1)
        for name in ("owner_id", "person_id", "organization_id")
    }
    raw_since = request.one("updated_since")
    try:
        since = None if raw_since is None else parse_iso(raw_since, strict=False) * 1000
    except TimestampError as error:
        raise ApiError.invalid("updated_since", str(error)) from None
    leads = [
        lead
        for lead in store.leads.values()
        if lead.is_archived == archived
        and (since is None or lead.update_time >= since)
        and all(value is None or getattr(lead, name) == value for name, value in wanted.items())
    ]
    page, additional = offset_page(
        _sorted(leads, request.one("sort")), start, limit, flat=options.lead_pagination == "flat"
    )
    return success([lead_v1(store, lead) for lead in page], additional)


def list_leads(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/leads``: non-archived leads only."""
    return _list(store, options, request, archived=False)


def list_archived_leads(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/leads/archived``: archived leads only."""
    return _list(store, options, request, archived=True)


def get_lead(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/leads/{id}`` (archived leads included)."""
    lead = store.leads.get(request.params["id"])
    if lead is None:
        raise ApiError(404, "requested lead not found", error_info="Object was not found.")
    return success(lead_v1(store, lead))


def lead_labels(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/leadLabels``."""
    return success([lead_label(label) for label in store.lead_labels.values()])


def _fields(store: Store, request: Request, entity: Entity) -> HTTPAnswer:
    start, limit = _limits(request)
    fields = store.fields.fields(entity)
    page, additional = offset_page([made.v1(format_v1) for made in fields], start, limit)
    return success(page, additional)


def person_fields(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/personFields``: system fields (``edit_flag: false``) then custom ones."""
    return _fields(store, request, "person")


def lead_fields(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/dealFields`` and ``/v1/leadFields``: the deal fields leads inherit."""
    return _fields(store, request, "deal")


def users_me(store: Store, options: EmulatorOptions, request: Request) -> HTTPAnswer:
    """``GET /v1/users/me``: the token's user and the company (``company_domain``)."""
    assert request.credential is not None
    return success(user_me(store, store.users[request.credential.user_id]))
