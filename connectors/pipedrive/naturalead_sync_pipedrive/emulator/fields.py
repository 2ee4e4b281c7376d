"""Person and deal (lead) field definitions: hash keys, options, and the value formats.

Custom field keys are 40 lowercase hex characters drawn from the emulator's seeded random
source, so one seed always gives one "account". A stored custom value is kept in its v2 form
(enum ``123``, set ``[1, 2]``, monetary ``{"value", "currency"}`` ...); :func:`v1_items`
flattens it to the v1 root-key form (``"123"``, ``"1,2"``, ``<key>`` + ``<key>_currency``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FIELD_TYPES",
    "SUBFIELDS",
    "Entity",
    "Field",
    "FieldOption",
    "FieldRegistry",
    "check_value",
    "v1_items",
]

#: Which field set: person fields, or deal fields (which leads inherit).
Entity = Literal["person", "deal"]

#: Field types of Pipedrive person and deal fields.
FIELD_TYPES = frozenset(
    {
        "varchar",
        "varchar_auto",
        "text",
        "double",
        "monetary",
        "set",
        "enum",
        "user",
        "org",
        "people",
        "phone",
        "time",
        "timerange",
        "date",
        "daterange",
        "address",
    }
)
#: Subfields of composite types: v2 keys inside the value object, v1 ``<key>_<sub>`` root keys.
SUBFIELDS: dict[str, tuple[str, ...]] = {
    "monetary": ("currency",),
    "daterange": ("until",),
    "timerange": ("until",),
    "address": (
        "street_number",
        "route",
        "sublocality",
        "locality",
        "admin_area_level_1",
        "admin_area_level_2",
        "country",
        "postal_code",
        "formatted_address",
    ),
}
_TEXT_TYPES = frozenset({"varchar", "varchar_auto", "text", "phone", "date", "time"})
_ID_TYPES = frozenset({"user", "org", "people"})

# (v1 key, v2 field code, name, field type) of the system fields every account has.
_SYSTEM_PERSON_FIELDS = (
    ("id", "id", "ID", "int"),
    ("name", "name", "Name", "varchar"),
    ("first_name", "first_name", "First name", "varchar"),
    ("last_name", "last_name", "Last name", "varchar"),
    ("label_ids", "label_ids", "Labels", "set"),
    ("org_id", "org_id", "Organization", "org"),
    ("owner_id", "owner_id", "Owner", "user"),
    ("phone", "phones", "Phone", "phone"),
    ("email", "emails", "Email", "varchar"),
    ("visible_to", "visible_to", "Visible to", "visible_to"),
    ("add_time", "add_time", "Person created", "date"),
    ("update_time", "update_time", "Update time", "date"),
)
_SYSTEM_DEAL_FIELDS = (
    ("id", "id", "ID", "int"),
    ("title", "title", "Title", "varchar"),
    ("value", "value", "Value", "monetary"),
    ("person_id", "person_id", "Contact person", "people"),
    ("org_id", "org_id", "Organization", "org"),
    ("user_id", "owner_id", "Owner", "user"),
    ("add_time", "add_time", "Deal created", "date"),
    ("update_time", "update_time", "Update time", "date"),
)


@dataclass(slots=True)
class FieldOption:
    """One option of an enum or set field (``color`` only on label fields)."""

    id: int
    label: str
    color: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The option as the API writes it."""
        shown: dict[str, Any] = {"id": self.id, "label": self.label}
        if self.color is not None:
            shown["color"] = self.color
        return shown


@dataclass(slots=True)
class Field:
    """One field definition. ``key`` is the v1 key (a hash for custom fields), ``code`` the
    v2 ``field_code`` (equal to ``key`` for custom fields)."""

    id: int
    key: str
    code: str
    name: str
    field_type: str
    custom: bool
    order_nr: int
    add_time: int
    options: list[FieldOption] = field(default_factory=list)

    def option_ids(self) -> set[int]:
        """The ids of this field's options."""
        return {option.id for option in self.options}

    def v1(self, format_time: Callable[[int], str]) -> dict[str, Any]:
        """The ``/v1/personFields`` (or dealFields) item; ``format_time`` formats seconds."""
        shown: dict[str, Any] = {
            "id": self.id,
            "key": self.key,
            "name": self.name,
            "order_nr": self.order_nr,
            "field_type": self.field_type,
            "add_time": format_time(self.add_time),
            "update_time": format_time(self.add_time),
            "active_flag": True,
            "edit_flag": self.custom,
            "index_visible_flag": True,
            "details_visible_flag": True,
            "add_visible_flag": True,
            "important_flag": False,
            "bulk_edit_allowed": True,
            "searchable_flag": False,
            "filtering_allowed": True,
            "sortable_flag": True,
            "mandatory_flag": self.key == "name",
        }
        if self.field_type in ("enum", "set"):
            shown["options"] = [option.as_dict() for option in self.options]
        return shown

    def v2(self) -> dict[str, Any]:
        """The ``/api/v2/personFields`` item."""
        subfields = SUBFIELDS.get(self.field_type)
        return {
            "field_code": self.code,
            "field_name": self.name,
            "field_type": self.field_type,
            "is_custom_field": self.custom,
            "is_optional_response_field": False,
            "options": (
                [option.as_dict() for option in self.options]
                if self.field_type in ("enum", "set")
                else None
            ),
            "subfields": (
                [
                    {"field_code": sub, "field_name": sub.replace("_", " ").capitalize()}
                    for sub in subfields
                ]
                if subfields
                else None
            ),
        }


