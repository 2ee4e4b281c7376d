"""The ``naturalead-sync`` command line.

Exit codes: 0 all good; 3 the run completed but some leads were rejected; 1 the run failed
(source or destination error, state locked, mass delete refused); 2 usage or config error;
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.markup import escape

from .checks import check_all
from .config import Config, load_config
from .console import (
    json_line,
    progress_reporter,
    render_report,
    render_report_json,
    setup_logging,
    stderr,
    stdout,
    table,
)
from .engine import RunOptions
from .errors import ConfigError, NaturaleadSyncError, StateError
from .plugins import get_connectors, get_plugin_manager
from .runner import Runtime, run
from .version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_CONFIG = "naturalead-sync.toml"
log = logging.getLogger("naturalead_sync")


def _json_output() -> bool:
    """Whether this command was given ``--log-format json``."""
    ctx = click.get_current_context(silent=True)
    obj = None if ctx is None else ctx.find_object(_Context)
    return obj is not None and obj.log_format == "json"


def _fail(message: str, code: int) -> NoReturn:
    """Print the error (a JSON line, as the log lines, with ``--log-format json``) and exit."""
    if _json_output():
        click.echo(json_line("error", log.name, message, exit_code=code), err=True)
    else:
        stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


class _Context:
    def __init__(self, config_path: str, debug: bool, log_format: str = "text") -> None:
        self.config_path = config_path
        self.debug = debug
        self.log_format = log_format
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                _fail(str(exc), EXIT_USAGE)
        return self._config

    def runtime(self) -> Runtime:
        try:
            return Runtime(self.config)
        except NaturaleadSyncError as exc:
            _fail(str(exc), EXIT_USAGE)


pass_context = click.make_pass_decorator(_Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    default=DEFAULT_CONFIG,
    show_default=True,
    envvar="NATURALEAD_SYNC_CONFIG",
    help="Config file (TOML, or YAML).",
)
@click.option("-v", "--verbose", count=True, help="More logging: -v info, -vv debug.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines, run summaries and errors as text or as JSON objects.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.version_option(__version__, prog_name="naturalead-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: str, verbose: int, log_format: str, debug: bool) -> None:
    """Keep Naturalead in step with your CRM: incremental, idempotent, paced lead sync."""
    setup_logging(verbose + (2 if debug else 0), log_format)
    ctx.obj = _Context(config_path, debug, log_format)


@cli.command("run")
@click.option(
    "-n",
    "--connection",
    "names",
    multiple=True,
    help="Only this connection (repeatable). Default: all enabled ones.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be created, updated, deleted or skipped; send nothing.",
)
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Ignore the cursors and resend every record, changed or not.",
)
@click.option(
    "--allow-mass-delete",
    is_flag=True,
    help="Allow deleting more than mass_delete_share of the synced leads.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Resend rejected leads even when their payload has not changed.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the run report as JSON to this file.",
)
@pass_context
def run_command(
    obj: _Context,
    names: tuple[str, ...],
    dry_run: bool,
    full_refresh: bool,
    allow_mass_delete: bool,
    retry_failed: bool,
    report_path: Path | None,
) -> None:
    """Sync every enabled connection (or the named ones)."""
    runtime = obj.runtime()
    options = RunOptions(
        dry_run=dry_run,
        full_refresh=full_refresh,
        allow_mass_delete=allow_mass_delete,
        retry_failed=retry_failed,
    )
    try:
        with progress_reporter(True) as progress:
            report = run(runtime, list(names) or None, options, progress=progress)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    except StateError as exc:
        _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        _fail(
            "interrupted; every accepted batch is checkpointed: run again to resume",
            EXIT_INTERRUPTED,
        )
    except Exception as exc:
        if obj.debug:
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)", EXIT_FAILED)
    if obj.log_format == "json":
        render_report_json(report)
    else:
        render_report(report)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    sys.exit(report.exit_code)


@cli.command("check")
@click.option("-n", "--connection", "names", multiple=True, help="Only this connection.")
@click.option(
    "--no-destination",
    is_flag=True,
    help="Skip the destination check (it costs two sync requests).",
)
@pass_context
def check_command(obj: _Context, names: tuple[str, ...], no_destination: bool) -> None:
    """Check the config, each connector's credentials, and the API key and its scopes."""
    runtime = obj.runtime()
    try:  # an unknown connector or bad settings is a config error, as for `run`
        runtime.validate(list(names) or None)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    results = check_all(runtime, list(names) or None, destination=not no_destination)
    for result in results:
        mark = (
            "[yellow]warn[/]"
            if result.warning
            else ("[green]ok[/]" if result.ok else "[bold red]FAIL[/]")
        )
        stdout.print(f"{mark}  {escape(result.subject)}: {escape(result.message)}", highlight=False)
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_FAILED)


@cli.command("connectors")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
def connectors_command(as_json: bool) -> None:
    """List installed connectors: name, distribution and version."""
    try:
        found = get_connectors(get_plugin_manager())
    except NaturaleadSyncError as exc:
        _fail(str(exc), EXIT_USAGE)
    rows = [[i.name, i.distribution, i.version] for i in found.values()]
    if as_json:
        keys = ("name", "distribution", "version")
        click.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
    else:
        stdout.print(table("Installed connectors", ["name", "distribution", "version"], rows))


