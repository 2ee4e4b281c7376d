"""`naturalead-sync new-connector`: the package it writes installs, registers and passes its
own tests (the conformance suite) at once; examples/naturalead-sync-acme is its output."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from naturalead_sync.errors import ConfigError
from naturalead_sync.scaffold import new_connector
from support import run_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "naturalead-sync-acme"


def files(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path)
    }


def test_the_example_is_the_scaffold_output(tmp_path: Path) -> None:
    target = new_connector("acme", tmp_path, "Acme CRM")
    assert files(target) == files(EXAMPLE), "regenerate examples/naturalead-sync-acme"


def test_scaffold_installs_registers_and_passes_its_tests(tmp_path: Path) -> None:
    target = new_connector("zoho-crm", tmp_path)
    assert (target / "naturalead_sync_zoho_crm" / "connector.py").is_file()
    # A virtual environment that sees this one's packages, as `pip install -e` into an
    # environment with naturalead-sync would.
    venv = tmp_path / "venv"
    run_process([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = run_process(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "_naturalead_workspace.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_process([str(python), *args], cwd=target, timeout=300)

    installed = run("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", ".")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    listed = run("-m", "naturalead_sync", "connectors")
    assert "zoho-crm" in listed.stdout and "naturalead-sync-zoho-crm" in listed.stdout
    tested = run("-m", "pytest", "-q", "-p", "no:cacheprovider")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "9 passed" in tested.stdout


@pytest.mark.parametrize("name", ["Acme", "1acme", "acme crm", "acme--crm", ""])
def test_bad_names_are_refused_with_the_rule(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match="lower-case letters and digits"):
        new_connector(name, tmp_path)


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    new_connector("acme", tmp_path)
    with pytest.raises(ConfigError, match="exists"):
        new_connector("acme", tmp_path)


def test_the_command_writes_the_package_or_says_why_not(tmp_path: Path) -> None:
    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return run_process(
            [sys.executable, "-m", "naturalead_sync", "new-connector", *args],
            cwd=tmp_path,
            timeout=60,
        )

    made = command("acme", "--title", "Acme CRM")
    assert made.returncode == 0, made.stderr
    assert "uv pip install --python .venv -e " in made.stdout
    assert "Acme CRM" in (tmp_path / "naturalead-sync-acme" / "README.md").read_text()
    refused = command("Acme CRM")
    assert refused.returncode == 2
    assert "lower-case letters and digits" in refused.stderr
