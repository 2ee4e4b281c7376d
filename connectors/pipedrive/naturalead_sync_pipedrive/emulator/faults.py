"""Scripted faults: answers that replace or spoil the next matching API requests.

Replacing faults answer instead of the endpoint: ``400 401 402 403 404 410 500 503`` (JSON
envelope), ``502 504`` (an HTML gateway page, as a proxy sends it), ``429`` (a spurious
burst 429: envelope, ``x-ratelimit-remaining: 0``), ``non_json`` (200 with an HTML body) and
``success_false`` (200 with ``"success": false``, which clients must check). Spoiling faults
let the endpoint run, then ``drop`` the connection without an answer, answer ``slow``
(after ``slow_seconds``) or send a ``truncated`` body (the first half of the JSON). Faults
act after authentication and rate limiting, so a faulted request costs its tokens.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from naturalead_sync.loopback import HTTPAnswer

from .protocol import ApiError, html_answer

__all__ = ["FAULTS", "SPOILING", "Fault", "FaultScript", "fault_answer", "spoil"]

_MESSAGES = {
    400: "Bad request",
    401: "unauthorized access",
    402: "Company account is not open",
    403: "You do not have permissions to do this",
    404: "Not found",
    410: "Gone",
    429: "request over limit",
    500: "Internal server error",
    503: "Service is temporarily unavailable (maintenance)",
}
_GATEWAY = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}
SPOILING = frozenset({"drop", "slow", "truncated"})
#: Every fault :meth:`FaultScript.add` accepts.
FAULTS = frozenset({str(code) for code in (*_MESSAGES, *_GATEWAY)}) | SPOILING
FAULTS |= {"non_json", "success_false"}


@dataclass(frozen=True, slots=True)
class Fault:
    """One queued fault; ``path_contains`` limits it to paths containing that text."""

    action: str
    path_contains: str | None = None
    slow_seconds: float | None = None


class FaultScript:
    """The queue of scripted faults, consumed in order by the requests they match."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def add(
        self, *actions: str, path_contains: str | None = None, slow_seconds: float | None = None
    ) -> None:
        """Queue ``actions`` (see :data:`FAULTS`; ``"ok"`` lets one request through)."""
        unknown = set(actions) - FAULTS - {"ok"}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        self._queue.extend(Fault(action, path_contains, slow_seconds) for action in actions)

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queue.clear()

    def next_for(self, path: str) -> Fault | None:
        """Take the first queued fault matching ``path`` (None when there is none)."""
        for fault in self._queue:
            if fault.path_contains is None or fault.path_contains in path:
                self._queue.remove(fault)
                return None if fault.action == "ok" else fault
        return None


def fault_answer(action: str, headers: dict[str, str]) -> HTTPAnswer:
    """The answer of a replacing fault, with the rate-limit ``headers``."""
    if action == "non_json":
        return html_answer(200, "<html><body><h1>Pipedrive</h1></body></html>", headers)
    if action == "success_false":
        return ApiError(200, "Unknown error").answer(headers)
    code = int(action)
    if code in _GATEWAY:
        page = f"<html><head><title>{_GATEWAY[code]}</title></head><body>{_GATEWAY[code]}</body>"
        return html_answer(code, page + "</html>", headers)
    if code == 429:
        headers = {**headers, "x-ratelimit-remaining": "0"}
    extra: dict[str, Any] = {"errorCode": code} if code in (401, 403, 429) else {}
    return ApiError(code, _MESSAGES[code], **extra).answer(headers)


def spoil(answer: HTTPAnswer, fault: Fault, default_slow: float) -> HTTPAnswer:
    """Apply a spoiling fault to the endpoint's real answer."""
    if fault.action == "drop":
        return answer._replace(action="drop")
    if fault.action == "slow":
        delay = default_slow if fault.slow_seconds is None else fault.slow_seconds
        return answer._replace(action="slow", delay=delay)
    return answer._replace(body=answer.body[: len(answer.body) // 2], action="truncated")
