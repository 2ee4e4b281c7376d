"""The bad-input corpus: malformed config files, hostile source records, hostile API answers.

Each gets a clear error or a recorded rejection, never a crash, and nothing else is lost:

- a config file of each malformed kind is refused with exit code 2 and a message that names
  the key and the fix (through the command line for a few, ``load_config`` for the rest);
- a source record of each bad kind is reported with its id (or its line) and the reason, and
  every other lead of the file still arrives;
- an API answer of each hostile kind is retried, split or recorded by the client's rules, and
  the sandbox ends up with every lead (served by a loopback app that puts a hostile answer in
  front of the real sandbox).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from naturalead_sync import ConfigError
from naturalead_sync.config import load_config
from naturalead_sync.loopback import HTTPAnswer, serve
from naturalead_sync.report import ConnectionReport
from naturalead_sync.runner import Runtime, run
from naturalead_sync.sandbox import DEFAULT_KEY, Sandbox
from naturalead_sync.state import StateStore
from support import config_text, example_cli, lead_row, make_config, sandbox_runtime, write_csv

# -- config files -------------------------------------------------------------------------------

GOOD = config_text()


def edit(old: str, new: str) -> str:
    """The good config with ``old`` replaced by ``new`` (``old`` must be in it)."""
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


#: (kind, file name, content, what the message must say: the key and the fix).
CONFIGS: list[tuple[str, str, bytes, str]] = [
    ("not TOML", "c.toml", b"[destination\nsandbox = 1", r"is not valid TOML"),
    ("not YAML", "c.yaml", b"destination: [sandbox: x\n", r"is not valid YAML"),
    ("YAML list", "c.yaml", b"- a\n- b\n", r"the top level must be a table of keys"),
    ("not UTF-8", "c.toml", b"[state]\npath = '\xff\xfe'\n", r"cannot read config file"),
    (
        "unknown key",
        "c.toml",
        edit('connector = "custom"', 'connector = "custom"\nlookbak = "5m"').encode(),
        r"connections\[csv\]\.lookbak: unknown key; did you mean 'lookback'\?",
    ),
    (
        "unknown section",
        "c.toml",
        edit("[state]", "[states]").encode(),
        r"states: unknown key; did you mean 'state'\?",
    ),
    (
        "wrong type",
        "c.toml",
        edit("[destination.limits]", '[destination.limits]\nrequests_per_window = "many"').encode(),
        r"destination\.limits\.requests_per_window: Input should be a valid integer",
    ),
    (
        "wrong choice",
        "c.toml",
        edit('connector = "custom"', 'connector = "custom"\ninvalid_phone = "keep"').encode(),
        r"connections\[csv\]\.invalid_phone: Input should be 'reject' or 'drop'",
    ),
    (
        "unknown phone region",
        "c.toml",
        edit('connector = "custom"', 'connector = "custom"\ndefault_region = "XX"').encode(),
        r"connections\[csv\]\.default_region: 'XX' is not a phone region; use an ISO code",
    ),
    (
        "missing connector",
        "c.toml",
        edit('connector = "custom"\n', "").encode(),
        r"connections\[csv\]\.connector: required key is missing",
    ),
    (
        "missing connection name",  # the connection is then named by its place in the list
        "c.toml",
        edit('name = "csv"\n', "").encode(),
        r"connections\[0\]\.name: required key is missing",
    ),
    (
        "bad duration",
        "c.toml",
        edit('timeout = "2s"', 'timeout = "two seconds"').encode(),
        r"destination\.retry\.timeout: 'two seconds' is not a duration; write e\.g\. 90",
    ),
    (
        "zero window",
        "c.toml",
        edit("[destination.limits]", '[destination.limits]\nwindow = "0s"').encode(),
        r"destination\.limits\.window: window must be positive",
    ),
    (
        "number over its maximum",
        "c.toml",
        edit("[destination.limits]", "[destination.limits]\nbatch_size = 500").encode(),
        r"destination\.limits\.batch_size: Input should be less than or equal to 100",
    ),
    (
        "share over 1",
        "c.toml",
        edit('connector = "custom"', 'connector = "custom"\nmass_delete_share = 2').encode(),
        r"connections\[csv\]\.mass_delete_share: Input should be less than or equal to 1",
    ),
    (
        "bad URL",
        "c.toml",
        edit('sandbox = "sandbox.db"', 'url = "api.naturalead.ai"\napi_key = "k"').encode(),
        r"destination: url 'api\.naturalead\.ai' must start with https://",
    ),
    (
        "url without key",
        "c.toml",
        edit('sandbox = "sandbox.db"', 'url = "https://api.naturalead.ai"').encode(),
        r'destination: api_key is required with url; set api_key = "\$\{NATURALEAD_API_KEY\}"',
    ),
    (
        "url and sandbox",
        "c.toml",
        edit('sandbox = "sandbox.db"', 'sandbox = "s.db"\nurl = "https://x.test"').encode(),
        r"destination: set either url or sandbox, not both",
    ),
    (
        "missing env var",
        "c.toml",
        edit('sandbox = "sandbox.db"', 'sandbox = "${NO_SUCH_VARIABLE_ANYWHERE}"').encode(),
        r"destination\.sandbox: environment variable NO_SUCH_VARIABLE_ANYWHERE is not set; "
        r"export NO_SUCH_VARIABLE_ANYWHERE=",
    ),
    (
        "missing env var in a connection",  # named by the connection's name, not its place
        "c.toml",
        edit('path = "leads.csv"', 'path = "${NO_SUCH_LEADS_PATH}"').encode(),
        r"connections\[csv\]\.settings\.path: environment variable NO_SUCH_LEADS_PATH is not "
        r"set; export NO_SUCH_LEADS_PATH=",
    ),
    (
        "several missing env vars",  # every one, in the one list with the other problems
        "c.toml",
        edit('sandbox = "sandbox.db"', 'sandbox = "${NO_SUCH_SANDBOX}"')
        .replace('path = "leads.csv"', 'path = "${NO_SUCH_PATH}"')
        .replace('connector = "custom"', 'connector = "custom"\nlookbak = "5m"')
        .encode(),
        r"has 3 problem\(s\):\n"
        r"  destination\.sandbox: environment variable NO_SUCH_SANDBOX is not set; "
        r"export NO_SUCH_SANDBOX=\.\.\. before running \(or remove the reference\)\n"
        r"  connections\[csv\]\.settings\.path: environment variable NO_SUCH_PATH is not set; "
        r"export NO_SUCH_PATH=\.\.\. before running \(or remove the reference\)\n"
        r"  connections\[csv\]\.lookbak: unknown key; did you mean 'lookback'\?$",
    ),
    (
        "duplicate connection name",
        "c.toml",
        (GOOD + GOOD[GOOD.index("[[connections]]") :]).encode(),
        r"connections: connection name 'csv' is used twice",
    ),
    (
        "bad connection name",
        "c.toml",
        edit('name = "csv"', 'name = "my leads!"').encode(),
        r"connections\[0\]\.name: 'my leads!' is not a valid connection name; use up to 64 "
        r"letters, digits, '_', '\.' and '-', starting with a letter or digit$",
    ),
    (
        "two bad connection names",  # each reported once, at its own key
        "c.toml",
        (GOOD + GOOD[GOOD.index("[[connections]]") :])
        .replace('name = "csv"', 'name = "my leads!"')
        .encode(),
        r"has 2 problem\(s\):\n  connections\[0\]\.name: 'my leads!' is not a valid connection "
        r"name; [^\n]*\n  connections\[1\]\.name: 'my leads!' is not a valid connection name; "
        r"[^\n]*$",
    ),
]
#: Kinds that are checked again through the command line, in a real process.
THROUGH_CLI = {
    "not TOML",
    "unknown key",
    "missing env var",
    "several missing env vars",
    "duplicate connection name",
    "two bad connection names",
}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [pytest.param(name, content, expected, id=kind) for kind, name, content, expected in CONFIGS],
)
def test_malformed_config_names_the_key_and_the_fix(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(content, expected, id=kind)
        for kind, name, content, expected in CONFIGS
        if kind in THROUGH_CLI
    ],
)
def test_malformed_config_exits_2_through_the_cli(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "bad.toml").write_bytes(content)
    result = example_cli("bad.toml", "run", cwd=tmp_path, env={})
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(expected, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "examples" / "state.db").exists()  # nothing was done


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ('path = "leads.csv"\nid_colum = "x"', r"connections\[csv\]\.settings\.id_colum: unknown"),
        ('path = "leads.csv"\nformat = "xlsx"', r"connections\[csv\]\.settings\.format"),
    ],
    ids=["unknown settings key", "bad settings value"],
)
def test_bad_connector_settings_stop_before_anything_is_sent(
    tmp_path: Path, sandbox: Sandbox, settings: str, expected: str
) -> None:
    write_csv(tmp_path / "leads.csv", [lead_row(1)])
    path = tmp_path / "naturalead-sync.toml"
    path.write_text(config_text().replace('path = "leads.csv"', settings))
    with pytest.raises(ConfigError, match=expected):
        run(sandbox_runtime(load_config(path), sandbox))
    assert sandbox.request_log == []


def test_unknown_connector_names_the_installed_ones(tmp_path: Path, sandbox: Sandbox) -> None:
    config = make_config(tmp_path)
    config.connections[0].connector = "hubspott"
    with pytest.raises(
        ConfigError,
        match=r"connections\[csv\]\.connector: no connector named "
        r"'hubspott' is installed \(installed: .*hubspot",
    ):
        run(sandbox_runtime(config, sandbox))


# -- source records -------------------------------------------------------------------------------

GOOD_LEADS = 20
BAD = GOOD_LEADS  # the id of the bad record


@dataclass(frozen=True)
class BadRecord:
    """One bad source record: CSV overrides (or raw bytes), and how it must be reported."""

    overrides: Mapping[str, str]
    lead_id: str | None  # the rejection's lead_id; None when the record must arrive instead
    where: str = "local"
    reason: str = ""
    raw: bytes = b""


RECORDS = {
    "missing id": BadRecord({"id": ""}, f"leads.csv line {BAD + 2}", "source", "missing id"),
    "missing modified time": BadRecord(
        {"updated_at": ""}, str(BAD), "source", "missing modification time"
    ),
    "invalid modified time": BadRecord(
        {"updated_at": "last tuesday"}, str(BAD), "source", "'last tuesday'"
    ),
    "invalid phone": BadRecord({"phone": "call me maybe"}, str(BAD), "local", "phone"),
    "phone of another lead": BadRecord(
        {"phone": lead_row(3)["phone"]}, str(BAD), "api", "already belongs to another lead"
    ),
    "invalid email": BadRecord({"email": "lead-at-example.com"}, str(BAD), "local", "email"),
    "huge name": BadRecord({"first_name": "N" * 300}, str(BAD), "local", "name"),
    "huge custom field": BadRecord({"company": "C" * 200_000}, str(BAD), "local", "company"),
    "non-UTF-8 bytes": BadRecord(
        {},
        str(BAD),
        "source",
        "bytes that are not valid utf-8",
        raw=f"{BAD},Bad\xff,X,+14155550099,b@example.com,C,2026-01-01T00:00:00Z,\n".encode(
            "latin-1"
        ),
    ),
    "unicode name": BadRecord({"first_name": "Zoë Ñúñez 李 🙂"}, None),
    "duplicate id in one run": BadRecord(
        {"id": "3", "updated_at": "2026-01-02T00:00:00Z", "email": "newer3@example.com"}, None
    ),
}


@pytest.mark.parametrize("case", list(RECORDS.values()), ids=list(RECORDS))
def test_bad_record_is_reported_and_the_others_arrive(
    tmp_path: Path, sandbox: Sandbox, case: BadRecord
) -> None:
    rows = [lead_row(n) for n in range(GOOD_LEADS)]
    if not case.raw:
        rows.append(lead_row(BAD, **case.overrides))
    write_csv(tmp_path / "leads.csv", rows)
    with (tmp_path / "leads.csv").open("ab") as handle:
        handle.write(case.raw)
    report = run(sandbox_runtime(make_config(tmp_path), sandbox)).connections[0]

    held = {lead["lead_id"]: lead for lead in sandbox.leads()}
    assert {str(n) for n in range(GOOD_LEADS)} <= held.keys()  # nothing else lost
    if case.lead_id is None:
        assert (report.status, report.rejected) == ("ok", 0), report.rejections
        expected = {**lead_row(BAD), **case.overrides}
        lead_id = expected["id"]
        assert held[lead_id]["name"] == f"{expected['first_name']} {expected['last_name']}"
        assert held[lead_id]["email"] == expected["email"]
        return
    assert report.status == "rejected", report.error
    [rejection] = report.rejections
    assert (rejection.lead_id, rejection.where) == (case.lead_id, case.where)
    assert case.reason in rejection.reason
    assert str(BAD) not in held
    # Refused leads are in the failed list, with the reason (a record read without an id is
    # named by its place in the report only: it has no lead_id to list).
    with StateStore(tmp_path / "state.db") as state:
        failed = [entry for _, entry in state.failed()]
    if case.lead_id == str(BAD):
        [entry] = failed
        assert entry.lead_id == case.lead_id and case.reason in (entry.error or "")
    else:
        assert failed == []


# -- API answers ----------------------------------------------------------------------------------

Hostile = Callable[[HTTPAnswer], HTTPAnswer]


def _json_body(answer: HTTPAnswer) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(answer.body)
    return body


def _with_body(
    answer: HTTPAnswer, body: bytes, content_type: str = "application/json"
) -> HTTPAnswer:
    return answer._replace(body=body, headers={**answer.headers, "Content-Type": content_type})


def _no_lead_ids(answer: HTTPAnswer) -> HTTPAnswer:
    body = _json_body(answer)
    body["errors"] = [{"error": entry["error"]} for entry in body.get("errors", [])]
    return _with_body(answer, json.dumps(body).encode())


def _unknown_fields(answer: HTTPAnswer) -> HTTPAnswer:
    body = {**_json_body(answer), "summary": {"x": 1}, "warnings": ["beta"], "created": "many"}
    return _with_body(answer, json.dumps(body).encode())


HTML = b"<!doctype html><html><body><h1>Bad gateway</h1></body></html>"


@dataclass(frozen=True)
class HostileAnswer:
    """How the loopback app answers: after the sandbox committed (``commit``) or instead of
    asking it, on the first ``times`` sync requests (0: all of them)."""

    answer: Hostile
    commit: bool = True
    times: int = 1


ANSWERS = {
    "non-JSON 200": HostileAnswer(lambda a: _with_body(a, HTML, "text/html")),
    "truncated JSON 200": HostileAnswer(lambda a: _with_body(a, a.body[: len(a.body) // 2])),
    "JSON array 200": HostileAnswer(lambda a: _with_body(a, b"[]")),
    "2xx with an empty body": HostileAnswer(lambda a: _with_body(a, b"")._replace(status=204)),
    "unknown fields": HostileAnswer(_unknown_fields, times=0),
    "errors without lead_id": HostileAnswer(_no_lead_ids, times=0),
    "HTML 502 page": HostileAnswer(
        lambda a: HTTPAnswer(502, {"Content-Type": "text/html"}, HTML), commit=False, times=2
    ),
    "HTML 404 page from a proxy": HostileAnswer(
        lambda a: HTTPAnswer(404, {"Content-Type": "text/html"}, HTML), commit=False
    ),
}


class HostileApp:
    """The sandbox behind a proxy that spoils some answers (see :class:`HostileAnswer`)."""

    def __init__(self, sandbox: Sandbox, hostile: HostileAnswer) -> None:
        self.sandbox = sandbox
        self.hostile = hostile
        self.spoiled = 0

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> HTTPAnswer:
        """The sandbox's answer, or a spoiled one."""
        if self.hostile.times and self.spoiled >= self.hostile.times:
            return self.sandbox.handle(method, path, headers, body)
        self.spoiled += 1
        if not self.hostile.commit:
            return self.hostile.answer(HTTPAnswer(200, {}, b""))
        return self.hostile.answer(self.sandbox.handle(method, path, headers, body))


