"""Shared fixtures: a plugin manager, an in-process sandbox, the chaos run's size, and the
secret scan that runs around every test and at the end of the session (design.md §5 rule 8).

The scan looks for every secret the tests hand out (the sandbox's key, the CRM emulators'
tokens, passwords and client secrets, by value) and for anything shaped like a whole
credential of a kind the tests use (a Naturalead API key, a HubSpot private app token, an
access token the emulators issue at run time), in what the tests and the code they run
*produce*:

- after each test, in its captured log records (exception tracebacks included) and in the
  stdout and stderr of every process it started (tests/support.py's ``run_process`` and
  ``spawn`` record them; tests/faults/test_secret_scan.py checks no test starts one any
  other way);
- at the end of the session, in every file under pytest's base temporary folder (each test's
  ``tmp_path`` and every ``tmp_path_factory`` folder: logs, reports, state and sandbox
  databases, anything a run wrote; pytest keeps them all until then under its default
  ``tmp_path_retention_policy = "all"``), in the output of processes recorded after the last
  test (a fixture's, at its teardown), and in every committed cassette.

Inputs are left alone: a file whose suffix is in ``INPUT_SUFFIXES`` (configs, source data,
code) is what a test wrote for the code to read, and a config holds a key by design. So are an
emulator's own credentials on its stdout (``ProcessOutput.issuer``): it prints them for the
user to export. Files are read as bytes, binary ones (SQLite) included, and searched for each
secret's bytes: the end-of-session scan takes a fraction of a second. A leak in a file names
its path, whose first folder names the test that wrote it.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pluggy
import pytest

from naturalead_sync.plugins import get_plugin_manager
from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox
from support import PROCESS_OUTPUTS, ProcessOutput

ROOT = Path(__file__).resolve().parent.parent
#: The loggers of naturalead-sync and its connectors: captured from DEBUG for the secret scan.
_PACKAGES = (
    "naturalead_sync",
    "naturalead_sync_custom",
    "naturalead_sync_hubspot",
    "naturalead_sync_pipedrive",
    "naturalead_sync_salesforce",
)
#: Where each emulator defines its default credentials, and which of them are secrets.
EMULATOR_SECRETS = {
    "naturalead_sync_hubspot.emulator": (
        "DEFAULT_TOKEN",
        "DEFAULT_CLIENT_SECRET",
        "DEFAULT_REFRESH_TOKEN",
    ),
    "naturalead_sync_pipedrive.emulator": (
        "DEFAULT_API_TOKEN",
        "DEFAULT_OAUTH_TOKEN",
        "DEFAULT_CLIENT_SECRET",
        "DEFAULT_REFRESH_TOKEN",
    ),
    "naturalead_sync_salesforce.emulator": (
        "DEFAULT_PASSWORD",
        "DEFAULT_SECURITY_TOKEN",
        "DEFAULT_CONSUMER_SECRET",
    ),
}


@dataclass(frozen=True)
class Shape:
    """A kind of credential, found by its shape whatever its value (a test's own token, one
    issued at run time). Clients show only the last 4 characters, which no shape matches."""

    what: str
    issuer: str  # the module that hands such credentials out (see ProcessOutput.issuer)
    pattern: re.Pattern[bytes]


SHAPES = (
    Shape(
        "a whole Naturalead API key",
        "naturalead_sync.sandbox",
        re.compile(rb"nl_(?:live|test)_[A-Za-z0-9]{20,}"),
    ),
    Shape(
        "a whole HubSpot private app token",
        "naturalead_sync_hubspot.emulator",
        re.compile(
            rb"pat-[a-z]{2,3}[0-9]-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        ),
    ),
    Shape(
        "a HubSpot OAuth access token",
        "naturalead_sync_hubspot.emulator",
        re.compile(rb"emu-oauth-[0-9a-f]{32}"),
    ),
    Shape(
        "a Pipedrive OAuth access token",
        "naturalead_sync_pipedrive.emulator",
        re.compile(rb"v1u:[A-Za-z0-9_-]{32}"),
    ),
    Shape(
        "a Salesforce session id",
        "naturalead_sync_salesforce.emulator",
        re.compile(rb"00D[A-Za-z0-9]{12}!AQ[A-Za-z0-9_-]{20,}"),
    ),
)
#: Files a test writes as input (configs, source data, code): they may hold a key on purpose.
INPUT_SUFFIXES = frozenset({".toml", ".yaml", ".yml", ".csv", ".jsonl", ".py"})


def known_secrets() -> dict[str, str]:
    """Each secret the tests use, by where it is defined; a connector not installed adds none."""
    secrets = {"naturalead_sync.sandbox.DEFAULT_KEY": DEFAULT_KEY}
    for module_name, names in EMULATOR_SECRETS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            value = getattr(module, name, None)
            if isinstance(value, str) and value:
                secrets[f"{module_name}.{name}"] = value
    return secrets


def output_files(folder: Path) -> Iterator[Path]:
    """The regular files under ``folder`` that are not inputs (see ``INPUT_SUFFIXES``);
    symbolic links are not followed (a virtual environment's point outside the folder)."""
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if path.suffix not in INPUT_SUFFIXES and not path.is_symlink() and path.is_file():
                yield path


class SecretScan:
    """Finds known secrets (and whole credentials, by shape) in text, bytes, log records,
    files, folders and process outputs.

    Each finder returns one line per leak, saying where and which secret, never its value.
    """

    def __init__(self, secrets: Mapping[str, str], shapes: Iterable[Shape] = SHAPES) -> None:
        self.secrets = dict(secrets)
        self.shapes = tuple(shapes)
        self._encoded = {name: value.encode() for name, value in self.secrets.items()}
        self._values = frozenset(self._encoded.values())

    def in_bytes(self, data: bytes, where: str, issuer: str | None = None) -> list[str]:
        """The leaks in ``data``; with ``issuer``, that module's own credentials are none."""
        leaks = [
            f"{where}: {name}"
            for name, value in self._encoded.items()
            if value in data and not _issued_by(name.rpartition(".")[0], issuer)
        ]
        leaks += [
            f"{where}: {shape.what}"
            for shape in self.shapes
            if not _issued_by(shape.issuer, issuer)
            and any(found not in self._values for found in shape.pattern.findall(data))
        ]
        return leaks

    def in_text(self, text: str, where: str = "text", issuer: str | None = None) -> list[str]:
        """The leaks in ``text`` (see :meth:`in_bytes`)."""
        return self.in_bytes(text.encode("utf-8", "surrogatepass"), where, issuer)

    def in_records(self, records: Iterable[logging.LogRecord]) -> list[str]:
        """The leaks in log records, as a handler would format them (tracebacks included)."""
        formatter = logging.Formatter()
        return [
            leak
            for record in records
            for leak in self.in_text(formatter.format(record), f"log record {record.name}")
        ]

    def in_files(self, paths: Iterable[Path]) -> list[str]:
        """The leaks in the files at ``paths`` (their bytes: binary files included)."""
        return [leak for path in paths for leak in self.in_bytes(path.read_bytes(), str(path))]

    def in_outputs(self, folder: Path) -> list[str]:
        """The leaks in the files under ``folder`` that are not inputs (see ``output_files``)."""
        return self.in_files(output_files(folder))

    def in_processes(self, outputs: Iterable[ProcessOutput]) -> list[str]:
        """The leaks in what processes printed (an issuer's own credentials on its stdout are
        none: see ``ProcessOutput``)."""
        return [
            leak
            for output in outputs
            for leak in [
                *self.in_text(output.stdout, f"{output.label} stdout", output.issuer),
                *self.in_text(output.stderr, f"{output.label} stderr"),
            ]
        ]


def _issued_by(module: str, issuer: str | None) -> bool:
    """Whether credentials defined or issued by ``module`` are ``issuer``'s own."""
    return issuer is not None and (module == issuer or module.startswith(issuer + "."))


@pytest.fixture(scope="session")
def secret_scan() -> SecretScan:
    """The scan over every known secret."""
    return SecretScan(known_secrets())


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_session_outputs(
    secret_scan: SecretScan, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """At the end of the session: no secret in any output file under the base temporary
    folder, in the output of processes started outside a test, or in a cassette (they may
    have been recorded again)."""
    yield
    leaks = secret_scan.in_outputs(tmp_path_factory.getbasetemp())
    leaks += secret_scan.in_processes(PROCESS_OUTPUTS.drain())
    leaks += secret_scan.in_files(sorted(ROOT.glob("tests/connectors/*/cassettes/*.yaml")))
    assert not leaks, "secrets leaked (found at the end of the session):\n" + "\n".join(leaks)


@pytest.fixture(autouse=True)
def _no_secret_in_test_outputs(
    caplog: pytest.LogCaptureFixture, secret_scan: SecretScan
) -> Iterator[None]:
    """After each test: no secret in its captured log records or in what its processes
    printed (its files are scanned at the end of the session). Records are captured from
    INFO (the HTTP libraries' request lines, URLs included) and, for naturalead-sync and its
    connectors, from DEBUG; a test may set its own levels."""
    caplog.set_level(logging.INFO)
    for package in _PACKAGES:
        caplog.set_level(logging.DEBUG, logger=package)
    yield
    leaks = secret_scan.in_records([*caplog.get_records("setup"), *caplog.get_records("call")])
    leaks += secret_scan.in_processes(PROCESS_OUTPUTS.drain())
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-leads N``: the size of the chaos run's source (tests/faults/test_chaos.py)."""
    parser.addoption(
        "--chaos-leads",
        type=int,
        default=2000,
        help="leads in the seeded chaos run's source (CI: 2000; the long form: 20000)",
    )


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A plugin manager with the installed plugins (the custom connector among them)."""
    return get_plugin_manager()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox database in the test's folder, as the in-process destination uses it."""
    box = Sandbox(tmp_path / "sandbox.db")
    yield box
    box.close()
