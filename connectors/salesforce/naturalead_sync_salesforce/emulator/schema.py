"""The emulated objects: Lead and Contact fields, their wire formats and ``describe``.

A record is a plain ``dict`` holding only the fields that were set; :meth:`FieldDef.value`
supplies the default (``False`` for booleans, else ``None``) and derives the read-only compound
fields (``Name``, ``Address``, ``MailingAddress``) on read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

__all__ = [
    "SCHEMAS",
    "TEXT_TYPES",
    "FieldDef",
    "Record",
    "SObjectSchema",
    "csv_text",
    "describe",
    "wire_datetime",
]

Record = dict[str, Any]

#: Field types whose values are strings and compare case-insensitively in SOQL (ids excepted).
TEXT_TYPES = frozenset(
    {"id", "string", "picklist", "reference", "textarea", "email", "phone", "url"}
)


def wire_datetime(value: datetime) -> str:
    """A datetime as the REST API writes it: UTC, milliseconds, offset without a colon."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def csv_text(value: Any) -> str:
    """A value as a Bulk API 2.0 CSV cell: null is empty, datetimes end in ``Z``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return wire_datetime(value).replace("+0000", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject as ``describe`` reports it.

    ``system`` fields are set by the org only; ``calculated`` ones (formulas) change through
    :meth:`~naturalead_sync_salesforce.emulator.Org.formula_change` only; ``derive`` computes a
    compound value on read; ``compound`` names the compound field a component belongs to.
    """

    name: str
    type: str
    length: int = 0
    required: bool = False
    system: bool = False
    calculated: bool = False
    custom: bool = False
    compound: str | None = None
    derive: Callable[[Record], Any] | None = field(default=None, compare=False)

    @property
    def default(self) -> Any:
        """The value of a field never set: ``False`` for booleans, else ``None``."""
        return False if self.type == "boolean" else None

    @property
    def writable(self) -> bool:
        """Whether create and update may set it."""
        return not (self.system or self.calculated or self.derive is not None)

    def value(self, record: Record) -> Any:
        """The field's Python value in ``record``."""
        if self.derive is not None:
            return self.derive(record)
        return record.get(self.name, self.default)

    def json(self, record: Record) -> Any:
        """The field's value as the REST API writes it in JSON."""
        value = self.value(record)
        if isinstance(value, datetime):
            return wire_datetime(value)
        if isinstance(value, date):
            return value.isoformat()
        return value

    def describe(self) -> dict[str, Any]:
        """This field's entry in ``describe``'s ``fields`` list."""
        return {
            "name": self.name,
            "label": self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "length": self.length,
            "nillable": not self.required and self.type != "boolean" and self.name != "Id",
            "createable": self.writable,
            "updateable": self.writable,
            "calculated": self.calculated or self.derive is not None,
            "custom": self.custom,
            "compoundFieldName": self.compound,
        }


