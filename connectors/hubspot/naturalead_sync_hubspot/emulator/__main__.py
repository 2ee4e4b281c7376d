"""Serve the HubSpot emulator until Ctrl-C: ``python -m naturalead_sync_hubspot.emulator``.

Prints the base URL and the (test) token as shell ``export`` lines, for the
``${HUBSPOT_BASE_URL}`` and ``${HUBSPOT_TOKEN}`` of a config such as
``examples/hubspot-emulator.toml`` (or ``HubSpot(access_token=<token>, host=<url>)``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence

from naturalead_sync.loopback import serve

from .app import DEFAULT_TOKEN, HubSpotEmulator
from .limits import EmulatorLimits


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m naturalead_sync_hubspot.emulator",
        description="Serve a HubSpot emulator (contacts and leads) on loopback HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port to bind (8766; 0 = any)")
    parser.add_argument("--contacts", type=int, default=0, help="contacts to generate (0)")
    parser.add_argument(
        "--index-lag", type=float, default=0.0, help="seconds before search sees a write (0)"
    )
    parser.add_argument(
        "--ten-second-max", type=int, default=190, help="requests per 10 s per app (190)"
    )
    args = parser.parse_args(argv)
    emulator = HubSpotEmulator(
        limits=EmulatorLimits(ten_second_max=args.ten_second_max),
        index_lag_seconds=args.index_lag,
    )
    emulator.seed_contacts(args.contacts)
    with serve(emulator, args.host, args.port) as server:
        print(f"HubSpot emulator at {server.url} ({args.contacts} contacts)", flush=True)
        print(f"export HUBSPOT_BASE_URL={server.url}", flush=True)
        print(f"export HUBSPOT_TOKEN={DEFAULT_TOKEN}", flush=True)
        print("Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()


if __name__ == "__main__":
    main()
