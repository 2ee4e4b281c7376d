"""Pipedrive benchmark: a large initial sync against the emulator with Pipedrive's real limits.

Run by hand (figures go in benchmarks/README.md and benchmarks/results/):

    uv run python benchmarks/bench_pipedrive.py --n 50000
    uv run python benchmarks/bench_pipedrive.py --n 50000 --plan growth

The emulator enforces the plan's burst limit for API tokens (Lite: 20 requests per rolling
2 s) and its daily token budget on loopback; the connector is told the same burst limit. It
reads every person the way a first run does (the field definitions, then fetch_changed over
the whole history), with the network between them but without the engine or Naturalead: the
Pipedrive side alone. Reports records per persons request (goal 500), requests (and the
organization and user requests that resolve names), 429s (goal 0), daily tokens spent, wall
time, and the minimum the burst limit allows, ``(requests - burst) / burst * 2`` seconds.

Then a reconciliation (``fetch_all_ids``) of the same company, as a ``reconcile_deletes`` run
does it (field definitions already read): requests, tokens and response bytes, with every
person asking for one custom field (what the connector sends) and, for comparison, for all.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from results_file import save

from naturalead_sync import ConnectorContext, Window
from naturalead_sync.loopback import HTTPAnswer, serve
from naturalead_sync_pipedrive import PipedriveConnector, PipedriveSettings
from naturalead_sync_pipedrive.emulator import (
    DEFAULT_API_TOKEN,
    PLANS,
    EmulatorLimits,
    PipedriveEmulator,
)


class Metered:
    """The emulator, counting the bytes of the answers it sends."""

    def __init__(self, emulator: PipedriveEmulator) -> None:
        self.emulator = emulator
        self.bytes = 0

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """Answer as the emulator does; count the body."""
        answer = self.emulator.handle(method, path, headers, body)
        self.bytes += len(answer.body)
        return answer


def _company(n: int, plan: str) -> tuple[PipedriveEmulator, float]:
    """An emulated company on ``plan`` with ``n`` seeded persons, and the seeding time."""
    limits = EmulatorLimits(plan=plan, daily_budget=1_000_000)  # type: ignore[arg-type]
    emulator = PipedriveEmulator(limits=limits)
    seeded = time.perf_counter()
    emulator.seed_persons(n)
    emulator.advance(120)
    return emulator, time.perf_counter() - seeded


def _connector(url: str, burst: int) -> PipedriveConnector:
    settings = PipedriveSettings(
        api_token=DEFAULT_API_TOKEN, base_url=url, requests_per_two_seconds=burst
    )
    return PipedriveConnector(settings, ConnectorContext(connection="bench"))


def initial_sync(emulator: PipedriveEmulator, plan: str) -> dict[str, Any]:
    """Read every person of ``emulator``, as a first run does."""
    window = Window(None, emulator.now() - timedelta(seconds=30))
    burst = PLANS[plan][0]
    with serve(emulator) as server:
        connector = _connector(server.url, burst)
        started = time.perf_counter()
        records = sum(1 for _ in connector.fetch_changed(window))
        wall = time.perf_counter() - started
        connector.close()
    log = emulator.request_log
    pages = sum(1 for r in log if r.route == "persons.list" and r.status == 200)
    return {
        "plan": plan,
        "burst_per_2s": burst,
        "records": records,
        "requests": len(log),
        "persons_requests": pages,
        "organizations_requests": sum(1 for r in log if r.route == "organizations.list"),
        "users_requests": sum(1 for r in log if r.route == "users.list"),
        "records_per_persons_request": round(records / max(pages, 1), 1),
        "http_429": sum(1 for r in log if r.status == 429),
        "daily_tokens_spent": emulator.stats()["daily_spent"],
        "wall_seconds": round(wall, 2),
        "burst_minimum_seconds": round(max(len(log) - burst, 0) / burst * 2, 1),
    }


def reconciliation(emulator: PipedriveEmulator, plan: str, *, trimmed: bool) -> dict[str, Any]:
    """List every live person id, with one custom field a person (``trimmed``) or all."""
    metered = Metered(emulator)
    with serve(metered) as server:
        connector = _connector(server.url, PLANS[plan][0])
        connector.check()  # the field definitions, read before the listing in a real run
        emulator.request_log.clear()
        emulator.reset_limits()
        metered.bytes = 0
        started = time.perf_counter()
        if trimmed:
            ids = sum(1 for _ in connector.fetch_all_ids())
        else:  # the same listing without ``custom_fields``: every custom field comes
            params = {"sort_by": "id", "limit": 500}
            ids = sum(len(page) for page in connector.api.cursor_pages("/api/v2/persons", params))
        wall = time.perf_counter() - started
        connector.close()
    log = emulator.request_log
    return {
        "ids": ids,
        "requests": len(log),
        "daily_tokens_spent": emulator.stats()["daily_spent"],
        "response_bytes": metered.bytes,
        "bytes_per_person": round(metered.bytes / max(ids, 1)),
        "wall_seconds": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="Persons in the company.")
    parser.add_argument("--plan", choices=sorted(PLANS), default="lite", help="Pipedrive plan.")
    args = parser.parse_args()
    emulator, seeded = _company(args.n, args.plan)
    result: dict[str, Any] = {"persons": args.n, "seed_seconds": round(seeded, 2)}
    result["initial_sync"] = initial_sync(emulator, args.plan)
    result["reconciliation"] = reconciliation(emulator, args.plan, trimmed=True)
    result["reconciliation_all_custom_fields"] = reconciliation(emulator, args.plan, trimmed=False)
    for key, value in result.items():
        if isinstance(value, dict):
            print(key)
            for name, figure in value.items():
                print(f"  {name:30} {figure}")
        else:
            print(f"{key:32} {value}")
    save("pipedrive", result)


if __name__ == "__main__":
    main()
