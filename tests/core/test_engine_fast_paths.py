"""The record path's cheap ways give the answers of the costly ones they replaced: the check
of leads that skipped validation, the payload hash, mapping templates and ledger writes."""

from __future__ import annotations

import hashlib
import json
import random
import re
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from naturalead_sync import Lead, SourceRecord, hookimpl
from naturalead_sync.errors import RecordError
from naturalead_sync.hashing import _canonical_encoder, canonical_json, payload_hash
from naturalead_sync.mapping import compile_expression
from naturalead_sync.models import LIMITS, _plain_within_limits, revalidate
from naturalead_sync.report import ConnectionReport
from naturalead_sync.runner import run
from naturalead_sync.sandbox import Sandbox
from naturalead_sync.state import LedgerWrite, StateStore
from naturalead_sync.validation import LeadValidator
from support import lead_row, make_config, sandbox_runtime, stored, write_csv

MOMENT = datetime(2026, 1, 1, tzinfo=UTC)


class _Text(str):
    """A str subclass: validation turns it into a plain str."""


class _Scored(Lead):
    score: int = 0


def _outcome(make: Any) -> Any:
    """What ``make()`` returns, or the type of what it raises."""
    with warnings.catch_warnings():  # model_dump warns about values of the wrong type
        warnings.simplefilter("ignore")
        try:
            return make()
        except ValidationError:
            return ValidationError


# Values of each field, valid or not, for leads built without validation.
_CANDIDATES: dict[str, list[Any]] = {
    "lead_id": ["1", "x" * 255, "x" * 256, "", " \t", "\u3000", 7, b"1", _Text("1"), None],
    "name": [None, "Ada", "", 5, b"Ada", _Text("Ada"), ["Ada"]],
    "phone": [None, "+14155550100", 1.5],
    "email": [None, "a@example.com", ["a"]],
    "custom_fields": [
        {},
        {"a": "1"},
        {"a": 1},
        {1: "a"},
        {"a": None},
        {"a": _Text("b")},
        [("a", "b")],
        None,
    ],
    "tags": [[], ["a"], ["a", None], ("a",), "abc", [_Text("t")], [1], None],
}


def test_the_cheap_check_knows_every_field_of_lead() -> None:
    # _plain_within_limits checks each field by name: a new field must be added there too.
    assert set(Lead.model_fields) == set(_CANDIDATES)


def test_a_plain_lead_is_kept_as_it_is() -> None:
    lead = Lead(lead_id="1", name="Ada", custom_fields={"a": "1"}, tags=["t"])
    assert revalidate(lead) is lead
    assert revalidate(lead.model_copy(update={"name": "Bob"})).name == "Bob"


def _constructed(values: dict[str, Any]) -> Lead:
    return Lead.model_construct(**values)


def _exactly(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (a str subclass is not a str)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        pairs = zip(a.items(), b.items(), strict=False)
        return len(a) == len(b) and all(
            _exactly(key, other_key) and _exactly(value, other_value)
            for (key, value), (other_key, other_value) in pairs
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_exactly, a, b))
    return bool(a == b)


def _kept_exactly(lead: Lead, validated: Any) -> bool:
    """Whether validation accepted ``lead`` and left every value as it was, type included."""
    return isinstance(validated, Lead) and all(
        _exactly(getattr(lead, name), getattr(validated, name)) for name in Lead.model_fields
    )


@pytest.mark.parametrize(
    "values",
    [{**dict.fromkeys(_CANDIDATES), "lead_id": "1", "custom_fields": {}, "tags": []}]
    + [
        {"lead_id": "1", "custom_fields": {}, "tags": [], field: value}
        for field, values in _CANDIDATES.items()
        for value in values
    ],
)
def test_revalidate_agrees_with_validation(values: dict[str, Any]) -> None:
    lead = _constructed(values)
    expected = _outcome(lambda: Lead.model_validate(lead.model_dump()))
    got = _outcome(lambda: revalidate(lead))
    assert got is ValidationError or type(got) is Lead
    # What passes the cheap check comes back as it is, and validation keeps it unchanged;
    # anything else goes through validation itself.
    if _plain_within_limits(lead):
        assert got is lead and _kept_exactly(lead, expected)
    else:
        assert got is not lead and got == expected


def test_revalidate_agrees_with_validation_on_mixed_leads() -> None:
    rng = random.Random(7)
    plain = 0
    for _ in range(2000):
        values = {field: rng.choice(options) for field, options in _CANDIDATES.items()}
        lead = _constructed(values)
        expected = _outcome(lambda lead=lead: Lead.model_validate(lead.model_dump()))
        got = _outcome(lambda lead=lead: revalidate(lead))
        if _plain_within_limits(lead):
            plain += 1
            assert got is lead and _kept_exactly(lead, expected), values
        else:
            assert got is not lead and got == expected, values
    assert plain  # some mixes are plain (the seed is fixed)


