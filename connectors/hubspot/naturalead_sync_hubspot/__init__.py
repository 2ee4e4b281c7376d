"""naturalead-sync connector for HubSpot: contacts (or CRM leads) through hubspot-api-client.

Installed, it registers the ``hubspot`` connector through the ``naturalead_sync`` entry point::

    [[connections]]
    name = "hubspot"
    connector = "hubspot"
    [connections.settings]
    access_token = "${HUBSPOT_TOKEN}"

The package also ships a HubSpot emulator (:mod:`naturalead_sync_hubspot.emulator`) for tests
and for trying a config offline.
"""

from __future__ import annotations

from collections.abc import Callable

from naturalead_sync import Connector, hookimpl

from .connector import HubSpotConnector
from .settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register the ``hubspot`` connector."""
    register(HubSpotConnector)
