"""Serve a Pipedrive emulator until Ctrl-C.

``python -m naturalead_sync_pipedrive.emulator --port 8765 --persons 1000 --leads 200``
prints the base URL, the API token and the OAuth token, then serves on 127.0.0.1.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import DEFAULT_API_TOKEN, DEFAULT_OAUTH_TOKEN, EmulatorLimits, PipedriveEmulator, serve


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, seed an emulator and serve it until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m naturalead_sync_pipedrive.emulator", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument("--persons", type=int, default=100, help="persons to seed (100)")
    parser.add_argument("--leads", type=int, default=0, help="leads to seed (0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--plan",
        choices=("lite", "growth", "premium", "ultimate"),
        default="lite",
        help="plan for the burst limit and daily budget (lite)",
    )
    parser.add_argument("--no-limits", action="store_true", help="turn rate limits off")
    args = parser.parse_args(argv)
    emulator = PipedriveEmulator(
        seed=args.seed,
        limits=EmulatorLimits(plan=args.plan, enabled=not args.no_limits),
        persons=args.persons,
        leads=args.leads,
    )
    with serve(emulator, args.host, args.port) as server:
        emulator.api_domain = server.url
        print(f"Pipedrive emulator at {server.url}", flush=True)
        print(f"  API token:   {DEFAULT_API_TOKEN}  (header x-api-token)")
        print(f"  OAuth token: {DEFAULT_OAUTH_TOKEN}  (Authorization: Bearer)")
        print(f"  admin:       {server.url}/_emulator/stats")
        print("For examples/pipedrive-emulator.toml, in another terminal:")
        print(f"export PIPEDRIVE_BASE_URL={server.url}")
        print(f"export PIPEDRIVE_API_TOKEN={DEFAULT_API_TOKEN}")
        print("Ctrl-C to stop.", flush=True)
        try:
            server.wait()
        except KeyboardInterrupt:
            print("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
