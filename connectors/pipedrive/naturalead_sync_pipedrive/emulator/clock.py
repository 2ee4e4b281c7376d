"""The emulated account's clock and the three time formats Pipedrive writes and reads.

Record times (``add_time``, ``update_time``) come from :class:`EmulatorClock`, which tests move
by hand; rate limits run on a separate monotonic clock (see :mod:`.limits`).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = [
    "EmulatorClock",
    "TimestampError",
    "format_lead_time",
    "format_rfc3339",
    "format_v1",
    "parse_iso",
    "parse_v1",
]

_RFC3339_STRICT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
_V1 = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class TimestampError(ValueError):
    """A timestamp parameter the emulator refuses (answered with 400)."""


class EmulatorClock:
    """The server's time: wall time plus an offset, or frozen (``frozen=True``).

    ``start`` is the time the clock shows now (default: the real UTC time); a running clock
    then moves with the wall clock. :meth:`advance` and :meth:`set_time` move it in both modes.
    Thread-safe.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self.frozen = frozen
        begin = (start or datetime.now(UTC)).timestamp()
        self._offset = begin - (0.0 if frozen else time.time())

    def timestamp(self) -> float:
        """Seconds since the epoch, as the server sees them."""
        with self._lock:
            return self._offset + (0.0 if self.frozen else time.time())

    def now(self) -> datetime:
        """The server's current time (UTC, aware)."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` (backward when negative); returns the new time."""
        with self._lock:
            self._offset += seconds
        return self.now()

    def set_time(self, when: datetime) -> datetime:
        """Jump to ``when`` (a naive datetime is taken as UTC); returns it."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            self._offset = when.timestamp() - (0.0 if self.frozen else time.time())
        return self.now()


def format_rfc3339(seconds: int) -> str:
    """v2 format, second precision: ``2025-01-01T10:20:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_v1(seconds: int) -> str:
    """v1 format (UTC, no zone): ``2025-01-01 10:20:00``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_lead_time(millis: int) -> str:
    """v1 leads format, milliseconds and ``Z``: ``2020-10-14T11:30:36.551Z``."""
    moment = datetime.fromtimestamp(millis // 1000, UTC) + timedelta(milliseconds=millis % 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def parse_iso(value: str, *, strict: bool) -> float:
    """Seconds since the epoch of an RFC3339/ISO 8601 timestamp.

    ``strict`` accepts only ``YYYY-MM-DDTHH:MM:SS`` with ``Z`` or an offset (what Pipedrive's
    v2 validation is reported to demand); otherwise any ``datetime.fromisoformat`` form is
    accepted, naive ones as UTC. Raises :class:`TimestampError`.
    """
    if strict and not _RFC3339_STRICT.match(value):
        raise TimestampError(f"'{value}' is not an RFC3339 date-time without fractions")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TimestampError(f"'{value}' is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_v1(value: str) -> int:
    """Seconds since the epoch of a v1 ``YYYY-MM-DD HH:MM:SS`` (UTC) timestamp."""
    if not _V1.match(value):
        raise TimestampError(f"'{value}' is not in the format YYYY-MM-DD HH:MM:SS")
    try:
        moment = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise TimestampError(f"'{value}' is not a valid date-time") from None
    return int(moment.timestamp())
