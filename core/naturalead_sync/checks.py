"""``naturalead-sync check``: prove a config can run before it runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import NaturaleadSyncError, StateError, StateLocked
from .runner import Runtime, build_connector

__all__ = ["CheckResult", "check_all"]


@dataclass(frozen=True)
class CheckResult:
    """One line of the check: what was checked, whether it passed, and what to do."""

    subject: str
    ok: bool
    message: str
    warning: bool = False


def _prefix_warnings(runtime: Runtime) -> list[CheckResult]:
    unprefixed = [c.name for c in runtime.config.connections if not c.lead_id_prefix]
    if len(runtime.config.connections) > 1 and len(unprefixed) > 1:
        return [
            CheckResult(
                "connections",
                True,
                f"connections {', '.join(unprefixed)} send to one account without lead_id_prefix; "
                "ids from different systems can collide and overwrite each other's leads. Set a "
                'distinct lead_id_prefix on each (e.g. "hs_", "sf_")',
                warning=True,
            )
        ]
    return []


def _missing_state_check(path: Path) -> CheckResult:
    """A state file that does not exist yet: whether the first run can create it (its folder,
    or the closest one that exists, must be a writable folder). Creates nothing."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        problem = f"{folder} is not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"{folder} is not writable"
    else:
        return CheckResult("state", True, f"{path} does not exist yet; the first run creates it")
    return CheckResult(
        "state", False, f"{path} cannot be created: {problem}; fix it or point state.path elsewhere"
    )


def _state_check(runtime: Runtime) -> CheckResult:
    path = runtime.config.resolve(runtime.config.state.path)
    if not path.exists():  # check writes nothing: the first run creates the state
        return _missing_state_check(path)
    try:
        with runtime.state(lock=True) as store:
            known = store.connections()
    except StateLocked as exc:
        return CheckResult("state", True, str(exc), warning=True)
    except StateError as exc:
        return CheckResult("state", False, str(exc))
    return CheckResult("state", True, f"{path}: {len(known)} connection(s) known")


def check_all(
    runtime: Runtime, names: list[str] | None = None, *, destination: bool = True
) -> list[CheckResult]:
    """Check the state file, each selected connection's connector, and the destination key
    and its scopes."""
    results = [CheckResult("config", True, "valid")]
    results += _prefix_warnings(runtime)
    results.append(_state_check(runtime))
    connectors = runtime.connectors
    for connection in runtime.select(names):
        subject = f"connection {connection.name}"
        try:
            connector = build_connector(runtime.config, connection, connectors)
            try:
                warnings = connector.check()
            finally:
                connector.close()
        except NaturaleadSyncError as exc:
            results.append(CheckResult(subject, False, str(exc)))
            continue
        results.append(CheckResult(subject, True, f"connector {connection.connector} ready"))
        results += [CheckResult(subject, True, w, warning=True) for w in warnings]
    if destination:
        client = runtime.client_factory(runtime.config)
        try:
            scopes = client.check()
            results.append(
                CheckResult("destination", True, f"key valid; scopes {', '.join(scopes)}")
            )
        except NaturaleadSyncError as exc:
            results.append(CheckResult("destination", False, str(exc)))
        finally:
            client.close()
    return results
