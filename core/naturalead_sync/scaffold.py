"""``naturalead-sync new-connector NAME``: an installable connector package to start from.

The package it writes works at once: a connector for a small JSON API, an emulator of that
API, and tests that run naturalead-sync's conformance suite against it. A developer replaces
the API calls with their CRM's, and the emulator's answers with their CRM's, test by test.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from .errors import ConfigError

__all__ = ["new_connector"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


def _files(root: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    """Every template file under ``root`` with its relative path."""
    found: list[tuple[str, Traversable]] = []
    for entry in sorted(root.iterdir(), key=lambda item: item.name):
        if entry.is_dir():
            found.extend(_files(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(".tmpl"):
            found.append((f"{prefix}{entry.name.removesuffix('.tmpl')}", entry))
    return found


def new_connector(name: str, parent: Path, title: str | None = None) -> Path:
    """Write the package of connector ``name`` into ``parent`` and return its folder.

    ``name`` is the connector's name in configs (``acme``, ``zoho-crm``); the distribution is
    ``naturalead-sync-<name>`` and the package ``naturalead_sync_<name>``. Raises
    :class:`ConfigError` for a bad name or an existing folder.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"{name!r} is not a connector name: use lower-case letters and digits, words joined "
            "by - or _ (e.g. acme, zoho-crm)"
        )
    words = re.split(r"[-_]", name)
    values = {
        "name": name,
        "dist": f"naturalead-sync-{name.replace('_', '-')}",
        "package": f"naturalead_sync_{name.replace('-', '_')}",
        "cls": "".join(word.capitalize() for word in words),
        "title": title or " ".join(word.capitalize() for word in words),
        "env": "_".join(word.upper() for word in words),
    }
    target = parent / values["dist"]
    if target.exists():
        raise ConfigError(f"{target} exists; choose another folder or remove it")
    root = resources.files("naturalead_sync").joinpath("templates/connector")
    for relative, template in _files(root):
        path = target / relative.replace("package/", f"{values['package']}/", 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template.read_text(encoding="utf-8")).substitute(values))
    return target
