"""Shared fixtures: a plugin manager, an in-process sandbox, the chaos run's size, and the
secret scan that runs around every test (design.md §5 rule 8).

The scan looks for every secret the tests hand out (the sandbox's key, the CRM emulators'
tokens, passwords and client secrets) and for anything shaped like a full Naturalead API key:
after each test in its captured log records and in the files it wrote under ``tmp_path``
(outputs only: configs and source files are the tests' inputs and may hold a key), and at the
end of the session in every committed cassette.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pluggy
import pytest

from naturalead_sync.plugins import get_plugin_manager
from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox

ROOT = Path(__file__).resolve().parent.parent
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
#: A whole Naturalead API key (the client shows only its last 4 characters).
API_KEY_SHAPE = re.compile(r"nl_(?:live|test)_[A-Za-z0-9]{20,}")
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


class SecretScan:
    """Finds known secrets (and full API keys) in text, log records, files and folders.

    Each finder returns one line per leak, saying where and which secret, never its value.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self.secrets = dict(secrets)
        self._values = frozenset(self.secrets.values())

    def in_text(self, text: str, where: str = "text") -> list[str]:
        """The leaks in ``text``."""
        leaks = [f"{where}: {name}" for name, value in self.secrets.items() if value in text]
        if any(key not in self._values for key in API_KEY_SHAPE.findall(text)):
            leaks.append(f"{where}: a whole Naturalead API key")
        return leaks

    def in_records(self, records: Iterable[logging.LogRecord]) -> list[str]:
        """The leaks in log records, as a handler would format them (tracebacks included)."""
        formatter = logging.Formatter()
        return [
            leak
            for record in records
            for leak in self.in_text(formatter.format(record), f"log record {record.name}")
        ]

    def in_files(self, paths: Iterable[Path]) -> list[str]:
        """The leaks in the files at ``paths`` (read as UTF-8, binary files included)."""
        return [
            leak
            for path in paths
            for leak in self.in_text(path.read_text("utf-8", errors="replace"), str(path))
        ]

    def in_outputs(self, folder: Path) -> list[str]:
        """The leaks in the files under ``folder`` that are not inputs (see INPUT_SUFFIXES)."""
        outputs = (
            path
            for path in folder.rglob("*")
            if path.is_file() and path.suffix not in INPUT_SUFFIXES
        )
        return self.in_files(outputs)


@pytest.fixture(scope="session")
def secret_scan() -> SecretScan:
    """The scan over every known secret."""
    return SecretScan(known_secrets())


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_cassettes(secret_scan: SecretScan) -> Iterator[None]:
    """At the end of the session (cassettes may have been recorded again): none holds a secret."""
    yield
    leaks = secret_scan.in_files(sorted(ROOT.glob("tests/connectors/*/cassettes/*.yaml")))
    assert not leaks, "secrets in cassettes:\n" + "\n".join(leaks)


@pytest.fixture(autouse=True)
def _no_secret_in_outputs(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture, secret_scan: SecretScan
) -> Iterator[None]:
    """After each test: no secret in its captured log records or in the files it wrote."""
    yield
    leaks = secret_scan.in_records([*caplog.get_records("setup"), *caplog.get_records("call")])
    folder = getattr(request.node, "funcargs", {}).get("tmp_path")
    if isinstance(folder, Path) and folder.is_dir():
        leaks += secret_scan.in_outputs(folder)
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
