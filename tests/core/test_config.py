"""Config loading: every malformed kind names its key and the fix; secrets by reference."""

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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace('name = "crm"', 'name = "crm"\nlookbak = "1m"'),
            r"connections\[crm\]\.lookbak: unknown key",
        ),
        (
            GOOD.replace('lookback = "10m"', 'lookback = "ten minutes"'),
            r"connections\[crm\]\.lookback: 'ten minutes' is not a duration",
        ),
        (GOOD.replace('name = "crm"\n', ""), r"connections\[0\]\.name: required key is missing"),
        (
            GOOD.replace('api_key = "${NATURALEAD_API_KEY}"', ""),
            r"destination: .*api_key is required",
        ),
        (
            GOOD + "\n[destination.limits]\nbatch_size = 500\n",
            r"destination\.limits\.batch_size: .*less than or equal to 100",
        ),
        (
            GOOD.replace('url = "https://api.example.test"', 'url = "ftp://x"'),
            r"destination: .*must start with https://",
        ),
        (
            GOOD.replace('name = "crm"', 'name = "crm"\ndefault_region = "XX"'),
            r"connections\[crm\]\.default_region: 'XX' is not a phone region",
        ),
        (
            GOOD.replace('name = "crm"', 'name = "crm"\nmass_delete_share = 2'),
            r"connections\[crm\]\.mass_delete_share",
        ),
        (
            GOOD + GOOD.split("[[connections]]")[1].join(["\n[[connections]]", ""]),
            r"connection name 'crm' is used twice",
        ),
        (GOOD.replace("[[connections]]", "[[connection]]"), r"connection: unknown key"),
        ("destination = [", r"is not valid TOML"),
    ],
)
def test_each_malformed_kind_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load(tmp_path, text)


def test_missing_env_var_names_the_key_and_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    with pytest.raises(
        ConfigError,
        match=r"destination\.api_key: environment variable "
        r"NATURALEAD_API_KEY is not set",
    ):
        load_config(path, environ={})


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
