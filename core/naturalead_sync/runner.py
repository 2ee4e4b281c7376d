"""Run a whole config: build the destination client, the connectors and the state, sync.

The library entry point (what the CLI, a scheduler or a task queue calls)::

    from naturalead_sync import sync
    report = sync("naturalead-sync.toml", ["crm"])
    report.exit_code, report.connections[0].created
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pluggy
from pydantic import ValidationError

from .client import NaturaleadClient
from .config import Config, ConnectionConfig, format_validation_error, load_config
from .connector import Connector, ConnectorContext, ConnectorSettings
from .engine import ConnectionSync, RunOptions
from .errors import AuthError, ConfigError, NaturaleadSyncError
from .http import RetryPolicy
from .plugins import ConnectorInfo, get_connectors, get_plugin_manager, notify_run_finished
from .report import ConnectionReport, RunReport
from .state import StateStore
from .version import __version__

__all__ = ["Runtime", "build_client", "build_connector", "run", "sync"]

log = logging.getLogger(__name__)
USER_AGENT = f"naturalead-sync/{__version__}"
SANDBOX_BASE_URL = "http://sandbox.invalid"


def build_client(config: Config) -> NaturaleadClient:
    """The Naturalead client for ``config.destination`` (the real API or the sandbox)."""
    destination = config.destination
    transport: httpx.BaseTransport | None = None
    if destination.sandbox:
        from .sandbox import DEFAULT_KEY, Sandbox, SandboxTransport

        sandbox = Sandbox(
            config.resolve(destination.sandbox),
            window_seconds=destination.limits.window.total_seconds(),
            requests_per_window=destination.limits.requests_per_window,
        )
        transport = SandboxTransport(sandbox, owns_sandbox=True)
        base_url = SANDBOX_BASE_URL
        key = destination.api_key.get_secret_value() if destination.api_key else DEFAULT_KEY
    else:
        if destination.url is None or destination.api_key is None:  # pragma: no cover
            raise ConfigError("destination: url and api_key are required")  # validated earlier
        base_url = destination.url
        key = destination.api_key.get_secret_value()
    return NaturaleadClient(
        base_url,
        key,
        limits=destination.limits,
        retry=destination.retry,
        transport=transport,
        user_agent=USER_AGENT,
    )


def connector_settings(
    connection: ConnectionConfig, connectors: dict[str, ConnectorInfo]
) -> tuple[ConnectorInfo, ConnectorSettings]:
    """The connection's connector and its validated settings, or a :class:`ConfigError`."""
    info = connectors.get(connection.connector)
    if info is None:
        known = ", ".join(connectors) or "none"
        close = difflib.get_close_matches(connection.connector, list(connectors), n=1)
        fix = (
            f"did you mean {close[0]!r}?"
            if close
            else f"install it, e.g. pip install naturalead-sync-{connection.connector}"
        )
        raise ConfigError(
            f"connections[{connection.name}].connector: no connector named "
            f"{connection.connector!r} is installed (installed: {known}); {fix}"
        )
    try:
        return info, info.cls.Settings.model_validate(connection.settings)
    except ValidationError as exc:
        details = format_validation_error(
            exc,
            connection.settings,
            prefix=f"connections[{connection.name}].settings.",
            model=info.cls.Settings,
        )
        raise ConfigError(
            f"connection {connection.name!r}: settings for connector {info.name!r} are "
            f"invalid (see {info.name}'s README):\n{details}"
        ) from None


def build_connector(
    config: Config,
    connection: ConnectionConfig,
    connectors: dict[str, ConnectorInfo],
    bad_record_sink: Callable[[str, str, str | None], None] | None = None,
) -> Connector:
    """Validate the connection's settings and construct its connector."""
    info, settings = connector_settings(connection, connectors)
    retry = connection.retry
    context = ConnectorContext(
        connection=connection.name,
        base_dir=config.base_dir,
        timeout_seconds=(retry or config.destination.retry).timeout.total_seconds(),
        user_agent=USER_AGENT,
        logger=logging.getLogger(f"naturalead_sync.connector.{connection.name}"),
        bad_record_sink=bad_record_sink,
        retry=RetryPolicy()
        if retry is None
        else RetryPolicy(
            max_attempts=retry.max_attempts,
            max_elapsed=retry.max_elapsed.total_seconds(),
            backoff_initial=retry.backoff_initial.total_seconds(),
            backoff_max=retry.backoff_max.total_seconds(),
        ),
    )
    return info.cls(settings, context)


