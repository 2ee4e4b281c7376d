"""naturalead-sync: keep Naturalead in step with your CRM.

Everything a connector author needs is importable from here::

    from naturalead_sync import Connector, ConnectorSettings, Lead, SourceRecord, hookimpl
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .connector import Connector, ConnectorContext, ConnectorSettings
from .errors import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    ConnectorError,
    DestinationError,
    MassDeleteBlocked,
    NaturaleadSyncError,
    RecordError,
    SkipLead,
    StateError,
    TransientError,
)
from .hookspecs import hookimpl
from .models import Lead, SourceRecord, Window
from .report import ConnectionReport, Rejection, RunReport

try:
    __version__ = version("naturalead-sync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AuthError",
    "BudgetExhausted",
    "ConfigError",
    "ConnectionReport",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "ConnectorSettings",
    "DestinationError",
    "Lead",
    "MassDeleteBlocked",
    "NaturaleadSyncError",
    "RecordError",
    "Rejection",
    "RunReport",
    "SkipLead",
    "SourceRecord",
    "StateError",
    "TransientError",
    "Window",
    "__version__",
    "hookimpl",
]