@cli.group("state")
def state_group() -> None:
    """Inspect or reset the sync state (cursors, ledger, runs)."""


@state_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_context
def state_show(obj: _Context, as_json: bool) -> None:
    """Cursors, lead counts and the latest runs of each connection."""
    runtime = obj.runtime()
    try:
        with runtime.state(lock=False) as store:
            names = sorted({*store.connections(), *(c.name for c in obj.config.connections)})
            connections: list[dict[str, Any]] = []
            for name in names:
                changed, deleted = (
                    store.get_cursor(name, "changed"),
                    store.get_cursor(name, "deleted"),
                )
                counts = store.counts(name)
                connections.append(
                    {
                        "connection": name,
                        "cursor": changed.isoformat() if changed else None,
                        "delete_cursor": deleted.isoformat() if deleted else None,
                        "synced": counts["accepted"],
                        "failed": counts["rejected"],
                        "deleted": counts["deleted"],
                    }
                )
            if as_json:
                for entry in connections:
                    entry["runs"] = [
                        {key: value for key, value in run.items() if key != "connection"}
                        for run in store.runs(str(entry["connection"]))
                    ]
                document = {"state": str(store.path), "connections": connections}
                click.echo(json.dumps(document, indent=2))
                return
            runs = store.runs()
            path = store.path
    except StateError as exc:
        _fail(str(exc), EXIT_FAILED)
    rows = [
        [
            str(c["connection"]),
            str(c["cursor"] or "-"),
            str(c["delete_cursor"] or "-"),
            f"{c['synced']:,}",
            f"{c['failed']:,}",
            f"{c['deleted']:,}",
        ]
        for c in connections
    ]
    stdout.print(
        table(
            f"State in {path}",
            ["connection", "cursor", "delete cursor", "synced", "failed", "deleted"],
            rows,
        )
    )
    latest = [
        [str(r["id"]), r["connection"], r["started_at"], r["finished_at"] or "-", r["status"]]
        for r in runs
    ]
    stdout.print(
        table("Latest runs", ["id", "connection", "started", "finished", "status"], latest)
    )


def _known_or_exit(runtime: Runtime, name: str, in_state: list[str]) -> None:
    """Exit 2 unless ``name`` is a connection of the config or of the state (as ``run -n``)."""
    try:
        runtime.require_known([name], also_known=in_state)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)


@state_group.command("reset")
@click.argument("connection")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def state_reset(obj: _Context, connection: str, yes: bool) -> None:
    """Forget a connection's cursors, ledger and runs (the next run starts afresh)."""
    runtime = obj.runtime()
    try:
        with runtime.state(lock=False) as store:
            in_state = store.connections()
    except StateError as exc:
        _fail(str(exc), EXIT_FAILED)
    _known_or_exit(runtime, connection, in_state)
    if not yes:
        click.confirm(
            f"Forget all state of {connection!r}? Its next run re-reads the whole "
            "source (unchanged leads are re-sent once)",
            abort=True,
        )
    try:
        with runtime.state() as store:
            store.reset(connection)
    except StateError as exc:
        _fail(str(exc), EXIT_FAILED)
    stdout.print(f"state of {connection!r} reset", markup=False)


@cli.command("failed")
@click.option("-n", "--connection", default=None, help="Only this connection.")
@click.option("--json", "as_json", is_flag=True, help="As a JSON array.")
@pass_context
def failed_command(obj: _Context, connection: str | None, as_json: bool) -> None:
    """List rejected leads with their errors (they are retried when they change)."""
    runtime = obj.runtime()
    try:
        with runtime.state(lock=False) as store:
            if connection is not None:
                _known_or_exit(runtime, connection, store.connections())
            failed = list(store.failed(connection))
    except StateError as exc:
        _fail(str(exc), EXIT_FAILED)
    if as_json:
        entries = [
            {
                "connection": name,
                "lead_id": entry.lead_id,
                "error": entry.error,
                "attempts": entry.attempts,
            }
            for name, entry in failed
        ]
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    rows = [[name, e.lead_id, str(e.attempts), e.error or ""] for name, e in failed]
    stdout.print(
        table(f"{len(rows):,} failed lead(s)", ["connection", "lead_id", "attempts", "error"], rows)
    )


@cli.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CONFIG)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_command(path: Path, force: bool) -> None:
    """Write a commented starter config."""
    if path.exists() and not force:
        _fail(f"{path} exists; use --force to overwrite it", EXIT_USAGE)
    text = resources.files("naturalead_sync").joinpath("templates/starter.toml").read_text()
    path.write_text(text)
    stdout.print(f"wrote {path}; edit it, then run `naturalead-sync -c {path} check`", markup=False)


