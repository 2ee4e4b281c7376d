"""The naturalead-sync pytest plugin, loaded through the ``pytest11`` entry point.

It gives connector tests what :mod:`naturalead_sync.conformance` needs: an embedded sandbox
with pacing lifted, in the test's own folder. It adds no autouse fixture and changes no
option, so having naturalead-sync installed changes nothing for other test suites.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .sandbox import Sandbox

__all__ = ["naturalead_sandbox"]


@pytest.fixture
def naturalead_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """An in-process Naturalead sandbox (SQLite in ``tmp_path``), 10,000 requests a second."""
    sandbox = Sandbox(
        tmp_path / "naturalead-sandbox.db", requests_per_window=10_000, window_seconds=1.0
    )
    yield sandbox
    sandbox.close()
