"""The secret scan (tests/conftest.py) catches a leak where it looks: text, log records, output
files, and it leaves inputs and the client's key hints alone."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest

from naturalead_sync.sandbox import DEFAULT_KEY

if TYPE_CHECKING:  # the fixture's class; the tests get the instance from the fixture
    from conftest import SecretScan


def test_the_scan_knows_the_sandbox_key_and_the_emulators_secrets(secret_scan: SecretScan) -> None:
    names = set(secret_scan.secrets)
    assert "naturalead_sync.sandbox.DEFAULT_KEY" in names
    assert {name.split(".")[0] for name in names} >= {
        "naturalead_sync_hubspot",
        "naturalead_sync_pipedrive",
        "naturalead_sync_salesforce",
    }


def test_each_secret_planted_in_text_is_flagged(secret_scan: SecretScan) -> None:
    for name, value in secret_scan.secrets.items():
        assert f"text: {name}" in secret_scan.in_text(f"error: token={value}; retry"), name
    other_key = "nl_live_" + "7" * 60 + "beef"  # any whole key, not only the known ones
    assert secret_scan.in_text(f"key {other_key}") == ["text: a whole Naturalead API key"]
    assert secret_scan.in_text("the API key ending in …0000 was refused (401)") == []


def test_a_leak_in_a_log_record_or_an_exception_is_flagged(secret_scan: SecretScan) -> None:
    record = logging.LogRecord("naturalead_sync.client", logging.WARNING, "x", 1, "ok", (), None)
    assert secret_scan.in_records([record]) == []
    try:
        raise RuntimeError(f"refused {DEFAULT_KEY}")
    except RuntimeError as exc:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert secret_scan.in_records([record]) == [
        "log record naturalead_sync.client: naturalead_sync.sandbox.DEFAULT_KEY"
    ]


def test_a_leak_in_an_output_file_is_flagged_and_inputs_are_not(
    secret_scan: SecretScan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("planted")  # not this test's tmp_path: that one is scanned
    (folder / "naturalead-sync.toml").write_text(f'api_key = "{DEFAULT_KEY}"\n')  # an input
    assert secret_scan.in_outputs(folder) == []
    report = folder / "out" / "report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({"connections": [{"error": f"401 for key {DEFAULT_KEY}"}]}))
    assert secret_scan.in_outputs(folder) == [f"{report}: naturalead_sync.sandbox.DEFAULT_KEY"]
    report.unlink()