@dataclass
class Runtime:
    """Everything a run needs, built once from a config."""

    config: Config
    pm: pluggy.PluginManager = field(default_factory=get_plugin_manager)
    client_factory: Callable[[Config], NaturaleadClient] = build_client

    @property
    def connectors(self) -> dict[str, ConnectorInfo]:
        """Installed connectors by name."""
        return get_connectors(self.pm)

    def require_known(self, names: Iterable[str], also_known: Iterable[str] = ()) -> None:
        """A :class:`ConfigError` for the first of ``names`` that is neither a connection of
        the config nor one of ``also_known`` (e.g. the connections the state knows of)."""
        known = {c.name for c in self.config.connections} | set(also_known)
        for name in names:
            if name not in known:
                listed = ", ".join(sorted(known)) or "(none)"
                raise ConfigError(f"unknown connection {name!r}; known: {listed}")

    def select(self, names: list[str] | None) -> list[ConnectionConfig]:
        """The enabled connections, or the named ones (enabled or not)."""
        if names:
            self.require_known(names)
            return [self.config.connection(name) for name in names]
        return [c for c in self.config.connections if c.enabled]

    def validate(
        self, names: list[str] | None
    ) -> tuple[list[ConnectionConfig], dict[str, ConnectorInfo]]:
        """The selected connections and the installed connectors, once each selected
        connection's connector is installed and its settings are valid (else a
        :class:`ConfigError`, before anything is sent or checked)."""
        connections = self.select(names)
        connectors = self.connectors
        for connection in connections:
            connector_settings(connection, connectors)
        return connections, connectors

    @contextmanager
    def state(self, *, lock: bool = True) -> Iterator[StateStore]:
        """The state store, locked for the duration of the block."""
        store = StateStore(self.config.resolve(self.config.state.path))
        try:
            if lock:
                store.lock()
            yield store
        finally:
            store.close()


def _sync_one(
    runtime: Runtime,
    connection: ConnectionConfig,
    connectors: dict[str, ConnectorInfo],
    state: StateStore,
    client: NaturaleadClient | None,
    options: RunOptions,
    progress: Callable[[ConnectionReport], None] | None,
) -> tuple[ConnectionReport, bool]:
    """Sync one connection; returns its report and whether the whole run must stop."""
    report = ConnectionReport(
        connection.name,
        connection.connector,
        dry_run=options.dry_run,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    prefix = connection.lead_id_prefix
    sync: ConnectionSync | None = None

    def bad_record(where: str, reason: str, record_id: str | None) -> None:
        if record_id is None:  # no lead_id: named by its place, in the report only
            report.reject(where, reason, "source")
        elif sync is None:  # (while the connector is being built)
            report.reject(prefix + record_id, f"{where}: {reason}", "source")
        else:  # a failed lead until it reads
            sync.reject_unreadable(record_id, f"{where}: {reason}")

    before = None if client is None else _stats(client)
    started = time.monotonic()
    fatal = False
    try:
        connector = build_connector(runtime.config, connection, connectors, bad_record)
        try:
            sync = ConnectionSync(
                connection,
                connector,
                state,
                client,
                runtime.pm,
                options,
                report,
                runtime.config.destination.limits,
                progress,
            )
            sync.run()
        finally:
            connector.close()
        report.status = "rejected" if report.rejected else "ok"
    except NaturaleadSyncError as exc:
        report.status, report.error = "failed", str(exc)
        fatal = isinstance(exc, AuthError)
    except Exception as exc:  # a bug in a connector or in core: report it, go on
        log.debug("unexpected error in %s", connection.name, exc_info=True)
        report.status = "failed"
        report.error = f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)"
    finally:
        report.duration_seconds = round(time.monotonic() - started, 3)
        if client is not None and before is not None:
            after = _stats(client)
            for key, value in after.items():
                setattr(report, key, value - before[key])
        if sync is not None and sync.run_id:
            state.finish_run(sync.run_id, report.status, report.to_dict())
    return report, fatal


def _stats(client: NaturaleadClient) -> dict[str, int]:
    stats = client.stats
    return {
        "upsert_requests": stats.upsert_requests,
        "delete_requests": stats.delete_requests,
        "retries": stats.retries,
        "rate_limited": stats.rate_limited,
    }


def run(
    runtime: Runtime,
    names: list[str] | None = None,
    options: RunOptions | None = None,
    on_report: Callable[[ConnectionReport], None] | None = None,
    progress: Callable[[ConnectionReport], None] | None = None,
) -> RunReport:
    """Sync the selected connections one after the other; one failure never stops the next.

    An :class:`AuthError` stops the whole run (every connection shares the key); the
    connections after it are not started.
    """
    options = options or RunOptions()
    # every connector and settings error before anything is sent
    connections, connectors = runtime.validate(names)
    if not connections:
        raise ConfigError("the config has no enabled connection; add a [[connections]] table")
    result = RunReport()
    client = None if options.dry_run else runtime.client_factory(runtime.config)
    try:
        with runtime.state() as state:
            if client is not None:  # the previous run's last window still counts
                client.pacer.preload(*state.recent_sends())
            try:
                for connection in connections:
                    report, fatal = _sync_one(
                        runtime, connection, connectors, state, client, options, progress
                    )
                    result.connections.append(report)
                    notify_run_finished(runtime.pm, report)
                    if on_report is not None:
                        on_report(report)
                    if fatal:
                        break
            finally:
                if client is not None:
                    state.save_recent_sends(client.pacer.recent())
    finally:
        if client is not None:
            client.close()
    return result


def sync(
    config: Config | str | Path,
    connections: list[str] | None = None,
    options: RunOptions | None = None,
) -> RunReport:
    """Sync the named connections (default: every enabled one) of a config or config file.

    Raises :class:`ConfigError` for a bad config and :class:`StateError` when another run
    holds the state; every other failure is in the report (``report.exit_code``).
    """
    loaded = config if isinstance(config, Config) else load_config(config)
    return run(Runtime(loaded), connections, options)
