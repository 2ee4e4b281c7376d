"""Time zones of naive timestamps, shared by every source of the custom connector."""

from __future__ import annotations

from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["known_zone", "zone"]


def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (an IANA name such as ``Europe/Paris``, or ``UTC``).

    Raises ValueError with the fix when the name is unknown.
    """
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'UTC', 'Europe/Paris' or "
            "'America/New_York'"
        ) from None


def known_zone(value: str | None) -> str | None:
    """Validate a ``timezone`` setting: None, or a name :func:`zone` knows."""
    if value is not None:
        zone(value)
    return value
