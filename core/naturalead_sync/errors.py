"""Errors raised by naturalead-sync, sorted by how the engine reacts to them.

::

    NaturaleadSyncError                 base of everything below
    ├── ConfigError                     bad config file or settings: exit 2, nothing sent
    ├── StateError                      state database unreadable or too new: exit 1
    │   └── StateLocked                 another run holds the state: exit 1, try later
    ├── ConnectorError                  the source system failed: the run stops, checkpoint kept
    │   └── BudgetExhausted             the source's API allowance is spent: clean stop
    ├── DestinationError                Naturalead could not be reached or answered badly
    │   ├── AuthError                   401/403: stop at once, say which key and which scope
    │   └── TransientError              5xx, timeouts, 429s beyond the retry budget
    ├── MassDeleteBlocked               a delete larger than the configured share: needs a flag
    ├── RecordError                     one record cannot become a lead: it is recorded as
    │                                   failed with its reason and the run goes on
    └── SkipLead                        not an error: a hook leaves one lead out on purpose

Messages say what failed, where (config key, record id, field) and what to do next. They never
contain secrets.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BudgetExhausted",
    "ConfigError",
    "ConnectorError",
    "DestinationError",
    "MassDeleteBlocked",
    "NaturaleadSyncError",
    "RecordError",
    "SkipLead",
    "StateError",
    "StateLocked",
    "TransientError",
]


class NaturaleadSyncError(Exception):
    """Base class of every error naturalead-sync raises on purpose."""


class ConfigError(NaturaleadSyncError):
    """The config file or a connector's settings are invalid. Nothing was sent."""


class StateError(NaturaleadSyncError):
    """The state database cannot be used (locked by another run, unreadable, newer version)."""


class StateLocked(StateError):
    """Another run holds the state database; nothing was done, run again when it ends."""


class ConnectorError(NaturaleadSyncError):
    """The source system failed in a way the connector could not recover from."""


class BudgetExhausted(ConnectorError):
    """The source system's API allowance is spent; the run stops with its checkpoint kept."""


class DestinationError(NaturaleadSyncError):
    """Naturalead could not be reached, or answered in a way that stops the run."""


class AuthError(DestinationError):
    """Naturalead refused the API key (401) or the key lacks a scope (403)."""


class TransientError(DestinationError):
    """Naturalead kept failing (5xx, timeouts, 429) after every allowed retry."""


class MassDeleteBlocked(NaturaleadSyncError):
    """A run would delete more than the configured share of the synced leads."""


class RecordError(NaturaleadSyncError):
    """One source record cannot become a valid lead.

    Raise it from ``Connector.to_lead`` (or a ``transform_lead`` hook) with a message that names
    the field and the problem; the engine records the lead as failed with that reason and goes
    on with the others.
    """


class SkipLead(NaturaleadSyncError):
    """Raised by a ``transform_lead`` hook to leave one lead out of the sync on purpose.

    The lead is counted as filtered in the report; it is neither sent nor recorded as failed.
    """
