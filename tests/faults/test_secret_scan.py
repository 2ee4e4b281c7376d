"""The secret scan (tests/conftest.py) catches a leak where it looks: text, log records, output
files anywhere under the base temporary folder (SQLite databases included), what processes
print, and it leaves inputs, an emulator's own credentials and the client's key hints alone.

Each test plants its secrets where the real scans would see them and takes them away again
(draining the processes' outputs, deleting the files), so the suite itself stays clean."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from naturalead_sync.sandbox import DEFAULT_KEY
from naturalead_sync_hubspot.emulator import DEFAULT_TOKEN
from naturalead_sync_salesforce.emulator import SalesforceEmulator
from support import PROCESS_OUTPUTS, ProcessOutput, run_process, spawn

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


def test_credentials_of_each_kind_are_flagged_by_their_shape(secret_scan: SecretScan) -> None:
    """A test's own token, or one an emulator issues at run time, is no known value."""
    samples = {
        "a whole HubSpot private app token": f"pat-na1-{uuid.uuid4()}",
        "a HubSpot OAuth access token": f"emu-oauth-{secrets.token_hex(16)}",
        "a Pipedrive OAuth access token": f"v1u:{secrets.token_urlsafe(24)}",
        "a Salesforce session id": SalesforceEmulator().credentials.issue_token(),
    }
    assert {shape.what for shape in secret_scan.shapes} >= samples.keys()
    for what, value in samples.items():
        assert secret_scan.in_text(f"Bearer {value}") == [f"text: {what}"], what
        assert secret_scan.in_text(f"the token ending in …{value[-4:]} expired") == [], what


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


