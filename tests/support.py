"""Helpers shared by the tests: CSV rows and files, config files, sandbox-backed runtimes."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

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
