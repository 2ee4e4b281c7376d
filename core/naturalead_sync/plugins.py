"""Plugin loading and the typed functions through which the engine calls hooks.

Environment switches:

- ``NATURALEAD_SYNC_DISABLED_PLUGINS``: comma-separated entry-point names (or distribution
  names) that are not loaded, e.g. ``hubspot,acme-sync``.
- ``NATURALEAD_SYNC_TRACE_PLUGINS``: when set, every hook call is logged at DEBUG level
  with the plugin it reaches (run with ``-vv`` to see them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .connector import Connector
from .errors import ConfigError, NaturaleadSyncError, RecordError, SkipLead
from .models import Lead, SourceRecord
from .report import ConnectionReport

__all__ = [
    "ConnectorInfo",
    "apply_transform_lead",
    "get_connectors",
    "get_plugin_manager",
    "has_transform_lead",
    "notify_run_finished",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLED_ENV = "NATURALEAD_SYNC_DISABLED_PLUGINS"
TRACE_ENV = "NATURALEAD_SYNC_TRACE_PLUGINS"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectorInfo:
    """One registered connector: its class and the distribution that provides it."""

    name: str
    cls: type[Connector]
    distribution: str
    version: str


def _disabled_names() -> set[str]:
    raw = os.environ.get(DISABLED_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def get_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    """Build a plugin manager with the hookspecs and every installed plugin.

    Plugins come from the ``naturalead_sync`` entry-point group, less those named in
    ``NATURALEAD_SYNC_DISABLED_PLUGINS``. Tests pass ``load_entry_points=False`` and register
    their own plugins.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        disabled = _disabled_names()
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        for entry_point in entry_points:
            dist = entry_point.dist.name if entry_point.dist else ""
            if entry_point.name in disabled or dist in disabled:
                pm.set_blocked(entry_point.name)
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            pm.check_pending()
        except Exception as exc:
            raise ConfigError(_broken_plugin(pm, entry_points, exc)) from exc
    pm.check_pending()
    return pm


def _broken_plugin(
    pm: pluggy.PluginManager, entry_points: metadata.EntryPoints, error: Exception
) -> str:
    """Name the plugin that failed to load (import error, or a hook that does not exist)."""
    culprit = None
    for entry_point in entry_points:
        if pm.is_blocked(entry_point.name):
            continue
        if isinstance(error, pluggy.PluginValidationError):
            if pm.get_name(error.plugin) == entry_point.name:
                culprit = entry_point
                break
            continue
        try:
            entry_point.load()
        except Exception:
            culprit = entry_point
            break
    if culprit is None:
        return f"a naturalead-sync plugin failed to load: {error}"
    dist = culprit.dist.name if culprit.dist else culprit.value
    return (
        f"plugin {culprit.name!r} (from {dist}) failed to load: {type(error).__name__}: "
        f"{error}. Reinstall or upgrade it, or skip it with "
        f"{DISABLED_ENV}={culprit.name}"
    )


def _call(impl: Any, hook: str, **kwargs: Any) -> Any:
    """Call one plugin's implementation of ``hook`` (traced when the env switch is on).

    The engine calls implementations one by one, not through ``pm.hook``, so that it can
    chain results, name the plugin in errors and isolate a failing observer.
    """
    if os.environ.get(TRACE_ENV):
        log.debug("hook %s -> plugin %s", hook, impl.plugin_name)
    return impl.function(**kwargs)


def _distribution_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    for candidate, dist in pm.list_plugin_distinfo():
        if candidate is plugin:
            return dist.project_name, dist.version
    return f"(plugin {pm.get_name(plugin)})", ""


def get_connectors(pm: pluggy.PluginManager) -> dict[str, ConnectorInfo]:
    """Every connector the plugins register, by name.

    Raises :class:`ConfigError` when two plugins register the same name, naming both
    distributions.
    """
    found: dict[str, ConnectorInfo] = {}
    for impl in pm.hook.register_connectors.get_hookimpls():
        distribution, version = _distribution_of(pm, impl.plugin)

        def register(
            cls: type[Connector], distribution: str = distribution, version: str = version
        ) -> None:
            if not (isinstance(cls, type) and issubclass(cls, Connector)):
                raise ConfigError(
                    f"{distribution} registered {cls!r}, which is not a Connector subclass"
                )
            previous = found.get(cls.name)
            if previous is not None and previous.cls is not cls:
                raise ConfigError(
                    f"connector name {cls.name!r} is registered twice: by "
                    f"{previous.distribution} and by {distribution}; uninstall one of them or "
                    f"block it with {DISABLED_ENV}"
                )
            found[cls.name] = ConnectorInfo(cls.name, cls, distribution, version)

        _call(impl, "register_connectors", register=register)
    return dict(sorted(found.items()))


def _transform_impls(pm: pluggy.PluginManager) -> Iterator[Any]:
    # pluggy calls hooks last-registered first; keep that order for the chain.
    yield from reversed(pm.hook.transform_lead.get_hookimpls())


def has_transform_lead(pm: pluggy.PluginManager) -> bool:
    """Whether any plugin implements ``transform_lead`` (the engine skips the chain if not)."""
    return bool(pm.hook.transform_lead.get_hookimpls())


def apply_transform_lead(
    pm: pluggy.PluginManager, lead: Lead, record: SourceRecord, connection: str
) -> Lead:
    """Run every ``transform_lead`` hook in turn, each seeing the previous one's result.

    :class:`SkipLead` and :class:`RecordError` propagate to the engine; any other exception
    becomes a :class:`RecordError` naming the plugin.
    """
    for impl in _transform_impls(pm):
        try:
            result = _call(impl, "transform_lead", lead=lead, record=record, connection=connection)
        except (SkipLead, RecordError):
            raise
        except Exception as exc:
            raise RecordError(
                f"plugin {impl.plugin_name!r} failed in transform_lead: {exc}"
            ) from exc
        if result is not None:
            if not isinstance(result, Lead):
                raise NaturaleadSyncError(
                    f"plugin {impl.plugin_name!r}: transform_lead must return a Lead or None, "
                    f"not {type(result).__name__}"
                )
            lead = result
    return lead


def notify_run_finished(pm: pluggy.PluginManager, report: ConnectionReport) -> None:
    """Call every ``run_finished`` hook; a failing observer is logged, never raised."""
    for impl in pm.hook.run_finished.get_hookimpls():
        try:
            _call(impl, "run_finished", report=report)
        except Exception:
            log.exception("plugin %r failed in run_finished", impl.plugin_name)
