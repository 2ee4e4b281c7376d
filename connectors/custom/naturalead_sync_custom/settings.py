"""Settings of the custom connector: the file source's, and how ``source`` selects the others.

``source`` (default ``"file"``) picks the model: :class:`CustomSettings` for files,
:class:`~naturalead_sync_custom.sql_settings.SqlSettings`,
:class:`~naturalead_sync_custom.rest_settings.RestSettings` or
:class:`~naturalead_sync_custom.adapter.AdapterSettings`. ``CustomSettings.model_validate``
(what the runner calls) returns the model of the selected source.
"""

from __future__ import annotations

import codecs
from pathlib import PurePath
from typing import Any, Literal

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)

from naturalead_sync import ConnectorSettings

from .adapter import AdapterSettings
from .flags import DEFAULT_DELETED_VALUES, clean_deleted_values
from .rest_settings import RestSettings
from .sql_settings import SqlSettings
from .zones import known_zone, zone

__all__ = [
    "DEFAULT_DELETED_VALUES",
    "SOURCES",
    "SUFFIXES",
    "CustomSettings",
    "FileFormat",
    "zone",
]

FileFormat = Literal["csv", "jsonl"]

#: File suffixes (lower case) and the format each one means.
SUFFIXES: dict[str, FileFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class CustomSettings(ConnectorSettings):
    """``[connections.settings]`` of a ``connector = "custom"`` connection reading a file.

    Validating settings whose ``source`` is another source (``"sql"``, ``"rest"``,
    ``"class"``) with :meth:`model_validate` returns that source's settings model instead.
    """

    source: Literal["file", "sql", "rest", "class"] = Field(
        default="file",
        description=(
            'Where the leads come from: "file" (this model), "sql", "rest" or "class"; see the '
            "README for each source's settings."
        ),
    )

    path: str = Field(
        min_length=1,
        description=(
            "The CSV or JSON Lines file to read. A relative path starts at the config file's "
            "folder."
        ),
    )
    format: FileFormat | None = Field(
        default=None,
        validate_default=True,
        description=(
            'The file format, "csv" or "jsonl". Inferred from the suffix of path (.csv, .jsonl, '
            ".ndjson) when left out."
        ),
    )
    id_column: str = Field(
        default="id",
        min_length=1,
        description="The column holding each record's stable, unique id (it becomes lead_id).",
    )
    modified_column: str = Field(
        default="updated_at",
        min_length=1,
        description=(
            "The column holding each record's last modification time (ISO 8601, a date, or "
            "unix epoch seconds)."
        ),
    )
    deleted_column: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "The column that flags deleted records; leave out when the file has none (use "
            "reconcile_deletes = true on the connection instead)."
        ),
    )
    deleted_values: list[str] = Field(
        default=list(DEFAULT_DELETED_VALUES),
        description=(
            "Values of deleted_column that mean deleted, compared case-insensitively; any other "
            "value (or an empty cell) means live."
        ),
    )
    encoding: str = Field(
        default="utf-8",
        description=(
            "The file's text encoding, e.g. utf-8, utf-8-sig, cp1252, latin-1. Rows with bytes "
            "that are not valid in it are reported as bad records."
        ),
    )
    delimiter: str = Field(
        default=",",
        description='The CSV field separator, one character (e.g. ";" or "\\t"). CSV only.',
    )
    sorted: bool = Field(
        default=False,
        description=(
            "True when the file is sorted by the modified column, oldest first: the engine then "
            "checkpoints after every batch, so an interrupted run of a large file resumes "
            "where it stopped. A file that turns out unsorted is still synced correctly."
        ),
    )
    timezone: str = Field(
        default="UTC",
        description=(
            "The time zone of timestamps written without an offset (and of plain dates), as an "
            "IANA name such as Europe/Paris."
        ),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _select_source(cls, data: Any, handler: ModelWrapValidatorHandler[CustomSettings]) -> Any:
        """Validate the settings of the source named by ``source`` with that source's model."""
        if isinstance(data, dict) and cls is CustomSettings:
            other = SOURCES.get(data.get("source", "file"))
            if other is not None:
                return other.model_validate(data)
        return handler(data)

    @field_validator("format")
    @classmethod
    def _infer_format(cls, value: FileFormat | None, info: ValidationInfo) -> FileFormat | None:
        if value is not None:
            return value
        path = info.data.get("path")
        if path is None:  # path itself is invalid: that error is reported instead
            return None
        suffix = PurePath(path).suffix.lower()
        if suffix not in SUFFIXES:
            raise ValueError(
                f"cannot tell the format of {path!r} from its suffix "
                f'({suffix or "none"}); set settings.format to "csv" or "jsonl", or name '
                "the file .csv, .jsonl or .ndjson"
            )
        return SUFFIXES[suffix]

    _normalise_deleted_values = field_validator("deleted_values")(clean_deleted_values)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r}; use e.g. 'utf-8', 'utf-8-sig', 'cp1252' or 'latin-1'"
            ) from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be exactly one character, got {value!r}")
        if value in '\r\n"':
            raise ValueError(f"{value!r} cannot separate CSV fields")
        return value

    _known_timezone = field_validator("timezone")(known_zone)

    @property
    def file_format(self) -> FileFormat:
        """The file format: ``format`` as given or as inferred from the suffix of ``path``."""
        if self.format is not None:
            return self.format
        return SUFFIXES.get(PurePath(self.path).suffix.lower(), "csv")


#: The settings model of each source other than ``"file"``, by the value of ``source``.
SOURCES: dict[str, type[ConnectorSettings]] = {
    "sql": SqlSettings,
    "rest": RestSettings,
    "class": AdapterSettings,
}
