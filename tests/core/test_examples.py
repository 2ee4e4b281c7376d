"""The README's Quickstart example keeps working: run it twice on a copy of examples/."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from support import run_process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_quickstart_example_syncs_then_sends_nothing(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    command = [sys.executable, "-m", "naturalead_sync", "-c", "examples/quickstart.toml"]
    reports = []
    for name in ("first.json", "second.json"):
        result = run_process([*command, "run", "--report", name], cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        reports.append(json.loads((tmp_path / name).read_text())["connections"][0])
    assert (reports[0]["created"], reports[0]["rejected"]) == (8, 0)
    assert reports[1]["upsert_requests"] + reports[1]["delete_requests"] == 0
    shown = run_process([*command, "sandbox", "leads", "--json"], cwd=tmp_path)
    leads = {lead["lead_id"]: lead for lead in json.loads(shown.stdout)}
    assert leads["web_1001"]["phone"] == "+14155552671"
    assert leads["web_1001"]["tags"] == ["website", "inbound"]
    assert "web_1009" not in leads  # flagged deleted in the CSV
