"""Wire shapes of stored records: v2 persons and organizations, v1 persons (legacy and
recents), v1 leads, lead labels, and v1 users (``/v1/users`` and ``/v1/users/me``).

v2 persons nest custom values under ``custom_fields`` (every custom field, ``null`` when
unset); v1 persons put them at the root in the flat v1 form; v1 leads put deal-field values
at the root and omit unset ones.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .clock import format_lead_time, format_rfc3339, format_v1
from .fields import v1_items
from .records import Lead, LeadLabel, Organization, Person, User
from .store import Store

__all__ = [
    "INCLUDE_FIELDS",
    "lead_label",
    "lead_v1",
    "organization_v2",
    "person_v1",
    "person_v2",
    "user_me",
    "user_v1",
]

#: The opt-in extras of ``include_fields`` with the value every emulated person has.
INCLUDE_FIELDS: Mapping[str, Any] = {
    "next_activity_id": None,
    "last_activity_id": None,
    "open_deals_count": 0,
    "related_open_deals_count": 0,
    "closed_deals_count": 0,
    "related_closed_deals_count": 0,
    "participant_open_deals_count": 0,
    "participant_closed_deals_count": 0,
    "email_messages_count": 0,
    "activities_count": 0,
    "done_activities_count": 0,
    "undone_activities_count": 0,
    "files_count": 0,
    "notes_count": 0,
    "followers_count": 1,
    "won_deals_count": 0,
    "related_won_deals_count": 0,
    "lost_deals_count": 0,
    "related_lost_deals_count": 0,
    "last_incoming_mail_time": None,
    "last_outgoing_mail_time": None,
    "marketing_status": "no_consent",
    "doi_status": None,
    "smart_bcc_email": None,
}


def person_v2(
    store: Store,
    person: Person,
    *,
    custom_keys: Collection[str] | None = None,
    include: Collection[str] = (),
) -> dict[str, Any]:
    """The v2 person; ``custom_keys`` limits ``custom_fields``, ``include`` adds extras."""
    keys = [made.key for made in store.fields.custom("person")]
    if custom_keys is not None:
        keys = [key for key in keys if key in custom_keys]
    shown: dict[str, Any] = {
        "id": person.id,
        "name": person.name,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "owner_id": person.owner_id,
        "org_id": person.org_id,
        "add_time": format_rfc3339(person.add_time),
        "update_time": format_rfc3339(person.update_time),
        "emails": [dict(entry) for entry in person.emails],
        "phones": [dict(entry) for entry in person.phones],
        "is_deleted": person.is_deleted,
        "visible_to": person.visible_to,
        "label_ids": list(person.label_ids),
        "picture_id": person.picture_id,
        "custom_fields": {key: person.custom_fields.get(key) for key in keys},
    }
    for name in include:
        shown[name] = INCLUDE_FIELDS[name]
    if "smart_bcc_email" in include:
        shown["smart_bcc_email"] = f"{store.company.domain}+person{person.id}@pipedrivemail.com"
    return shown


def _v1_contacts(entries: list[dict[str, Any]], empty_placeholder: bool) -> list[dict[str, Any]]:
    if entries:
        return [dict(entry) for entry in entries]
    return [{"value": "", "primary": True}] if empty_placeholder else []


def person_v1(
    store: Store,
    person: Person,
    *,
    people_count: Mapping[int, int],
    empty_placeholder: bool = True,
) -> dict[str, Any]:
    """The v1 person: owner and org as objects, ``phone``/``email`` arrays (an empty one is
    ``[{"value": "", "primary": true}]`` with ``empty_placeholder``), v1 times and flat
    custom fields at the root. ``people_count`` maps org id to its live persons."""
    owner = store.users[person.owner_id]
    org = store.orgs.get(person.org_id) if person.org_id is not None else None
    primary_email = next((entry["value"] for entry in person.emails if entry["primary"]), None)
    shown: dict[str, Any] = {
        "id": person.id,
        "company_id": store.company.id,
        "owner_id": {
            "id": owner.id,
            "name": owner.name,
            "email": owner.email,
            "has_pic": 0,
            "pic_hash": None,
            "active_flag": True,
            "value": owner.id,
        },
        "org_id": None
        if org is None
        else {
            "name": org.name,
            "people_count": people_count.get(org.id, 0),
            "owner_id": org.owner_id,
            "address": org.address,
            "active_flag": True,
            "cc_email": f"{store.company.domain}@pipedrivemail.com",
            "value": org.id,
        },
        "name": person.name,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "open_deals_count": 0,
        "closed_deals_count": 0,
        "activities_count": 0,
        "phone": _v1_contacts(person.phones, empty_placeholder),
        "email": _v1_contacts(person.emails, empty_placeholder),
        "primary_email": primary_email,
        "first_char": person.name[:1].lower(),
        "add_time": format_v1(person.add_time),
        "update_time": format_v1(person.update_time),
        "delete_time": format_v1(person.update_time) if person.is_deleted else None,
        "visible_to": str(person.visible_to),
        "picture_id": person.picture_id,
        "label": person.label_ids[0] if person.label_ids else None,
        "label_ids": list(person.label_ids),
        "active_flag": not person.is_deleted,
        "org_name": None if org is None else org.name,
        "owner_name": owner.name,
        "cc_email": f"{store.company.domain}@pipedrivemail.com",
    }
    for made in store.fields.custom("person"):
        shown.update(v1_items(made, person.custom_fields.get(made.key)))
    return shown


def lead_v1(store: Store, lead: Lead) -> dict[str, Any]:
    """The v1 lead: UUID id, ``…sssZ`` times, set deal-field values at the root."""
    shown: dict[str, Any] = {
        "id": lead.id,
        "title": lead.title,
        "owner_id": lead.owner_id,
        "creator_id": lead.creator_id,
        "label_ids": list(lead.label_ids),
        "person_id": lead.person_id,
        "organization_id": lead.organization_id,
        "source_name": lead.source_name,
        "origin": lead.origin,
        "origin_id": None,
        "channel": lead.channel,
        "channel_id": lead.channel_id,
        "is_archived": lead.is_archived,
        "was_seen": lead.was_seen,
        "value": None if lead.value is None else dict(lead.value),
        "expected_close_date": lead.expected_close_date,
        "next_activity_id": lead.next_activity_id,
        "add_time": format_lead_time(lead.add_time),
        "update_time": format_lead_time(lead.update_time),
        "visible_to": lead.visible_to,
        "cc_email": f"{store.company.domain}+{store.company.id}+lead{lead.seq}@pipedrivemail.com",
    }
    for made in store.fields.custom("deal"):
        if made.key in lead.custom_fields:
            shown.update(v1_items(made, lead.custom_fields[made.key]))
    return shown


def lead_label(label: LeadLabel) -> dict[str, Any]:
    """One ``/v1/leadLabels`` item."""
    return {
        "id": label.id,
        "name": label.name,
        "color": label.color,
        "add_time": format_lead_time(label.add_time),
        "update_time": format_lead_time(label.update_time),
    }


def organization_v2(org: Organization) -> dict[str, Any]:
    """The v2 organization (``GET /api/v2/organizations``): int ``owner_id``, RFC 3339 times,
    the address as an object, nested ``custom_fields`` (none are emulated)."""
    address = None
    if org.address is not None:
        address = {"value": org.address, "formatted_address": org.address}
    return {
        "id": org.id,
        "name": org.name,
        "owner_id": org.owner_id,
        "add_time": format_rfc3339(org.add_time),
        "update_time": format_rfc3339(org.update_time),
        "is_deleted": org.is_deleted,
        "visible_to": 3,
        "label_ids": [],
        "address": address,
        "custom_fields": {},
    }


def user_v1(user: User, *, is_you: bool) -> dict[str, Any]:
    """One v1 user (``/v1/users`` items); ``is_you`` marks the token's own user."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "default_currency": "USD",
        "locale": "en_US",
        "lang": 1,
        "phone": None,
        "activated": True,
        "last_login": None,
        "created": format_v1(user.created),
        "modified": format_v1(user.created),
        "has_created_company": user.id == 1,
        "access": [{"app": "sales", "admin": user.is_admin, "permission_set_id": "1"}],
        "is_admin": int(user.is_admin),
        "role_id": 1,
        "icon_url": None,
        "timezone_name": "UTC",
        "timezone_offset": "+00:00",
        "active_flag": user.active_flag,
        "is_you": is_you,
        "is_deleted": False,
    }


def user_me(store: Store, user: User) -> dict[str, Any]:
    """``/v1/users/me`` for ``user``: the user plus the company, ``company_domain`` included."""
    return {
        **user_v1(user, is_you=True),
        "company_id": store.company.id,
        "company_name": store.company.name,
        "company_domain": store.company.domain,
        "company_country": "US",
        "language": {"language_code": "en", "country_code": "US"},
    }
