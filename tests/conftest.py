"""Shared fixtures: a plugin manager and an in-process sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

from naturalead_sync.plugins import get_plugin_manager
from naturalead_sync.sandbox import Sandbox


@pytest.fixture
def pm() -> pluggy.PluginManager:
    """A plugin manager with the installed plugins (the custom connector among them)."""
    return get_plugin_manager()


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A sandbox database in the test's folder, as the in-process destination uses it."""
    box = Sandbox(tmp_path / "sandbox.db")
    yield box
    box.close()
