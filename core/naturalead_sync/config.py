"""The config file: its model, loading, ``${VAR}`` secrets and error messages that name the key.

A config file is TOML (or YAML with the ``yaml`` extra)::

    [destination]
    sandbox = ".naturalead-sync/sandbox.db"   # or: url = "https://api.naturalead.ai"
    api_key = "${NATURALEAD_API_KEY}"

    [state]
    path = ".naturalead-sync/state.db"

    [[connections]]
    name = "signups"
    connector = "custom"
    [connections.settings]
    path = "leads.csv"

Any string value may reference environment variables as ``${NAME}``; each missing variable is a
problem naming the key and the variable (never a value), listed with the file's other problems.
Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "DEFAULT_URL",
    "Config",
    "ConnectionConfig",
    "DestinationConfig",
    "LimitsConfig",
    "MappingConfig",
    "RetryConfig",
    "StateConfig",
    "format_validation_error",
    "load_config",
]

DEFAULT_URL = "https://api.naturalead.ai"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAME_MAX = 64
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _parse_duration(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f'{value!r} is not a duration; write e.g. 90, "90s", "5m", "2h"')
        return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])
    return value


def _is_connection_name(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) <= _NAME_MAX and bool(_CONNECTION_NAME.match(value))
    )


#: A duration: seconds as a number, or a string such as ``"500ms"``, ``"90s"``, ``"5m"``, ``"1d"``.
Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsConfig(_Model):
    """Client-side pacing: never more than these in any sliding window."""

    requests_per_window: int = Field(50, ge=1, description="Sync requests (POST and DELETE).")
    leads_per_window: int = Field(5000, ge=1, description="Leads and lead ids sent.")
    window: Duration = Field(timedelta(seconds=60), description="Length of the sliding window.")
    batch_size: int = Field(100, ge=1, le=100, description="Leads per request (API max 100).")

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("window must be positive")
        return value


class RetryConfig(_Model):
    """Retries of 5xx answers, timeouts, dropped connections and 429s: bounded twice."""

    max_attempts: int = Field(8, ge=1, description="Tries per request, the first included.")
    max_elapsed: Duration = Field(
        timedelta(minutes=10), description="Give up retrying one request after this long."
    )
    backoff_initial: Duration = Field(timedelta(seconds=1))
    backoff_max: Duration = Field(timedelta(seconds=60))
    timeout: Duration = Field(timedelta(seconds=30), description="Per-request timeout.")


class DestinationConfig(_Model):
    """Where leads go: the Naturalead API (``url``) or the embedded sandbox (``sandbox``)."""

    url: str | None = Field(None, description="Naturalead API base URL.")
    sandbox: str | None = Field(None, description="Path of the embedded sandbox database.")
    api_key: SecretStr | None = Field(None, description='e.g. "${NATURALEAD_API_KEY}".')
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)

    @model_validator(mode="after")
    def _one_target(self) -> DestinationConfig:
        if self.url and self.sandbox:
            raise ValueError("set either url or sandbox, not both")
        if not self.url and not self.sandbox:
            self.url = DEFAULT_URL
        if self.url:
            if not re.match(r"^https?://", self.url):
                raise ValueError(f"url {self.url!r} must start with https:// (or http://)")
            if self.api_key is None:
                raise ValueError(
                    'api_key is required with url; set api_key = "${NATURALEAD_API_KEY}" '
                    "and export the variable"
                )
        return self


class StateConfig(_Model):
    """Where the sync state (cursors, ledger, failed leads, run history) lives."""

    path: str = ".naturalead-sync/state.db"


class MappingConfig(_Model):
    """Per-connection overrides of the connector's default mapping.

    Each value is an expression over the source record's fields: ``"email"`` reads a field,
    ``"{first} {last}"`` is a template, ``"=VIP"`` is a constant. A field set here replaces the
    connector's default for that field; ``custom_fields`` are added to (and override) the
    connector's; ``tags`` replace the connector's tags when set.
    """

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    custom_fields: dict[str, str] = Field(default_factory=dict)
    tags: list[str] | None = None


class ConnectionConfig(_Model):
    """One source to sync: a connector, its settings, the mapping and the sync policy."""

    name: str = Field(description="Letters, digits, '_', '.' and '-'; used in reports and -n.")
    connector: str
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    source: str | None = Field(None, description="Batch-level source label; default connector.")
    lead_id_prefix: str = Field("", max_length=32)
    default_region: str | None = Field(
        None, description="ISO country code for phones without +country, e.g. US, GB, DE."
    )
    invalid_phone: Literal["reject", "drop"] = "reject"
    invalid_email: Literal["reject", "drop"] = "reject"
    empty_values: Literal["omit", "send"] = "omit"
    lookback: Duration | None = Field(
        None, description="Overlap with the previous window; default: the connector's."
    )
    settle: Duration | None = Field(
        None, description="How long before now the window ends; default: the connector's."
    )
    retry: RetryConfig | None = Field(
        None,
        description="Retries and timeout of the source's API calls; default: 5 tries within "
        "5 minutes and the destination's timeout.",
    )
    mass_delete_share: float = Field(0.2, ge=0, le=1)
    mass_delete_min: int = Field(10, ge=0, description="Deletes below this never trip the guard.")
    reconcile_deletes: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _is_connection_name(value):
            raise ValueError(
                f"{value!r} is not a valid connection name; use up to {_NAME_MAX} letters, "
                "digits, '_', '.' and '-', starting with a letter or digit"
            )
        return value

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import phonenumbers

        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{value!r} is not a phone region; use an ISO code such as US or DE")
        return region


class Config(_Model):
    """A whole config file."""

    destination: DestinationConfig = Field(
        default_factory=lambda: DestinationConfig(sandbox=".naturalead-sync/sandbox.db")
    )
    state: StateConfig = Field(default_factory=StateConfig)
    connections: list[ConnectionConfig] = Field(default_factory=list)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @field_validator("connections")
    @classmethod
    def _unique_names(cls, value: list[ConnectionConfig]) -> list[ConnectionConfig]:
        seen: set[str] = set()
        for connection in value:
            if connection.name in seen:
                raise ValueError(f"connection name {connection.name!r} is used twice")
            seen.add(connection.name)
        return value

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return Path(os.path.normpath(self.base_dir / Path(path).expanduser()))

    def connection(self, name: str) -> ConnectionConfig:
        """The connection called ``name``, or a :class:`ConfigError` listing the names."""
        for connection in self.connections:
            if connection.name == name:
                return connection
        names = ", ".join(c.name for c in self.connections) or "(none)"
        raise ConfigError(f"no connection named {name!r} in the config; known: {names}")


Loc = tuple[int | str, ...]


def _interpolate(
    value: Any, loc: Loc, environ: Mapping[str, str], missing: list[tuple[Loc, str]]
) -> Any:
    """``value`` with every ``${NAME}`` replaced; each variable not set is added to ``missing``
    with the place of its value, which is then left as written (never partly expanded)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, k), environ, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), environ, missing) for i, v in enumerate(value)]
    if isinstance(value, str):
        unset = [match[1] for match in _ENV_REF.finditer(value) if match[1] not in environ]
        if unset:
            missing.extend((loc, name) for name in dict.fromkeys(unset))
            return value
        return _ENV_REF.sub(lambda match: environ[match[1]], value)
    return value