def test_a_subclass_is_validated_as_a_lead() -> None:
    with pytest.raises(ValidationError, match="score"):
        revalidate(_Scored(lead_id="1", score=3))


def _at_and_over(limit: int, make: Any) -> list[tuple[Lead, bool]]:
    """A lead at ``limit`` (within it) and one over it."""
    return [(Lead(lead_id="1", **make(limit)), True), (Lead(lead_id="1", **make(limit + 1)), False)]


@pytest.mark.parametrize(
    ("lead", "within"),
    [
        *_at_and_over(LIMITS.name, lambda n: {"name": "x" * n}),
        *_at_and_over(LIMITS.email, lambda n: {"email": "a" * (n - 12) + "@example.com"}),
        *_at_and_over(
            LIMITS.custom_fields, lambda n: {"custom_fields": {str(i): "" for i in range(n)}}
        ),
        *_at_and_over(LIMITS.custom_field_key, lambda n: {"custom_fields": {"k" * n: "v"}}),
        *_at_and_over(LIMITS.custom_field_value, lambda n: {"custom_fields": {"k": "v" * n}}),
        *_at_and_over(LIMITS.tags, lambda n: {"tags": [str(i) for i in range(n)]}),
        *_at_and_over(LIMITS.tag, lambda n: {"tags": ["t" * n]}),
    ],
)
def test_a_lead_kept_as_it_is_passes_the_size_checks(lead: Lead, within: bool) -> None:
    # The validator skips the size checks for a lead the cheap check keeps as it is: the
    # cheap check's limits must be the size checks' own.
    assert _plain_within_limits(lead) is within
    if within:
        assert LeadValidator().check(lead)[0] is lead
    else:
        with pytest.raises(RecordError, match=r"the limit is|too long"):
            LeadValidator().check(lead)


class _Breaker:
    """A plugin whose changes skip validation (``model_copy``), each one way."""

    @hookimpl
    def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead | None:
        changes: dict[str, dict[str, Any]] = {
            "1": {"lead_id": "x" * 256},
            "2": {"name": 42},
            "3": {"tags": ["ok", None]},
            "4": {"custom_fields": {"score": 9}},
            "5": {"lead_id": "   "},
            "6": {"name": b"Bytes"},  # validation turns bytes into text, as it did before
        }
        update = changes.get(record.id)
        return None if update is None else lead.model_copy(update=update)


