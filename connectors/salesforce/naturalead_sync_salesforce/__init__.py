"""naturalead-sync connector for Salesforce: Leads (or Contacts) through simple-salesforce.

Installed, it registers the ``salesforce`` connector through the ``naturalead_sync`` entry
point::

    [[connections]]
    name = "salesforce"
    connector = "salesforce"
    [connections.settings]
    username = "sync@acme.com"
    consumer_key = "${SF_CONSUMER_KEY}"
    private_key_file = "salesforce.key"

The package also ships a Salesforce emulator (:mod:`naturalead_sync_salesforce.emulator`) and
:mod:`naturalead_sync_salesforce.testing` for tests and for trying a config offline.
"""

from __future__ import annotations

from collections.abc import Callable

from naturalead_sync import Connector, hookimpl

from .connector import SalesforceConnector
from .settings import SalesforceSettings

__all__ = ["SalesforceConnector", "SalesforceSettings", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[type[Connector]], None]) -> None:
    """Register the ``salesforce`` connector."""
    register(SalesforceConnector)
