"""naturalead-sync connector for Pipedrive: persons (or Leads Inbox leads) over the REST API.

Installed, it registers the ``pipedrive`` connector through the ``naturalead_sync`` entry
point::

    [[connections]]
    name = "pipedrive"
    connector = "pipedrive"
    reconcile_deletes = true
    [connections.settings]
    api_token = "${PIPEDRIVE_API_TOKEN}"
    company_domain = "acme"

The package also ships a Pipedrive emulator (:mod:`naturalead_sync_pipedrive.emulator`) for
tests and for trying a config offline.
"""

from __future__ import annotations

from collections.abc import Callable

from naturalead_sync import Connector, hookimpl

from .connector import PipedriveConnector
from .settings import PipedriveSettings

__all__ = ["PipedriveConnector", "PipedriveSettings", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register the ``pipedrive`` connector."""
    register(PipedriveConnector)