@pytest.mark.parametrize("hostile", list(ANSWERS.values()), ids=list(ANSWERS))
def test_hostile_api_answer_never_loses_a_lead(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, hostile: HostileAnswer
) -> None:
    rows = [lead_row(n) for n in range(150)]
    rows[120]["phone"] = rows[7]["phone"]  # refused by the API: its phone belongs to lead 7
    write_csv(tmp_path / "leads.csv", rows)
    monkeypatch.setenv("NATURALEAD_API_KEY", DEFAULT_KEY)
    with serve(HostileApp(sandbox, hostile)) as server:
        config = make_config(
            tmp_path, destination=f'url = "{server.url}"\napi_key = "${{NATURALEAD_API_KEY}}"'
        )
        report: ConnectionReport = run(Runtime(config)).connections[0]
    assert report.status == "rejected", report.error
    assert [(r.lead_id, r.where) for r in report.rejections] == [("120", "api")]
    assert "already belongs to another lead" in report.rejections[0].reason
    held = {lead["lead_id"] for lead in sandbox.leads()}
    assert held == {str(n) for n in range(150)} - {"120"}
    with StateStore(tmp_path / "state.db") as state:
        assert [entry.lead_id for _, entry in state.failed()] == ["120"]
        assert state.counts("csv")["accepted"] == 149
