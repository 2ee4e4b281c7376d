"""The SQL source of the custom connector: leads from any database SQLAlchemy reaches.

Each fetch is one statement with the window as bound parameters
(``modified >= :start AND modified < :end ORDER BY modified, id``), read through a server-side
cursor a batch at a time, so memory stays flat whatever the table's size.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .flags import is_flagged
from .mapping import as_text, default_lead
from .records import RecordReader
from .sql_settings import SqlSettings
from .zones import zone

__all__ = ["SqlSource"]

#: Ids per ``IN (...)`` list: well under every database's bound-parameter limit.
ID_CHUNK = 500


def _plain(value: Any) -> Any:
    """A database value as one the mapping and the ledger can use (text, number, bool)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UUID | bytes | memoryview):
        return value.hex() if isinstance(value, bytes | memoryview) else str(value)
    return value


def _table(name: str) -> sa.TableClause:
    schema, _, table = name.rpartition(".")
    return sa.table(table, schema=schema or None)


class SqlSource(Connector):
    """Reads leads from a table or a query of a SQL database.

    ``fetch_changed`` yields rows by modification time, then id (``ordered``), so the engine
    checkpoints after every batch. Deletes come from ``deleted_column`` (a soft-delete flag), from
    ``deleted_table`` (one row per hard delete), or from reconciliation
    (:meth:`fetch_all_ids`). Rows without a usable id or time are reported, never raised.
    """

    name = "custom"
    Settings: ClassVar[type[ConnectorSettings]] = SqlSettings
    ordered = True

    settings: SqlSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self._deleted_values = frozenset(self.settings.deleted_values)
        self._zone = zone(self.settings.timezone) if self.settings.timezone is not None else None
        self._reader = RecordReader(
            context,
            id_setting="id_column",
            modified_setting="modified_column",
            timezone=self._zone,
        )
        url = sa.make_url(self.settings.url.get_secret_value())
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            url = url.set(database=str(context.resolve_path(url.database)))
        self._where = url.render_as_string(hide_password=True)
        self._engine = sa.create_engine(url, pool_pre_ping=False)
        self._source: sa.FromClause = (
            _table(self.settings.table)
            if self.settings.table is not None
            else sa.text(self.settings.query or "").columns().subquery("source")
        )
        self._id: sa.ColumnClause[Any] = sa.column(self.settings.id_column)
        self._modified: sa.ColumnClause[Any] = sa.column(self.settings.modified_column)

    # -- statements -----------------------------------------------------------------------------

    def _bound(self, moment: datetime) -> datetime:
        """A window bound as the column stores it: naive in ``timezone`` when set."""
        if self._zone is None:
            return moment.astimezone(UTC)
        return moment.astimezone(self._zone).replace(tzinfo=None)

    def _rows(self, statement: sa.Select[Any]) -> Generator[Mapping[str, Any], None, None]:
        """Stream ``statement``'s rows through a server-side cursor, ``batch_size`` at a time."""
        try:
            with self._engine.connect() as connection:
                result = connection.execution_options(
                    stream_results=True, yield_per=self.settings.batch_size
                ).execute(statement)
                for row in result.mappings():
                    yield {key: _plain(value) for key, value in row.items()}
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise ConnectorError(
                f"{self._where}: {type(cause).__name__}: {str(cause).strip()}; check "
                "settings.url, settings.table or settings.query and the column settings"
            ) from None

    def _select(self, *conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
        return (
            sa.select(sa.literal_column("*"))
            .select_from(self._source)
            .where(*conditions)
            .order_by(self._modified, self._id)
        )

    def _window(self, column: sa.ColumnClause[Any], window: Window) -> list[sa.ColumnElement[bool]]:
        conditions = [column < self._bound(window.end)]
        if window.start is not None:
            conditions.insert(0, column >= self._bound(window.start))
        return conditions

    def _records(self, statement: sa.Select[Any]) -> Iterator[tuple[SourceRecord, bool]]:
        """Each usable row as a record and whether it is flagged deleted; bad rows reported."""
        settings = self.settings
        for fields in self._rows(statement):
            if settings.id_column not in fields or settings.modified_column not in fields:
                raise ConnectorError(
                    f"{self._where}: the rows have no column {settings.id_column!r} "
                    f"(settings.id_column) or {settings.modified_column!r} "
                    f"(settings.modified_column); they have {', '.join(map(repr, fields))}"
                )
            raw_id = fields[settings.id_column]
            where = f"{settings.table or 'query'} row {settings.id_column}={raw_id!r}"
            record = self._reader.record(where, raw_id, fields[settings.modified_column], fields)
            if record is not None:
                deleted = settings.deleted_column is not None and is_flagged(
                    fields.get(settings.deleted_column), self._deleted_values
                )
                yield record, deleted

    # -- the connector contract -----------------------------------------------------------------

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Yield the live rows modified inside ``window``, by modification time then id."""
        for record, deleted in self._records(self._select(*self._window(self._modified, window))):
            if not deleted:
                yield record

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Yield ids flagged deleted in ``window`` (deleted_column) and ids in deleted_table."""
        if self.settings.deleted_column is not None:
            statement = self._select(*self._window(self._modified, window))
            yield from (record.id for record, deleted in self._records(statement) if deleted)
        if self.settings.deleted_table is not None:
            deleted_id: sa.ColumnClause[Any] = sa.column(self.settings.deleted_id_column)
            deleted_at: sa.ColumnClause[Any] = sa.column(self.settings.deleted_at_column)
            statement = (
                sa.select(deleted_id)
                .select_from(_table(self.settings.deleted_table))
                .where(*self._window(deleted_at, window))
                .order_by(deleted_at)
            )
            for fields in self._rows(statement):
                record_id = as_text(fields.get(self.settings.deleted_id_column))
                if record_id is not None:
                    yield record_id

    def fetch_all_ids(self) -> Iterator[str]:
        """Yield the id of every live row (a complete listing, for reconciliation)."""
        columns = [self._id]
        if self.settings.deleted_column is not None:
            columns.append(sa.column(self.settings.deleted_column))
        statement = sa.select(*columns).select_from(self._source)
        for fields in self._rows(statement):
            record_id = as_text(fields.get(self.settings.id_column))
            if record_id is None:
                continue
            if self.settings.deleted_column is not None and is_flagged(
                fields.get(self.settings.deleted_column), self._deleted_values
            ):
                continue
            yield record_id

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """Yield the current live rows of ``ids``, ``IN`` lists of 500 ids at a time.

        Ids are compared as text, so integer and text id columns both work.
        """
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            statement = self._select(sa.cast(self._id, sa.String).in_(chunk))
            for record, deleted in self._records(statement):
                if not deleted:
                    yield record

    def to_lead(self, record: SourceRecord) -> Lead:
        """The default mapping (:func:`~naturalead_sync_custom.mapping.default_lead`)."""
        return default_lead(record)

    def check(self) -> list[str]:
        """Connect and read one row; raises :class:`ConnectorError` naming what to fix."""
        statement: sa.Select[Any] = (
            sa.select(sa.literal_column("*")).select_from(self._source).limit(1)
        )
        rows = self._rows(statement)
        try:
            first = next(rows, None)
        finally:
            rows.close()
        if first is None:
            return [f"{self._where}: {self.settings.table or 'the query'} has no rows yet"]
        wanted = {
            self.settings.id_column: "id_column",
            self.settings.modified_column: "modified_column",
        }
        if self.settings.deleted_column is not None:
            wanted[self.settings.deleted_column] = "deleted_column"
        missing = [
            f"{name!r} (settings.{key})" for name, key in wanted.items() if name not in first
        ]
        if missing:
            raise ConnectorError(
                f"{self._where}: no column {', '.join(missing)}; the columns are "
                f"{', '.join(map(repr, first))}. Fix the settings"
            )
        return []

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()
