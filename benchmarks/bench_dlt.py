"""The same workloads through dlt (https://dlthub.com), written as a user would from its docs.

dlt is not a project dependency: run this with it added for the one command only::

    uv run --with dlt==1.31.0 python benchmarks/bench_dlt.py throughput --n 20000 --window 30
    uv run --with dlt==1.31.0 python benchmarks/bench_dlt.py cpu --n 1000000

throughput: the CSV of bench_core (N leads) read by a ``@dlt.resource`` with
    ``dlt.sources.incremental("updated_at")`` (dlt's documented way to load only what changed),
    loaded by a custom destination ``@dlt.destination(batch_size=100)`` that POSTs each batch of
    100 to the sandbox served over loopback (benchmarks/loopback_sandbox.py, the same server as
    ``bench_core.py loopback``). Two variants:

    - ``naive``: plain ``requests`` and ``raise_for_status()``, as in dlt's custom destination
      page. A 429 raises; dlt retries the load job (restarting from the failed batch) up to
      ``load.raise_on_max_retries`` (5) times, then the run fails; the docs say to run the
      pipeline again, which resumes the load, so the benchmark re-runs it until it completes.
    - ``retrying``: ``from dlt.sources.helpers import requests``, dlt's documented requests
      wrapper, which retries 429 and 5xx with exponential backoff and honours ``Retry-After``.
      dlt documents no client-side rate limiter for destinations.

    Then an unchanged re-run of the same pipeline: the requests it sends.
cpu: dlt's extract + normalize of N records with the network out of the way: process CPU
    seconds per lead, for the CSV read by the same resource (rows modified 1 ms apart unless
    ``--same-time``) and for in-memory records (as bench_core's ``engine``); the load of the
    CSV's package into a destination function that does nothing; then an unchanged re-run.
"""

# dlt is imported only here; without it installed mypy sees Any (see the ignores below).
# mypy: allow-untyped-decorators

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # no network calls of its own
os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")  # the naive run's retries are expected

import dlt  # type: ignore[import-not-found,unused-ignore]
import requests as plain_requests  # type: ignore[import-untyped,unused-ignore]
from bench_core import against_minimum, make_csv
from dlt.common.schema import TTableSchema  # type: ignore[import-not-found,unused-ignore]
from dlt.common.typing import TDataItems  # type: ignore[import-not-found,unused-ignore]
from dlt.sources.helpers import (  # type: ignore[import-not-found,unused-ignore]
    requests as dlt_requests,
)
from loopback_sandbox import DEFAULT_KEY, SandboxProcess, server_figures
from results_file import save

# -- the user's code, as dlt's docs show it ------------------------------------------------


def leads_resource(path: Path, page: int = 1000) -> Any:
    """A CSV of leads; only rows modified since the last run (dlt's incremental cursor)."""

    @dlt.resource(name="leads", primary_key="id", write_disposition="append")
    def leads(
        updated_at: Any = dlt.sources.incremental("updated_at"),  # noqa: B008 (dlt's idiom)
    ) -> Iterator[Any]:
        with path.open(newline="") as handle:
            rows = csv.DictReader(handle)
            while chunk := [row for _, row in zip(range(page), rows, strict=False)]:
                yield chunk  # dlt's performance guide: yield pages, not single rows

    return leads()


def to_lead(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "lead_id": str(item["id"]),
        "name": f"{item['first_name']} {item['last_name']}",
        "phone": item["phone"],
        "email": item["email"],
        "customFields": {"company": item["company"]},
    }


def naturalead_destination(http: Any) -> Any:
    """The custom destination: one POST per batch of 100, with ``http`` as the requests API."""

    @dlt.destination(batch_size=100, name="naturalead")
    def naturalead(
        items: TDataItems,
        table: TTableSchema,
        api_url: str = dlt.config.value,
        api_key: str = dlt.secrets.value,
    ) -> None:
        response = http.post(
            f"{api_url}/api/leads/sync",
            json={"source": "dlt", "leads": [to_lead(item) for item in items]},
            headers={"X-API-Key": api_key},
            timeout=30,
        )
        response.raise_for_status()

    return naturalead


# -- the benchmarks --------------------------------------------------------------------------


def _run_until_done(pipeline: Any, data: Any, max_runs: int = 500) -> int:
    """``pipeline.run`` until it succeeds (a failed run resumes its load); runs made."""
    for runs in range(1, max_runs + 1):
        try:
            pipeline.run(data)
            return runs
        except Exception:  # PipelineStepFailed: the load job hit its retry limit
            data = None  # the next run finishes the pending load first; nothing new to extract
    raise RuntimeError(f"dlt did not finish in {max_runs} runs")