@cli.command("new-connector")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to create the package folder (default: here).",
)
@click.option("--title", help='The CRM\'s display name (default: from NAME, e.g. "Zoho Crm").')
def new_connector_command(name: str, parent: Path, title: str | None) -> None:
    """Write an installable connector package for NAME, tests included."""
    from .scaffold import install_steps, new_connector

    try:
        target = new_connector(name, parent, title)
    except ConfigError as exc:
        _fail(str(exc), EXIT_USAGE)
    steps = "\n".join(f"  {step}" for step in install_steps(target))
    stdout.print(
        f"wrote {target}\nnext, install it with its tests in a virtual environment of its own "
        f"and run them:\n{steps}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@cli.group("sandbox")
def sandbox_group() -> None:
    """The embedded Naturalead sandbox: serve it on loopback or show what it holds."""


def _sandbox_path(obj: _Context, db: Path | None) -> Path:
    if db is not None:
        return db
    if not Path(obj.config_path).exists():
        return Path(".naturalead-sync/sandbox.db")
    config = obj.config
    if not config.destination.sandbox:
        _fail(f"{obj.config_path} does not use the sandbox; pass --db PATH", EXIT_USAGE)
    return config.resolve(config.destination.sandbox)


@sandbox_group.command("serve")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Sandbox database.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int, help="0 picks a free port.")
@click.option("--window", default=60.0, show_default=True, help="Rate-limit window, seconds.")
@click.option("--requests-per-window", default=50, show_default=True)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY=SCOPE,SCOPE",
    help="Also accept this API key with these scopes (repeatable).",
)
@click.option("--error-rate", default=0.0, help="Share of sync requests answered 503.")
@click.option(
    "--drop-rate",
    default=0.0,
    help="Share whose write commits, then the connection drops unanswered.",
)
@click.option("--slow-rate", default=0.0, help="Share answered --slow-seconds late.")
@click.option("--slow-seconds", default=0.0)
@click.option("--burst-429-rate", default=0.0, help="Share answered 429 though under the limit.")
@click.option("--seed", type=int, default=None, help="Seed the faults for a repeatable run.")
@pass_context
def sandbox_serve(
    obj: _Context,
    db: Path | None,
    host: str,
    port: int,
    window: float,
    requests_per_window: int,
    keys: tuple[str, ...],
    error_rate: float,
    drop_rate: float,
    slow_rate: float,
    slow_seconds: float,
    burst_429_rate: float,
    seed: int | None,
) -> None:
    """Serve the sandbox API on loopback until interrupted, optionally with faults."""
    from .sandbox import DEFAULT_KEY, Faults, Sandbox, serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        _fail("the sandbox serves on loopback only (--host 127.0.0.1)", EXIT_USAGE)
    faults = Faults(
        error_rate=error_rate,
        drop_after_commit_rate=drop_rate,
        slow_rate=slow_rate,
        slow_seconds=slow_seconds,
        rate_limit_burst_rate=burst_429_rate,
        seed=seed,
    )
    path = _sandbox_path(obj, db)
    sandbox = Sandbox(  # each request logged at INFO: shown with -v
        path,
        window_seconds=window,
        requests_per_window=requests_per_window,
        faults=faults,
        log_requests=True,
    )
    for entry in keys:
        key, _, scopes = entry.partition("=")
        if not key or not scopes:
            _fail(
                f"--key {entry!r}: write KEY=SCOPE,SCOPE (e.g. ...=leads:sync_create)", EXIT_USAGE
            )
        sandbox.add_key(key, [scope.strip() for scope in scopes.split(",") if scope.strip()])
    with serve(sandbox, host, port) as server, contextlib.suppress(KeyboardInterrupt):
        stdout.print(
            f"sandbox at {server.url} (database {path})\n"
            "to sync into it, put these two lines in the config's [destination] "
            "(instead of sandbox = ...):\n"
            f'url = "{server.url}"\n'
            'api_key = "${NATURALEAD_API_KEY}"\n'
            "and run this in the shell that runs naturalead-sync (its built-in test key, "
            "not a secret):\n"
            f"export NATURALEAD_API_KEY={DEFAULT_KEY}\n"
            "Ctrl-C stops it",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        server.wait()


@sandbox_group.command("leads")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Sandbox database.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@pass_context
def sandbox_leads(obj: _Context, db: Path | None, as_json: bool) -> None:
    """Show the leads the sandbox holds."""
    from .sandbox import Sandbox

    path = _sandbox_path(obj, db)
    if not path.exists():
        _fail(f"no sandbox database at {path}; run a sync first", EXIT_USAGE)
    sandbox = Sandbox(path)
    try:
        leads: list[dict[str, Any]] = sandbox.leads()
    finally:
        sandbox.close()
    if as_json:
        click.echo(json.dumps(leads, indent=2, ensure_ascii=False))
        return
    rows = [
        [
            lead["lead_id"],
            lead.get("name") or "",
            lead.get("phone") or "",
            lead.get("email") or "",
            ", ".join(f"{k}={v}" for k, v in (lead.get("customFields") or {}).items()),
            ", ".join(lead.get("tags") or []),
        ]
        for lead in leads
    ]
    stdout.print(
        table(
            f"{len(rows):,} lead(s) in the sandbox ({path})",
            ["lead_id", "name", "phone", "email", "customFields", "tags"],
            rows,
        )
    )


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="naturalead-sync")
