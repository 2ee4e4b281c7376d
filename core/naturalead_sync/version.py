"""The installed version of naturalead-sync (used in the user agent and ``--version``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("naturalead-sync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
