"""The stored records of the emulated account: users, organizations, persons, leads, labels.

Person times are whole seconds since the epoch (Pipedrive's 1 s resolution, so edits in one
second tie); lead times are milliseconds, as v1 leads show them. Custom values are kept in
their v2 form, keyed by field hash, and only when set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Company", "Contact", "Lead", "LeadLabel", "Organization", "Person", "User", "contacts"]

#: One email or phone entry: ``{"value": str, "primary": bool, "label": str}``.
Contact = dict[str, Any]


def contacts(values: list[str] | list[Contact], default_label: str = "work") -> list[Contact]:
    """Normalise emails or phones given as strings or entries: exactly one primary (the first
    flagged, else the first), label ``work`` when missing, empty values dropped."""
    entries = [
        {"value": item, "primary": False, "label": default_label}
        if isinstance(item, str)
        else {
            "value": str(item.get("value", "")),
            "primary": bool(item.get("primary", False)),
            "label": str(item.get("label") or default_label),
        }
        for item in values
    ]
    entries = [entry for entry in entries if entry["value"]]
    primary = next((i for i, entry in enumerate(entries) if entry["primary"]), 0)
    for i, entry in enumerate(entries):
        entry["primary"] = i == primary
    return entries


@dataclass(slots=True)
class Company:
    """The emulated company: ``domain`` is the ``{domain}.pipedrive.com`` part."""

    id: int = 1
    name: str = "Emulated Company"
    domain: str = "emulated"


@dataclass(slots=True)
class User:
    """A user of the account; persons and leads name one as owner. Pipedrive deletes no
    users: a deactivated one keeps its id and name with ``active_flag`` false."""

    id: int
    name: str
    email: str
    is_admin: bool = False
    active_flag: bool = True
    created: int = 0


@dataclass(slots=True)
class Organization:
    """An organization persons and leads can belong to; ``is_deleted`` marks a soft delete
    (no list shows it; persons keep pointing at it). Times are whole seconds."""

    id: int
    name: str
    owner_id: int
    address: str | None = None
    add_time: int = 0
    update_time: int = 0
    is_deleted: bool = False


@dataclass(slots=True)
class Person:
    """A person (contact). ``is_deleted`` marks a soft delete; ``update_time`` is then the
    delete time. ``merged_into`` is the winner's id when the person lost a merge."""

    id: int
    name: str
    first_name: str | None
    last_name: str | None
    owner_id: int
    org_id: int | None
    emails: list[Contact]
    phones: list[Contact]
    label_ids: list[int]
    custom_fields: dict[str, Any]
    add_time: int
    update_time: int
    visible_to: int = 3
    is_deleted: bool = False
    picture_id: int | None = None
    merged_into: int | None = None


@dataclass(slots=True)
class LeadLabel:
    """A lead label (UUID id); times in milliseconds."""

    id: str
    name: str
    color: str
    add_time: int
    update_time: int


@dataclass(slots=True)
class Lead:
    """A lead (UUID id). ``seq`` is the creation order, the tie-break of every lead sort."""

    id: str
    seq: int
    title: str
    owner_id: int
    creator_id: int
    person_id: int | None
    organization_id: int | None
    add_time: int
    update_time: int
    label_ids: list[str] = field(default_factory=list)
    value: dict[str, Any] | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    source_name: str = "API"
    origin: str = "API"
    channel: int | None = None
    channel_id: str | None = None
    is_archived: bool = False
    was_seen: bool = False
    expected_close_date: str | None = None
    next_activity_id: int | None = None
    visible_to: str = "3"
