"""What the HubSpot emulator knows of each object type, and HubSpot's datetime format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "CONTACTS",
    "LEADS",
    "MERGED_IDS",
    "READ_ONLY",
    "SCHEMAS",
    "ObjectSchema",
    "epoch_ms",
    "iso",
]

MERGED_IDS = "hs_merged_object_ids"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ms: int) -> str:
    """``ms`` as ISO-8601 UTC with milliseconds and ``Z`` (HubSpot's datetime format)."""
    stamp = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms(value: str) -> int:
    """Epoch milliseconds from digits (already ms) or an ISO-8601 date or datetime (UTC
    unless it names an offset); :class:`ValueError` for anything else."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (stamp - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class ObjectSchema:
    """What the emulator knows of one object type: names, properties and their kinds."""

    name: str  # the plural path name, e.g. "contacts"
    type_id: str  # e.g. "0-1"
    label: str  # upper-case singular, as error messages spell it
    modified_property: str
    default_properties: tuple[str, ...]  # returned when a request names none
    properties: frozenset[str]  # defined at start; more get defined by the Python API
    datetime_properties: frozenset[str]
    number_properties: frozenset[str]
    text_properties: tuple[str, ...]  # what a search ``query`` looks in
    first_id: int


_COMMON = ("createdate", "hs_object_id", "hubspot_owner_id", MERGED_IDS)
CONTACTS = ObjectSchema(
    name="contacts",
    type_id="0-1",
    label="CONTACT",
    modified_property="lastmodifieddate",
    default_properties=(
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    ),
    properties=frozenset(
        (
            *_COMMON,
            "lastmodifieddate",
            "firstname",
            "lastname",
            "email",
            "hs_additional_emails",
            "phone",
            "mobilephone",
            "company",
            "jobtitle",
            "website",
            "address",
            "city",
            "state",
            "zip",
            "country",
            "lifecyclestage",
            "hs_lead_status",
            "hs_analytics_source",
            "lastcontacted",
            "notes_last_updated",
        )
    ),
    datetime_properties=frozenset(
        ("createdate", "lastmodifieddate", "lastcontacted", "notes_last_updated")
    ),
    number_properties=frozenset(("hs_object_id", "hubspot_owner_id")),
    text_properties=("firstname", "lastname", "email", "phone", "mobilephone", "company"),
    first_id=1001,
)
LEADS = ObjectSchema(
    name="leads",
    type_id="0-136",
    label="LEAD",
    modified_property="hs_lastmodifieddate",
    default_properties=("createdate", "hs_lastmodifieddate", "hs_object_id"),
    properties=frozenset(
        (
            *_COMMON,
            "hs_lastmodifieddate",
            "hs_lead_name",
            "hs_lead_type",
            "hs_lead_label",
            "hs_pipeline",
            "hs_pipeline_stage",
        )
    ),
    datetime_properties=frozenset(("createdate", "hs_lastmodifieddate")),
    number_properties=frozenset(("hs_object_id", "hubspot_owner_id")),
    text_properties=("hs_lead_name",),
    first_id=5_000_001,
)
SCHEMAS = {"contacts": CONTACTS, "0-1": CONTACTS, "leads": LEADS, "0-136": LEADS}
#: Set by the emulator only; API writes to them are ignored, Python writes are refused.
READ_ONLY = frozenset(
    ("hs_object_id", "createdate", "lastmodifieddate", "hs_lastmodifieddate", MERGED_IDS)
)
