"""A HubSpot emulator for offline tests and demos: contacts and leads over HubSpot's CRM API.

It answers what the connector uses (list, get, search, batch read, v4 association reads,
merge, GDPR delete, OAuth refresh) with HubSpot's auth, scopes, rate limits, error bodies,
search quirks (10k cap, index lag) and scripted faults; see ``app.py`` for the choices it
makes where HubSpot is undocumented. Drive it with the real SDK over loopback HTTP::

    emu = HubSpotEmulator()
    emu.seed_contacts(500)
    with serve(emu) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        page = client.crm.objects.basic_api.get_page("contacts", limit=100)
"""

from __future__ import annotations

from naturalead_sync.loopback import LoopbackServer, serve

from .app import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_SCOPES,
    DEFAULT_TOKEN,
    FAULTS,
    HubSpotEmulator,
    RequestRecord,
)
from .limits import EmulatorLimits

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REFRESH_TOKEN",
    "DEFAULT_SCOPES",
    "DEFAULT_TOKEN",
    "FAULTS",
    "EmulatorLimits",
    "HubSpotEmulator",
    "LoopbackServer",
    "RequestRecord",
    "serve",
]