def _sync(
    tmp_path: Path, sandbox: Sandbox, rows: list[dict[str, Any]], plugin: object = None
) -> ConnectionReport:
    write_csv(tmp_path / "leads.csv", rows)
    # A lookback that reaches the rows' time: a second run reads them again.
    runtime = sandbox_runtime(make_config(tmp_path, connection=_CONNECTION), sandbox)
    if plugin is not None:
        runtime.pm.register(plugin, name="test-plugin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # model_dump warns about the wrong types
        report: ConnectionReport = run(runtime).connections[0]
    return report


_CONNECTION = 'lookback = "36500d"\ndefault_region = "US"'


def test_what_a_plugin_breaks_is_still_rejected_with_its_reason(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    report = _sync(tmp_path, sandbox, [lead_row(n) for n in range(8)], _Breaker())
    reasons = {r.lead_id: r.reason for r in report.rejections}
    assert reasons == {
        "1": "lead_id: String should have at most 255 characters",
        "2": "name: Input should be a valid string",
        "3": "tags.1: Input should be a valid string",
        "4": "custom_fields.score: Input should be a valid string",
        "5": "lead_id: Value error, lead_id must not be blank",
    }
    assert {r.where for r in report.rejections} == {"local"}
    assert {lead["lead_id"] for lead in sandbox.leads()} == {"0", "6", "7"}
    assert stored(sandbox, "6")["name"] == "Bytes"


def test_a_prefix_that_makes_lead_id_too_long_is_rejected(tmp_path: Path, sandbox: Sandbox) -> None:
    config = make_config(tmp_path, connection='lead_id_prefix = "p_"')
    write_csv(tmp_path / "leads.csv", [lead_row(0, id="1" * 253), lead_row(1, id="2" * 254)])
    report = run(sandbox_runtime(config, sandbox)).connections[0]
    assert [(r.lead_id, r.reason) for r in report.rejections] == [
        ("p_" + "2" * 254, "lead_id: String should have at most 255 characters")
    ]
    assert [lead["lead_id"] for lead in sandbox.leads()] == ["p_" + "1" * 253]


def test_normalised_values_are_sent_and_the_unnormalised_lead_is_hashed(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    rows = [lead_row(0, phone="(415) 555-0100", email="Ada@Example.COM"), lead_row(1)]
    assert _sync(tmp_path, sandbox, rows).created == 2
    lead = stored(sandbox, "0")
    assert (lead["phone"], lead["email"]) == ("+14155550100", "Ada@example.com")
    assert stored(sandbox, "1")["phone"] == rows[1]["phone"]
    again = _sync(tmp_path, sandbox, rows)
    assert (again.records_fetched, again.skipped_unchanged) == (2, 2)


def test_validator_changes_name_only_what_changes() -> None:
    validator = LeadValidator("GB", invalid_email="drop")
    lead = Lead(lead_id="1", phone="020 7946 0958", email="nope")
    checked, update, warned = validator.check(lead)
    assert checked is lead
    assert update == {"phone": "+442079460958", "email": None} and warned
    plain = Lead(lead_id="1", phone="+442079460958")
    assert validator.check(plain) == (plain, {}, [])


def _old_hash(signature: str, payload: dict[str, Any]) -> str:
    """The payload hash as earlier versions computed it (their ledgers hold these)."""
    text = json.dumps([signature, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@pytest.mark.parametrize(
    "payload",
    [
        {
            "lead_id": "hs_1",
            "name": "Zoë Ñúñez 李",
            "customFields": {"b": "2", "a": "1"},
            "tags": ["x"],
        },
        {"lead_id": "1", "name": "", "phone": "", "email": "", "customFields": {}, "tags": []},
        {"raw": {"when": MOMENT, "n": 1.5, "none": None, "list": [1, "a"]}},
        {
            "raw": {
                "floats": [float("inf"), -0.0, 1e-320, 0.1 + 0.2],
                "big": 10**30,
                "nested": [{"b": 1, "a": [True, False, None, ()]}],
                "escapes": '"\\\n\t\u2028\U0001f600\x00',
            }
        },
    ],
)
def test_payload_hash_is_the_one_earlier_versions_stored(payload: dict[str, Any]) -> None:
    for signature in ("csv|(None, 'reject', 'reject')", "x\"y|(\"GB\", 'drop', 'reject')"):
        assert payload_hash(signature, payload) == _old_hash(signature, payload)
    # The C encoder made once and the pure Python fallback write the same text as json.dumps.
    expected = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    assert canonical_json(payload) == _canonical_encoder(None)(payload) == expected


def test_the_payload_hash_of_a_lead_is_pinned() -> None:
    """A value an earlier version stored: if this changes, every ledger resends everything."""
    lead = {"lead_id": "hs_1", "name": "Zoë Ñúñez 李", "customFields": {"b": "2", "a": "1"}}
    assert payload_hash("csv|(None, 'reject', 'reject')", {**lead, "tags": ["x"]}) == (
        "f4fd846b83ea5645d5ec4251e714e517"
    )


_FIELDS = {
    "first": "Ada \t Mary",
    "last": "Lovelace",
    "nbsp": "a\u00a0b",
    "score": 9.0,
    "vip": True,
    "empty": "",
    "properties": {"email": "ada@example.com"},
}


def _old_render(expression: str, fields: dict[str, Any]) -> str:
    """How templates were rendered before they were compiled into parts."""
    placeholder = re.compile(r"\{([^{}]+)\}")
    text = placeholder.sub(lambda m: compile_expression(m[1])(fields), expression)
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{first} {last}", "Ada Mary Lovelace"),
        ("  Dr. {first}\n({missing})  ", "Dr. Ada Mary ()"),
        ("{first}{last}", "Ada MaryLovelace"),
        ("{nbsp}\u2003{score}", "a b 9"),
        ("{{vip}}", "{true}"),
        ("{empty} {properties.email} {empty}", "ada@example.com"),
        ("{last", ""),
        ("{}", ""),
    ],
)
def test_templates_render_as_before(expression: str, expected: str) -> None:
    assert compile_expression(expression)(_FIELDS) == expected
    if "{" in expression and re.search(r"\{[^{}]+\}", expression):
        assert _old_render(expression, _FIELDS) == expected


def test_one_checkpoint_applies_its_writes_in_order(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.db") as store:
        store.checkpoint(
            "c",
            [
                LedgerWrite("a", "1", "rejected", "h1", MOMENT, "bad"),
                LedgerWrite("a", "1", "accepted", "h2", MOMENT),
                LedgerWrite("b", "2", "rejected", "h3", MOMENT, "bad"),
                LedgerWrite("b", "2", "rejected", "h4", MOMENT, "worse"),
                LedgerWrite("c", "3", "accepted", "h5", MOMENT),
                LedgerWrite("c", "3", "deleted"),
            ],
            run_id=3,
        )
        found = store.entries("c", ["a", "b", "c"])
    assert (found["a"].status, found["a"].accepted_hash, found["a"].attempts) == (
        "accepted",
        "h2",
        0,
    )
    assert (found["b"].status, found["b"].rejected_hash, found["b"].error) == (
        "rejected",
        "h4",
        "worse",
    )
    assert found["b"].attempts == 2 and found["b"].rejected_run == 3
    assert (found["c"].status, found["c"].accepted_hash) == ("deleted", None)
