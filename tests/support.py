"""Helpers shared by the tests: CSV rows and files, config files, sandbox-backed runtimes,
and what the CRM connectors' tests share (cassettes, emulator commands, test plugins)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from naturalead_sync import hookimpl
from naturalead_sync.config import Config
from naturalead_sync.sandbox import Sandbox


class FakeClock:
    """A monotonic clock the test moves by hand; ``sleep`` advances it."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds


CSV_COLUMNS = [
    "id",
    "first_name",
    "last_name",
    "phone",
    "email",
    "company",
    "updated_at",
    "deleted",
]


def lead_row(n: int, updated: str = "2026-01-01T00:00:00Z", **overrides: Any) -> dict[str, Any]:
    """One valid CSV row for lead ``n``."""
    row = {
        "id": str(n),
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "phone": f"+1415555{n % 10000:04d}",
        "email": f"lead{n}@example.com",
        "company": f"Company {n % 7}",
        "updated_at": updated,
        "deleted": "",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` with the standard columns."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def config_text(
    *,
    destination: str = 'sandbox = "sandbox.db"',
    connection: str = "",
    limits: str = "",
    retry: str = "",
    settings: str = "",
) -> str:
    """A config file for one custom connection reading leads.csv next to it."""
    return f"""
[destination]
{destination}
[destination.limits]
{limits}
[destination.retry]
backoff_initial = "10ms"
backoff_max = "50ms"
timeout = "2s"
{retry}

[state]
path = "state.db"

[[connections]]
name = "csv"
connector = "custom"
{connection}
[connections.settings]
path = "leads.csv"
deleted_column = "deleted"
{settings}
[connections.mapping]
name = "{{first_name}} {{last_name}}"
[connections.mapping.custom_fields]
company = "company"
"""


def make_config(tmp_path: Path, **kwargs: str) -> Config:
    """Write and load a config (see :func:`config_text`)."""
    from naturalead_sync.config import load_config

    path = tmp_path / "naturalead-sync.toml"
    path.write_text(config_text(**kwargs))
    return load_config(path)


def sandbox_runtime(config: Config, sandbox: Sandbox, **client_kwargs: Any) -> Any:
    """A Runtime whose client talks to ``sandbox`` in-process (so tests can script faults)."""
    from naturalead_sync.client import NaturaleadClient
    from naturalead_sync.runner import Runtime
    from naturalead_sync.sandbox import DEFAULT_KEY, SandboxTransport

    def factory(cfg: Config) -> NaturaleadClient:
        return NaturaleadClient(
            "http://sandbox.invalid",
            DEFAULT_KEY,
            limits=cfg.destination.limits,
            retry=cfg.destination.retry,
            transport=SandboxTransport(sandbox),
            **client_kwargs,
        )

    return Runtime(config, client_factory=factory)


def stored(sandbox: Sandbox, lead_id: str) -> dict[str, Any]:
    """The lead the sandbox holds under ``lead_id`` (the test fails when there is none)."""
    lead = sandbox.lead(lead_id)
    assert lead is not None, f"the sandbox holds no lead {lead_id!r}"
    return lead


def lines(given: str, *defaults: str) -> str:
    """TOML lines: ``given``, then each default whose key ``given`` does not set."""
    keys = {line.split("=")[0].strip() for line in given.splitlines() if "=" in line}
    kept = [line for line in defaults if line.split("=")[0].strip() not in keys]
    return "\n".join([given, *kept])


class Register:
    """A plugin that registers one connector class, as an installed distribution would."""

    def __init__(self, connector: type[Any]) -> None:
        self.connector = connector

    @hookimpl
    def register_connectors(self, register: Callable[[type[Any]], None]) -> None:
        register(self.connector)


#: ``NATURALEAD_RECORD_CASSETTES=1`` records the cassettes again from the emulators.
RECORD_CASSETTES = os.environ.get("NATURALEAD_RECORD_CASSETTES") == "1"


@contextmanager
def cassette(recorder: Any, path: Path, emulator: Callable[[], Any]) -> Iterator[str]:
    """The base URL to use inside the vcrpy cassette at ``path``.

    Replaying, any URL works (``recorder`` matches method, path, query and body) and no
    server runs; recording (:data:`RECORD_CASSETTES`), ``emulator()`` is served on loopback.
    """
    from naturalead_sync.loopback import serve

    if not RECORD_CASSETTES:
        with recorder.use_cassette(str(path), record_mode="none"):
            yield "http://crm.invalid"
        return
    path.unlink(missing_ok=True)
    with serve(emulator()) as server, recorder.use_cassette(str(path), record_mode="all"):
        yield server.url


@contextmanager
def emulator_command(module: str, *args: str) -> Iterator[dict[str, str]]:
    """Run ``python -m <module> --port 0 ARGS`` and yield the variables of the ``export``
    lines it prints (its URL and token), as a user would paste them into a shell."""
    command = [sys.executable, "-m", module, "--port", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    env: dict[str, str] = {}
    try:
        for line in process.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value
            if len(env) == 2:
                break
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)


def example_cli(
    config: str, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``naturalead-sync -c examples/<config> ARGS`` in ``cwd``, with ``env`` added."""
    return subprocess.run(
        [sys.executable, "-m", "naturalead_sync", "-c", f"examples/{config}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def crm_config(
    folder: Path, name: str, connector: str, *, settings: str, connection: str = "", retry: str = ""
) -> Path:
    """Write the config of one connection to a CRM emulator, pacing lifted and retries fast
    (``retry`` lines replace the defaults they name), and return its path."""
    path = folder / "naturalead-sync.toml"
    retries = lines(
        retry,
        "max_attempts = 4",
        'backoff_initial = "20ms"',
        'backoff_max = "100ms"',
        'timeout = "3s"',
    )
    path.write_text(
        f"""
[destination]
sandbox = "unused.db"
[destination.limits]
requests_per_window = 1000
window = "1s"
[state]
path = "state.db"

[[connections]]
name = "{name}"
connector = "{connector}"
{connection}
[connections.retry]
{retries}
[connections.settings]
{settings}
"""
    )
    return path


def sync_at(path: Path, sandbox: Sandbox, now: Any, *plugins: object) -> Any:
    """One run of the config at ``path`` into ``sandbox``, the window ending at ``now`` (the
    emulator's clock), with ``plugins`` registered; returns the connection's report."""
    from naturalead_sync import RunOptions
    from naturalead_sync.config import load_config
    from naturalead_sync.runner import run

    runtime = sandbox_runtime(load_config(path), sandbox)
    for plugin in plugins:
        runtime.pm.register(plugin)
    return run(runtime, options=RunOptions(now=lambda: now)).connections[0]
