"""Loading the installed plugins imports no CRM client library: every plugin is imported at
every start, whichever connectors the config names, so each connector imports its SDK (or
driver) when it is built. Each case runs in a fresh interpreter, where ``sys.modules`` says
what was imported."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from support import run_process

#: The top-level modules each connector's client library brings, loaded only when it is built.
#: Pipedrive talks to its API through httpx, which core imports anyway.
SDKS: dict[str, tuple[str, ...]] = {
    "custom": ("sqlalchemy",),  # source = "sql" only
    "hubspot": ("hubspot", "urllib3"),
    "pipedrive": (),
    "salesforce": ("simple_salesforce", "zeep", "lxml", "requests", "urllib3"),
}
#: Settings that build each connector without touching the network.
SETTINGS: dict[str, dict[str, Any]] = {
    "custom": {"source": "sql", "url": "sqlite://", "table": "leads"},
    "hubspot": {"access_token": "not-a-real-token"},
    "pipedrive": {"api_token": "not-a-real-token", "company_domain": "acme"},
    "salesforce": {"session_id": "not-a-real-session", "instance_url": "https://acme.example"},
}
EVERY_SDK = sorted({module for modules in SDKS.values() for module in modules})

#: Registers every installed connector, then builds the one named in argv[1] with the
#: settings in argv[2]; prints which of the modules in argv[3] were imported after each step.
_CHILD = """
import json, sys
from naturalead_sync import ConnectorContext
from naturalead_sync.plugins import get_connectors, get_plugin_manager

name, settings, watched = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
connectors = get_connectors(get_plugin_manager())
registered = [module for module in watched if module in sys.modules]
cls = connectors[name].cls
connector = cls(cls.Settings.model_validate(settings), ConnectorContext(connection=name))
built = [module for module in watched if module in sys.modules]
connector.close()
print(json.dumps({"connectors": sorted(connectors), "registered": registered, "built": built}))
"""


def _child(name: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NATURALEAD_")}
    done = run_process(
        [
            sys.executable,
            "-c",
            _CHILD,
            name,
            json.dumps(SETTINGS[name]),
            json.dumps(EVERY_SDK),
        ],
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("name", sorted(SDKS))
def test_registering_imports_no_sdk_and_building_imports_only_its_own(name: str) -> None:
    result = _child(name)

    assert set(SDKS) <= set(result["connectors"])
    assert result["registered"] == [], (
        f"loading the plugins imported {result['registered']}: a connector package imports "
        "its client library at module top instead of when the connector is built"
    )
    # The check above only means something if building the connector does import them.
    assert set(result["built"]) == set(SDKS[name])
