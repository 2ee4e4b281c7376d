"""Salesforce benchmark: a 100,000-lead initial sync against the emulator (the read side).

Run by hand (figures go in benchmarks/README.md and benchmarks/results/):

    uv run python benchmarks/bench_salesforce.py --n 100000

The connector reads every delete and change the way a first run does (fetch_deleted, then
fetch_changed over the whole history) through simple-salesforce and the loopback emulator,
without the engine or Naturalead: the Salesforce side alone. Reports records per query
request, the API calls made, and the share of a daily allowance they used (the emulator's
default, a Developer Edition org's 15,000; Enterprise orgs get 100,000 + 1,000 per licence).
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
from naturalead_sync_salesforce import SalesforceSettings
from naturalead_sync_salesforce.emulator import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    Clock,
    SalesforceEmulator,
    serve,
)
from naturalead_sync_salesforce.testing import emulated_connector

RESULTS = Path(__file__).parent / "results"


def initial_sync(n: int, api_limit: int) -> dict[str, Any]:
    """Seed ``n`` leads and read them all, as a first run does."""
    emulator = SalesforceEmulator(Clock(datetime(2026, 3, 2, tzinfo=UTC)), api_limit=api_limit)
    seeded = time.perf_counter()
    emulator.seed_leads(n)
    seeded = time.perf_counter() - seeded
    emulator.advance(300)
    window = Window(None, emulator.now() - timedelta(minutes=3))
    settings = SalesforceSettings(
        username=DEFAULT_USERNAME,
        password=DEFAULT_PASSWORD,
        security_token=DEFAULT_SECURITY_TOKEN,
        max_api_share=1.0,
    )
    with serve(emulator) as server:
        connector = emulated_connector(server.url)(settings, ConnectorContext(connection="bench"))
        started = time.perf_counter()
        deleted = sum(1 for _ in connector.fetch_deleted(window))
        records = sum(1 for _ in connector.fetch_changed(window))
        wall = time.perf_counter() - started
        connector.close()
    log = emulator.request_log
    queries = sum(1 for r in log if r.endpoint in ("query", "query_more"))
    used, allowance = emulator.api_usage
    return {
        "leads": n,
        "records": records,
        "deleted": deleted,
        "api_calls": used,
        "query_requests": queries,
        "records_per_query_request": round(records / max(queries - 1, 1), 1),  # less deletes
        "daily_allowance": allowance,
        "share_of_allowance": f"{used / allowance:.2%}",
        "logins": sum(1 for r in log if r.endpoint == "login"),
        "wall_seconds": round(wall, 2),
        "records_per_second": round(records / wall),
        "seed_seconds": round(seeded, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="Leads in the org.")
    parser.add_argument("--api-limit", type=int, default=15_000, help="Daily API allowance.")
    args = parser.parse_args()
    result = initial_sync(args.n, args.api_limit)
    for key, value in result.items():
        print(f"{key:28} {value}")
    machine = {"python": platform.python_version(), "platform": platform.platform()}
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"salesforce-{stamp}.json").write_text(
        json.dumps({"machine": machine, "result": result}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
