"""Deleted flags: which values of a deleted column mean deleted (files and databases alike)."""

from __future__ import annotations

from typing import Any

from .mapping import as_text

__all__ = ["DEFAULT_DELETED_VALUES", "clean_deleted_values", "is_flagged"]

#: Values of the deleted column that flag a row as deleted (compared case-insensitively).
DEFAULT_DELETED_VALUES = ["true", "1", "yes", "y", "deleted"]


def clean_deleted_values(value: list[str]) -> list[str]:
    """Validate ``deleted_values``: trimmed, lower case, at least one."""
    cleaned = [item.strip().lower() for item in value if item.strip()]
    if not cleaned:
        raise ValueError('list at least one value that means deleted, e.g. ["true"]')
    return cleaned


def is_flagged(value: Any, values: frozenset[str]) -> bool:
    """Whether a deleted column's ``value`` (text, bool or number) is one of ``values``."""
    flag = as_text(value)
    return flag is not None and flag.lower() in values