@dataclass(frozen=True)
class SObjectSchema:
    """An sObject: its name, key prefix and fields (looked up case-insensitively)."""

    name: str
    key_prefix: str
    fields: tuple[FieldDef, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def _by_lower(self) -> dict[str, FieldDef]:
        return {f.name.lower(): f for f in self.fields}

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name`` (any case), or None."""
        return self._by_lower.get(name.lower())


def describe(schema: SObjectSchema, version: str) -> dict[str, Any]:
    """The body of ``GET sobjects/{name}/describe`` for API ``version`` (e.g. ``"59.0"``)."""
    base = f"/services/data/v{version}/sobjects/{schema.name}"
    return {
        "name": schema.name,
        "label": schema.name,
        "keyPrefix": schema.key_prefix,
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "replicateable": True,
        "deletable": True,
        "createable": True,
        "updateable": True,
        "fields": [f.describe() for f in schema.fields],
        "urls": {"sobject": base, "describe": f"{base}/describe"},
    }


def _full_name(record: Record) -> str | None:
    parts = ("Salutation", "FirstName", "MiddleName", "LastName", "Suffix")
    return " ".join(str(record[p]) for p in parts if record.get(p)) or None


def _address(prefix: str) -> Callable[[Record], dict[str, Any] | None]:
    keys = {
        "city": "City",
        "country": "Country",
        "geocodeAccuracy": "GeocodeAccuracy",
        "latitude": "Latitude",
        "longitude": "Longitude",
        "postalCode": "PostalCode",
        "state": "State",
        "street": "Street",
    }

    def derive(record: Record) -> dict[str, Any] | None:
        value = {key: record.get(prefix + name) for key, name in keys.items()}
        return value if any(v is not None for v in value.values()) else None

    return derive


def _address_fields(prefix: str, compound: str) -> list[FieldDef]:
    parts = [
        ("Street", "textarea", 255),
        ("City", "string", 40),
        ("State", "string", 80),
        ("PostalCode", "string", 20),
        ("Country", "string", 80),
        ("Latitude", "double", 0),
        ("Longitude", "double", 0),
        ("GeocodeAccuracy", "picklist", 40),
    ]
    components = [FieldDef(prefix + n, t, length, compound=compound) for n, t, length in parts]
    return [*components, FieldDef(compound, "address", derive=_address(prefix))]


def _common_head() -> list[FieldDef]:
    return [
        FieldDef("Id", "id", 18, system=True),
        FieldDef("IsDeleted", "boolean", system=True),
        FieldDef("MasterRecordId", "reference", 18, system=True),
        FieldDef("LastName", "string", 80, required=True, compound="Name"),
        FieldDef("FirstName", "string", 40, compound="Name"),
        FieldDef("Salutation", "picklist", 40, compound="Name"),
        FieldDef("MiddleName", "string", 40, compound="Name"),
        FieldDef("Suffix", "string", 40, compound="Name"),
        FieldDef("Name", "string", 121, derive=_full_name),
        FieldDef("Title", "string", 128),
    ]


def _common_tail() -> list[FieldDef]:
    return [
        FieldDef("OwnerId", "reference", 18, required=True),
        FieldDef("HasOptedOutOfEmail", "boolean"),
        FieldDef("HasOptedOutOfFax", "boolean"),
        FieldDef("DoNotCall", "boolean"),
        FieldDef("CreatedDate", "datetime", system=True),
        FieldDef("CreatedById", "reference", 18, system=True),
        FieldDef("LastModifiedDate", "datetime", system=True),
        FieldDef("LastModifiedById", "reference", 18, system=True),
        FieldDef("SystemModstamp", "datetime", system=True),
        FieldDef("LastActivityDate", "date", system=True),
        FieldDef("EmailBouncedReason", "string", 255),
        FieldDef("EmailBouncedDate", "datetime"),
    ]


def _phones(names: Iterable[str]) -> list[FieldDef]:
    return [FieldDef(name, "phone", 40) for name in names]


LEAD = SObjectSchema(
    "Lead",
    "00Q",
    (
        *_common_head(),
        FieldDef("Company", "string", 255, required=True),
        *_address_fields("", "Address"),
        *_phones(("Phone", "MobilePhone", "Fax")),
        FieldDef("Email", "email", 80),
        FieldDef("Website", "url", 255),
        FieldDef("Description", "textarea", 32000),
        FieldDef("LeadSource", "picklist", 40),
        FieldDef("Status", "picklist", 40, required=True),
        FieldDef("Industry", "picklist", 40),
        FieldDef("Rating", "picklist", 40),
        FieldDef("AnnualRevenue", "currency"),
        FieldDef("NumberOfEmployees", "int"),
        FieldDef("IsConverted", "boolean", system=True),
        FieldDef("ConvertedDate", "date", system=True),
        FieldDef("ConvertedAccountId", "reference", 18, system=True),
        FieldDef("ConvertedContactId", "reference", 18, system=True),
        FieldDef("ConvertedOpportunityId", "reference", 18, system=True),
        FieldDef("IsUnreadByOwner", "boolean"),
        *_common_tail(),
        FieldDef("Score__c", "double", calculated=True, custom=True),
    ),
    {"Status": "Open - Not Contacted"},
)

CONTACT = SObjectSchema(
    "Contact",
    "003",
    (
        *_common_head(),
        FieldDef("AccountId", "reference", 18),
        *_address_fields("Mailing", "MailingAddress"),
        *_phones(("Phone", "Fax", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone")),
        FieldDef("AssistantName", "string", 40),
        FieldDef("ReportsToId", "reference", 18),
        FieldDef("Email", "email", 80),
        FieldDef("Department", "string", 80),
        FieldDef("LeadSource", "picklist", 40),
        FieldDef("Birthdate", "date"),
        FieldDef("Description", "textarea", 32000),
        *_common_tail(),
    ),
)

#: The emulated sObjects by name.
SCHEMAS: dict[str, SObjectSchema] = {s.name: s for s in (LEAD, CONTACT)}
