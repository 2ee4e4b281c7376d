"""Pipedrive custom fields by their human names, and their values as text.

Custom field keys are 40-hex hashes that differ in every company; the config names fields as
Pipedrive shows them (``custom_fields = ["Lead source"]``) and :class:`FieldCatalog` resolves
the names once per run through ``/v1/personFields`` (and ``/v1/leadFields`` for leads, whose
custom fields are the deal fields). Enum and set values become their option labels; composite
values (monetary, ranges, addresses) become one readable string. Values come in v2 form (a
person's ``custom_fields`` object) or v1 form (a lead's root keys, with ``<key>_currency``...).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from naturalead_sync import ConnectorError

__all__ = ["CustomField", "FieldCatalog", "text"]

Source = Literal["person", "lead"]
#: The v1 ``<key>_<sub>`` root keys that complete a composite value.
_V1_SUBFIELDS = {
    "monetary": ("currency",),
    "daterange": ("until",),
    "timerange": ("until",),
    "address": ("formatted_address",),
}
#: The person label field's key (v1 ``label``; some accounts list ``label_ids``).
_LABEL_KEYS = ("label", "label_ids")


def text(value: Any) -> str | None:
    """A value as stripped text, or None when empty."""
    if value is None or isinstance(value, (dict, list)):
        return None
    shown = str(value).strip()
    return shown or None


@dataclass(frozen=True, slots=True)
class CustomField:
    """One custom field the connection sends: its name, hash key, type and option labels."""

    name: str
    key: str
    field_type: str
    options: Mapping[str, str]
    source: Source

    def decode(self, value: Any) -> str | None:
        """The value (v2 form) as the text Naturalead receives, or None when unset."""
        if value is None or value == "" or value == []:
            return None
        if self.field_type in ("enum", "set"):
            ids = value if isinstance(value, list) else str(value).split(",")
            labels = [self.options.get(str(item).strip(), str(item).strip()) for item in ids]
            return ", ".join(label for label in labels if label) or None
        if isinstance(value, dict):
            return self._composite(value)
        return text(value)

    def _composite(self, value: Mapping[str, Any]) -> str | None:
        if self.field_type == "address":
            return text(value.get("formatted_address")) or text(value.get("value"))
        main = text(value.get("value"))
        if main is None:
            return None
        if self.field_type == "monetary":
            currency = text(value.get("currency"))
            return f"{main} {currency}" if currency else main
        until = text(value.get("until"))
        return f"{main}/{until}" if until else main

    def from_root(self, record: Mapping[str, Any]) -> str | None:
        """The value of this field in a v1 record, whose custom values sit at the root."""
        raw = record.get(self.key)
        subs = _V1_SUBFIELDS.get(self.field_type)
        if subs and raw is not None:
            raw = {"value": raw, **{sub: record.get(f"{self.key}_{sub}") for sub in subs}}
        return self.decode(raw)


def _options(item: Mapping[str, Any]) -> dict[str, str]:
    return {str(o["id"]): str(o.get("label") or "") for o in item.get("options") or []}


class FieldCatalog:
    """The field definitions of one company, read once per run."""

    def __init__(
        self,
        person_fields: Iterable[Mapping[str, Any]],
        lead_fields: Iterable[Mapping[str, Any]] = (),
    ) -> None:
        self._custom: dict[Source, list[CustomField]] = {"person": [], "lead": []}
        self.person_labels: dict[str, str] = {}
        sources: tuple[tuple[Source, Iterable[Mapping[str, Any]]], ...] = (
            ("person", person_fields),
            ("lead", lead_fields),
        )
        for source, items in sources:
            for item in items:
                if item.get("key") in _LABEL_KEYS and source == "person":
                    self.person_labels = _options(item)
                if item.get("edit_flag") is True:
                    self._custom[source].append(
                        CustomField(
                            name=str(item.get("name") or item["key"]),
                            key=str(item["key"]),
                            field_type=str(item.get("field_type") or "varchar"),
                            options=_options(item),
                            source=source,
                        )
                    )

    @property
    def person_keys(self) -> list[str]:
        """The hash keys of the custom person fields, in Pipedrive's order."""
        return [field.key for field in self._custom["person"]]

    def resolve(self, names: Iterable[str]) -> list[CustomField]:
        """The fields named ``names`` (lead fields first, then person fields; the first of
        equal names wins); an unknown name is a ConnectorError listing the nearest names."""
        found: list[CustomField] = []
        everything = [*self._custom["lead"], *self._custom["person"]]
        for name in names:
            match = next((f for f in everything if f.name == name), None)
            if match is None:
                match = next((f for f in everything if f.name.casefold() == name.casefold()), None)
            if match is None:
                known = sorted({f.name for f in everything})
                near = difflib.get_close_matches(name, known, n=3, cutoff=0.4) or known[:10]
                raise ConnectorError(
                    f"settings.custom_fields: Pipedrive has no custom field named {name!r}; "
                    f"nearest names: {', '.join(map(repr, near)) or 'none'}. Use the name "
                    "shown in Pipedrive's data fields settings"
                )
            found.append(match)
        return found
