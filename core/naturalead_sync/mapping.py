"""Config mapping overrides: expressions over a source record's fields.

An expression is one of:

- ``"email"``: the value of the field ``email`` (dotted paths reach into nested objects:
  ``"properties.email"``);
- ``"{first} {last}"``: a template; each ``{field}`` is replaced by that field's value (missing
  or empty fields become empty, and surrounding whitespace is collapsed);
- ``"=VIP"``: the constant ``VIP`` (write ``"=="`` for a literal ``=``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .config import MappingConfig
from .models import Lead, SourceRecord

__all__ = ["Expression", "Mapper", "compile_expression"]

Expression = Callable[[Mapping[str, Any]], str]
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def _lookup(fields: Mapping[str, Any], path: str) -> Any:
    if path in fields:
        return fields[path]
    node: Any = fields
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


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
