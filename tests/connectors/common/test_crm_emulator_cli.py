"""As a user would, for each CRM that ships an emulator command: start it, paste the exports
it prints, then `naturalead-sync connectors`, `check` and `run` twice on the example config,
each in its own process."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import emulator_command, example_cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@dataclass(frozen=True)
class Crm:
    connector: str
    records_flag: str  # the emulator's option for how many records to seed
    url_var: str
    token_var: str
    token_setting: str

    @property
    def config(self) -> str:
        return f"{self.connector}-emulator.toml"


CRMS = [
    Crm("hubspot", "--contacts", "HUBSPOT_BASE_URL", "HUBSPOT_TOKEN", "access_token"),
    Crm("pipedrive", "--persons", "PIPEDRIVE_BASE_URL", "PIPEDRIVE_API_TOKEN", "api_token"),
]


@pytest.fixture(params=CRMS, ids=[crm.connector for crm in CRMS])
def crm(request: pytest.FixtureRequest) -> Crm:
    chosen: Crm = request.param
    return chosen


@pytest.fixture
def emulator_env(crm: Crm) -> Iterator[dict[str, str]]:
    """The emulator's command, and the variables it tells the user to export."""
    module = f"naturalead_sync_{crm.connector}.emulator"
    with emulator_command(module, crm.records_flag, "300") as env:
        assert set(env) == {crm.url_var, crm.token_var}
        yield env


def test_example_config_checks_and_syncs_the_emulator(
    tmp_path: Path, crm: Crm, emulator_env: dict[str, str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")

    def cli(*args: str) -> tuple[int, str]:
        done = example_cli(crm.config, *args, cwd=tmp_path, env=emulator_env)
        return done.returncode, done.stdout + done.stderr

    listed = cli("connectors")[1]
    assert crm.connector in listed and f"naturalead-sync-{crm.connector}" in listed
    checked = cli("check", "--no-destination")
    assert checked[0] == 0, checked[1]
    first = cli("run", "--report", "first.json")
    assert first[0] == 0, first[1]
    report = json.loads((tmp_path / "first.json").read_text())["connections"][0]
    assert (report["created"], report["rejected"]) == (300, 0)
    second = cli("run", "--report", "second.json")
    again = json.loads((tmp_path / "second.json").read_text())["connections"][0]
    assert second[0] == 0 and again["upsert_requests"] == 0
    token = emulator_env[crm.token_var]
    assert not [output for _, output in (checked, first, second) if token in output]


def test_check_with_a_wrong_token_says_what_to_fix(
    tmp_path: Path, crm: Crm, emulator_env: dict[str, str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    wrong = {**emulator_env, crm.token_var: "not-a-token-of-this-account-0000"}
    checked = example_cli(crm.config, "check", "--no-destination", cwd=tmp_path, env=wrong)
    assert checked.returncode != 0
    assert f"settings.{crm.token_setting}" in checked.stdout + checked.stderr
    assert "…0000" in checked.stdout + checked.stderr
