"""``naturalead-sync new-connector NAME``: an installable connector package to start from.

The package it writes works at once: a connector for a small JSON API, an emulator of that
API, and tests that run naturalead-sync's conformance suite against it. A developer replaces
the API calls with their CRM's, and the emulator's answers with their CRM's, test by test.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template
from urllib.parse import urlparse
from urllib.request import url2pathname

from .errors import ConfigError, NaturaleadSyncError

__all__ = ["install_steps", "new_connector"]

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


def _canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _installed_clash(name: str, dist: str) -> str | None:
    """What installed already answers to connector ``name`` or distribution ``dist``."""
    from .plugins import ENTRY_POINT_GROUP, get_connectors, get_plugin_manager

    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        owner = entry_point.dist.name if entry_point.dist else entry_point.value
        if entry_point.name == name or _canonical(owner) == dist:
            return f"the entry point {entry_point.name!r} of the installed {owner}"
    with contextlib.suppress(metadata.PackageNotFoundError):
        metadata.distribution(dist)
        return f"the installed distribution {dist}"
    with contextlib.suppress(NaturaleadSyncError):  # a broken plugin is not this command's
        info = get_connectors(get_plugin_manager()).get(name)
        if info is not None:
            return f"the connector {name!r} of the installed {info.distribution}"
    return None


def _core_requirement() -> str:
    """How ``uv pip install`` gets this naturalead-sync: its project folder when it runs from
    one (a checkout), else the local file it was installed from, else its name on an index."""
    project = Path(__file__).resolve().parents[1]
    if (project / "pyproject.toml").is_file() and (project / "naturalead_sync").is_dir():
        return "-e " + shlex.quote(str(project))
    with contextlib.suppress(metadata.PackageNotFoundError, ValueError, AttributeError):
        raw = metadata.distribution("naturalead-sync").read_text("direct_url.json")
        url = urlparse(json.loads(raw or "{}").get("url", ""))
        if url.scheme == "file" and Path(url2pathname(url.path)).exists():
            return shlex.quote(url2pathname(url.path))
    return "naturalead-sync"


def install_steps(target: Path) -> list[str]:
    """The shell commands that install the package at ``target``, with its tests, into a
    virtual environment of its own (next to this naturalead-sync) and run its tests."""
    return [
        f"cd {shlex.quote(str(target))}",
        "uv venv",
        f"uv pip install --python .venv {_core_requirement()} -e '.[test]'",
        ".venv/bin/pytest",
    ]


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
    :class:`ConfigError` for a bad name, a name or distribution an installed connector
    already has (the two packages would clash), or an existing folder.
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
    clash = _installed_clash(name, values["dist"])
    if clash is not None:
        raise ConfigError(
            f"{name!r} clashes with {clash}: a connector package {values['dist']} registering "
            f"{name!r} would replace or collide with it; choose another name"
        )
    target = parent / values["dist"]
    if target.exists():
        raise ConfigError(f"{target} exists; choose another folder or remove it")
    root = resources.files("naturalead_sync").joinpath("templates/connector")
    for relative, template in _files(root):
        path = target / relative.replace("package/", f"{values['package']}/", 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template.read_text(encoding="utf-8")).substitute(values))
    return target
