"""The connector contract: what a plugin implements to bring one source system to Naturalead."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict

from .http import RetryPolicy, RetryTransport
from .models import Lead, SourceRecord, Window

__all__ = ["Connector", "ConnectorContext", "ConnectorSettings"]


class ConnectorSettings(BaseModel):
    """Base of every connector's ``Settings`` model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ConnectorContext:
    """What core hands a connector: where it runs and how it must talk to the network.

    Connectors never build their own HTTP client; they call :meth:`http_client`, which applies
    core's timeout, user agent and retries (:class:`~naturalead_sync.http.RetryTransport`).
    SDK-based connectors read ``timeout_seconds``, ``user_agent`` and ``retry`` to configure
    their SDK the same way.
    """

    connection: str
    base_dir: Path = field(default_factory=Path.cwd)
    timeout_seconds: float = 30.0
    user_agent: str = "naturalead-sync"
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("naturalead_sync"))
    bad_record_sink: Callable[[str, str, str | None], None] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def report_bad_record(self, where: str, reason: str, record_id: str | None = None) -> None:
        """Report a source record that cannot be read (bad row, missing id, bad timestamp).

        ``where`` says where the record is (e.g. ``"leads.csv line 7"``), ``reason`` the
        problem and the fix, ``record_id`` its native id when it could be read. The record
        lands in the run report's rejections (under its lead_id when the id is known) and the
        run goes on with the others; a connector calls this instead of raising.
        """
        if self.bad_record_sink is None:
            self.logger.warning("%s: bad record %s: %s", self.connection, where, reason)
        else:
            self.bad_record_sink(where, reason, record_id)

    def resolve_path(self, path: str | Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    def http_client(self, *, retry_post: bool = False, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` with core's timeout, user agent and retries.

        ``kwargs`` go to ``httpx.Client`` (``base_url``, ``headers``, ``auth``, ``transport``...);
        a given ``transport`` is wrapped, not replaced. Set ``retry_post`` when the
        connector's POST requests only read (a search endpoint) and may be sent again.
        """
        headers = {"User-Agent": self.user_agent, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", self.timeout_seconds)
        transport = RetryTransport(kwargs.pop("transport", None), self.retry, retry_post=retry_post)
        return httpx.Client(headers=headers, transport=transport, **kwargs)


class Connector(ABC):
    """Base class of every connector.

    A subclass declares ``name`` (the value of ``connector =`` in the config), a nested
    ``Settings`` model (a :class:`ConnectorSettings` subclass, so unknown keys are rejected) and
    implements the fetch methods and :meth:`to_lead`. Register it from a plugin::

        from naturalead_sync import Connector, hookimpl

        class AcmeConnector(Connector):
            name = "acme"
            ...

        @hookimpl
        def register_connectors(register):
            register(AcmeConnector)

    The engine constructs one instance per connection and run with validated settings and a
    :class:`ConnectorContext`, and calls :meth:`close` at the end.
    """

    #: The connector's name, used as ``connector = "<name>"`` in the config.
    name: ClassVar[str]
    #: The settings model; override with a ``ConnectorSettings`` subclass.
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    #: True when ``fetch_changed`` yields records in ascending ``modified_at`` order. The engine
    #: then checkpoints after every accepted batch; otherwise only at the end of a run. A
    #: connector may set it per instance (from a setting). The engine checks the order as it
    #: goes: a violation sends the cursor back to where the run started.
    ordered: bool = True
    #: The ``lookback`` a connection gets when its config sets none: how far each window
    #: reaches back before the cursor, so late arrivals are seen again.
    default_lookback: ClassVar[timedelta] = timedelta(minutes=5)
    #: The ``settle`` a connection gets when its config sets none: how long before now each
    #: window ends, so the source has made every record up to then visible (a search index's
    #: lag, commits still in flight).
    default_settle: ClassVar[timedelta] = timedelta(0)

    @classmethod
    def accepts(cls, settings: ConnectorSettings) -> bool:
        """Whether the constructor takes ``settings``: an instance of ``Settings``. Override
        it only when validating ``Settings`` may return another model (one per kind of
        source, say), to accept those models."""
        return isinstance(settings, cls.Settings)

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        """Keep ``settings`` (a model :meth:`accepts` takes, else TypeError) and ``context``.
        A subclass that declares ``settings: ItsSettings`` can rely on that type."""
        if not type(self).accepts(settings):
            raise TypeError(
                f"{type(self).__name__} needs {type(self).Settings.__name__}, "
                f"not {type(settings).__name__}"
            )
        self.settings = settings
        self.context = context

    @abstractmethod
    def fetch_changed(self, window: Window) -> Iterable[SourceRecord]:
        """Yield the records created or modified inside ``window``.

        Each record carries its native id and modification time. Yield them in ascending
        ``modified_at`` order when ``ordered`` is true. Stream: never load a whole source into
        memory. The engine may stop iterating early (a failed run); release resources in
        ``finally`` blocks.
        """

    def fetch_deleted(self, window: Window) -> Iterable[str]:
        """Yield the native ids of records deleted (or merged away) inside ``window``.

        The default yields nothing: a source without a delete feed relies on reconciliation
        (:meth:`fetch_all_ids`) instead.
        """
        return iter(())

    def fetch_all_ids(self) -> Iterable[str] | None:
        """Yield the native id of every live record, for delete reconciliation.

        Return None (the default) when the source cannot list its ids cheaply. When the config
        sets ``reconcile_deletes = true``, leads synced earlier whose ids are missing from a
        *complete* listing are deleted (guarded by the mass-delete rule).
        """
        return None

    @abstractmethod
    def fetch_by_ids(self, ids: list[str]) -> Iterable[SourceRecord]:
        """Yield the current records for ``ids`` (used to re-sync failed leads).

        Ids that no longer exist are simply left out.
        """

    @abstractmethod
    def to_lead(self, record: SourceRecord) -> Lead:
        """Map a record to a lead with the connector's default mapping.

        ``lead_id`` must be ``record.id``; the engine adds the connection's prefix. Raise
        :class:`~naturalead_sync.RecordError` for a record that cannot become a lead.
        Phone and email normalisation happen afterwards in core.
        """

    def check(self) -> list[str]:
        """Prove cheaply that credentials and permissions work.

        Return a list of warnings (empty when all is well); raise
        :class:`~naturalead_sync.ConnectorError` with the fix when something is wrong.
        """
        return []

    def close(self) -> None:
        """Release clients, files and sockets. Called once at the end of every run."""
