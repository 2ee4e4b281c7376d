"""Core benchmarks: pacing against the physical limit, CPU per lead, peak memory, re-runs.

Run by hand (figures go in benchmarks/README.md and benchmarks/results/):

    uv run python benchmarks/bench_core.py all
    uv run python benchmarks/bench_core.py throughput --n 20000 --window 10
    uv run python benchmarks/bench_core.py loopback --n 20000 --window 30 [--latency 0.1]
    uv run python benchmarks/bench_core.py cpu --n 100000
    uv run python benchmarks/bench_core.py rss --n 100000 --n 1000000

throughput: N changed leads from a CSV into the in-process sandbox with the real limits scaled
    in time (50 requests and 5,000 leads per ``--window`` seconds instead of 60). The theoretical
    minimum is the moment the last request may start: (ceil(requests / 50) - 1) x window.
    Also reports 429s and the requests an unchanged re-run sends.
loopback: the same against the sandbox served over loopback HTTP in a child process
    (benchmarks/loopback_sandbox.py): real sockets, a server with its own GIL, and the server's
    own count of requests, 429s and the most requests it counted in any window.
cpu: the engine with the network out of the way (a transport that accepts every batch at
    once, limits lifted): process CPU seconds per lead, CSV parsing and state writes included.
rss: peak resident memory of a child process syncing N leads the same way.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from loopback_sandbox import DEFAULT_KEY, SandboxProcess, server_figures
from results_file import save

from naturalead_sync import Connector, Lead, SourceRecord, Window, hookimpl
from naturalead_sync.client import NaturaleadClient
from naturalead_sync.config import Config, LimitsConfig, load_config
from naturalead_sync.runner import Runtime, run
from naturalead_sync.state import StateStore


def make_csv(path: Path, n: int, *, distinct: bool = False) -> None:
    """N leads modified an hour ago (inside the next run's 2 h lookback); with ``distinct``,
    each a millisecond after the one before (the last an hour ago) instead of all at once."""
    last = datetime.now(UTC) - timedelta(hours=1)
    modified = last.isoformat()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["id", "first_name", "last_name", "phone", "email", "company", "updated_at"]
        )
        for i in range(n):
            writer.writerow(
                [
                    i,
                    f"First{i}",
                    f"Last{i}",
                    f"+1415{2000000 + i % 7999999:07d}",
                    f"lead{i}@example.com",
                    f"Company {i % 97}",
                    (last - timedelta(milliseconds=n - i)).isoformat() if distinct else modified,
                ]
            )


def make_config(
    folder: Path, window: float, requests: int = 50, leads: int = 5000, url: str | None = None
) -> Config:
    path = folder / "bench.toml"
    target = f'url = "{url}"\napi_key = "{DEFAULT_KEY}"' if url else 'sandbox = "sandbox.db"'
    path.write_text(f"""
[destination]
{target}
[destination.limits]
requests_per_window = {requests}
leads_per_window = {leads}
window = {window}
[state]
path = "state.db"
[[connections]]
name = "bench"
connector = "custom"
lookback = "2h"
[connections.settings]
path = "leads.csv"
[connections.mapping]
name = "{{first_name}} {{last_name}}"
[connections.mapping.custom_fields]
company = "company"
""")
    return load_config(path)


def null_client(config: Config) -> NaturaleadClient:
    """A client whose every batch is accepted at once: the network out of the way."""

    def accept(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"errors": []})

    return NaturaleadClient(
        "http://null.invalid",
        "nl_test_" + "0" * 64,
        limits=LimitsConfig(requests_per_window=10**9, leads_per_window=10**12),
        retry=config.destination.retry,
        transport=httpx.MockTransport(accept),
    )


def against_minimum(n: int, window: float, wall: float) -> dict[str, Any]:
    """The theoretical minimum of syncing ``n`` leads at 100 a request and 50 requests per
    ``window`` seconds (the moment the last request may start), and ``wall`` over it."""
    minimum = (math.ceil(math.ceil(n / 100) / 50) - 1) * window
    return {
        "wall_seconds": round(wall, 3),
        "theoretical_minimum_seconds": minimum,
        "ratio": round(wall / minimum, 4) if minimum else None,
    }


def throughput(n: int, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_csv(folder / "leads.csv", n)
        config = make_config(folder, window)
        started = time.monotonic()
        report = run(Runtime(config)).connections[0]
        wall = time.monotonic() - started
        rerun = run(Runtime(config)).connections[0]
    return {
        "benchmark": "throughput",
        "leads": n,
        "window_seconds": window,
        **against_minimum(n, window, wall),
        "upsert_requests": report.upsert_requests,
        "http_429": report.rate_limited,
        "retries": report.retries,
        "status": report.status,
        "rerun_requests": rerun.upsert_requests + rerun.delete_requests,
    }


def loopback(n: int, window: float, latency: float = 0.0) -> dict[str, Any]:
    """``throughput`` over real HTTP: the sandbox served on loopback by a child process
    (``latency``: seconds the server adds to every answer, as a network round trip would)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_csv(folder / "leads.csv", n)
        with SandboxProcess(window, db=folder / "sandbox.db", latency=latency) as server:
            config = make_config(folder, window, url=server.url)
            cpu = time.process_time()
            started = time.monotonic()
            report = run(Runtime(config)).connections[0]
            wall = time.monotonic() - started
            cpu = time.process_time() - cpu
            first = server.stats()
            rerun = run(Runtime(config)).connections[0]
            second = server.stats()
    return {
        "benchmark": "loopback",
        "leads": n,
        "window_seconds": window,
        "latency_seconds": latency,
        **against_minimum(n, window, wall),
        **server_figures(first, second),
        "upsert_requests": report.upsert_requests,
        "client_429": report.rate_limited,
        "retries": report.retries,
        "client_cpu_us_per_lead": round(cpu / n * 1e6, 2),
        "status": report.status,
        "rerun_requests": rerun.upsert_requests + rerun.delete_requests,
    }


def _null_run(n: int, folder: Path, *, fresh: bool = True) -> tuple[float, float, Any]:
    if fresh:
        make_csv(folder / "leads.csv", n)
    config = make_config(folder, 60.0)
    cpu = time.process_time()
    wall = time.monotonic()
    report = run(Runtime(config, client_factory=null_client)).connections[0]
    return time.process_time() - cpu, time.monotonic() - wall, report


def cpu(n: int) -> dict[str, Any]:
    """First sync (every lead mapped, checked and sent), then a re-run of the same leads
    inside the lookback (every lead read, mapped, hashed and skipped as unchanged)."""
    with tempfile.TemporaryDirectory() as tmp:
        seconds, wall, report = _null_run(n, Path(tmp))
        again, _, rerun = _null_run(n, Path(tmp), fresh=False)
    return {
        "benchmark": "cpu",
        "leads": n,
        "cpu_seconds": round(seconds, 3),
        "wall_seconds": round(wall, 3),
        "cpu_us_per_lead": round(seconds / n * 1e6, 2),
        "status": report.status,
        "created": report.created,
        "rerun_cpu_us_per_lead": round(again / n * 1e6, 2),
        "rerun_skipped_unchanged": rerun.skipped_unchanged,
        "rerun_requests": rerun.upsert_requests + rerun.delete_requests,
    }


class _MemoryConnector(Connector):
    """Records built in memory, names and custom fields only: no file parsing, no phone or
    email checks. What remains is the engine's own work per lead."""

    name = "memory-bench"
    count = 0

    def fetch_changed(self, window: Window) -> Iterator[SourceRecord]:
        moment = datetime.now(UTC) - timedelta(hours=1)
        for i in range(self.count):
            yield SourceRecord(str(i), moment, {"first": f"F{i}", "last": "L", "co": "Acme"})

    def fetch_by_ids(self, ids: list[str]) -> Iterator[SourceRecord]:
        return iter(())

    def to_lead(self, record: SourceRecord) -> Lead:
        fields = record.fields
        return Lead(
            lead_id=record.id,
            name=f"{fields['first']} {fields['last']}",
            custom_fields={"company": fields["co"]},
        )


class _MemoryPlugin:
    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(_MemoryConnector)


class _Phases:
    """CPU seconds spent inside the client's upserts and the state's checkpoints (what dlt's
    *load* step does: send, record), measured by wrapping those two methods."""

    def __init__(self) -> None:
        self.seconds = {"client": 0.0, "ledger_writes": 0.0}

    def _timed(self, phase: str, method: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[phase] += time.process_time() - started

        return timed

    def __enter__(self) -> _Phases:
        self._saved = (NaturaleadClient.upsert, StateStore.checkpoint)
        NaturaleadClient.upsert = self._timed("client", NaturaleadClient.upsert)  # type: ignore[method-assign]
        StateStore.checkpoint = self._timed("ledger_writes", StateStore.checkpoint)  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        NaturaleadClient.upsert, StateStore.checkpoint = self._saved  # type: ignore[method-assign]


def engine(n: int) -> dict[str, Any]:
    """The engine alone: in-memory records, no phones or emails, a null destination. Also
    splits a first sync's CPU into the client, the ledger writes (together what dlt's load
    step does: send and record) and the rest, what dlt's extract + normalize does (reading,
    mapping, checking, hashing, the ledger lookups, batching): the goal's figure."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "engine.toml"
        path.write_text(
            '[destination]\nsandbox = "sb.db"\n[state]\npath = "state.db"\n'
            '[[connections]]\nname = "mem"\nconnector = "memory-bench"\n'
            'lookback = "2h"\n'
        )
        _MemoryConnector.count = n
        runs = []
        for _ in range(2):  # a first sync, then an unchanged re-run
            runtime = Runtime(load_config(path), client_factory=null_client)
            runtime.pm.register(_MemoryPlugin())
            with _Phases() as phases:
                started = time.process_time()
                report = run(runtime).connections[0]
                runs.append((time.process_time() - started, phases.seconds))
    (first, split), (rerun, _) = runs
    return {
        "benchmark": "engine",
        "leads": n,
        "cpu_us_per_lead": round(first / n * 1e6, 2),
        **{f"{phase}_us_per_lead": round(value / n * 1e6, 2) for phase, value in split.items()},
        "extract_normalize_us_per_lead": round((first - sum(split.values())) / n * 1e6, 2),
        "rerun_cpu_us_per_lead": round(rerun / n * 1e6, 2),
        "rerun_skipped_unchanged": report.skipped_unchanged,
    }


def rss(n: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "_rss_child", "--n", str(n)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def _rss_child(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        seconds, _, report = _null_run(n, folder)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "benchmark": "rss",
                "leads": n,
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "cpu_us_per_lead": round(seconds / n * 1e6, 2),
                "status": report.status,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    modes = ["throughput", "loopback", "cpu", "engine", "rss", "all", "_rss_child"]
    parser.add_argument("what", choices=modes)
    parser.add_argument("--n", type=int, action="append", help="Leads (repeatable for rss).")
    parser.add_argument("--window", type=float, default=10.0, help="Scaled window, seconds.")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="loopback: seconds added to every answer."
    )
    args = parser.parse_args()
    if args.what == "_rss_child":
        _rss_child(args.n[0])
        return
    results = []
    if args.what in ("throughput", "all"):
        results += [throughput(n, args.window) for n in (args.n or [20_000])]
    if args.what in ("loopback", "all"):
        results += [loopback(n, args.window, args.latency) for n in (args.n or [20_000])]
    if args.what in ("cpu", "all"):
        results += [cpu(n) for n in (args.n or [100_000])]
    if args.what in ("engine", "all"):
        results += [engine(n) for n in (args.n or [100_000])]
    if args.what in ("rss", "all"):
        results += [rss(n) for n in (args.n or [100_000, 1_000_000])]
    save(f"core-{args.what}", results)
    for result in results:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
