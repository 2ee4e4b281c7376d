"""The class source of the custom connector: a one-off Connector class loaded by its import path.

``adapter = "package.module:ClassName"`` loads a :class:`~naturalead_sync.Connector` subclass
from any importable module (the config file's folder is searched first), without packaging it.
Its own settings go under ``options``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Literal

from pydantic import Field, field_validator

from naturalead_sync import ConfigError, Connector, ConnectorContext, ConnectorSettings

__all__ = ["AdapterSettings", "load_adapter", "open_adapter"]

PACKAGING_HINT = (
    "For anything beyond a quick one-off, package it: a distribution whose pyproject.toml has "
    '[project.entry-points.naturalead_sync] my_crm = "my_package" and a register_connectors '
    'hook, then `pip install -e .` and use connector = "my_crm" (see naturalead-sync-custom\'s '
    "README)"
)


class AdapterSettings(ConnectorSettings):
    """``[connections.settings]`` of a custom connection with ``source = "class"``."""

    source: Literal["class"] = Field(description='"class": a Connector class of your own.')
    adapter: str = Field(
        description=(
            'Where the class is, "package.module:ClassName"; the module is imported from the '
            "config file's folder or the Python path."
        ),
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The class's own settings, validated by its Settings model.",
    )

    @field_validator("adapter")
    @classmethod
    def _module_colon_class(cls, value: str) -> str:
        module, colon, name = value.partition(":")
        if not colon or not module.strip() or not name.strip():
            raise ValueError(
                f'{value!r} is not "package.module:ClassName" (the module, a colon, the class)'
            )
        return value.strip()


def load_adapter(adapter: str, context: ConnectorContext) -> type[Connector]:
    """Import the Connector subclass at ``adapter``; :class:`ConfigError` with the fix otherwise."""
    module_name, _, class_name = adapter.partition(":")
    folder = str(context.base_dir)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"settings.adapter {adapter!r}: cannot import {module_name!r} ({exc}); put the "
            f"module in {folder} (the config file's folder) or on PYTHONPATH. {PACKAGING_HINT}"
        ) from None
    finally:
        if added:
            sys.path.remove(folder)
    found = getattr(module, class_name, None)
    if found is None:
        raise ConfigError(
            f"settings.adapter {adapter!r}: module {module_name!r} has no {class_name!r}; "
            "fix the name after the colon"
        )
    if not isinstance(found, type) or not issubclass(found, Connector):
        raise ConfigError(
            f"settings.adapter {adapter!r}: {class_name!r} is not a subclass of "
            "naturalead_sync.Connector; subclass it and implement fetch_changed, fetch_by_ids "
            "and to_lead"
        )
    return found


def open_adapter(settings: AdapterSettings, context: ConnectorContext) -> Connector:
    """Load the class, validate ``options`` with its Settings model and construct it."""
    cls = load_adapter(settings.adapter, context)
    try:
        options = cls.Settings.model_validate(settings.options)
    except ValueError as exc:
        raise ConfigError(
            f"settings.options for {settings.adapter!r} are invalid: {exc}; fix them against "
            f"{cls.__name__}.Settings"
        ) from None
    context.logger.info(
        "%s: loaded adapter %s from its import path. %s",
        context.connection,
        settings.adapter,
        PACKAGING_HINT,
    )
    return cls(options, context)
