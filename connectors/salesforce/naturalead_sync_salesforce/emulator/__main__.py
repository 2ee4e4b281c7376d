"""Serve a Salesforce emulator until Ctrl-C.

``python -m naturalead_sync_salesforce.emulator --port 8765 --leads 1000`` prints the URL, the
credentials and a ready access token.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from . import (
    DEFAULT_CONSUMER_KEY,
    DEFAULT_CONSUMER_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    SalesforceEmulator,
    serve,
)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, serve, and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m naturalead_sync_salesforce.emulator",
        description="Serve an in-memory Salesforce org over loopback HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--leads", type=int, default=0, help="Leads to seed")
    parser.add_argument("--contacts", type=int, default=0, help="Contacts to seed")
    parser.add_argument("--api-limit", type=int, default=15_000, help="daily API call budget")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    args = parser.parse_args(argv)

    emulator = SalesforceEmulator(api_limit=args.api_limit, seed=args.seed)
    emulator.seed_leads(args.leads)
    emulator.seed_contacts(args.contacts)
    with serve(emulator, args.host, args.port) as server:
        lines = [
            f"Salesforce emulator at {server.url} ({args.leads} Leads, {args.contacts} Contacts)",
            f"  username        {DEFAULT_USERNAME}",
            f"  password        {DEFAULT_PASSWORD}",
            f"  security token  {DEFAULT_SECURITY_TOKEN}",
            f"  consumer key    {DEFAULT_CONSUMER_KEY}",
            f"  consumer secret {DEFAULT_CONSUMER_SECRET}",
            f"  access token    {emulator.credentials.issue_token()}",
            f"  admin           {server.url}/_emulator/stats",
            "Send https:// traffic here with naturalead_sync_salesforce.testing.LoopbackSession.",
            "Ctrl-C stops it.",
        ]
        print("\n".join(lines), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
