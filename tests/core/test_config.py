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


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_every_missing_variable_of_an_example_is_named_at_its_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLES / "hubspot-emulator.toml", environ={})
    assert str(caught.value).splitlines()[1:] == [
        "  connections[hubspot].settings.access_token: environment variable HUBSPOT_TOKEN is "
        "not set; export HUBSPOT_TOKEN=... before running (or remove the reference)",
        "  connections[hubspot].settings.base_url: environment variable HUBSPOT_BASE_URL is "
        "not set; export HUBSPOT_BASE_URL=... before running (or remove the reference)",
    ]
    assert "has 2 problem(s)" in str(caught.value)


def test_missing_variable_message_never_holds_a_value(tmp_path: Path) -> None:
    secret = "nl_live_" + "s" * 64
    text = GOOD.replace('path = "x.csv"', 'path = "x.csv"\ntoken = "${SET}:${UNSET}"')
    with pytest.raises(ConfigError, match=r"settings\.token: environment variable UNSET") as caught:
        load(tmp_path, text, env={"NATURALEAD_API_KEY": secret, "SET": secret})
    assert secret not in str(caught.value) and "SET}" not in str(caught.value)


def test_a_missing_variable_is_not_also_reported_as_a_bad_value(tmp_path: Path) -> None:
    text = GOOD.replace('url = "https://api.example.test"', 'url = "${NL_URL}"').replace(
        'lookback = "10m"', 'lookback = "${LOOKBACK}"'
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert str(caught.value).splitlines()[1:] == [
        "  destination.url: environment variable NL_URL is not set; export NL_URL=... before "
        "running (or remove the reference)",
        "  connections[crm].lookback: environment variable LOOKBACK is not set; export "
        "LOOKBACK=... before running (or remove the reference)",
    ]


def test_connections_sharing_a_name_are_told_apart_by_their_place(tmp_path: Path) -> None:
    connection = GOOD[GOOD.index("[[connections]]") :].replace('"10m"', '"10m"\nlookbak = "1m"')
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, GOOD + connection)
    assert str(caught.value).splitlines()[1:] == [
        "  connections[1].lookbak: unknown key; did you mean 'lookback'?"
    ]


def test_a_connection_with_a_bad_name_is_named_by_its_place(tmp_path: Path) -> None:
    text = GOOD.replace('name = "crm"', 'name = "my crm!"').replace('"10m"', '"ten minutes"')
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert str(caught.value).splitlines()[1:] == [
        "  connections[0].name: 'my crm!' is not a valid connection name; use up to 64 letters, "
        "digits, '_', '.' and '-', starting with a letter or digit",
        "  connections[0].lookback: 'ten minutes' is not a duration; write e.g. 90, \"90s\", "
        '"5m", "2h"',
    ]
