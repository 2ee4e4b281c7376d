"""The command line as a user runs it: a real process, real files, exit codes and output."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox, serve
from support import (
    config_text,
    database_dump,
    downgrade_state_to_schema_1,
    lead_row,
    run_process,
    spawn,
    write_csv,
)

BAD_KEY = "nl_live_" + "9" * 60 + "beef"


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_process(
        [sys.executable, "-m", "naturalead_sync", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def setup(tmp_path: Path, rows: list[dict[str, str]] | None = None, **kw: str) -> Path:
    write_csv(tmp_path / "leads.csv", rows if rows is not None else [lead_row(n) for n in range(5)])
    (tmp_path / "naturalead-sync.toml").write_text(config_text(**kw))
    return tmp_path


def test_run_report_and_exit_codes(tmp_path: Path) -> None:
    rows = [lead_row(n) for n in range(5)]
    rows[2]["email"] = "not-an-email"
    setup(tmp_path, rows)
    first = cli("run", "--report", "out/report.json", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "rejected 2 (local): email 'not-an-email' is invalid" in first.stdout
    report = json.loads((tmp_path / "out/report.json").read_text())
    (conn,) = report["connections"]
    assert report["exit_code"] == 3
    assert (conn["created"], conn["rejected"], conn["upsert_requests"]) == (4, 1, 1)
    assert conn["cursor_before"] is None and conn["cursor_after"]

    again = cli("run", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr

    failed = cli("failed", "--json", cwd=tmp_path)
    assert json.loads(failed.stdout)[0]["lead_id"] == "2"

    shown = cli("sandbox", "leads", "--json", cwd=tmp_path)
    assert len(json.loads(shown.stdout)) == 4

    state = cli("state", "show", cwd=tmp_path)
    assert state.returncode == 0 and "csv" in state.stdout


def test_dry_run_lists_the_plan_and_sends_nothing(tmp_path: Path) -> None:
    setup(tmp_path)
    plan = cli("run", "--dry-run", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "Dry run" in plan.stdout
    assert "would create: 0, 1, 2, 3, 4" in plan.stdout
    assert not (tmp_path / "sandbox.db").exists() or Sandbox(tmp_path / "sandbox.db").leads() == []


@contextlib.contextmanager
def remote(
    tmp_path: Path, rows: list[dict[str, str]] | None = None, **kw: str
) -> Iterator[Sandbox]:
    """A sandbox served on loopback, with the config pointing at it by URL (key in $NL_KEY)."""
    box = Sandbox(tmp_path / "remote.db")
    try:
        with serve(box) as server:
            setup(
                tmp_path, rows, destination=f'url = "{server.url}"\napi_key = "${{NL_KEY}}"', **kw
            )
            yield box
    finally:
        box.close()


def test_bad_api_key_exits_1_without_traceback_or_key(tmp_path: Path) -> None:
    with remote(tmp_path):
        result = cli("run", cwd=tmp_path, env={"NL_KEY": BAD_KEY})
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in output
    assert BAD_KEY not in output
    assert "…beef" in output and "401" in output


def test_malformed_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    setup(tmp_path, connection='lookbak = "5m"')
    result = cli("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "connections[csv].lookbak: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_env_var_exits_2(tmp_path: Path) -> None:
    setup(tmp_path, destination='url = "http://127.0.0.1:9"\napi_key = "${NOT_SET_ANYWHERE}"')
    result = cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "NOT_SET_ANYWHERE is not set" in result.stderr


def test_bad_connector_settings_name_the_settings_key(tmp_path: Path) -> None:
    setup(tmp_path, settings='id_colum = "x"')
    result = cli("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "connections[csv].settings.id_colum: unknown key" in result.stderr


def test_check_proves_connector_and_destination(tmp_path: Path) -> None:
    setup(tmp_path)
    result = cli("check", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leads:sync_create, leads:sync_delete" in result.stdout


def test_connectors_lists_the_installed_ones(tmp_path: Path) -> None:
    result = cli("connectors", "--json", cwd=tmp_path)
    found = {c["name"]: c for c in json.loads(result.stdout)}
    assert found["custom"]["distribution"] == "naturalead-sync-custom"


def test_init_writes_a_starter_that_loads(tmp_path: Path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    assert cli("init", cwd=tmp_path).returncode == 2  # will not overwrite
    write_csv(tmp_path / "leads.csv", [lead_row(1)])
    result = cli("run", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_state_reset_forgets_the_connection(tmp_path: Path) -> None:
    setup(tmp_path)
    cli("run", cwd=tmp_path)
    assert cli("state", "reset", "csv", "--yes", cwd=tmp_path).returncode == 0
    rerun = cli("run", "--report", "r.json", cwd=tmp_path)
    conn = json.loads((tmp_path / "r.json").read_text())["connections"][0]
    assert rerun.returncode == 0 and conn["upsert_requests"] == 1  # all re-sent once


def test_json_logs(tmp_path: Path) -> None:
    setup(tmp_path)
    result = cli("--log-format", "json", "-v", "run", cwd=tmp_path)
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert lines and {"time", "level", "logger", "message"} <= set(lines[0])
    assert DEFAULT_KEY not in result.stderr


def test_check_warns_when_connections_share_an_account_without_prefix(tmp_path: Path) -> None:
    setup(tmp_path)
    text = (tmp_path / "naturalead-sync.toml").read_text()
    second = text[text.index("[[connections]]") :].replace('name = "csv"', 'name = "csv2"')
    (tmp_path / "naturalead-sync.toml").write_text(text + second)
    result = cli("check", "--no-destination", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn  connections: connections csv, csv2 send to one account without" in result.stdout


@contextlib.contextmanager
def served(
    tmp_path: Path,
    *options: str,
    printed: list[str] | None = None,
    verbose: bool = False,
    logged: list[str] | None = None,
) -> Iterator[str]:
    """``naturalead-sync sandbox serve`` (``naturalead-sync -v sandbox serve`` with
    ``verbose``) in a real process; yields its URL (and puts the lines it printed on start in
    ``printed``; with ``logged``, stops it and puts its stderr lines there)."""
    command = [
        sys.executable,
        "-m",
        "naturalead_sync",
        *(["-v"] if verbose else []),
        "sandbox",
        "serve",
        "--db",
        "sb.db",
        "--port",
        "0",
        *options,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # It prints the sandbox's built-in key: its own, as an emulator prints its tokens.
    with spawn(command, issuer="naturalead_sync.sandbox", cwd=tmp_path, env=env) as process:
        lines = [process.readline()]
        url = lines[0].split()[2]
        assert url.startswith("http://127.0.0.1:")
        while not lines[-1].startswith("Ctrl-C"):
            lines.append(process.readline())
            assert lines[-1], f"sandbox serve stopped printing: {lines}"
        if printed is not None:
            printed.extend(line.rstrip("\n") for line in lines)
        yield url
        if logged is not None:  # each line is written before its request is answered
            process.send_signal(signal.SIGTERM)
            logged.extend(process.communicate(timeout=30)[1].splitlines())


def test_sandbox_serve_answers_on_loopback(tmp_path: Path) -> None:
    with served(tmp_path) as url:
        answer = httpx.post(
            f"{url}/api/leads/sync",
            headers={"X-API-Key": DEFAULT_KEY},
            json={"leads": [{"lead_id": "a", "name": "A"}]},
            timeout=10,
        )
        assert answer.json()["created"] == 1
        assert answer.headers["RateLimit-Limit"] == "50"
    shown = cli("sandbox", "leads", "--db", "sb.db", cwd=tmp_path)
    assert "1 lead(s) in the sandbox" in shown.stdout


def test_debug_logs_never_show_the_key(tmp_path: Path) -> None:
    key = "nl_test_" + "7" * 64
    with remote(tmp_path) as box:
        box.add_key(key, ["leads:sync_create", "leads:sync_delete"])
        result = cli(
            "-vv", "--debug", "run", "--report", "r.json", cwd=tmp_path, env={"NL_KEY": key}
        )
    assert result.returncode == 0, result.stderr
    assert "HTTP Request: POST" in result.stderr  # debug logging was on
    for text in (result.stdout, result.stderr, (tmp_path / "r.json").read_text()):
        assert key not in text


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(tmp_path: Path) -> None:
    rows = [lead_row(n) for n in range(500)]
    with remote(tmp_path, rows, limits='requests_per_window = 1\nwindow = "0.5s"') as box:
        # With the fault handler on, SIGABRT prints every thread's stack (see below).
        env = {**os.environ, "NL_KEY": DEFAULT_KEY, "PYTHONFAULTHANDLER": "1"}
        command = [sys.executable, "-m", "naturalead_sync", "run"]
        with spawn(command, cwd=tmp_path, env=env) as process:
            deadline = time.monotonic() + 60
            while not box.request_log:
                assert time.monotonic() < deadline, "the run sent nothing"
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGABRT)
                pytest.fail(f"still running 60 s after Ctrl-C:\n{process.communicate()[1]}")
        assert process.returncode == 130, out + err
        assert "interrupted" in err and "Traceback" not in err
        rerun = cli("run", cwd=tmp_path, env={"NL_KEY": DEFAULT_KEY})
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert len(box.leads()) == 500


def test_progress_logs_a_line_at_most_every_interval_off_a_terminal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from naturalead_sync.console import progress_reporter
    from naturalead_sync.report import ConnectionReport

    now = [0.0]
    report = ConnectionReport("crm", "custom")
    with (
        caplog.at_level(logging.INFO, logger="naturalead_sync.progress"),
        progress_reporter(True, every=30.0, clock=lambda: now[0]) as progress,
    ):
        assert progress is not None
        for step in range(7):  # t = 0, 10, ..., 60
            report.records_fetched = step * 100
            progress(report)
            now[0] += 10.0
    assert caplog.messages == [
        "crm: fetched 0 · sent 0 · unchanged 0 · rejected 0",
        "crm: fetched 300 · sent 0 · unchanged 0 · rejected 0",
        "crm: fetched 600 · sent 0 · unchanged 0 · rejected 0",
    ]


def test_progress_is_json_with_json_logs(tmp_path: Path) -> None:
    with remote(tmp_path, [lead_row(n) for n in range(300)]):
        result = cli("--log-format", "json", "run", cwd=tmp_path, env={"NL_KEY": DEFAULT_KEY})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    progress = [r for r in records if r["logger"] == "naturalead_sync.progress"]
    assert progress and progress[0]["message"].startswith("csv: fetched")


def test_sandbox_serve_takes_keys_and_faults(tmp_path: Path) -> None:
    key = "nl_test_" + "5" * 64
    options = ("--key", f"{key}=leads:sync_create", "--error-rate", "1", "--seed", "1")
    with served(tmp_path, *options) as url:
        headers = {"X-API-Key": key}
        upsert = httpx.post(
            f"{url}/api/leads/sync", headers=headers, json={"leads": [{"lead_id": "a"}]}, timeout=10
        )
        assert upsert.status_code == 503  # every sync request fails, as asked
        delete = httpx.request(
            "DELETE", f"{url}/api/leads/sync", headers=headers, json={"lead_ids": ["a"]}, timeout=10
        )
        assert delete.status_code == 403  # the key has no delete scope
        assert "leads:sync_delete" in delete.json()["message"]


def test_a_second_run_while_one_holds_the_state_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    from naturalead_sync.state import StateStore

    setup(tmp_path)
    with StateStore(tmp_path / "state.db") as store:
        store.lock()  # a run in progress, in another process than the command's
        before = database_dump(tmp_path / "state.db")
        refused = cli("run", cwd=tmp_path)
        assert refused.returncode == 1
        assert "another naturalead-sync run is using" in refused.stderr
        # No run recorded, no cursor, no ledger row.
        assert database_dump(tmp_path / "state.db") == before
        with contextlib.closing(Sandbox(tmp_path / "sandbox.db")) as sandbox:
            assert sandbox.leads() == []  # nothing was sent
    done = cli("run", cwd=tmp_path)  # the lock went with its holder
    assert done.returncode == 0, done.stderr
    with contextlib.closing(Sandbox(tmp_path / "sandbox.db")) as sandbox:
        assert len(sandbox.leads()) == 5


def _recent_rows_one_rejected() -> list[dict[str, Any]]:
    """Five leads modified a minute ago (inside the next run's lookback, so that it reads them
    again), the third with an email that is rejected locally."""
    recent = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    rows = [lead_row(n, recent) for n in range(5)]
    rows[2]["email"] = "not-an-email"
    return rows


def test_a_state_from_schema_1_is_migrated_and_the_next_run_sends_nothing(
    tmp_path: Path,
) -> None:
    # Inside the next run's lookback, which would send them again if the migration lost the
    # ledger.
    setup(tmp_path, _recent_rows_one_rejected())
    assert cli("run", cwd=tmp_path).returncode == 3  # 4 synced, 1 rejected
    downgrade_state_to_schema_1(tmp_path / "state.db")

    again = cli("-v", "run", "--report", "report.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "migrating state database" in again.stderr
    (conn,) = json.loads((tmp_path / "report.json").read_text())["connections"]
    assert (conn["records_fetched"], conn["upsert_requests"]) == (5, 0)
    # The rejected lead: unchanged in the window (so not fetched again as failed).
    assert (conn["skipped_unchanged"], conn["skipped_still_failing"]) == (4, 1)
    assert conn["failed_refetched"] == 0
    shown = cli("state", "show", cwd=tmp_path)
    assert shown.returncode == 0
    assert re.search(r"csv .*│ 4 +│ 1 +│ 0 +│", shown.stdout), shown.stdout


def test_check_reports_an_unusable_or_busy_state(tmp_path: Path) -> None:
    from naturalead_sync.state import StateStore

    setup(tmp_path)
    with StateStore(tmp_path / "state.db") as store:
        store.lock()  # a run in progress
        busy = cli("check", "--no-destination", cwd=tmp_path)
    assert busy.returncode == 0
    assert "warn  state: another naturalead-sync run is using" in busy.stdout
    (tmp_path / "state.db").write_bytes(b"garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"state.db{suffix}").unlink(missing_ok=True)
    broken = cli("check", "--no-destination", cwd=tmp_path)
    assert broken.returncode == 1
    assert "FAIL  state:" in broken.stdout and "cannot be read" in broken.stdout


def test_check_exits_2_like_run_for_an_unknown_connector_or_bad_settings(tmp_path: Path) -> None:
    setup(tmp_path, settings='modifed_column = "updated_at"')
    config = tmp_path / "naturalead-sync.toml"
    typo = config.read_text()
    cases = {
        "typo": (typo.replace('connector = "custom"', 'connector = "custm"'), "custm"),
        "unknown": (typo.replace('connector = "custom"', 'connector = "zqxj"'), "zqxj"),
        "settings": (typo, None),
    }
    for case, (text, connector) in cases.items():
        config.write_text(text)
        run = cli("run", cwd=tmp_path)
        check = cli("check", cwd=tmp_path)
        assert (run.returncode, check.returncode) == (2, 2), (case, check.stdout, check.stderr)
        assert check.stderr == run.stderr, case  # the same message
        assert "ok  config" not in check.stdout, case
        if connector == "custm":
            assert "no connector named 'custm' is installed" in check.stderr
            assert "did you mean 'custom'?" in check.stderr
            assert "pip install" not in check.stderr
        elif connector == "zqxj":
            assert "did you mean" not in check.stderr
            assert "pip install naturalead-sync-zqxj" in check.stderr
        else:
            assert "settings.modifed_column: unknown key; did you mean 'modified_column'?" in (
                check.stderr
            )


def test_state_reset_and_failed_refuse_an_unknown_connection(tmp_path: Path) -> None:
    setup(tmp_path)
    assert cli("run", cwd=tmp_path).returncode == 0
    for command in (("state", "reset", "nosuch", "--yes"), ("failed", "-n", "nosuch")):
        refused = cli(*command, cwd=tmp_path)
        assert refused.returncode == 2, (command, refused.stdout)
        assert "unknown connection 'nosuch'; known: csv" in refused.stderr, command
        assert "reset" not in refused.stdout and "failed lead" not in refused.stdout
    run = cli("run", "-n", "nosuch", cwd=tmp_path)  # the same words as run's
    assert run.returncode == 2 and "unknown connection 'nosuch'; known: csv" in run.stderr
    # A connection only the state still knows (renamed in the config) is known to both.
    config = tmp_path / "naturalead-sync.toml"
    config.write_text(config.read_text().replace('name = "csv"', 'name = "crm"'))
    refused = cli("failed", "-n", "nosuch", cwd=tmp_path)
    assert refused.returncode == 2 and "known: crm, csv" in refused.stderr
    assert cli("failed", "-n", "csv", cwd=tmp_path).returncode == 0
    reset = cli("state", "reset", "csv", "--yes", cwd=tmp_path)
    assert reset.returncode == 0 and "state of 'csv' reset" in reset.stdout


def test_failed_json_is_one_array_and_state_show_has_json(tmp_path: Path) -> None:
    rows = [lead_row(n) for n in range(5)]
    rows[2]["email"] = "not-an-email"
    setup(tmp_path, rows)
    none = cli("failed", "--json", cwd=tmp_path)
    assert none.returncode == 0 and json.loads(none.stdout) == []
    assert cli("run", cwd=tmp_path).returncode == 3
    failed = json.loads(cli("failed", "--json", cwd=tmp_path).stdout)
    assert [(f["connection"], f["lead_id"], f["attempts"]) for f in failed] == [("csv", "2", 1)]
    assert "not-an-email" in failed[0]["error"]

    shown = cli("state", "show", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    state = json.loads(shown.stdout)
    assert state["state"] == str(tmp_path / "state.db")
    (conn,) = state["connections"]
    assert conn["connection"] == "csv" and conn["cursor"] and conn["delete_cursor"]
    assert (conn["synced"], conn["failed"], conn["deleted"]) == (4, 1, 0)
    (latest,) = conn["runs"]
    assert latest["status"] == "rejected" and latest["started_at"] and latest["finished_at"]


def test_sandbox_serve_prints_what_to_paste_into_the_config(tmp_path: Path) -> None:
    printed: list[str] = []
    with served(tmp_path, printed=printed) as url:
        assert f'url = "{url}"' in printed
        assert 'api_key = "${NATURALEAD_API_KEY}"' in printed
        (export,) = [line for line in printed if line.startswith("export ")]
        name, _, key = export.removeprefix("export ").partition("=")
        assert (name, key) == ("NATURALEAD_API_KEY", DEFAULT_KEY)
        # The printed lines, pasted as they are, make a config that syncs into it.
        pasted = "\n".join(line for line in printed if line.startswith(("url = ", "api_key = ")))
        setup(tmp_path, destination=pasted)
        result = cli("run", cwd=tmp_path, env={name: key})
        assert result.returncode == 0, result.stdout + result.stderr
    with contextlib.closing(Sandbox(tmp_path / "sb.db")) as sandbox:
        assert len(sandbox.leads()) == 5


def test_new_connector_prints_steps_that_work_here_and_refuses_an_installed_name(
    tmp_path: Path,
) -> None:
    import naturalead_sync

    core = Path(naturalead_sync.__file__).resolve().parents[1]  # this checkout's core/
    assert (core / "pyproject.toml").is_file()
    made = cli("new-connector", "acme", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    steps = [line.strip() for line in made.stdout.splitlines()[2:]]
    assert steps == [
        "cd naturalead-sync-acme",
        "uv venv",
        f"uv pip install --python .venv -e {core} -e '.[test]'",
        ".venv/bin/pytest",
    ]
    for name in ("custom", "hubspot"):  # installed: its entry point and distribution
        refused = cli("new-connector", name, cwd=tmp_path)
        assert refused.returncode == 2, refused.stdout
        assert f"{name!r} clashes with the entry point {name!r}" in refused.stderr
        assert f"naturalead-sync-{name}" in refused.stderr
        assert not (tmp_path / f"naturalead-sync-{name}").exists()


def test_debug_logs_say_what_each_batch_and_checkpoint_did(tmp_path: Path) -> None:
    rows = [lead_row(n) for n in range(150)]
    rows[7]["email"] = "not-an-email"  # refused locally: 149 sent, in two batches
    outputs = {}
    for flag in ("-v", "-vv"):
        folder = tmp_path / flag
        folder.mkdir()
        setup(folder, rows)
        result = cli(flag, "run", cwd=folder)
        assert result.returncode == 3, result.stdout + result.stderr
        outputs[flag] = result.stderr
    debug = outputs["-vv"]
    assert re.search(
        r"DEBUG naturalead_sync\.engine: csv: batch 1: 100 lead\(s\) in 1 request\(s\): "
        r"created 100, updated 0, rejected 0; waited \d+\.\d{3}s for the pacer",
        debug,
    ), debug
    assert re.search(r"csv: batch 2: 49 lead\(s\) in 1 request\(s\): created 49, updated 0", debug)
    # Each checkpoint: what it wrote and where the cursor went.
    assert re.search(r"csv: checkpoint: \d+ ledger write\(s\), cursor -> 20\d\d-", debug), debug
    assert re.search(r"csv: checkpoint: 0 ledger write\(s\), delete cursor -> 20\d\d-", debug)
    # Each request: what it carried, the answer and the pacer's wait.
    assert re.search(
        r"DEBUG naturalead_sync\.client: POST /api/leads/sync: 100 item\(s\), answered 200 "
        r"in \d+\.\d{3}s after \d+\.\d{3}s waiting for the pacer",
        debug,
    ), debug
    assert "DEBUG" not in outputs["-v"]  # -v stays at info


def test_json_log_format_makes_the_summary_and_the_errors_json(tmp_path: Path) -> None:
    rows = [lead_row(n) for n in range(5)]
    rows[2]["email"] = "not-an-email"
    setup(tmp_path, rows)
    done = cli("--log-format", "json", "run", "--report", "report.json", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    # One JSON object per connection on stdout: the report's connection entries.
    assert [json.loads(line) for line in done.stdout.splitlines()] == report["connections"]
    assert all(json.loads(line) for line in done.stderr.splitlines())  # logs are JSON too

    refused = cli("--log-format", "json", "run", "-n", "nosuch", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    (error,) = [json.loads(line) for line in refused.stderr.splitlines()]
    assert error["level"] == "error" and error["exit_code"] == 2
    assert error["message"] == "unknown connection 'nosuch'; known: csv"
    assert {"time", "logger"} <= set(error)  # as the JSON log lines

    with remote(tmp_path):  # a connection that fails: its error is in its JSON object
        failed = cli("--log-format", "json", "run", cwd=tmp_path, env={"NL_KEY": BAD_KEY})
    assert failed.returncode == 1
    (conn,) = [json.loads(line) for line in failed.stdout.splitlines()]
    assert conn["status"] == "failed" and "401" in conn["error"]
    assert all(json.loads(line) for line in failed.stderr.splitlines())


def test_summary_counts_still_failing_apart_and_names_the_cursor_a_full_refresh_ignored(
    tmp_path: Path,
) -> None:
    setup(tmp_path, _recent_rows_one_rejected())  # read again by the next run
    first = cli("run", "--report", "first.json", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "still failing" not in first.stdout  # shown only when there are some

    again = cli("run", "--report", "again.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    cursor = json.loads((tmp_path / "again.json").read_text())["connections"][0]["cursor_after"]
    assert "fetched 5 · created 0 · updated 0 · unchanged 4 · still failing 1 · rejected 0" in (
        again.stdout
    )

    refresh = cli("run", "--full-refresh", "--report", "refresh.json", cwd=tmp_path)
    assert refresh.returncode == 0, refresh.stderr
    assert f"cursor {cursor} (ignored: --full-refresh) -> " in refresh.stdout, refresh.stdout
    (conn,) = json.loads((tmp_path / "refresh.json").read_text())["connections"]
    assert (conn["cursor_before"], conn["cursor_ignored"]) == (None, cursor)


def test_check_leaves_a_missing_state_uncreated(tmp_path: Path) -> None:
    setup(tmp_path)
    config = tmp_path / "naturalead-sync.toml"
    config.write_text(config.read_text().replace('path = "state.db"', 'path = "st/state.db"'))
    result = cli("check", "--no-destination", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    state = tmp_path / "st" / "state.db"
    assert f"ok  state: {state} does not exist yet; the first run creates it" in result.stdout
    assert not (tmp_path / "st").exists()  # nothing created: no file, no folder, no lock

    (tmp_path / "blocked").write_text("a file where the state's folder should be\n")
    config.write_text(config.read_text().replace("st/state.db", "blocked/state.db"))
    blocked = cli("check", "--no-destination", cwd=tmp_path)
    assert blocked.returncode == 1, blocked.stdout
    assert f"FAIL  state: {tmp_path / 'blocked' / 'state.db'} cannot be created" in blocked.stdout

    config.write_text(config.read_text().replace("blocked/state.db", "st/state.db"))
    assert cli("run", cwd=tmp_path).returncode == 0  # the first run creates it
    known = cli("check", "--no-destination", cwd=tmp_path)
    assert f"ok  state: {state}: 1 connection(s) known" in known.stdout, known.stdout


def test_sandbox_serve_logs_each_request_and_fault_with_v(tmp_path: Path) -> None:
    key = "nl_test_" + "3" * 64
    logged: list[str] = []
    options = ("--key", f"{key}=leads:sync_create", "--error-rate", "0.5", "--seed", "3")
    with served(tmp_path, *options, verbose=True, logged=logged) as url:
        statuses = [
            httpx.post(
                f"{url}/api/leads/sync",
                headers={"X-API-Key": key},
                json={"leads": [{"lead_id": f"a{n}"}, {"lead_id": f"b{n}"}]},
                timeout=10,
            ).status_code
            for n in range(6)
        ]
        refused = httpx.post(
            f"{url}/api/leads/sync", headers={"X-API-Key": BAD_KEY}, json={"leads": []}, timeout=10
        )
        assert refused.status_code == 401
    assert sorted(set(statuses)) == [200, 503]  # the seed gives both
    requests = [line for line in logged if "/api/leads/sync" in line]
    assert len(requests) == 7, logged
    for line, status in zip(requests, [*statuses, 401], strict=True):
        assert " INFO " in line and f"POST /api/leads/sync {status}" in line, line
        assert ("fault: 503 (--error-rate)" in line) == (status == 503), line
    assert "2 lead(s)" in requests[0]
    assert key not in "\n".join(logged) and BAD_KEY not in "\n".join(logged)

    quiet: list[str] = []
    with served(tmp_path, logged=quiet) as url:  # without -v: no request lines
        httpx.post(f"{url}/api/leads/sync", headers={"X-API-Key": BAD_KEY}, json={}, timeout=10)
    assert not [line for line in quiet if "/api/leads/sync" in line], quiet
