"""The custom connector: any other system, through the source its settings select.

``source`` picks the source: ``"file"`` (CSV or JSON Lines, the default), ``"sql"`` (any
database SQLAlchemy reaches), ``"rest"`` (a JSON API described in the settings) or ``"class"``
(a Connector class of your own, loaded by its import path). :class:`CustomConnector` builds the
selected source and hands every call of the contract to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Union

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .adapter import AdapterSettings, open_adapter
from .file_source import FileSource
from .rest import RestSource
from .rest_settings import RestSettings
from .settings import CustomSettings
from .sql_settings import SqlSettings

__all__ = ["CustomConnector", "Source", "open_source"]


if TYPE_CHECKING:  # SQLAlchemy is an extra: imported only for source = "sql"
    from .sql import SqlSource

Source = Union[FileSource, "SqlSource", RestSource]


def open_source(settings: ConnectorSettings, context: ConnectorContext) -> Source:
    """The source for ``settings`` (the model :class:`CustomSettings` validation returned)."""
    if isinstance(settings, SqlSettings):
        from .sql import SqlSource

        return SqlSource(settings, context)
    if isinstance(settings, RestSettings):
        return RestSource(settings, context)
    return FileSource(settings, context)


class CustomConnector(Connector):
    """The ``custom`` connector: a file, a database, a JSON API or a class of your own.

    ``ordered`` is the source's (files and APIs: ``settings.sorted``; databases: true). With
    ``source = "class"``, constructing it returns an instance of the loaded class itself, so the
    class's own ``ordered``, ``default_lookback`` and ``default_settle`` apply.
    """

    name = "custom"
    Settings: ClassVar[type[ConnectorSettings]] = CustomSettings
    ordered = False  # a file unless settings.sorted; other sources set it

    def __new__(cls, settings: ConnectorSettings, context: ConnectorContext) -> Any:
        """The loaded class's instance for ``source = "class"``; else a CustomConnector."""
        if isinstance(settings, AdapterSettings):
            return open_adapter(settings, context)
        return super().__new__(cls)

    @classmethod
    def accepts(cls, settings: ConnectorSettings) -> bool:
        """The model of any source validating :class:`CustomSettings` may return (the class
        source's constructs its own connector, see ``__new__``)."""
        return isinstance(settings, CustomSettings | SqlSettings | RestSettings)

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.source: Source = open_source(settings, context)
        self.ordered = self.source.ordered

    def fetch_changed(self, window: Window) -> Iterable[SourceRecord]:
        """The source's records changed inside ``window``."""
        return self.source.fetch_changed(window)

    def fetch_deleted(self, window: Window) -> Iterable[str]:
        """The source's ids deleted inside ``window``."""
        return self.source.fetch_deleted(window)

    def fetch_all_ids(self) -> Iterator[str]:
        """The source's complete id listing."""
        return self.source.fetch_all_ids()

    def fetch_by_ids(self, ids: list[str]) -> Iterable[SourceRecord]:
        """The source's current records for ``ids``."""
        return self.source.fetch_by_ids(ids)

    def to_lead(self, record: SourceRecord) -> Lead:
        """The source's default mapping."""
        return self.source.to_lead(record)

    def check(self) -> list[str]:
        """The source's own check."""
        return self.source.check()

    def close(self) -> None:
        """Close the source."""
        self.source.close()
