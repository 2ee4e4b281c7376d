"""Salesforce record ids: 15-character case-sensitive ids plus the 3-character checksum.

Ids the emulator mints look like real ones: key prefix (``00Q`` Lead, ``003`` Contact, ...),
a fixed pod ``Dn``, a reserved ``0`` and a 9-digit base-62 counter whose digits sort in
ASCII order (``0-9A-Za-z``), so string order is creation order, as ``Id > 'X'`` expects.
"""

from __future__ import annotations

import re
import string

__all__ = ["IdFactory", "normalize_id", "sfid18"]

_CHECKSUM = string.ascii_uppercase + "012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID15 = re.compile(r"^[0-9A-Za-z]{15}$")
_ID18 = re.compile(r"^[0-9A-Za-z]{15}[A-Z0-5]{3}$")


def sfid18(id15: str) -> str:
    """The 18-character form of a 15-character id (the id plus its case checksum)."""
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        suffix += _CHECKSUM[sum(1 << j for j, c in enumerate(chunk) if "A" <= c <= "Z")]
    return id15 + suffix


def normalize_id(value: str) -> str | None:
    """``value`` as an 18-character id (15-character ids get their checksum), or None."""
    if _ID15.match(value):
        return sfid18(value)
    if _ID18.match(value) and sfid18(value[:15]) == value:
        return value
    return None


class IdFactory:
    """Mints unique 18-character ids per key prefix, in increasing order."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        """A fresh id with the 3-character key ``prefix``."""
        number = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = number
        digits = ""
        while number:
            number, digit = divmod(number, 62)
            digits = _BASE62[digit] + digits
        return sfid18(f"{prefix}Dn0{digits:0>9}")