def throughput(n: int, window: float, variant: str, same_time: bool = True) -> dict[str, Any]:
    http = plain_requests if variant == "naive" else dlt_requests
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_csv(folder / "leads.csv", n, distinct=not same_time)
        with SandboxProcess(window, db=folder / "sandbox.db") as server:
            destination = naturalead_destination(http)(api_url=server.url, api_key=DEFAULT_KEY)
            pipeline = dlt.pipeline(
                pipeline_name=f"leads_{variant}",
                destination=destination,
                pipelines_dir=str(folder / "dlt"),
                dataset_name="leads",
            )
            cpu = time.process_time()
            started = time.monotonic()
            runs = _run_until_done(pipeline, leads_resource(folder / "leads.csv"))
            wall = time.monotonic() - started
            cpu = time.process_time() - cpu
            first = server.stats()
            pipeline.run(leads_resource(folder / "leads.csv"))  # unchanged re-run
            second = server.stats()
    return {
        "benchmark": f"dlt-throughput-{variant}",
        "dlt": dlt.__version__,
        "leads": n,
        "same_modified_time": same_time,
        "window_seconds": window,
        **against_minimum(n, window, wall),
        **server_figures(first, second),
        "pipeline_runs": runs,
        "client_cpu_us_per_lead": round(cpu / n * 1e6, 2),
    }


def _memory_records(n: int, page: int = 1000) -> Any:
    last = datetime.now(UTC) - timedelta(hours=1)

    @dlt.resource(name="leads", primary_key="id", write_disposition="append")
    def leads(
        updated_at: Any = dlt.sources.incremental("updated_at"),  # noqa: B008 (dlt's idiom)
    ) -> Iterator[Any]:
        for start in range(0, n, page):
            yield [
                {
                    "id": str(i),
                    "first": f"F{i}",
                    "last": "L",
                    "co": "Acme",
                    "updated_at": last - timedelta(milliseconds=n - i),
                }
                for i in range(start, min(n, start + page))
            ]

    return leads()


@dlt.destination(batch_size=100, name="null")
def null_destination(items: TDataItems, table: TTableSchema) -> None:
    """The custom destination with the network out of the way: every batch accepted at once."""


def _pipeline(folder: Path, name: str) -> Any:
    return dlt.pipeline(
        pipeline_name=name,
        destination=null_destination,
        pipelines_dir=str(folder / "dlt"),
        dataset_name="leads",
    )


def _extract_normalize(pipeline: Any, data: Any) -> tuple[float, float]:
    """CPU and wall seconds of ``extract`` + ``normalize``."""
    cpu, wall = time.process_time(), time.monotonic()
    pipeline.extract(data)
    pipeline.normalize()
    return time.process_time() - cpu, time.monotonic() - wall


def cpu(n: int, same_time: bool = False) -> dict[str, Any]:
    """Rows modified a millisecond apart: when they all share one modification time (as in the
    throughput CSV), dlt's incremental keeps every row's primary key to deduplicate the
    boundary, which makes extract superlinear (``--same-time`` measures that).

    The first package is then loaded into the null destination (dlt reads its files back and
    calls the function once per 100): only a loaded package commits the incremental state, so
    the re-run's extract sees the cursor and filters every row out."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_csv(folder / "leads.csv", n, distinct=not same_time)
        pipeline = _pipeline(folder, "csv")
        csv_cpu, csv_wall = _extract_normalize(pipeline, leads_resource(folder / "leads.csv"))
        load_cpu = time.process_time()
        pipeline.load()
        load_cpu = time.process_time() - load_cpu
        rerun_cpu, _ = _extract_normalize(pipeline, leads_resource(folder / "leads.csv"))
        rerun_rows = pipeline.last_trace.last_normalize_info.row_counts.get("leads", 0)
        memory_cpu, _ = _extract_normalize(_pipeline(folder, "memory"), _memory_records(n))
    return {
        "benchmark": "dlt-cpu",
        "dlt": dlt.__version__,
        "leads": n,
        "same_modified_time": same_time,
        "csv_cpu_us_per_lead": round(csv_cpu / n * 1e6, 2),
        "csv_wall_seconds": round(csv_wall, 3),
        "load_to_null_cpu_us_per_lead": round(load_cpu / n * 1e6, 2),
        "csv_rerun_cpu_us_per_lead": round(rerun_cpu / n * 1e6, 2),
        "csv_rerun_rows": rerun_rows,
        "memory_cpu_us_per_lead": round(memory_cpu / n * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["throughput", "cpu"])
    parser.add_argument("--n", type=int, action="append", help="Leads (repeatable).")
    parser.add_argument("--window", type=float, default=30.0, help="Scaled window, seconds.")
    parser.add_argument(
        "--variant", choices=["naive", "retrying"], action="append", help="Default: both."
    )
    parser.add_argument(
        "--same-time", action="store_true", help="cpu: every row modified at the same moment."
    )
    parser.add_argument(
        "--distinct-times",
        action="store_true",
        help="throughput: rows modified a millisecond apart (default: bench_core's CSV).",
    )
    args = parser.parse_args()
    results = []
    if args.what == "throughput":
        for n in args.n or [20_000]:
            for variant in args.variant or ["naive", "retrying"]:
                results.append(throughput(n, args.window, variant, not args.distinct_times))
    else:
        results += [cpu(n, args.same_time) for n in (args.n or [1_000_000])]
    save(f"dlt-{args.what}", results)
    for result in results:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
