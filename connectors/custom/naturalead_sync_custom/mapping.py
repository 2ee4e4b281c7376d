"""The default mapping every source of the custom connector shares: conventional column names.

A file row, a database row and an API record all reach it as a flat or nested mapping of
fields; :func:`default_lead` picks the name, phone, email and tags from conventionally named
columns, matched loosely (``First Name``, ``first_name`` and ``FIRSTNAME`` are one column).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from naturalead_sync import Lead, SourceRecord

__all__ = ["as_text", "default_lead"]

_NAME_KEY = re.compile(r"[\s_\-]+")
_TAG_SEPARATORS = re.compile(r"[,;]")


def as_text(value: Any) -> str | None:
    """A scalar as stripped text, or None when it is missing or empty."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value).strip()
    return text or None


@lru_cache(maxsize=1024)
def _key(column: str) -> str:
    """A column name for loose matching: ``First Name``, ``first_name`` -> ``firstname``."""
    return _NAME_KEY.sub("", column).lower()


def default_lead(record: SourceRecord) -> Lead:
    """The default mapping: name, phone, email and tags from conventionally named columns.

    ``name`` (else first and last name: ``first_name``/``last_name``, ``firstname``,
    ``First Name``, ...), ``phone`` (else ``mobile`` or ``mobile_phone``), ``email`` and
    ``tags`` (split on ``,`` or ``;``, or a JSON list). Column names match ignoring case,
    spaces, ``_`` and ``-``. No custom fields: the connection's mapping adds them.
    """
    columns = _Columns(record.fields)
    name = columns.text("name")
    if name is None:
        parts = (columns.text("first_name"), columns.text("last_name"))
        name = " ".join(filter(None, parts)) or None
    return Lead(
        lead_id=record.id,
        name=name,
        phone=columns.text("phone", "mobile", "mobile_phone"),
        email=columns.text("email"),
        custom_fields={},
        tags=_tags(columns.value("tags")),
    )


class _Header:
    """Which column of one header holds each conventional name: the exact name, else the
    first column matching loosely (see :func:`_key`). Found on first use, then kept."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self._columns = frozenset(columns)
        self._loose: dict[str, str] = {}
        for column in columns:
            self._loose.setdefault(_key(column), column)
        self._found: dict[str, str | None] = {}

    def column(self, name: str) -> str | None:
        """The column holding ``name``, or None."""
        try:
            return self._found[name]
        except KeyError:
            match = name if name in self._columns else self._loose.get(_key(name))
            self._found[name] = match
            return match


#: One :class:`_Header` per header (the rows of a CSV share one).
_header = lru_cache(maxsize=64)(_Header)


class _Columns:
    """Looks a record's columns up by conventional name."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.fields = fields
        self.header = _header(tuple(fields))

    def value(self, *names: str) -> Any:
        """The first present, non-empty value among ``names``, or None."""
        for name in names:
            column = self.header.column(name)
            if column is None:
                continue
            value = self.fields[column]
            if value is not None and value != "" and value != []:
                return value
        return None

    def text(self, *names: str) -> str | None:
        """Like :meth:`value`, as stripped text (None when empty)."""
        for name in names:
            text = as_text(self.value(name))
            if text is not None:
                return text
        return None


def _tags(value: Any) -> list[str]:
    """Tags from a ``"a, b; c"`` string or a JSON list, stripped, without empties or repeats."""
    if value is None:
        return []
    items: Iterable[Any] = value if isinstance(value, list) else _TAG_SEPARATORS.split(str(value))
    tags = (as_text(item) for item in items if not isinstance(item, dict | list))
    return list(dict.fromkeys(tag for tag in tags if tag))
