"""Helpers shared by the tests: CSV rows and files, config files, sandbox-backed runtimes,
what the CRM connectors' tests share (cassettes, emulator commands, test plugins), state files
of an older schema, and the way every test starts a subprocess (:func:`run_process`,
:func:`spawn`), which records its output for the secret scan (tests/conftest.py)."""

from __future__ import annotations

import contextlib
import csv
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

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


def max_in_any_window(stamps: list[tuple[float, int]], window: float) -> tuple[int, int]:
    """The most requests and items, as (time, items) stamps, that fall in any window of
    ``window`` seconds (two stamps exactly ``window`` apart are never in the same one)."""
    ordered = sorted(stamps)
    most_requests = most_items = 0
    for i, (start, _) in enumerate(ordered):
        inside = [n for t, n in ordered[i:] if t < start + window]
        most_requests = max(most_requests, len(inside))
        most_items = max(most_items, sum(inside))
    return most_requests, most_items


class SourceClock:
    """The clock and record numbers a conformance harness of a source without an emulator
    keeps (the custom file, SQL and REST sources): the suite reads and moves the clock, and
    new records are numbered from 1 and stamped by it."""

    def __init__(self) -> None:
        self.clock = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self._next = 1

    def now(self) -> datetime:
        return self.clock

    def advance(self, seconds: float) -> None:
        self.clock += timedelta(seconds=seconds)

    def numbered(self, count: int, *, same_time: bool = False) -> list[tuple[int, datetime]]:
        """``count`` new record numbers with their modification times: all at the clock's
        instant with ``same_time``, else a millisecond apart, the last at the clock's."""
        first, self._next = self._next, self._next + count
        last = self._next - 1
        return [
            (n, self.clock if same_time else self.clock - timedelta(milliseconds=last - n))
            for n in range(first, last + 1)
        ]


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
    with spawn(command, issuer=module) as process:
        env: dict[str, str] = {}
        for line in process:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value
            if len(env) == 2:
                break
        yield env


