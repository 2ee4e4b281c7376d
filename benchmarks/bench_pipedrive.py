"""Pipedrive benchmark: a large initial sync against the emulator with Pipedrive's real limits.

Run by hand (figures go in benchmarks/README.md and benchmarks/results/):

    uv run python benchmarks/bench_pipedrive.py --n 50000
    uv run python benchmarks/bench_pipedrive.py --n 50000 --plan growth

The emulator enforces the plan's burst limit for API tokens (Lite: 20 requests per rolling
2 s) and its daily token budget on loopback; the connector is told the same burst limit. It
reads every person the way a first run does (the field definitions, then fetch_changed over
the whole history), with the network between them but without the engine or Naturalead: the
Pipedrive side alone. Reports records per persons request (goal 500), requests, 429s (goal 0),
daily tokens spent, wall time, and the minimum the burst limit allows,
``(requests - burst) / burst * 2`` seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from naturalead_sync import ConnectorContext, Window
from naturalead_sync.loopback import serve
from naturalead_sync_pipedrive import PipedriveConnector, PipedriveSettings
from naturalead_sync_pipedrive.emulator import (
    DEFAULT_API_TOKEN,
    PLANS,
    EmulatorLimits,
    PipedriveEmulator,
)

RESULTS = Path(__file__).parent / "results"


def initial_sync(n: int, plan: str) -> dict[str, Any]:
    """Seed ``n`` persons and read them all, as a first run does."""
    limits = EmulatorLimits(plan=plan, daily_budget=1_000_000)  # type: ignore[arg-type]
    emulator = PipedriveEmulator(limits=limits)
    seeded = time.perf_counter()
    emulator.seed_persons(n)
    seeded = time.perf_counter() - seeded
    emulator.advance(120)
    window = Window(None, emulator.now() - timedelta(seconds=30))
    burst = PLANS[plan][0]
    with serve(emulator) as server:
        settings = PipedriveSettings(
            api_token=DEFAULT_API_TOKEN,
            base_url=server.url,
            requests_per_two_seconds=burst,
        )
        connector = PipedriveConnector(settings, ConnectorContext(connection="bench"))
        started = time.perf_counter()
        records = sum(1 for _ in connector.fetch_changed(window))
        wall = time.perf_counter() - started
        connector.close()
    log = emulator.request_log
    pages = sum(1 for r in log if r.route == "persons.list" and r.status == 200)
    return {
        "persons": n,
        "plan": plan,
        "burst_per_2s": burst,
        "records": records,
        "requests": len(log),
        "persons_requests": pages,
        "records_per_persons_request": round(records / max(pages, 1), 1),
        "http_429": sum(1 for r in log if r.status == 429),
        "daily_tokens_spent": emulator.stats()["daily_spent"],
        "wall_seconds": round(wall, 2),
        "burst_minimum_seconds": round(max(len(log) - burst, 0) / burst * 2, 1),
        "seed_seconds": round(seeded, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="Persons in the company.")
    parser.add_argument("--plan", choices=sorted(PLANS), default="lite", help="Pipedrive plan.")
    args = parser.parse_args()
    result = initial_sync(args.n, args.plan)
    for key, value in result.items():
        print(f"{key:28} {value}")
    machine = {"python": platform.python_version(), "platform": platform.platform()}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"pipedrive-{stamp}.json").write_text(
        json.dumps({"machine": machine, "result": result}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
