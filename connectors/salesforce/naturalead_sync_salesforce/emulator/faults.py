"""Scripted faults: what the next requests to an endpoint do instead of (or besides) answering.

Faults are queued per endpoint and used one per request, in order; a queue for ``"any"`` serves
every REST and Bulk endpoint whose own queue is empty (never ``"login"``).

=================  ===============================================================================
fault              effect
=================  ===============================================================================
``ok``             answer normally (a placeholder, to fault the second request and not the first)
``expired``        401 ``INVALID_SESSION_ID``; the token used is revoked (not counted)
``quota``          403 ``REQUEST_LIMIT_EXCEEDED`` although budget is left (not counted)
``500``, ``503``   ``UNKNOWN_EXCEPTION`` / ``SERVER_UNAVAILABLE``; on ``login``, an HTML error page
``drop``           the request is carried out, then the connection closes without an answer
``slow``           the answer comes ``slow_seconds`` late (``slow:2.5``: 2.5 seconds late)
``duplicate``      the last row of this page is repeated at the start of the next page
``reorder``        the last row of this page and the first row of the next one swap places
``short``          this page holds half the rows asked for (the locator stays consistent)
``query_timeout``  400 ``QUERY_TIMEOUT`` (first page only)
``job_failed``     the Bulk job this request creates or polls ends ``Failed``
=================  ===============================================================================
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["ENDPOINTS", "Fault", "FaultScript"]

_GENERIC = frozenset({"ok", "expired", "quota", "500", "503", "drop", "slow"})
_PAGE = frozenset({"duplicate", "reorder", "short"})
_TRANSPORT = frozenset({"ok", "500", "503", "drop", "slow"})

#: Endpoints and the faults each accepts.
ENDPOINTS: dict[str, frozenset[str]] = {
    "any": _GENERIC,
    "login": _TRANSPORT,
    "query": _GENERIC | _PAGE | {"query_timeout"},
    "query_more": _GENERIC | _PAGE,
    "sobject": _GENERIC,
    "describe": _GENERIC,
    "limits": _GENERIC,
    "deleted": _GENERIC,
    "updated": _GENERIC,
    "bulk": _GENERIC | {"job_failed"},
    "bulk_results": _GENERIC,
}


@dataclass(frozen=True)
class Fault:
    """One scripted fault; ``seconds`` is the delay of a ``slow`` one (None: the default)."""

    name: str
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str, endpoint: str) -> Fault:
        """``"500"``, ``"slow"``, ``"slow:2.5"``...; ValueError when ``endpoint`` refuses it."""
        name, _, seconds = text.partition(":")
        allowed = ENDPOINTS.get(endpoint)
        if allowed is None:
            raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(ENDPOINTS)}")
        if name not in allowed or (seconds and name != "slow"):
            raise ValueError(f"fault {text!r} is not one of {sorted(allowed)} for {endpoint!r}")
        try:
            return cls(name, float(seconds) if seconds else None)
        except ValueError:
            raise ValueError(f"fault {text!r}: the delay must be a number of seconds") from None

    def __str__(self) -> str:
        return self.name if self.seconds is None else f"{self.name}:{self.seconds:g}"


class FaultScript:
    """Queues of faults per endpoint (callers serialise access)."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, faults: tuple[str, ...], endpoint: str, times: int) -> None:
        """Queue ``faults`` for ``endpoint``, the whole sequence ``times`` times."""
        parsed = [Fault.parse(text, endpoint) for text in faults]
        self._queues.setdefault(endpoint, deque()).extend(parsed * times)

    def take(self, endpoint: str) -> Fault | None:
        """The next fault for a request to ``endpoint``, or None."""
        for name in (endpoint, "any") if endpoint != "login" else (endpoint,):
            queue = self._queues.get(name)
            if queue:
                return queue.popleft()
        return None

    def pending(self) -> dict[str, list[str]]:
        """The faults still queued, per endpoint."""
        return {name: [str(f) for f in queue] for name, queue in self._queues.items() if queue}

    def clear(self) -> None:
        """Forget every queued fault."""
        self._queues.clear()