def test_each_test_captures_debug_records_of_ours_and_info_of_the_http_libraries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the per-test scan reads: without these levels it would see WARNING and above."""
    logging.getLogger("naturalead_sync.client").debug("ours, debug")
    logging.getLogger("naturalead_sync_pipedrive.api").debug("a connector's, debug")
    logging.getLogger("httpx").info("an HTTP request line")
    logging.getLogger("httpx").debug("not captured")
    assert [r.getMessage() for r in caplog.records] == [
        "ours, debug",
        "a connector's, debug",
        "an HTTP request line",
    ]


def test_a_leak_in_an_output_file_is_flagged_and_inputs_are_not(
    secret_scan: SecretScan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("planted")  # scanned at the end of the session: cleaned up
    (folder / "naturalead-sync.toml").write_text(f'api_key = "{DEFAULT_KEY}"\n')  # an input
    assert secret_scan.in_outputs(folder) == []
    report = folder / "out" / "report.json"
    report.parent.mkdir()
    try:
        report.write_text(json.dumps({"connections": [{"error": f"401 for key {DEFAULT_KEY}"}]}))
        assert secret_scan.in_outputs(folder) == [f"{report}: naturalead_sync.sandbox.DEFAULT_KEY"]
    finally:
        report.unlink()


def test_the_end_of_session_scan_reaches_every_tmp_path_factory_folder(
    secret_scan: SecretScan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """What the session's last scan reads (the whole base temporary folder) holds a file
    planted deep in a folder of ``tmp_path_factory``, text or SQLite, as a state DB would."""
    folder = tmp_path_factory.mktemp("planted-deep") / "runs" / "2"
    folder.mkdir(parents=True)
    log, database = folder / "sync.log", folder / "state.db"
    try:
        log.write_text(f"INFO retrying with X-API-Key: {DEFAULT_KEY}\n")
        with sqlite3.connect(database) as db:  # the key in a row, among binary pages
            db.execute("CREATE TABLE t (n INTEGER, note TEXT)")
            db.executemany("INSERT INTO t VALUES (?, ?)", [(n, f"row {n}") for n in range(500)])
            db.execute("INSERT INTO t VALUES (?, ?)", (-1, f"hub token {DEFAULT_TOKEN}"))
        db.close()
        leaks = secret_scan.in_outputs(tmp_path_factory.getbasetemp())
        assert f"{log}: naturalead_sync.sandbox.DEFAULT_KEY" in leaks
        assert f"{database}: naturalead_sync_hubspot.emulator.DEFAULT_TOKEN" in leaks
    finally:
        log.unlink(missing_ok=True)
        database.unlink(missing_ok=True)
    assert secret_scan.in_outputs(folder) == []


def test_a_leak_in_what_a_process_prints_is_flagged(secret_scan: SecretScan) -> None:
    """Both ways a test starts a process record its output; the scan after the test (and at
    the end of the session) reads those records."""
    env = {**os.environ, "PLANTED": DEFAULT_KEY}  # not on the command line: labels show that
    say = "import os, sys; print('key', os.environ['PLANTED']); sys.stdout.flush(); "
    run_process([sys.executable, "-c", say + "print('ok', file=sys.stderr)"], env=env)
    with spawn(
        [sys.executable, "-c", say + "print(os.environ['PLANTED'], file=sys.stderr)"], env=env
    ) as process:
        assert process.readline().startswith("key ")
        process.communicate(timeout=30)  # its end (at the block's end it would be terminated)
    outputs = PROCESS_OUTPUTS.drain()  # taken away: this test's own scan sees nothing
    assert [(output.stdout.split()[0], output.stderr.strip()[:2]) for output in outputs] == [
        ("key", "ok"),
        ("key", "nl"),
    ]
    where = f"process {os.path.basename(sys.executable)}"
    assert secret_scan.in_processes(outputs) == [
        f"{where} stdout: naturalead_sync.sandbox.DEFAULT_KEY",
        f"{where} stdout: naturalead_sync.sandbox.DEFAULT_KEY",
        f"{where} stderr: naturalead_sync.sandbox.DEFAULT_KEY",
    ]


def test_an_issuer_may_print_its_own_credentials_on_stdout_only(secret_scan: SecretScan) -> None:
    """An emulator's command (or ``naturalead-sync sandbox serve``) prints its own tokens
    for the user to export: those are no leak on its stdout, anything else is."""
    unmarked = ProcessOutput("emulator", f"export HUBSPOT_TOKEN={DEFAULT_TOKEN}\n", "")
    assert secret_scan.in_processes([unmarked]) == [
        "emulator stdout: naturalead_sync_hubspot.emulator.DEFAULT_TOKEN"
    ]
    hub = "naturalead_sync_hubspot.emulator"
    issued = f"pat-na1-{uuid.uuid4()}"
    assert (
        secret_scan.in_processes(
            [ProcessOutput("emulator", f"{DEFAULT_TOKEN}\n{issued}\n", "", issuer=hub)]
        )
        == []
    )
    assert secret_scan.in_processes(
        [ProcessOutput("emulator", DEFAULT_KEY, f"GET / {DEFAULT_TOKEN}", issuer=hub)]
    ) == [
        "emulator stdout: naturalead_sync.sandbox.DEFAULT_KEY",
        "emulator stderr: naturalead_sync_hubspot.emulator.DEFAULT_TOKEN",
    ]


def test_tests_start_processes_only_through_the_recording_helpers() -> None:
    """Every process a test starts goes through support.run_process or support.spawn, so the
    scan sees its output: no other module of the suite calls subprocess or os to start one."""
    starts = re.compile(
        r"\bsubprocess\.(?:run|Popen|call|check_call|check_output|getoutput|getstatusoutput)\("
        r"|\bos\.(?:system|popen|spawn\w*|exec\w*)\(|create_subprocess_\w+\("
    )
    tests = Path(__file__).resolve().parents[1]
    offenders = [
        f"{path.relative_to(tests)}:{number}"
        for path in sorted(tests.rglob("*.py"))
        if path.name != "support.py"
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if starts.search(line)
    ]
    assert offenders == [], "start processes with support.run_process or support.spawn"
