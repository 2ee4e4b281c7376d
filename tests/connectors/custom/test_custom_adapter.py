"""The custom connector's class source: a one-off Connector class loaded by its import path."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from naturalead_sync import ConfigError, Connector, ConnectorContext
from naturalead_sync_custom import CustomConnector, CustomSettings

ADAPTER = """
from datetime import UTC, datetime
from naturalead_sync import Connector, ConnectorSettings, Lead, SourceRecord

class Settings(ConnectorSettings):
    greeting: str

class OneOff(Connector):
    name = "one-off"
    Settings = Settings

    def fetch_changed(self, window):
        yield SourceRecord(id="1", modified_at=datetime(2026, 1, 1, tzinfo=UTC))

    def fetch_by_ids(self, ids):
        return iter(())

    def to_lead(self, record):
        return Lead(lead_id=record.id, name=self.settings.greeting)

NotAConnector = dict
"""


def build(tmp_path: Path, adapter: str, **options: str) -> Connector:
    settings = CustomSettings.model_validate(
        {"source": "class", "adapter": adapter, "options": options}
    )
    return CustomConnector(settings, ConnectorContext(connection="t", base_dir=tmp_path))


@pytest.fixture
def module(tmp_path: Path) -> str:
    """A module beside the config file, under a name no other test imports."""
    name = f"one_off_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(ADAPTER, encoding="utf-8")
    return name


def test_the_class_runs_as_itself_with_its_options(tmp_path: Path, module: str) -> None:
    connector = build(tmp_path, f"{module}:OneOff", greeting="Hello")
    assert type(connector).__name__ == "OneOff"
    (record,) = connector.fetch_changed(None)  # type: ignore[arg-type]
    assert connector.to_lead(record).name == "Hello"


@pytest.mark.parametrize(
    ("target", "options", "text"),
    [
        ("no_such_module_xyz:Thing", {}, "cannot import 'no_such_module_xyz'"),
        ("{module}:Missing", {}, "has no 'Missing'"),
        ("{module}:NotAConnector", {}, "not a subclass of naturalead_sync.Connector"),
        ("{module}:OneOff", {"greting": "x"}, "settings.options"),
    ],
)
def test_bad_adapters_say_what_to_fix(
    tmp_path: Path, module: str, target: str, options: dict[str, str], text: str
) -> None:
    with pytest.raises(ConfigError, match=text) as caught:
        build(tmp_path, target.format(module=module), **options)
    if "import" in text:
        assert "entry-points.naturalead_sync" in str(caught.value)  # how to package it


def test_the_adapter_setting_needs_module_colon_class() -> None:
    with pytest.raises(ValueError, match=r"package\.module:ClassName"):
        CustomSettings.model_validate({"source": "class", "adapter": "just.a.module"})
