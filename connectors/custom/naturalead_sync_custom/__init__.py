"""naturalead-sync connector for any other system: leads from CSV and JSON Lines files.

Installed, it registers the ``custom`` connector through the ``naturalead_sync`` entry point::

    [[connections]]
    name = "website-signups"
    connector = "custom"
    [connections.settings]
    path = "leads.csv"
"""

from __future__ import annotations

from collections.abc import Callable

from naturalead_sync import Connector, hookimpl

from .connector import CustomConnector
from .settings import CustomSettings

__all__ = ["CustomConnector", "CustomSettings", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register the ``custom`` connector."""
    register(CustomConnector)
