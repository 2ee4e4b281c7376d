"""The file source of the custom connector: leads from a CSV or JSON Lines file."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar, NamedTuple

from naturalead_sync import (
    Connector,
    ConnectorContext,
    ConnectorError,
    ConnectorSettings,
    Lead,
    SourceRecord,
    Window,
)

from .files import REPLACEMENT, Row, csv_header, parse_timestamp, read_rows
from .flags import is_flagged
from .mapping import as_text, default_lead
from .settings import CustomSettings
from .zones import zone

__all__ = ["FileSource"]


class _Parsed(NamedTuple):
    """What the connector makes of one row; ``problem`` is set when it cannot be used."""

    location: str
    id: str | None
    modified: datetime | None
    deleted: bool
    problem: str | None


class FileSource(Connector):
    """Reads leads from one CSV or JSON Lines file.

    Every fetch streams the whole file. It need not be sorted: ``ordered`` is false unless
    ``settings.sorted`` says the file is sorted by modification time. Rows flagged in
    ``deleted_column`` are deletions; without that column, deletes come from
    ``reconcile_deletes = true`` on the connection, which compares :meth:`fetch_all_ids` with
    what was synced. When an id appears on several rows, the newest row decides whether
    the record is live or deleted.

    Bad rows (no id, unreadable time, undecodable bytes, not JSON) are reported through
    :meth:`ConnectorContext.report_bad_record` by :meth:`fetch_changed` only, so that each lands
    once in the run report; rows whose time is readable are reported only by the run whose
    window holds them.
    """

    name = "custom"
    Settings: ClassVar[type[ConnectorSettings]] = CustomSettings
    ordered = False  # unless settings.sorted

    settings: CustomSettings

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        super().__init__(settings, context)
        self.ordered = self.settings.sorted
        self._zone = zone(self.settings.timezone)
        self._deleted_values = frozenset(self.settings.deleted_values)

    # -- reading ------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The file, resolved against the config file's folder."""
        return self.context.resolve_path(self.settings.path)

    def _required(self) -> dict[str, str]:
        required = {
            self.settings.id_column: "id_column",
            self.settings.modified_column: "modified_column",
        }
        if self.settings.deleted_column is not None:
            required.setdefault(self.settings.deleted_column, "deleted_column")
        return required

    def _rows(self) -> Generator[Row, None, None]:
        return read_rows(
            self.path,
            self.settings.file_format,
            encoding=self.settings.encoding,
            delimiter=self.settings.delimiter,
            required=self._required(),
        )

    def _parse(self, row: Row) -> _Parsed:
        """The id, modification time and deleted flag of ``row``, and its first problem."""
        settings = self.settings
        fields = row.fields
        if fields is None:
            return _Parsed(row.where, None, None, False, row.problem or "cannot be read")
        raw_id = fields.get(settings.id_column)
        record_id = None if isinstance(raw_id, dict | list) else as_text(raw_id)
        raw_modified = fields.get(settings.modified_column)
        modified: datetime | None = None
        time_problem: str | None = None
        if as_text(raw_modified) is None:
            time_problem = (
                f"missing modification time in column {settings.modified_column!r} "
                "(settings.modified_column)"
            )
        else:
            try:
                modified = parse_timestamp(raw_modified, self._zone)
            except ValueError as exc:
                time_problem = (
                    f"column {settings.modified_column!r} (settings.modified_column) has "
                    f"{raw_modified!r}: {exc}"
                )
        deleted = False
        if settings.deleted_column is not None:
            deleted = is_flagged(fields.get(settings.deleted_column), self._deleted_values)
        problem = row.problem
        if problem is None and record_id is None:
            problem = (
                f"missing id in column {settings.id_column!r} (settings.id_column)"
                if raw_id is None or isinstance(raw_id, str)
                else f"the id in column {settings.id_column!r} (settings.id_column) is not "
                f"a string or number: {raw_id!r}"
            )
        return _Parsed(row.where, record_id, modified, deleted, problem or time_problem)

    def _report(self, parsed: _Parsed) -> None:
        problem = parsed.problem or "cannot be read"
        readable = parsed.id is not None and REPLACEMENT not in parsed.id
        self.context.report_bad_record(parsed.location, problem, parsed.id if readable else None)

    # -- the connector contract ---------------------------------------------------------------

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        """Yield the live rows modified inside ``window``; report the bad ones.

        A bad row whose modification time is readable and outside the window is passed over
        quietly (the run whose window holds it reports it); one whose time cannot be read is
        reported on every run until the file is fixed.
        """
        for row in self._rows():
            parsed = self._parse(row)
            if parsed.modified is not None and parsed.modified not in window:
                continue
            if parsed.problem is not None or parsed.id is None or parsed.modified is None:
                self._report(parsed)
                continue
            if parsed.deleted:
                continue
            assert row.fields is not None  # a row without fields has a problem
            yield SourceRecord(id=parsed.id, modified_at=parsed.modified, fields=row.fields)

    def _deletions(self, window: Window | None) -> dict[str, datetime]:
        """The newest deletion time of each id flagged deleted by a clean row (in ``window``)."""
        deleted_at: dict[str, datetime] = {}
        for row in self._rows():
            parsed = self._parse(row)
            if (
                parsed.problem is None
                and parsed.deleted
                and parsed.id is not None
                and parsed.modified is not None
                and (window is None or parsed.modified in window)
            ):
                known = deleted_at.get(parsed.id)
                if known is None or parsed.modified > known:
                    deleted_at[parsed.id] = parsed.modified
        return deleted_at

    def fetch_deleted(self, window: Window) -> Iterator[str]:
        """Yield the ids of rows flagged deleted whose modification time is inside ``window``.

        An id that also has a live row modified later (a restored record) is left out. Nothing
        without ``deleted_column``.
        """
        if self.settings.deleted_column is None:
            return
        candidates = self._deletions(window)
        if not candidates:
            return
        for row in self._rows():  # second pass: drop records restored after their deletion
            parsed = self._parse(row)
            if parsed.deleted or parsed.id is None or parsed.modified is None:
                continue
            deleted_at = candidates.get(parsed.id)
            if deleted_at is not None and parsed.modified > deleted_at:
                del candidates[parsed.id]
        yield from candidates

    def fetch_all_ids(self) -> Iterator[str]:
        """Yield each id that has a live row, once: a complete scan for reconciliation.

        Rows without an id are skipped. A line that cannot be read at all (JSON Lines) raises
        :class:`ConnectorError`, because the listing would not be complete and reconciliation
        would delete the lead on it. A live row counts unless a clean row flagged deleted with
        a later modification time supersedes it; rows with problems count as live.
        """
        deleted_at = self._deletions(None) if self.settings.deleted_column is not None else {}
        seen: set[str] = set()
        for row in self._rows():
            if row.fields is None:
                raise ConnectorError(
                    f"{row.where} {row.problem}; reconcile_deletes needs every line of "
                    f"{self.path} readable to know which leads still exist. Fix the line"
                )
            parsed = self._parse(row)
            if parsed.id is None or parsed.id in seen:
                continue
            if parsed.deleted and row.problem is None:
                continue
            deleted = deleted_at.get(parsed.id)
            if deleted is not None and parsed.modified is not None and parsed.modified <= deleted:
                continue
            seen.add(parsed.id)
            yield parsed.id

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        """Yield the current live row of each of ``ids`` (in that order), in one scan.

        The newest row of an id wins; ids whose newest row is flagged deleted, and rows with
        problems, are left out.
        """
        wanted = set(ids)
        newest: dict[str, tuple[_Parsed, Row]] = {}
        for row in self._rows():
            parsed = self._parse(row)
            if parsed.id not in wanted or parsed.problem is not None or parsed.modified is None:
                continue
            known = newest.get(parsed.id)
            if known is None or parsed.modified >= (known[0].modified or parsed.modified):
                newest[parsed.id] = (parsed, row)
        for record_id in dict.fromkeys(ids):
            found = newest.get(record_id)
            if found is None:
                continue
            parsed, row = found
            if parsed.deleted or parsed.modified is None or row.fields is None:
                continue
            yield SourceRecord(id=record_id, modified_at=parsed.modified, fields=row.fields)

    def to_lead(self, record: SourceRecord) -> Lead:
        """The default mapping (:func:`~naturalead_sync_custom.mapping.default_lead`)."""
        return default_lead(record)

    def check(self) -> list[str]:
        """Open the file and check its header (CSV) or first record (JSON Lines).

        Raises :class:`ConnectorError` naming the path and the setting to fix; returns warnings
        (an empty file, undecodable bytes or a duplicated column in the header, ...).
        """
        path = self.path
        if not path.exists():
            raise ConnectorError(
                f"{path} not found; fix settings.path (a relative path starts at the config "
                f"file's folder, {self.context.base_dir})"
            )
        if not path.is_file():
            raise ConnectorError(f"{path} is not a file; fix settings.path")
        if self.settings.file_format == "csv":
            return self._check_csv(path)
        return self._check_jsonl(path)

    def _check_csv(self, path: Path) -> list[str]:
        rows = self._rows()
        try:
            first = next(rows, None)  # reading the first row checks the header's columns
        finally:
            rows.close()
        header = csv_header(
            path, encoding=self.settings.encoding, delimiter=self.settings.delimiter
        )
        if header is None:
            return [f"{path} is empty: it has no header and no rows"]
        warnings: list[str] = []
        if any(REPLACEMENT in column for column in header):
            warnings.append(
                f"{path}: the header has bytes that are not valid {self.settings.encoding}; "
                "check settings.encoding"
            )
        duplicates = sorted({column for column in header if header.count(column) > 1})
        if duplicates:
            warnings.append(
                f"{path}: the header repeats {', '.join(map(repr, duplicates))}; only the last "
                "of each is read"
            )
        if first is None:
            warnings.append(f"{path} has a header but no rows yet")
        return warnings

    def _check_jsonl(self, path: Path) -> list[str]:
        rows = self._rows()
        try:
            first = next(rows, None)
        finally:
            rows.close()
        if first is None:
            return [f"{path} is empty: it has no records yet"]
        if first.fields is None:
            raise ConnectorError(f"{path}: {first.where} {first.problem}; fix the file")
        warnings: list[str] = []
        for column, setting in self._required().items():
            if column in first.fields:
                continue
            message = (
                f"{path}: the first record ({first.where}) has no key {column!r} "
                f"(settings.{setting}); its keys are {', '.join(map(repr, first.fields))}"
            )
            if setting == "deleted_column":  # often only on deleted records
                warnings.append(message + "; fine if only deleted records carry it")
            else:
                raise ConnectorError(message + ". Fix the setting or the file")
        if first.problem is not None:
            warnings.append(f"{first.where} {first.problem}")
        return warnings
