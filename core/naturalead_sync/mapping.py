"""Config mapping overrides: expressions over a source record's fields.

An expression is one of:

- ``"email"``: the value of the field ``email`` (dotted paths reach into nested objects:
  ``"properties.email"``);
- ``"{first} {last}"``: a template; each ``{field}`` is replaced by that field's value (missing
  or empty fields become empty, and surrounding whitespace is collapsed);
- ``"=VIP"``: the constant ``VIP`` (write ``"=="`` for a literal ``=``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from .config import MappingConfig
from .models import Lead, SourceRecord

__all__ = ["Expression", "Mapper", "compile_expression"]

Expression = Callable[[Mapping[str, Any]], str]
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


_ABSENT = object()


def _lookup(fields: Mapping[str, Any], path: str, absent: Any = None) -> Any:
    """The value at ``path`` (a key, or a dotted path into nested objects), or ``absent``."""
    if path in fields:
        return fields[path]
    node: Any = fields
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return absent
        node = node[part]
    return node


def _paths(expression: str) -> list[str]:
    """The field paths ``expression`` reads (none for a constant)."""
    if expression.startswith("="):
        return []
    parts = _PLACEHOLDER.split(expression)
    return [expression] if len(parts) == 1 else parts[1::2]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@lru_cache(maxsize=1024)
def compile_expression(expression: str) -> Expression:
    """Turn a mapping expression into a function of a record's fields."""
    if expression.startswith("="):
        constant = expression[1:]
        return lambda fields: constant
    # Literal text and field paths alternate: [text, path, text, ..., path, text].
    parts = _PLACEHOLDER.split(expression)
    if len(parts) == 1:
        return lambda fields: _text(_lookup(fields, expression))
    head, pairs = parts[0], list(zip(parts[1::2], parts[2::2], strict=True))

    def render(fields: Mapping[str, Any]) -> str:
        pieces = [head]
        for path, literal in pairs:
            pieces += (_text(_lookup(fields, path)), literal)
        return " ".join("".join(pieces).split())  # runs of whitespace collapsed, ends trimmed

    return render


class Mapper:
    """Applies one connection's mapping overrides on top of the connector's default lead."""

    def __init__(self, config: MappingConfig, lead_id_prefix: str = "") -> None:
        self.prefix = lead_id_prefix
        self.scalars = {
            key: compile_expression(value)
            for key in ("name", "phone", "email")
            if (value := getattr(config, key)) is not None
        }
        self.custom_fields = {k: compile_expression(v) for k, v in config.custom_fields.items()}
        self.tags = None if config.tags is None else [compile_expression(t) for t in config.tags]
        self.changes_nothing = not (
            self.scalars or self.custom_fields or self.tags is not None or self.prefix
        )
        #: The field paths each override reads, by its config key (``mapping.name``...).
        self.reads = {
            f"mapping.{key}": paths
            for key, expression in [
                *((key, getattr(config, key)) for key in ("name", "phone", "email")),
                *((f"custom_fields.{k}", v) for k, v in config.custom_fields.items()),
                *((f"tags[{i}]", tag) for i, tag in enumerate(config.tags or ())),
            ]
            if expression is not None and (paths := _paths(expression))
        }

    def missing_fields(self, records: Sequence[SourceRecord]) -> list[str]:
        """A problem for each field path an override reads that none of ``records`` holds
        (a misspelt name, or a field the connector does not read), naming the override's
        config key and the closest field the records have."""
        if not records:
            return []
        problems = []
        names = sorted({name for record in records for name in record.fields})
        for key, paths in self.reads.items():
            for path in paths:
                if any(_lookup(r.fields, path, _ABSENT) is not _ABSENT for r in records):
                    continue
                close = difflib.get_close_matches(path, names, n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"the records have {', '.join(names[:12])}{'…' if len(names) > 12 else ''}"
                )
                problems.append(
                    f"{key}: field {path!r} is in none of the first {len(records)} records; "
                    f"{hint} (a misspelt field maps to nothing)"
                )
        return problems

    def apply(self, lead: Lead, record: SourceRecord) -> Lead:
        """The lead with the overrides applied and the prefix added to ``lead_id``."""
        if self.changes_nothing:
            return lead
        fields = record.fields
        update: dict[str, Any] = {key: expr(fields) or None for key, expr in self.scalars.items()}
        if self.custom_fields:
            custom = dict(lead.custom_fields)
            for key, expr in self.custom_fields.items():
                value = expr(fields)
                if value:
                    custom[key] = value
                else:
                    custom.pop(key, None)
            update["custom_fields"] = custom
        if self.tags is not None:
            update["tags"] = [tag for expr in self.tags if (tag := expr(fields))]
        if self.prefix:
            update["lead_id"] = self.prefix + lead.lead_id
        return lead.model_copy(update=update) if update else lead
