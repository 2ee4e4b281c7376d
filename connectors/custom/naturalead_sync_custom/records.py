"""Turning one fetched row or API record into a :class:`SourceRecord`, or saying what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from naturalead_sync import ConnectorContext, SourceRecord

from .files import parse_timestamp
from .mapping import as_text

__all__ = ["RecordReader"]


class RecordReader:
    """Reads the id and modification time of records, reporting the ones that are unusable.

    ``id_setting`` and ``modified_setting`` name the settings that locate the two values
    (e.g. ``"id_column"``), so that a report says what to fix. ``timezone`` is the zone of naive
    timestamps; None means naive ones are errors (the source must say which zone it writes).
    """

    def __init__(
        self,
        context: ConnectorContext,
        *,
        id_setting: str,
        modified_setting: str,
        timezone: tzinfo | None,
    ) -> None:
        self.context = context
        self.id_setting = id_setting
        self.modified_setting = modified_setting
        self.timezone = timezone

    def modified(self, value: Any) -> datetime:
        """A modification time as an aware datetime in UTC; ValueError with the fix otherwise."""
        if isinstance(value, datetime) and value.tzinfo is None and self.timezone is None:
            raise ValueError(
                f"{value.isoformat()} has no time zone; set settings.timezone to the zone the "
                "source writes (e.g. 'UTC')"
            )
        return parse_timestamp(value, self.timezone or UTC)

    def record(
        self, where: str, raw_id: Any, raw_modified: Any, fields: Mapping[str, Any]
    ) -> SourceRecord | None:
        """The record, or None after reporting why it cannot be used (``where`` locates it)."""
        record_id = None if isinstance(raw_id, dict | list) else as_text(raw_id)
        if record_id is None:
            self.context.report_bad_record(
                where, f"missing or unusable id {raw_id!r} (settings.{self.id_setting})"
            )
            return None
        try:
            modified = self.modified(raw_modified)
        except ValueError as exc:
            self.context.report_bad_record(
                where,
                f"modification time {raw_modified!r} (settings.{self.modified_setting}): {exc}",
                record_id,
            )
            return None
        return SourceRecord(id=record_id, modified_at=modified, fields=fields)
