"""The emulator's admin API under ``/_emulator/`` (JSON, no auth, not in the request log).

- ``POST /_emulator/seed {"count": N, "same_timestamp": false}``
  -> ``{"ids": [the first 10], "count": N}``
- ``POST /_emulator/clock {"advance": seconds}`` or ``{"set": epoch}`` -> ``{"now": epoch}``
- ``POST /_emulator/faults {"script": ["503", ...], "path_contains": null, "slow_seconds": 1.0}``
  -> ``{"queued": n}``
- ``GET /_emulator/stats`` -> :meth:`HubSpotEmulator.stats`

A bad body is a 400 ``{"error": ...}``; an unknown endpoint a 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from naturalead_sync.loopback import HTTPAnswer

from .wire import answer

if TYPE_CHECKING:
    from .app import HubSpotEmulator

__all__ = ["admin"]


def admin(emulator: HubSpotEmulator, method: str, name: str, body: bytes) -> HTTPAnswer:
    """``/_emulator/{seed,clock,faults,stats}``; no auth, not logged."""
    if (method, name) == ("GET", "stats"):
        return answer(200, emulator.stats(), {})
    if method != "POST" or name not in ("seed", "clock", "faults"):
        return answer(404, {"error": f"no admin endpoint {method} /_emulator/{name}"}, {})
    try:
        payload = json.loads(body) if body.strip() else {}
        if not isinstance(payload, dict):
            raise ValueError("the body must be a JSON object")
        return answer(200, _COMMANDS[name](emulator, payload), {})
    except (TypeError, ValueError, KeyError) as exc:
        return answer(400, {"error": str(exc)}, {})


def _seed(emulator: HubSpotEmulator, payload: dict[str, Any]) -> dict[str, Any]:
    count = payload.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be a non-negative integer")
    ids = emulator.seed_contacts(count, same_timestamp=bool(payload.get("same_timestamp")))
    return {"ids": ids[:10], "count": len(ids)}


def _clock(emulator: HubSpotEmulator, payload: dict[str, Any]) -> dict[str, Any]:
    if "set" in payload:
        emulator.set_time(float(payload["set"]))
    elif "advance" in payload:
        emulator.advance(float(payload["advance"]))
    else:
        raise ValueError('send {"advance": seconds} or {"set": epoch}')
    return {"now": emulator.now()}


def _faults(emulator: HubSpotEmulator, payload: dict[str, Any]) -> dict[str, Any]:
    actions = payload.get("script", [])
    path = payload.get("path_contains")
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise ValueError("script must be a list of fault names")
    if path is not None and not isinstance(path, str):
        raise ValueError("path_contains must be a string or null")
    emulator.script(*actions, path_contains=path)
    if "slow_seconds" in payload:
        emulator.slow_seconds = float(payload["slow_seconds"])
    return {"queued": emulator.queued_faults()}


_COMMANDS: dict[str, Callable[[HubSpotEmulator, dict[str, Any]], dict[str, Any]]] = {
    "seed": _seed,
    "clock": _clock,
    "faults": _faults,
}
