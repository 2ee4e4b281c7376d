"""Salesforce benchmark: a 100,000-lead initial sync against the emulator (the read side),
through REST query pages and through a Bulk API 2.0 query job.

Run by hand (figures go in benchmarks/README.md and benchmarks/results/):

    uv run python benchmarks/bench_salesforce.py --n 100000

The connector reads every delete and change the way a first run does (fetch_deleted, then
fetch_changed over the whole history) through simple-salesforce and the loopback emulator,
without the engine or Naturalead: the Salesforce side alone. It runs twice on fresh orgs:
``rest`` (bulk_threshold = 0) and ``bulk`` (bulk_threshold = 1, so the backfill takes a Bulk
job). Reports records per API call for the changes, the calls made by endpoint, and the share of
a daily allowance they used (the emulator's default, a Developer Edition org's 15,000;
Enterprise orgs get 100,000 + 1,000 per licence). The emulator's Bulk jobs answer InProgress to
their first poll, so the bulk wall time includes the connector's first 0.5 s poll interval.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from results_file import save

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


def initial_sync(n: int, api_limit: int, *, bulk: bool) -> dict[str, Any]:
    """Seed ``n`` leads and read them all, as a first run does (through Bulk when ``bulk``)."""
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
        bulk_threshold=1 if bulk else 0,
    )
    with serve(emulator) as server:
        connector = emulated_connector(server.url)(settings, ConnectorContext(connection="bench"))
        started = time.perf_counter()
        deleted = sum(1 for _ in connector.fetch_deleted(window))
        after_deletes = emulator.api_usage[0]
        records = sum(1 for _ in connector.fetch_changed(window))
        wall = time.perf_counter() - started
        connector.close()
    calls: dict[str, int] = {}
    for request in emulator.request_log:
        key = f"{request.method} {request.endpoint}"
        calls[key] = calls.get(key, 0) + 1
    used, allowance = emulator.api_usage
    return {
        "mode": "bulk" if bulk else "rest",
        "leads": n,
        "records": records,
        "deleted": deleted,
        "api_calls": used,
        "calls": calls,
        "records_per_call_for_changes": round(records / max(used - after_deletes, 1), 1),
        "daily_allowance": allowance,
        "share_of_allowance": f"{used / allowance:.2%}",
        "wall_seconds": round(wall, 2),
        "records_per_second": round(records / wall),
        "seed_seconds": round(seeded, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="Leads in the org.")
    parser.add_argument("--api-limit", type=int, default=15_000, help="Daily API allowance.")
    args = parser.parse_args()
    result = {
        mode: initial_sync(args.n, args.api_limit, bulk=mode == "bulk") for mode in ("rest", "bulk")
    }
    for figures in result.values():
        for key, value in figures.items():
            print(f"{key:30} {value}")
        print()
    save("salesforce", result)


if __name__ == "__main__":
    main()
