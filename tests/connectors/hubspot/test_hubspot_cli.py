"""As a user would: the emulator's command, then `naturalead-sync check` and `run` on the
example config, each in its own process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def emulator_env() -> Iterator[dict[str, str]]:
    """Start ``python -m naturalead_sync_hubspot.emulator`` and read its export lines."""
    command = [sys.executable, "-m", "naturalead_sync_hubspot.emulator", "--port", "0"]
    process = subprocess.Popen([*command, "--contacts", "300"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    env: dict[str, str] = {}
    try:
        for line in process.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value
            if len(env) == 2:
                break
        assert set(env) == {"HUBSPOT_BASE_URL", "HUBSPOT_TOKEN"}
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "naturalead_sync", "-c", "examples/hubspot-emulator.toml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_example_config_checks_and_syncs_the_emulator(
    tmp_path: Path, emulator_env: dict[str, str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    listed = cli("connectors", cwd=tmp_path, env=emulator_env)
    assert "hubspot" in listed.stdout and "naturalead-sync-hubspot" in listed.stdout
    checked = cli("check", "--no-destination", cwd=tmp_path, env=emulator_env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    first = cli("run", "--report", "first.json", cwd=tmp_path, env=emulator_env)
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads((tmp_path / "first.json").read_text())["connections"][0]
    assert (report["created"], report["rejected"]) == (300, 0)
    second = cli("run", "--report", "second.json", cwd=tmp_path, env=emulator_env)
    again = json.loads((tmp_path / "second.json").read_text())["connections"][0]
    assert second.returncode == 0 and again["upsert_requests"] == 0
    token = emulator_env["HUBSPOT_TOKEN"]
    for output in (checked, first, second):
        assert token not in output.stdout + output.stderr


def test_check_with_a_token_of_another_portal_says_what_to_fix(
    tmp_path: Path, emulator_env: dict[str, str]
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    wrong = {**emulator_env, "HUBSPOT_TOKEN": "pat-na1-not-a-token-of-this-portal-0000"}
    checked = cli("check", "--no-destination", cwd=tmp_path, env=wrong)
    assert checked.returncode != 0
    assert "settings.access_token" in checked.stdout + checked.stderr
    assert "…0000" in checked.stdout + checked.stderr