class FieldRegistry:
    """The person and deal fields of one account, system fields first."""

    def __init__(self, rng: random.Random, created: int) -> None:
        self._rng = rng
        self._next_field_id = 9000
        self._next_option_id = 1
        self._fields: dict[Entity, list[Field]] = {"person": [], "deal": []}
        for key, code, name, field_type in _SYSTEM_PERSON_FIELDS:
            self._append("person", key, code, name, field_type, False, created)
        for key, code, name, field_type in _SYSTEM_DEAL_FIELDS:
            self._append("deal", key, code, name, field_type, False, created)

    def _append(
        self, entity: Entity, key: str, code: str, name: str, kind: str, custom: bool, when: int
    ) -> Field:
        self._next_field_id += 1
        fields = self._fields[entity]
        made = Field(self._next_field_id, key, code, name, kind, custom, len(fields) + 1, when)
        fields.append(made)
        return made

    def add(
        self,
        entity: Entity,
        name: str,
        field_type: str,
        options: Sequence[str | tuple[str, str]] = (),
        *,
        created: int,
    ) -> Field:
        """Add a custom field (a new random hash key); ``options`` are labels or
        ``(label, color)`` pairs, for enum and set fields only."""
        if field_type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {field_type!r}")
        if options and field_type not in ("enum", "set"):
            raise ValueError("only enum and set fields take options")
        key = f"{self._rng.getrandbits(160):040x}"
        made = self._append(entity, key, key, name, field_type, True, created)
        self.add_options(made, options)
        return made

    def add_options(self, target: Field, options: Sequence[str | tuple[str, str]]) -> None:
        """Append options to ``target``; option ids are unique across the account."""
        for option in options:
            label, color = (option, None) if isinstance(option, str) else option
            target.options.append(FieldOption(self._next_option_id, label, color))
            self._next_option_id += 1

    def fields(self, entity: Entity) -> list[Field]:
        """Every field of ``entity``, in order."""
        return list(self._fields[entity])

    def custom(self, entity: Entity) -> list[Field]:
        """The custom fields of ``entity``, in order."""
        return [made for made in self._fields[entity] if made.custom]

    def get(self, entity: Entity, key: str) -> Field:
        """The field of ``entity`` with v1 ``key``; KeyError when unknown."""
        for made in self._fields[entity]:
            if made.key == key:
                return made
        raise KeyError(f"no {entity} field {key!r}")


def check_value(target: Field, value: Any) -> None:
    """Raise ValueError unless ``value`` is a valid v2-form value of ``target`` (None clears)."""
    if value is None:
        return
    kind = target.field_type
    problem: str | None = None
    if kind == "enum":
        if not isinstance(value, int) or value not in target.option_ids():
            problem = "an option id"
    elif kind == "set":
        if not isinstance(value, list) or not set(value) <= target.option_ids():
            problem = "a list of option ids"
    elif kind in SUBFIELDS:
        allowed = {"value", *SUBFIELDS[kind]}
        if not isinstance(value, dict) or "value" not in value or set(value) - allowed:
            problem = f"an object with keys from {sorted(allowed)}"
    elif kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            problem = "a number"
    elif kind in _ID_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            problem = "an id"
    elif kind in _TEXT_TYPES and not isinstance(value, str):
        problem = "a string"
    if problem is not None:
        raise ValueError(f"custom field {target.name!r} ({kind}) needs {problem}, got {value!r}")


def v1_items(target: Field, value: Any) -> dict[str, Any]:
    """The v1 root keys of one stored value: ``{key: ...}`` plus ``<key>_<sub>`` subfields."""
    kind, key = target.field_type, target.key
    subfields = SUBFIELDS.get(kind, ())
    if value is None:
        return {key: None, **{f"{key}_{sub}": None for sub in subfields}}
    if kind == "enum":
        return {key: str(value)}
    if kind == "set":
        return {key: ",".join(str(option) for option in value)}
    if subfields:
        return {key: value["value"], **{f"{key}_{sub}": value.get(sub) for sub in subfields}}
    return {key: value}
