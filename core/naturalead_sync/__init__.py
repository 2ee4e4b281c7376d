"""naturalead-sync: keep Naturalead in step with your CRM.

Everything a connector author needs is importable from here::

    from naturalead_sync import Connector, ConnectorSettings, Lead, SourceRecord, hookimpl

including, for a CRM whose OAuth access tokens expire, :class:`TokenRefresher` and
:class:`TokenResponse` (``docs/write-an-adapter.md``).
"""

from __future__ import annotations

from .config import load_config
from .connector import Connector, ConnectorContext, ConnectorSettings
from .engine import RunOptions
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
    StateLocked,
    TransientError,
)
from .hookspecs import hookimpl
from .models import Lead, SourceRecord, Window
from .oauth import TokenRefresher, TokenResponse
from .report import ConnectionReport, Rejection, RunReport
from .runner import sync
from .version import __version__

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
    "RunOptions",
    "RunReport",
    "SkipLead",
    "SourceRecord",
    "StateError",
    "StateLocked",
    "TokenRefresher",
    "TokenResponse",
    "TransientError",
    "Window",
    "__version__",
    "hookimpl",
    "load_config",
    "sync",
]
