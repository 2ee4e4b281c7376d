"""Mapping expressions, overrides, prefixes and local validation (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from naturalead_sync import Lead, RecordError, SourceRecord
from naturalead_sync.config import MappingConfig
from naturalead_sync.mapping import Mapper, compile_expression
from naturalead_sync.validation import LeadValidator

FIELDS = {
    "first": "Ada",
    "last": "Lovelace",
    "score": 9.0,
    "vip": True,
    "empty": "",
    "properties": {"email": "ada@example.com"},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("first", "Ada"),
        ("{first} {last}", "Ada Lovelace"),
        ("{first} {missing} {last}", "Ada Lovelace"),
        ("=VIP", "VIP"),
        ("==x", "=x"),
        ("properties.email", "ada@example.com"),
        ("score", "9"),
        ("vip", "true"),
        ("missing", ""),
    ],
)
def test_expressions(expression: str, expected: str) -> None:
    assert compile_expression(expression)(FIELDS) == expected


def test_overrides_replace_defaults_and_add_prefix() -> None:
    record = SourceRecord("42", datetime(2026, 1, 1, tzinfo=UTC), FIELDS)
    default = Lead(
        lead_id="42",
        name="default",
        email="d@example.com",
        custom_fields={"keep": "1", "drop": "2"},
        tags=["a"],
    )
    mapper = Mapper(
        MappingConfig(
            name="{first} {last}",
            custom_fields={"score": "score", "drop": "empty"},
            tags=["=crm", "{empty}"],
        ),
        lead_id_prefix="hs_",
    )
    lead = mapper.apply(default, record)
    assert lead.lead_id == "hs_42"
    assert lead.name == "Ada Lovelace"
    assert lead.email == "d@example.com"  # not overridden
    assert lead.custom_fields == {"keep": "1", "score": "9"}
    assert lead.tags == ["crm"]


def test_no_overrides_keep_the_lead_and_an_empty_tag_list_clears_its_tags() -> None:
    record = SourceRecord("42", datetime(2026, 1, 1, tzinfo=UTC), FIELDS)
    default = Lead(lead_id="42", name="default", tags=["a"])
    assert Mapper(MappingConfig()).apply(default, record) is default
    cleared = Mapper(MappingConfig(tags=[])).apply(default, record)
    assert (cleared.name, cleared.tags) == ("default", [])


def test_fields_no_record_holds_are_named_at_their_override() -> None:
    records = [
        SourceRecord("1", datetime(2026, 1, 1, tzinfo=UTC), FIELDS),
        SourceRecord("2", datetime(2026, 1, 1, tzinfo=UTC), {**FIELDS, "extra": None}),
    ]
    mapper = Mapper(
        MappingConfig(
            name="{first} {lats}",  # a typo next to a good field
            email="properties.email",  # a nested path that is there
            phone="empty",  # there, though empty
            custom_fields={"tier": "extra", "zz": "qqqq"},  # in one record of two; nowhere
            tags=["=VIP", "{vipp}"],  # a constant reads nothing
        )
    )
    assert mapper.missing_fields(records) == [
        "mapping.name: field 'lats' is in none of the first 2 records; did you mean 'last'? "
        "(a misspelt field maps to nothing)",
        "mapping.custom_fields.zz: field 'qqqq' is in none of the first 2 records; the records "
        "have empty, extra, first, last, properties, score, vip (a misspelt field maps to "
        "nothing)",
        "mapping.tags[1]: field 'vipp' is in none of the first 2 records; did you mean 'vip'? "
        "(a misspelt field maps to nothing)",
    ]
    assert mapper.missing_fields([]) == []


def test_empty_policy_omits_or_sends() -> None:
    lead = Lead(lead_id="1", name="A")
    assert lead.payload() == {"lead_id": "1", "name": "A"}
    assert lead.payload(send_empty=True) == {
        "lead_id": "1",
        "name": "A",
        "phone": "",
        "email": "",
        "customFields": {},
        "tags": [],
    }


def test_phone_normalised_with_region_and_policies() -> None:
    assert LeadValidator("GB").normalise_phone("020 7946 0958") == "+442079460958"
    with pytest.raises(RecordError, match=r"phone '12' is not a valid number.*invalid_phone"):
        LeadValidator("US").check(Lead(lead_id="1", phone="12"))
    _, update, warnings = LeadValidator("US", invalid_phone="drop").check(
        Lead(lead_id="1", phone="12", name="x")
    )
    assert update == {"phone": None} and warnings


def test_email_checked_and_size_limits() -> None:
    with pytest.raises(RecordError, match=r"email 'a@@b' is invalid: .*invalid_email = \"drop\""):
        LeadValidator().check(Lead(lead_id="1", email="a@@b"))
    _, update, _ = LeadValidator(invalid_email="drop").check(Lead(lead_id="1", email="nope"))
    assert update == {"email": None}
    with pytest.raises(RecordError, match=r"customFields\.notes is 10001 characters long"):
        LeadValidator().check(Lead(lead_id="1", custom_fields={"notes": "x" * 10_001}))
    with pytest.raises(RecordError, match="51 tags; the limit is 50"):
        LeadValidator().check(Lead(lead_id="1", tags=[str(i) for i in range(51)]))


def test_lead_id_must_not_be_blank() -> None:
    with pytest.raises(ValueError, match="lead_id"):
        Lead(lead_id="  ")


@pytest.mark.parametrize(
    "address",
    [
        "a.b@Example.COM",
        "a+b@gmail.com",
        "ABC@x.co.uk",
        "a@bücher.de",
        "ü@x.com",
        "a@foo.test",
        "a..b@x.com",
        ".a@x.com",
        "a@x",
        "a@x.123",
        "a@-x.com",
        '"q"@x.com',
        "a@[127.0.0.1]",
        "x" * 65 + "@x.com",
        "a@" + "x" * 64 + ".com",
    ],
)
def test_fast_email_check_agrees_with_email_validator(address: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    from naturalead_sync.validation import normalise_email

    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalise_email(address)
    except EmailNotValidError:
        got = None
    assert got == expected
