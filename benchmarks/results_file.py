"""Where every benchmark keeps its figures: one JSON file per command in ``results/`` (not
committed), named for the benchmark and the time, with the machine it ran on."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "save"]

RESULTS = Path(__file__).parent / "results"


def save(name: str, results: Any) -> Path:
    """Write ``results`` to ``results/<name>-<UTC time>.json``; returns the file."""
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    return path
