"""The embedded Naturalead sandbox: an emulator of the lead sync API for runs and tests.

It answers ``POST``/``DELETE /api/leads/sync`` and ``GET /api/leads`` with the documented
auth, scopes, per-key rate limit and error shapes, keeps keys and leads in SQLite, and
injects faults (errors, dropped connections, slow answers, spurious 429s, whole-batch 400s)
on demand. Use it in-process through :class:`SandboxTransport`, or over loopback HTTP
through :func:`serve`::

    sandbox = Sandbox("sandbox.db")
    client = httpx.Client(base_url="http://sandbox.invalid", transport=SandboxTransport(sandbox))
    with serve(sandbox) as server:
        httpx.post(f"{server.url}/api/leads/sync", headers={"X-API-Key": DEFAULT_KEY}, ...)
"""

from __future__ import annotations

from ..loopback import LoopbackServer, serve
from .app import DEFAULT_KEY, Faults, RequestRecord, Sandbox, SandboxResponse
from .transport import SandboxTransport

__all__ = [
    "DEFAULT_KEY",
    "Faults",
    "LoopbackServer",
    "RequestRecord",
    "Sandbox",
    "SandboxResponse",
    "SandboxTransport",
    "serve",
]
