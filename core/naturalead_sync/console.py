"""Terminal output: run summaries, tables, progress and log setup (rich on a TTY, plain lines
otherwise, JSON logs on request)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .http import RedactedUrls
from .report import ConnectionReport, RunReport

__all__ = [
    "json_line",
    "progress_reporter",
    "render_report",
    "render_report_json",
    "setup_logging",
    "stderr",
    "stdout",
    "table",
]

#: Wide enough for the run summary when output goes to a file or a pipe (rich assumes 80).
_PIPE_WIDTH = 160
stdout = Console(width=None if sys.stdout.isatty() else _PIPE_WIDTH)
stderr = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPE_WIDTH)
progress_log = logging.getLogger("naturalead_sync.progress")
_STATUS_STYLE = {"ok": "green", "rejected": "yellow", "failed": "bold red"}
_SHOWN_REJECTIONS = 10


def json_line(
    level: str, logger: str, message: str, created: float | None = None, **extra: Any
) -> str:
    """One JSON log line: time, level, logger, message, then ``extra`` (``--log-format json``
    log records, and the command's ``error:`` lines with their ``exit_code``)."""
    moment = time.time() if created is None else created
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(moment, UTC).isoformat(),
        "level": level,
        "logger": logger,
        "message": message,
        **extra,
    }
    return json.dumps(entry, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        extra: dict[str, Any] = {}
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        return json_line(
            record.levelname.lower(), record.name, record.getMessage(), record.created, **extra
        )


def setup_logging(verbosity: int, log_format: str) -> None:
    """Log to stderr: warnings by default, info with -v, debug with -vv."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif stderr.is_terminal:
        handler = RichHandler(console=stderr, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    progress_log.setLevel(logging.INFO)  # progress lines show at the default verbosity
    httpx_log = logging.getLogger("httpx")
    if verbosity < 2:
        httpx_log.setLevel(logging.WARNING)
    if not any(isinstance(f, RedactedUrls) for f in httpx_log.filters):
        httpx_log.addFilter(RedactedUrls())


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str | Text]]) -> Table:
    """A simple rich table; plain strings are shown as they are (no markup)."""
    result = Table(title=escape(title), title_justify="left")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return result


def _n(value: int) -> str:
    return f"{value:,}"


def render_report(report: RunReport, console: Console = stdout) -> None:
    """The console summary of a run: a short block per connection, then its rejections."""
    if any(c.dry_run for c in report.connections):
        console.print("[bold]Dry run[/]: what would happen (nothing was sent, no state written)")
    for c in report.connections:
        style = _STATUS_STYLE.get(c.status, "")
        console.print(
            f"[bold]{escape(c.connection)}[/] ({escape(c.connector)}) "
            f"[{style}]{c.status}[/] in {c.duration_seconds:.1f}s",
            highlight=False,
        )
        skipped = "".join(
            f" · {label} {_n(count)}"
            for label, count in (
                ("stale", c.skipped_stale),
                ("still failing", c.skipped_still_failing),
            )
            if count
        )
        if c.cursor_before:
            start = c.cursor_before
        elif c.cursor_ignored:
            start = f"{c.cursor_ignored} (ignored: --full-refresh)"
        else:
            start = "(start)"
        lines = [
            f"fetched {_n(c.records_fetched)} · created {_n(c.created)} · updated "
            f"{_n(c.updated)} · unchanged {_n(c.skipped_unchanged)}{skipped} · rejected "
            f"{_n(c.rejected)} · deleted {_n(c.deleted)}",
            f"requests {_n(c.upsert_requests)} upsert, {_n(c.delete_requests)} delete · "
            f"retries {_n(c.retries)} · 429s {_n(c.rate_limited)}",
            f"cursor {start} -> {c.cursor_after or '(unchanged)'}",
        ]
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False)
        for action, sample in c.planned.items():
            count = {"create": c.created, "update": c.updated, "delete": c.deleted}[action]
            more = f" and {count - len(sample):,} more" if count > len(sample) else ""
            console.print(
                f"  would {action}: {', '.join(sample)}{more}", highlight=False, markup=False
            )
        if c.error:
            console.print(f"  [bold red]error:[/] {escape(c.error)}", highlight=False)
        for rejection in c.rejections[:_SHOWN_REJECTIONS]:
            console.print(
                f"  [yellow]rejected[/] {escape(rejection.lead_id)} ({rejection.where}): "
                f"{escape(rejection.reason)}",
                highlight=False,
            )
        if c.rejected > _SHOWN_REJECTIONS:
            console.print(
                f"  … and {c.rejected - _SHOWN_REJECTIONS:,} more: "
                "`naturalead-sync failed` lists them all",
                highlight=False,
            )


def render_report_json(report: RunReport) -> None:
    """The run summary with ``--log-format json``: one JSON object per connection on stdout,
    the fields of the ``--report`` file's connection entries."""
    for c in report.connections:
        sys.stdout.write(json.dumps(c.to_dict(), ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _progress_line(c: ConnectionReport) -> str:
    return (
        f"{c.connection}: fetched {c.records_fetched:,} · sent {c.created + c.updated:,} · "
        f"unchanged {c.skipped_unchanged:,} · rejected {c.rejected:,}"
    )


@contextmanager
def progress_reporter(
    enabled: bool, *, every: float = 30.0, clock: Callable[[], float] = time.monotonic
) -> Iterator[Callable[[ConnectionReport], None] | None]:
    """A progress callback: a live line per connection on a terminal; elsewhere (logs, cron)
    an INFO record of the ``naturalead_sync.progress`` logger (so text or JSON, as the other
    log lines) at most every ``every`` seconds."""
    if not enabled:
        yield None
        return
    if not stderr.is_terminal:
        last: dict[str, float] = {}

        def log_line(c: ConnectionReport) -> None:
            now = clock()
            if now - last.get(c.connection, now - every) >= every:
                last[c.connection] = now
                progress_log.info("%s", _progress_line(c))

        yield log_line
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(c: ConnectionReport) -> None:
            if c.connection not in tasks:
                tasks[c.connection] = bar.add_task(c.connection)
            bar.update(tasks[c.connection], description=_progress_line(c))

        yield update