def _missing_variable(name: str) -> str:
    return (
        f"environment variable {name} is not set; "
        f"export {name}=... before running (or remove the reference)"
    )


def _follows_from(loc: Loc, unresolved: Loc) -> bool:
    """Whether a validation problem at ``loc`` may only be the consequence of the value at
    ``unresolved`` being left as ``${NAME}``: the same key, a key inside it, or its table."""
    return loc[: len(unresolved)] == unresolved or (len(loc) >= 1 and loc == unresolved[:-1])


def _item_name(items: list[Any], index: int) -> str | None:
    """The name of ``items[index]`` if it is a valid name no other item has, else ``None``."""
    if not 0 <= index < len(items) or not isinstance(items[index], dict):
        return None
    name = items[index].get("name")
    if not _is_connection_name(name):
        return None
    others = (
        item.get("name") for i, item in enumerate(items) if i != index and isinstance(item, dict)
    )
    return None if name in others else str(name)


def _location(loc: Loc, data: Any) -> str:
    """The key at ``loc``, a list's items named by their ``name`` (by place when it has none, or
    one that is invalid or shared): ``connections[crm].lookback``, ``connections[0].name``."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = _item_name(node, item) if isinstance(node, list) else None
            parts.append(f"[{name}]" if name else f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return "".join(parts) or "(top level)"


def _sibling_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model accepts next to the key at ``loc`` (for spelling suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                current = candidate
                break
        else:
            return []
    return [name for name in getattr(current, "model_fields", {}) if name != "base_dir"]


def format_validation_error(
    error: ValidationError, data: Any, prefix: str = "", model: type[BaseModel] | None = None
) -> str:
    """One line per problem: the key path, what is wrong, and (for unknown keys) the fix."""
    return "\n".join(_problems(error, data, prefix, model))


def _problems(
    error: ValidationError | None,
    data: Any,
    prefix: str = "",
    model: type[BaseModel] | None = None,
    missing: Sequence[tuple[Loc, str]] = (),
) -> list[str]:
    """The lines of :func:`format_validation_error`, after one per missing variable (whose
    consequences are left out), each problem once."""
    lines = [
        f"  {prefix}{_location(loc, data)}: {_missing_variable(name)}" for loc, name in missing
    ]
    for item in error.errors() if error is not None else []:
        loc = tuple(item["loc"])
        if any(_follows_from(loc, unresolved) for unresolved, _ in missing):
            continue
        where = f"{prefix}{_location(loc, data)}"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            known = _sibling_keys(model, loc) if model is not None else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            message = "unknown key; " + (
                f"did you mean {close[0]!r}?"
                if close
                else "check its spelling against the documented keys"
            )
        elif item["type"] == "missing":
            message = "required key is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return list(dict.fromkeys(lines))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; create one with `naturalead-sync init {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(
                f"{path} is YAML; install the extra: pip install 'naturalead-sync[yaml]'"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table of keys")
    return data


def load_config(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read, interpolate and validate a config file; :class:`ConfigError` names every problem."""
    path = Path(path)
    raw = _read(path)
    missing: list[tuple[Loc, str]] = []
    data = _interpolate(raw, (), os.environ if environ is None else environ, missing)
    try:
        config = Config.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        problems = _problems(exc, data, model=Config, missing=missing)
    else:
        if not missing:
            return config
        problems = _problems(None, data, missing=missing)  # the values left as written passed
    # Raised outside the except clause: the validation error (and the values it holds) is not
    # chained to the message.
    raise ConfigError(f"{path} has {len(problems)} problem(s):\n" + "\n".join(problems))
