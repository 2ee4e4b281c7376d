"""HubSpot benchmark: a large initial sync against the emulator with HubSpot's real limits.

Run by hand (figures go in benchmarks/README.md and benchmarks/results/):

    uv run python benchmarks/bench_hubspot.py --n 50000
    uv run python benchmarks/bench_hubspot.py --n 50000 --ten-second-max 190

The emulator enforces search's 5 requests a second and a ten-second burst limit (100 by
default, a private app on Free/Starter) on loopback. The connector reads every change and
delete the way a run does (fetch_deleted, then fetch_changed over the whole history), with
the network between them but without the engine or Naturalead: the HubSpot side alone.
Reports records per search request, requests of each kind, 429s, wall time, and the minimum
the search limit allows, ``ceil(searches / 5)`` seconds less one.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from results_file import save

from naturalead_sync import ConnectorContext, Window
from naturalead_sync.loopback import serve
from naturalead_sync_hubspot import HubSpotConnector, HubSpotSettings
from naturalead_sync_hubspot.emulator import DEFAULT_TOKEN, EmulatorLimits, HubSpotEmulator


def initial_sync(n: int, ten_second_max: int) -> dict[str, Any]:
    """Seed ``n`` contacts and read them all, as a first run does."""
    emulator = HubSpotEmulator(
        limits=EmulatorLimits(ten_second_max=ten_second_max, search_per_second=5)
    )
    seeded = time.perf_counter()
    emulator.seed_contacts(n)
    seeded = time.perf_counter() - seeded
    emulator.advance(120)
    window = Window(None, datetime.fromtimestamp(emulator.now(), UTC) - timedelta(minutes=1))
    with serve(emulator) as server:
        settings = HubSpotSettings(
            access_token=DEFAULT_TOKEN,
            base_url=server.url,
            requests_per_ten_seconds=ten_second_max,
        )
        connector = HubSpotConnector(settings, ConnectorContext(connection="bench"))
        started = time.perf_counter()
        deleted = sum(1 for _ in connector.fetch_deleted(window))
        records = sum(1 for _ in connector.fetch_changed(window))
        wall = time.perf_counter() - started
        connector.close()
    log = emulator.request_log
    searches = sum(1 for r in log if r.search)
    changed_searches = searches - 1  # one search looks for merges
    return {
        "contacts": n,
        "records": records,
        "deleted": deleted,
        "requests": len(log),
        "search_requests": searches,
        "records_per_search_request": round(records / max(changed_searches, 1), 1),
        "http_429": sum(1 for r in log if r.status == 429),
        "wall_seconds": round(wall, 2),
        "search_minimum_seconds": max(math.ceil(searches / 5) - 1, 0),
        "seed_seconds": round(seeded, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="Contacts in the portal.")
    parser.add_argument(
        "--ten-second-max", type=int, default=100, help="The app's ten-second burst limit."
    )
    args = parser.parse_args()
    result = initial_sync(args.n, args.ten_second_max)
    for key, value in result.items():
        print(f"{key:28} {value}")
    save("hubspot", result)


if __name__ == "__main__":
    main()