def example_cli(
    config: str, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``naturalead-sync -c examples/<config> ARGS`` in ``cwd``, with ``env`` added."""
    return run_process(
        [sys.executable, "-m", "naturalead_sync", "-c", f"examples/{config}", *args],
        cwd=cwd,
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


# -- processes: every test starts its subprocesses here, so the secret scan sees their output


@dataclass(frozen=True)
class ProcessOutput:
    """What one process printed, kept for the secret scan (tests/conftest.py).

    ``issuer`` names the module whose credentials the process hands out by design (an
    emulator's command prints its tokens for the user to export; ``naturalead-sync sandbox
    serve`` prints the sandbox's key): the scan lets those appear on its stdout, nowhere else.
    """

    label: str
    stdout: str
    stderr: str
    issuer: str | None = None


class ProcessOutputs:
    """The outputs of the processes the tests started, until the secret scan takes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outputs: list[ProcessOutput] = []

    def record(self, output: ProcessOutput) -> None:
        with self._lock:
            self._outputs.append(output)

    def drain(self) -> list[ProcessOutput]:
        """The outputs recorded since the last drain (the scan runs after each test)."""
        with self._lock:
            drained, self._outputs = self._outputs, []
        return drained


#: Where :func:`run_process` and :func:`spawn` record what each process printed.
PROCESS_OUTPUTS = ProcessOutputs()


def _label(command: Sequence[str | os.PathLike[str]]) -> str:
    """``python -m MODULE`` or the program's name: never the arguments (they may hold a key)."""
    args = [os.fspath(arg) for arg in command]
    program = Path(args[0]).name
    if len(args) > 2 and args[1] == "-m":
        return f"process {program} -m {args[2]}"
    return f"process {program}"


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def run_process(
    command: Sequence[str | os.PathLike[str]],
    *,
    check: bool = False,
    timeout: float = 120,
    issuer: str | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(command, capture_output=True, text=True)``, its output recorded for
    the secret scan (see :class:`ProcessOutput` for ``issuer``)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as late:  # what it printed in time (bytes, text or None)
        out, err = _text(late.stdout), _text(late.stderr)
        PROCESS_OUTPUTS.record(ProcessOutput(_label(command), out, err, issuer))
        raise
    PROCESS_OUTPUTS.record(ProcessOutput(_label(command), done.stdout, done.stderr, issuer))
    if check:
        done.check_returncode()
    return done


class Spawned:
    """A process started by :func:`spawn`: the test reads its stdout line by line (or waits
    for it to end); everything it printed goes to the secret scan when the ``with`` ends."""

    def __init__(self, process: subprocess.Popen[str], stderr: IO[bytes]) -> None:
        self.process = process
        self._stdout: list[str] = []
        self._stderr = stderr
        self._ended: tuple[str, str] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def send_signal(self, signal: int) -> None:
        self.process.send_signal(signal)

    def wait(self, timeout: float) -> int:
        """Wait for it to end (its stdout must not fill meanwhile: :meth:`communicate` reads
        it); its exit code."""
        return self.process.wait(timeout=timeout)

    def readline(self) -> str:
        """The next line of its stdout ("" once it closed)."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self._stdout.append(line)
        return line

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def communicate(self, timeout: float = 30) -> tuple[str, str]:
        """Wait for the process to end; all it printed on stdout and on stderr."""
        if self._ended is None:
            rest, _ = self.process.communicate(timeout=timeout)
            self._stdout.append(rest or "")
            self._stderr.seek(0)
            err = self._stderr.read().decode("utf-8", "replace")
            self._ended = ("".join(self._stdout), err)
        return self._ended


@contextmanager
def spawn(
    command: Sequence[str | os.PathLike[str]], *, issuer: str | None = None, **kwargs: Any
) -> Iterator[Spawned]:
    """``subprocess.Popen(command)``, text stdout piped (read it with the yielded object) and
    stderr kept in a temporary file (no pipe to fill); at the end, a process still running is
    terminated (killed if it lingers) and its output recorded for the secret scan."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, **kwargs
        )
        spawned = Spawned(process, stderr)
        try:
            yield spawned
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                out, err = spawned.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = spawned.communicate(timeout=30)
            PROCESS_OUTPUTS.record(ProcessOutput(_label(command), out, err, issuer))


#: The ledger of state schema 1, the layout before schema 2: a literal copy on purpose, so that
#: it stays what schema 1 was whatever state.py's layout becomes.
_LEDGER_V1 = """CREATE TABLE ledger (
    connection TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    native_id TEXT NOT NULL,
    status TEXT NOT NULL,
    accepted_hash TEXT,
    accepted_modified TEXT,
    rejected_hash TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    rejected_run INTEGER,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connection, lead_id)
) WITHOUT ROWID"""


def database_dump(path: Path) -> list[str]:
    """Every statement that rebuilds the SQLite database at ``path`` (to compare its contents)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.iterdump())


def downgrade_state_to_schema_1(path: Path) -> None:
    """Rewrite a state file in the layout of schema 1, as an older naturalead-sync left it:
    ISO text modification times and an index of every status."""

    def iso(moment: int | None) -> str | None:
        if moment is None:
            return None
        value = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=moment)
        return value.isoformat(timespec="microseconds")

    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.create_function("iso", 1, iso)
        db.execute("BEGIN")
        db.execute("ALTER TABLE ledger RENAME TO ledger_v2")
        db.execute("DROP INDEX ledger_rejected")
        db.execute(_LEDGER_V1)
        db.execute(
            "INSERT INTO ledger SELECT connection, lead_id, native_id, status, accepted_hash, "
            "iso(accepted_modified), rejected_hash, error, attempts, rejected_run, updated_at "
            "FROM ledger_v2"
        )
        db.execute("DROP TABLE ledger_v2")
        db.execute("CREATE INDEX ledger_status ON ledger (connection, status)")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
        db.execute("COMMIT")
