"""Settings of the custom connector's SQL source: which database, table or query, and columns."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from naturalead_sync import ConnectorSettings

from .flags import DEFAULT_DELETED_VALUES, clean_deleted_values
from .zones import known_zone

__all__ = ["SqlSettings"]


class SqlSettings(ConnectorSettings):
    """``[connections.settings]`` of a custom connection with ``source = "sql"``."""

    source: Literal["sql"] = Field(description='"sql": read a database through SQLAlchemy.')
    url: SecretStr = Field(
        description=(
            'The SQLAlchemy database URL, e.g. "${LEADS_DB_URL}" read from the environment '
            "(postgresql+psycopg://user:password@host/db, sqlite:///leads.db). A relative "
            "SQLite path starts at the config file's folder. Never logged."
        ),
    )
    table: str | None = Field(
        default=None,
        min_length=1,
        description='The table (or view) to read, optionally "schema.table"; or set query.',
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "A SELECT returning the leads' rows (joins, filters); the window's conditions "
            "wrap it. Set either table or query."
        ),
    )
    id_column: str = Field(
        default="id", min_length=1, description="The column with each record's unique id."
    )
    modified_column: str = Field(
        default="updated_at",
        min_length=1,
        description="The column with each record's last modification time (indexed, ideally).",
    )
    deleted_column: str | None = Field(
        default=None,
        min_length=1,
        description="A column that flags deleted rows (soft deletes); see deleted_values.",
    )
    deleted_values: list[str] = Field(
        default=list(DEFAULT_DELETED_VALUES),
        description="Values of deleted_column meaning deleted (true, 1, ...), case-insensitive.",
    )
    deleted_table: str | None = Field(
        default=None,
        min_length=1,
        description="A table listing deleted records (hard deletes), one row per deletion.",
    )
    deleted_id_column: str = Field(
        default="id", min_length=1, description="The id column of deleted_table."
    )
    deleted_at_column: str = Field(
        default="deleted_at",
        min_length=1,
        description="The column of deleted_table with the time of each deletion.",
    )
    timezone: str | None = Field(
        default=None,
        description=(
            "The time zone of timestamps stored without one (timestamp without time zone, "
            "DATETIME), e.g. UTC or Europe/Paris. Required for such columns; leave out for "
            "timestamptz."
        ),
    )
    batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Rows fetched from the server-side cursor at a time (memory stays flat).",
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: SecretStr) -> SecretStr:
        try:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError
        except ImportError:
            raise ValueError(
                "source = \"sql\" needs SQLAlchemy: pip install 'naturalead-sync-custom[sql]' "
                "(with the PostgreSQL driver: 'naturalead-sync-custom[postgresql]')"
            ) from None
        try:
            make_url(value.get_secret_value())
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a SQLAlchemy database URL; write dialect+driver://user:password@host/db "
                '(e.g. postgresql+psycopg://...), usually as "${LEADS_DB_URL}"'
            ) from None
        return value

    _known_timezone = field_validator("timezone")(known_zone)

    _normalise_deleted_values = field_validator("deleted_values")(clean_deleted_values)

    @model_validator(mode="after")
    def _table_or_query(self) -> Self:
        if (self.table is None) == (self.query is None):
            raise ValueError('set exactly one of table = "leads" or query = "SELECT ..."')
        return self
