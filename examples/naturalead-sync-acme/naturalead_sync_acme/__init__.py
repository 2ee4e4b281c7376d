"""naturalead-sync connector for Acme CRM.

Installed, it registers the ``acme`` connector through the ``naturalead_sync`` entry point::

    [[connections]]
    name = "acme"
    connector = "acme"
    [connections.settings]
    base_url = "https://api.acme.example"
    api_token = "${ACME_TOKEN}"
"""

from __future__ import annotations

from collections.abc import Callable

from naturalead_sync import Connector, hookimpl

from .connector import AcmeConnector
from .settings import AcmeSettings

__all__ = ["AcmeConnector", "AcmeSettings", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register the ``acme`` connector."""
    register(AcmeConnector)
