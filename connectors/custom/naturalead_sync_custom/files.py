"""Streaming readers for CSV and JSON Lines files, and the timestamp parser.

The readers never hold more than one record in memory. They yield every record as a
:class:`Row` that says where it is (``"leads.csv line 7"``), its fields, and what is wrong with
it, if anything; deciding what to do with a bad row is the connector's business.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Generator, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any, NamedTuple

from naturalead_sync import ConnectorError

from .settings import FileFormat

__all__ = ["REPLACEMENT", "Row", "csv_header", "open_text", "parse_timestamp", "read_rows"]

#: What undecodable bytes become when a file is read with ``errors="replace"``.
REPLACEMENT = "\ufffd"

_MAX_LISTED_COLUMNS = 20
_EPOCH = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_FORMATS_HELP = (
    "use ISO 8601 (2026-05-01T09:30:00Z, 2026-05-01T11:30:00+02:00, 2026-05-01 09:30:00), "
    "a date (2026-05-01) or unix epoch seconds (1777627800)"
)


class Row(NamedTuple):
    """One record of a file.

    ``where`` names it by file and line. ``fields`` maps column names to values (strings, or
    JSON values for JSON Lines); it is None when the line could not be read at all (not JSON,
    not an object). ``problem`` says why the row cannot be trusted, or is None.
    """

    where: str
    fields: dict[str, Any] | None
    problem: str | None = None


def open_text(path: Path, encoding: str, *, newline: str | None = None) -> IO[str]:
    """Open ``path`` for reading text, replacing undecodable bytes with U+FFFD.

    Raises :class:`ConnectorError` naming ``settings.path`` when the file cannot be opened.
    """
    try:
        return path.open("r", encoding=encoding, errors="replace", newline=newline)
    except FileNotFoundError:
        raise ConnectorError(
            f"{path} not found; fix settings.path (a relative path starts at the config "
            "file's folder)"
        ) from None
    except IsADirectoryError:
        raise ConnectorError(f"{path} is a folder, not a file; fix settings.path") from None
    except OSError as exc:
        raise ConnectorError(
            f"cannot read {path}: {exc.strerror or exc}; check settings.path and the file's "
            "permissions"
        ) from None


def read_rows(
    path: Path,
    file_format: FileFormat,
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    required: Mapping[str, str] | None = None,
) -> Generator[Row, None, None]:
    """Yield the records of ``path`` one by one.

    ``required`` maps column names to the setting that names them (``{"id": "id_column"}``):
    a CSV header without one of them raises :class:`ConnectorError` before any row is read.
    (JSON Lines records have no header; a missing key shows up per record.) Rows with bytes
    that are not valid in ``encoding`` carry a problem naming ``settings.encoding``.
    """
    if file_format == "csv":
        return _csv_rows(path, encoding, delimiter, required or {})
    return _jsonl_rows(path, encoding)


def _encoding_problem(encoding: str) -> str:
    return (
        f"contains bytes that are not valid {encoding} (settings.encoding); they were "
        "replaced by U+FFFD. Save the file as that encoding or set settings.encoding to the "
        "file's real one (e.g. cp1252)"
    )


#: The largest CSV field read (larger ones mean a broken file: unbalanced quotes).
_MAX_FIELD = 256 * 1024 * 1024


def _columns(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:_MAX_LISTED_COLUMNS])
    more = len(names) - _MAX_LISTED_COLUMNS
    return f"{shown} and {more} more" if more > 0 else shown or "none"


def _csv_records(reader: Any, path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record of a CSV reader with the number of its first line."""
    start = 1
    while True:
        try:
            values: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ConnectorError(
                f"{path} line {start}: cannot read the CSV ({exc}); check the quoting there "
                "and settings.delimiter"
            ) from None
        if "".join(values).strip():  # not a blank line
            yield start, values
        start = reader.line_num + 1


def _header(values: list[str]) -> list[str]:
    header = [column.strip() for column in values]
    header[0] = header[0].lstrip("\ufeff").strip()
    return header


