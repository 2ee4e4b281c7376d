"""The sandbox served over loopback HTTP in a child process, with the server's own counts.

A benchmark client runs in this process and talks real HTTP to the child, so the figures
include sockets, HTTP parsing and a server that does not share the client's GIL. The child
reads commands on stdin (``stats``, ``quit``) and answers one JSON line on stdout; ``stats``
returns what the server saw since the last ``stats``: requests by status, 429s, and the most
requests counted against the limit in any sliding window (the limit must never be exceeded).

    with SandboxProcess(window=30.0, latency=0.1) as server:
        ...  # send to server.url with DEFAULT_KEY
        seen = server.stats()
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from naturalead_sync.sandbox import DEFAULT_KEY, Faults, RequestRecord, Sandbox, serve

__all__ = ["DEFAULT_KEY", "SandboxProcess", "summarise"]


def summarise(records: list[RequestRecord], window: float) -> dict[str, Any]:
    """Counts of a slice of the sandbox's request log."""
    statuses = Counter(record.status for record in records)
    counted = [record.received for record in records if record.status not in (401, 403, 429)]
    peak = start = 0
    for end, moment in enumerate(counted):  # received stamps are in order (one lock)
        while counted[start] <= moment - window:
            start += 1
        peak = max(peak, end - start + 1)
    return {
        "requests": len(records),
        "by_status": {str(status): count for status, count in sorted(statuses.items())},
        "http_429": statuses.get(429, 0),
        "items": sum(record.items for record in records if record.status == 200),
        "max_requests_in_any_window": peak,
        "first_received": records[0].received if records else None,
        "last_received": records[-1].received if records else None,
    }


def server_figures(first: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """What the throughput benchmarks report of the server's side: ``first`` a run's
    :func:`summarise`, ``rerun`` that of the unchanged re-run after it."""
    span = (first["last_received"] or 0.0) - (first["first_received"] or 0.0)
    return {
        "server_span_seconds": round(span, 3),
        "server_requests": first["requests"],
        "http_429": first["http_429"],
        "by_status": first["by_status"],
        "max_requests_in_any_window": first["max_requests_in_any_window"],
        "leads_stored": first["items"],
        "rerun_server_requests": rerun["requests"],
    }


class SandboxProcess:
    """``python benchmarks/loopback_sandbox.py`` as a child; ``url`` once it listens."""

    def __init__(
        self,
        window: float,
        requests_per_window: int = 50,
        db: Path | None = None,
        latency: float = 0.0,
        python: str = sys.executable,
    ) -> None:
        command = [python, __file__, "--window", str(window)]
        command += ["--requests-per-window", str(requests_per_window), "--latency", str(latency)]
        if db is not None:
            command += ["--db", str(db)]
        self._child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.url: str = self._read()["url"]

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._child.stdin is not None and self._child.stdout is not None
        return self._child.stdin, self._child.stdout

    def _read(self) -> dict[str, Any]:
        line = self._pipes()[1].readline()
        if not line:
            raise RuntimeError("the sandbox child ended without answering")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stats(self) -> dict[str, Any]:
        """What the server saw since the last call."""
        self._pipes()[0].write("stats\n")
        return self._read()

    def close(self) -> None:
        if self._child.poll() is None:
            self._pipes()[0].write("quit\n")
            self._child.wait(timeout=30)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _child(window: float, requests_per_window: int, db: str, latency: float) -> None:
    # A latency is the sandbox's "slow" answer on every request: the write commits at once,
    # the answer leaves ``latency`` seconds later (a network round trip, as seen by a client).
    faults = Faults(slow_rate=1.0, slow_seconds=latency) if latency > 0 else None
    sandbox = Sandbox(
        db, window_seconds=window, requests_per_window=requests_per_window, faults=faults
    )
    seen = 0
    with serve(sandbox) as server:
        print(json.dumps({"url": server.url}), flush=True)
        for command in sys.stdin:
            if command.strip() == "quit":
                break
            records = sandbox.request_log[seen:]  # appends are atomic; a slice is a copy
            seen += len(records)
            print(json.dumps(summarise(records, window)), flush=True)
    sandbox.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve the sandbox for a benchmark.")
    parser.add_argument("--window", type=float, required=True)
    parser.add_argument("--requests-per-window", type=int, default=50)
    parser.add_argument("--db", default=":memory:")
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds added per answer.")
    args = parser.parse_args()
    _child(args.window, args.requests_per_window, args.db, args.latency)
