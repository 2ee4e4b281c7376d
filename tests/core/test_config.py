"""Config loading: a good file's values, secrets by reference, YAML, the defaults, a missing file.

Each malformed kind of config file, and the message that names its key and the fix, is in the
bad-input corpus (tests/faults/test_bad_inputs.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from naturalead_sync import ConfigError
from naturalead_sync.config import load_config

GOOD = """
[destination]
url = "https://api.example.test"
api_key = "${NATURALEAD_API_KEY}"

[[connections]]
name = "crm"
connector = "custom"
lookback = "10m"
[connections.settings]
path = "x.csv"
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path, environ={"NATURALEAD_API_KEY": "nl_test_" + "a" * 64, **(env or {})})


def test_good_config_loads_with_env_secret_and_durations(tmp_path: Path) -> None:
    config = load(tmp_path, GOOD)
    assert config.destination.api_key is not None
    assert config.destination.api_key.get_secret_value().startswith("nl_test_")
    assert "nl_test_" not in repr(config)
    assert config.connections[0].lookback == timedelta(minutes=10)
    assert config.base_dir == tmp_path


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="naturalead-sync init"):
        load_config(tmp_path / "nope.toml")


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "destination:\n  sandbox: sb.db\nconnections:\n  - name: crm\n    connector: custom\n"
        "    settings: {path: x.csv}\n"
    )
    config = load_config(path, environ={})
    assert config.destination.sandbox == "sb.db"
    assert config.connections[0].settings == {"path": "x.csv"}


def test_sandbox_needs_no_key_and_is_the_default(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.destination.sandbox and config.destination.api_key is None