def csv_header(path: Path, *, encoding: str = "utf-8", delimiter: str = ",") -> list[str] | None:
    """The column names of a CSV file as written (stripped), or None when it is empty."""
    with open_text(path, encoding, newline="") as handle:
        first = next(_csv_records(csv.reader(handle, delimiter=delimiter), path), None)
    return None if first is None else _header(first[1])


def _csv_rows(
    path: Path, encoding: str, delimiter: str, required: Mapping[str, str]
) -> Generator[Row, None, None]:
    name = path.name
    # The csv module refuses fields over 128 KiB and stops the file there; read them, so an
    # oversized value rejects its own lead (core's size check) and not the whole file.
    csv.field_size_limit(max(csv.field_size_limit(), _MAX_FIELD))
    with open_text(path, encoding, newline="") as handle:
        lines = _csv_records(csv.reader(handle, delimiter=delimiter), path)
        first = next(lines, None)
        if first is None:
            return
        header = _header(first[1])
        missing = [
            (column, setting) for column, setting in required.items() if column not in header
        ]
        if missing:
            wanted = ", ".join(f"{column!r} (settings.{setting})" for column, setting in missing)
            raise ConnectorError(
                f"{path}: the header has no column {wanted}; its columns are "
                f"{_columns(header)}. Fix the setting or the file (is settings.delimiter "
                f"{delimiter!r} right?)"
            )
        width = len(header)
        for number, values in lines:
            problem = None
            if len(values) > width:
                if any(value.strip() for value in values[width:]):
                    problem = (
                        f"has {len(values)} values but the header has {width} columns; quote "
                        "values that contain the delimiter"
                    )
                values = values[:width]
            elif len(values) < width:
                values = values + [""] * (width - len(values))
            if problem is None and REPLACEMENT in "".join(values):
                problem = _encoding_problem(encoding)
            yield Row(f"{name} line {number}", dict(zip(header, values, strict=True)), problem)


def _jsonl_rows(path: Path, encoding: str) -> Generator[Row, None, None]:
    name = path.name
    with open_text(path, encoding) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{name} line {number}"
            if number == 1:
                line = line.lstrip("\ufeff")
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                if REPLACEMENT in line:
                    yield Row(where, None, _encoding_problem(encoding))
                else:
                    yield Row(where, None, f"is not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(value, dict):
                yield Row(where, None, f"is not a JSON object but {_json_kind(value)}")
                continue
            yield Row(where, value, _encoding_problem(encoding) if REPLACEMENT in line else None)


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def parse_timestamp(value: Any, timezone: tzinfo = UTC) -> datetime:
    """A modification time as an aware datetime in UTC.

    Accepts ISO 8601 date-times (with ``Z``, an offset, or none: then ``timezone`` applies), a
    plain date (midnight in ``timezone``), unix epoch seconds (int, float, or such a string), and
    aware or naive datetimes. Raises ValueError saying which formats work otherwise.
    """
    if isinstance(value, str):  # (first: what files hold)
        text = value.strip()
        if not text:
            raise ValueError(f"empty; {_FORMATS_HELP}")
        if _EPOCH.fullmatch(text):
            return _from_epoch(float(text) if "." in text else int(text))
        if text[-1] == "z":
            text = text[:-1] + "Z"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a timestamp; {_FORMATS_HELP}") from None
    elif isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp; {_FORMATS_HELP}")
    elif isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        return _from_epoch(value)
    else:
        raise ValueError(f"not a timestamp but {type(value).__name__}; {_FORMATS_HELP}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone)
    return moment.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"not a timestamp; {_FORMATS_HELP}")
    if 10_000_000 <= abs(seconds) < 100_000_000 and float(seconds).is_integer():
        raise ValueError(
            "ambiguous: eight digits could be a date (YYYYMMDD) or epoch seconds in 1970-1973; "
            "write dates as 2026-05-01"
        )
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(
            "epoch seconds out of range (milliseconds? this connector reads seconds); "
            f"{_FORMATS_HELP}"
        ) from None
