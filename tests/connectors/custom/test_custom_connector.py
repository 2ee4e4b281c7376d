"""The custom connector on real files: reading, windows, bad rows, deletes, mapping, check."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from naturalead_sync import ConnectorContext, ConnectorError, SourceRecord, Window
from naturalead_sync.plugins import get_connectors, get_plugin_manager
from naturalead_sync_custom import CustomConnector, CustomSettings
from naturalead_sync_custom.files import parse_timestamp, read_rows

HEADER = "id,name,phone,email,updated_at,deleted\n"
EVERYTHING = Window(None, datetime(2100, 1, 1, tzinfo=UTC))

Bad = list[tuple[str, str]]


def at(day: int, hour: int = 0) -> datetime:
    """A moment in May 2026, UTC."""
    return datetime(2026, 5, day, hour, tzinfo=UTC)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_jsonl(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return write(path, "\n".join(lines) + "\n")


@pytest.fixture
def bad() -> Bad:
    return []


@pytest.fixture
def make(tmp_path: Path, bad: Bad) -> Callable[..., CustomConnector]:
    """A connector over ``tmp_path`` whose bad records land in ``bad``."""

    def build(**settings: Any) -> CustomConnector:
        settings.setdefault("path", "leads.csv")
        context = ConnectorContext(
            connection="t",
            base_dir=tmp_path,
            bad_record_sink=lambda where, reason, record_id: bad.append(
                (record_id, f"{where}: {reason}") if record_id else (where, reason)
            ),
        )
        return CustomConnector(CustomConnector.Settings(**settings), context)

    return build


def ids(records: Any) -> list[str]:
    return [r.id for r in records]


# -- registration and settings -------------------------------------------------------------------


def test_registered_through_the_entry_point() -> None:
    info = get_connectors(get_plugin_manager())["custom"]
    assert info.cls is CustomConnector
    assert CustomConnector.Settings is CustomSettings
    assert CustomConnector.ordered is False


def test_settings_defaults_and_inferred_formats() -> None:
    s = CustomSettings(path="leads.csv")
    assert (s.format, s.id_column, s.modified_column, s.deleted_column) == (
        "csv",
        "id",
        "updated_at",
        None,
    )
    assert s.deleted_values == ["true", "1", "yes", "y", "deleted"]
    assert (s.encoding, s.delimiter, s.timezone) == ("utf-8", ",", "UTC")
    assert CustomSettings(path="x/LEADS.JSONL").format == "jsonl"
    assert CustomSettings(path="leads.ndjson").format == "jsonl"
    assert CustomSettings(path="export.txt", format="csv").file_format == "csv"
    assert CustomSettings(path="p.csv", deleted_values=[" Gone ", ""]).deleted_values == ["gone"]


def test_every_setting_has_a_description() -> None:
    for name, field in CustomSettings.model_fields.items():
        assert field.description, name


@pytest.mark.parametrize(
    ("settings", "loc", "text"),
    [
        ({"path": "leads.csv", "id_colum": "x"}, "id_colum", "Extra inputs"),
        ({"path": "export.txt"}, "format", "settings.format"),
        ({"path": "leads.csv", "format": "xlsx"}, "format", "'csv' or 'jsonl'"),
        ({"path": "leads.csv", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"path": "leads.csv", "encoding": "klingon"}, "encoding", "unknown encoding"),
        ({"path": "leads.csv", "delimiter": ";;"}, "delimiter", "one character"),
        ({"path": "leads.csv", "deleted_values": []}, "deleted_values", "at least one"),
        ({}, "path", "Field required"),
    ],
)
def test_settings_reject_bad_values(settings: dict[str, Any], loc: str, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CustomSettings.model_validate(settings)
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [(loc,)]
    assert text in errors[0]["msg"]


def test_settings_accept_zone_names() -> None:
    assert CustomSettings(path="a.csv", timezone="Europe/Paris").timezone == "Europe/Paris"


# -- reading ---------------------------------------------------------------------------------------


def test_csv_rows_are_yielded_with_their_fields(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(
        tmp_path / "leads.csv",
        HEADER
        + "1,Ada Lovelace,+14155550001,ada@example.com,2026-05-01T10:00:00Z,\n"
        + '2,"Grace ""Amazing"" Hopper",,grace@example.com,2026-05-02,false\n',
    )
    records = list(make().fetch_changed(EVERYTHING))
    assert ids(records) == ["1", "2"]
    assert records[0].modified_at == at(1, 10)
    assert records[0].fields["email"] == "ada@example.com"
    assert records[1].fields["name"] == 'Grace "Amazing" Hopper'
    assert records[1].modified_at == at(2)
    assert bad == []


def test_jsonl_rows_keep_json_values(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write_jsonl(
        tmp_path / "leads.jsonl",
        [
            {"id": 7, "name": "Ada", "updated_at": 1777630000, "tags": ["vip", "web"]},
            "",
            {"id": "8", "name": "Bob", "updated_at": "2026-05-01T12:00:00+02:00", "x": {"a": 1}},
        ],
    )
    records = list(make(path="leads.jsonl").fetch_changed(EVERYTHING))
    assert ids(records) == ["7", "8"]
    assert records[0].modified_at == datetime.fromtimestamp(1777630000, UTC)
    assert records[0].fields["tags"] == ["vip", "web"]
    assert records[1].modified_at == at(1, 10)
    assert records[1].fields["x"] == {"a": 1}
    assert bad == []


def test_csv_quoted_newlines_keep_line_numbers_right(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(
        tmp_path / "leads.csv",
        HEADER
        + '1,"two\nline name",,,2026-05-01,\n'  # lines 2-3
        + "\n"  # line 4: blank, skipped
        + ",No Id,,,2026-05-01,\n"  # line 5
        + "3,Three,,,2026-05-01,\n",
    )
    records = list(make().fetch_changed(EVERYTHING))
    assert ids(records) == ["1", "3"]
    assert records[0].fields["name"] == "two\nline name"
    assert bad == [("leads.csv line 5", "missing id in column 'id' (settings.id_column)")]


def test_csv_header_is_trimmed_and_bom_dropped(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write(tmp_path / "leads.csv", "\ufeffid , updated_at\n1,2026-05-01\n")
    assert ids(make().fetch_changed(EVERYTHING)) == ["1"]


def test_semicolon_delimiter_and_short_rows(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write(tmp_path / "leads.csv", "id;updated_at;email\n1;2026-05-01\n")
    records = list(make(delimiter=";").fetch_changed(EVERYTHING))
    assert ids(records) == ["1"]
    assert records[0].fields == {"id": "1", "updated_at": "2026-05-01", "email": ""}


def test_stopping_early_closes_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "leads.csv", "id,updated_at\n" + "1,2026-05-01\n" * 3)
    rows = read_rows(path, "csv")
    assert next(rows).where == "leads.csv line 2"
    rows.close()  # what happens when the engine stops iterating
    assert list(rows) == []


# -- windows ---------------------------------------------------------------------------------------


@pytest.fixture
def dated(tmp_path: Path) -> Path:
    return write(
        tmp_path / "leads.csv",
        HEADER + "".join(f"{d},N{d},,,2026-05-0{d}T00:00:00Z,\n" for d in (1, 2, 3, 4)),
    )


def test_window_start_is_inclusive_end_exclusive(
    dated: Path, make: Callable[..., CustomConnector]
) -> None:
    assert ids(make().fetch_changed(Window(at(2), at(4)))) == ["2", "3"]


def test_window_without_start_reads_everything_before_end(
    dated: Path, make: Callable[..., CustomConnector]
) -> None:
    assert ids(make().fetch_changed(Window(None, at(3)))) == ["1", "2"]


def test_file_needs_no_order(tmp_path: Path, make: Callable[..., CustomConnector]) -> None:
    write(tmp_path / "leads.csv", HEADER + "b,,,,2026-05-03,\na,,,,2026-05-01,\nc,,,,2026-05-02,\n")
    assert ids(make().fetch_changed(Window(at(1), at(3)))) == ["a", "c"]


# -- bad rows --------------------------------------------------------------------------------------


def test_bad_rows_are_reported_and_the_others_yielded(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(
        tmp_path / "leads.csv",
        HEADER
        + "1,Good,,,2026-05-01,\n"  # line 2
        + "  ,Blank id,,,2026-05-01,\n"  # line 3
        + "3,Bad time,,,yesterday,\n"  # line 4
        + "4,No time,,,,\n"  # line 5
        + "5,Too,many,values,2026-05-01,,extra\n"  # line 6
        + "6,Good too,,,2026-05-01,\n",
    )
    assert ids(make().fetch_changed(EVERYTHING)) == ["1", "6"]
    assert [where for where, _ in bad] == ["leads.csv line 3", "3", "4", "5"]
    assert bad[0][1] == "missing id in column 'id' (settings.id_column)"
    assert bad[1][1].startswith("leads.csv line 4: column 'updated_at' (settings.modified_column)")
    assert "'yesterday'" in bad[1][1]
    assert bad[2][1] == (
        "leads.csv line 5: missing modification time in column 'updated_at' "
        "(settings.modified_column)"
    )
    assert bad[3][1].startswith("leads.csv line 6: has 7 values but the header has 6 columns")


def test_bad_rows_outside_the_window_are_not_reported_again(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(tmp_path / "leads.csv", HEADER + ",Old,,,2026-05-01,\n,New,,,2026-05-03,\n")
    assert ids(make().fetch_changed(Window(at(2), at(4)))) == []
    assert [where for where, _ in bad] == ["leads.csv line 3"]


def test_jsonl_bad_lines_are_reported_and_skipped(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write_jsonl(
        tmp_path / "leads.jsonl",
        [
            {"id": 1, "updated_at": "2026-05-01"},
            "{not json",
            '["a", "list"]',
            {"updated_at": "2026-05-01"},
            {"id": {"nested": 1}, "updated_at": "2026-05-01"},
            {"id": 6, "updated_at": "2026-05-01"},
        ],
    )
    assert ids(make(path="leads.jsonl").fetch_changed(EVERYTHING)) == ["1", "6"]
    assert [where for where, _ in bad] == [f"leads.jsonl line {n}" for n in (2, 3, 4, 5)]
    assert bad[0][1].startswith("is not valid JSON")
    assert bad[1][1] == "is not a JSON object but a list"
    assert bad[2][1] == "missing id in column 'id' (settings.id_column)"
    assert "is not a string or number" in bad[3][1]


def test_non_utf8_bytes_are_reported_not_fatal(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    (tmp_path / "leads.csv").write_bytes(
        HEADER.encode()
        + b"1,Jos\xe9,,,2026-05-01,\n"  # latin-1 in a UTF-8 file
        + "2,Zoë 李,,,2026-05-01,\n".encode()
    )
    records = list(make().fetch_changed(EVERYTHING))
    assert ids(records) == ["2"]
    assert records[0].fields["name"] == "Zoë 李"
    assert len(bad) == 1
    where, reason = bad[0]
    assert where == "1"
    assert reason.startswith("leads.csv line 2: contains bytes that are not valid utf-8")
    assert "settings.encoding" in reason


def test_non_utf8_bytes_in_jsonl(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    (tmp_path / "leads.jsonl").write_bytes(
        b'{"id": 1, "name": "Jos\xe9", "updated_at": "2026-05-01"}\n'
        b'{"id": 2, "name": "\\ufffd is fine escaped", "updated_at": "2026-05-01"}\n'
    )
    assert ids(make(path="leads.jsonl").fetch_changed(EVERYTHING)) == ["2"]
    assert [where for where, _ in bad] == ["1"]
    assert "settings.encoding" in bad[0][1]


def test_the_configured_encoding_reads_the_file(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(tmp_path / "leads.csv", HEADER + "1,José Müller,,,2026-05-01,\n", encoding="cp1252")
    records = list(make(encoding="cp1252").fetch_changed(EVERYTHING))
    assert records[0].fields["name"] == "José Müller"
    assert bad == []


def test_missing_file_raises_naming_the_setting(make: Callable[..., CustomConnector]) -> None:
    with pytest.raises(ConnectorError, match=r"leads\.csv not found; fix settings\.path"):
        list(make().fetch_changed(EVERYTHING))


def test_csv_without_the_id_column_raises_once(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(tmp_path / "leads.csv", "key,updated_at\n1,2026-05-01\n")
    with pytest.raises(ConnectorError, match=r"no column 'id' \(settings\.id_column\)"):
        list(make().fetch_changed(EVERYTHING))
    assert bad == []


# -- deletes ---------------------------------------------------------------------------------------


@pytest.fixture
def flagged(tmp_path: Path) -> Path:
    return write(
        tmp_path / "leads.csv",
        HEADER
        + "1,Live,,,2026-05-01,\n"
        + "2,Gone,,,2026-05-02,TRUE\n"
        + "3,Gone too,,,2026-05-03, yes \n"
        + "4,Kept,,,2026-05-03,no\n"
        + "5,Old gone,,,2026-05-01,deleted\n",
    )


def test_flagged_rows_are_deletes_not_changes(
    flagged: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    connector = make(deleted_column="deleted")
    assert ids(connector.fetch_changed(EVERYTHING)) == ["1", "4"]
    assert list(connector.fetch_deleted(EVERYTHING)) == ["2", "3", "5"]
    assert list(connector.fetch_deleted(Window(at(2), at(3)))) == ["2"]
    assert bad == []


def test_custom_deleted_values(flagged: Path, make: Callable[..., CustomConnector]) -> None:
    connector = make(deleted_column="deleted", deleted_values=["NO"])
    assert list(connector.fetch_deleted(EVERYTHING)) == ["4"]


def test_without_deleted_column_nothing_is_deleted(
    flagged: Path, make: Callable[..., CustomConnector]
) -> None:
    connector = make()
    assert list(connector.fetch_deleted(EVERYTHING)) == []
    assert ids(connector.fetch_changed(EVERYTHING)) == ["1", "2", "3", "4", "5"]


def test_jsonl_boolean_deleted_flags(tmp_path: Path, make: Callable[..., CustomConnector]) -> None:
    write_jsonl(
        tmp_path / "leads.jsonl",
        [
            {"id": 1, "updated_at": "2026-05-01", "deleted": True},
            {"id": 2, "updated_at": "2026-05-01", "deleted": False},
            {"id": 3, "updated_at": "2026-05-01"},
            {"id": 4, "updated_at": "2026-05-01", "deleted": 1},
        ],
    )
    connector = make(path="leads.jsonl", deleted_column="deleted")
    assert list(connector.fetch_deleted(EVERYTHING)) == ["1", "4"]
    assert ids(connector.fetch_changed(EVERYTHING)) == ["2", "3"]
    assert sorted(connector.fetch_all_ids()) == ["2", "3"]


def test_a_restored_record_is_not_deleted(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write(
        tmp_path / "leads.csv",
        HEADER + "1,,,,2026-05-03,\n1,,,,2026-05-02,true\n2,,,,2026-05-01,\n2,,,,2026-05-02,y\n",
    )
    connector = make(deleted_column="deleted")
    assert list(connector.fetch_deleted(EVERYTHING)) == ["2"]
    assert list(connector.fetch_all_ids()) == ["1"]
    assert ids(connector.fetch_by_ids(["1", "2"])) == ["1"]


def test_csv_without_the_configured_deleted_column_raises(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write(tmp_path / "leads.csv", "id,updated_at\n1,2026-05-01\n")
    with pytest.raises(ConnectorError, match=r"'removed' \(settings\.deleted_column\)"):
        list(make(deleted_column="removed").fetch_deleted(EVERYTHING))


# -- listing and fetching by id ----------------------------------------------------------------


def test_fetch_all_ids_lists_live_rows_once(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(
        tmp_path / "leads.csv",
        HEADER
        + "1,,,,2026-05-01,\n"
        + ",No id,,,2026-05-01,\n"
        + "2,,,,not a time,\n"  # live, even with a bad time
        + "3,,,,2026-05-01,true\n"
        + "1,,,,2026-05-02,\n",
    )
    assert list(make(deleted_column="deleted").fetch_all_ids()) == ["1", "2"]
    assert bad == []  # only fetch_changed reports, so each bad row lands once per run


def test_fetch_all_ids_refuses_an_incomplete_listing(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write_jsonl(tmp_path / "leads.jsonl", [{"id": 1, "updated_at": "2026-05-01"}, "{oops"])
    with pytest.raises(ConnectorError, match=r"leads\.jsonl line 2 is not valid JSON"):
        list(make(path="leads.jsonl").fetch_all_ids())


def test_fetch_by_ids_returns_the_newest_live_rows(
    tmp_path: Path, make: Callable[..., CustomConnector], bad: Bad
) -> None:
    write(
        tmp_path / "leads.csv",
        HEADER
        + "1,Old,,,2026-05-01,\n"
        + "2,Two,,,2026-05-01,\n"
        + "1,New,,,2026-05-02,\n"
        + "3,Gone,,,2026-05-01,true\n"
        + "4,Bad,,,never,\n",
    )
    connector = make(deleted_column="deleted")
    records = list(connector.fetch_by_ids(["2", "1", "3", "4", "404", "1"]))
    assert [(r.id, r.fields["name"]) for r in records] == [("2", "Two"), ("1", "New")]
    assert list(connector.fetch_by_ids([])) == []
    assert bad == []


# -- mapping ---------------------------------------------------------------------------------------


def lead_of(make: Callable[..., CustomConnector], **fields: Any) -> dict[str, Any]:
    record = SourceRecord(id="42", modified_at=at(1), fields=fields)
    return make().to_lead(record).model_dump()


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"name": " Ada Lovelace "}, "Ada Lovelace"),
        ({"name": "", "first_name": "Ada", "last_name": "Lovelace"}, "Ada Lovelace"),
        ({"firstname": "Ada", "lastname": "Lovelace"}, "Ada Lovelace"),
        ({"First Name": "Ada", "Last Name": "Lovelace"}, "Ada Lovelace"),
        ({"FIRST_NAME": "Ada"}, "Ada"),
        ({"last_name": "Lovelace"}, "Lovelace"),
        ({"Name": "Zoë 李"}, "Zoë 李"),
        ({}, None),
    ],
)
def test_default_name(make: Callable[..., CustomConnector], fields: Any, name: str | None) -> None:
    assert lead_of(make, **fields)["name"] == name


def test_default_phone_email_and_ids(make: Callable[..., CustomConnector]) -> None:
    lead = lead_of(make, phone=" +1 415 555 0001 ", email="A@Example.com ")
    assert lead["lead_id"] == "42"
    assert (lead["phone"], lead["email"]) == ("+1 415 555 0001", "A@Example.com")
    assert lead["custom_fields"] == {}
    assert lead_of(make, phone="", mobile="+14155550002")["phone"] == "+14155550002"
    assert lead_of(make, mobile_phone="+14155550003")["phone"] == "+14155550003"
    assert lead_of(make, **{"Mobile Phone": 14155550004})["phone"] == "14155550004"
    assert lead_of(make, phone=14155550005.0)["phone"] == "14155550005"
    assert lead_of(make, Email="b@example.com")["email"] == "b@example.com"
    assert lead_of(make, company="Acme")["custom_fields"] == {}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("vip, web;  ; newsletter", ["vip", "web", "newsletter"]),
        (["vip", " web ", "", 3, {"x": 1}], ["vip", "web", "3"]),
        ("vip,vip", ["vip"]),
        ("", []),
        (None, []),
    ],
)
def test_default_tags(make: Callable[..., CustomConnector], tags: Any, expected: list[str]) -> None:
    assert lead_of(make, tags=tags)["tags"] == expected


def test_csv_rows_map_end_to_end(tmp_path: Path, make: Callable[..., CustomConnector]) -> None:
    write(
        tmp_path / "leads.csv",
        "ID,First Name,Last Name,Mobile,E-mail,Tags,Modified\n"
        "9,Zoë,李,+14155550009,z@example.com,a;b,2026-05-01\n",
    )
    connector = make(id_column="ID", modified_column="Modified")
    (record,) = connector.fetch_changed(EVERYTHING)
    lead = connector.to_lead(record)
    assert lead.payload() == {
        "lead_id": "9",
        "name": "Zoë 李",
        "phone": "+14155550009",
        "email": "z@example.com",
        "tags": ["a", "b"],
    }


# -- check -----------------------------------------------------------------------------------------


def test_check_passes_on_a_good_file(
    dated: Path, tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    assert make(deleted_column="deleted").check() == []
    write_jsonl(tmp_path / "leads.jsonl", [{"id": 1, "updated_at": "2026-05-01"}])
    assert make(path="leads.jsonl").check() == []


def test_check_missing_file_names_path_and_setting(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    with pytest.raises(ConnectorError) as caught:
        make(path="exports/leads.csv").check()
    assert str(tmp_path / "exports" / "leads.csv") in str(caught.value)
    assert "settings.path" in str(caught.value)
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ConnectorError, match="not a file"):
        make(path="folder.csv").check()


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"id_column": "lead_id"}, r"no column 'lead_id' \(settings\.id_column\)"),
        ({"modified_column": "mtime"}, r"no column 'mtime' \(settings\.modified_column\)"),
        ({"deleted_column": "gone"}, r"no column 'gone' \(settings\.deleted_column\)"),
    ],
)
def test_check_csv_header_names_the_setting(
    dated: Path, make: Callable[..., CustomConnector], settings: dict[str, str], match: str
) -> None:
    with pytest.raises(ConnectorError, match=match) as caught:
        make(**settings).check()
    assert str(dated) in str(caught.value)


def test_check_jsonl_first_record(tmp_path: Path, make: Callable[..., CustomConnector]) -> None:
    write_jsonl(tmp_path / "leads.jsonl", [{"key": 1, "updated_at": "2026-05-01"}])
    with pytest.raises(ConnectorError, match=r"no key 'id' \(settings\.id_column\)"):
        make(path="leads.jsonl").check()
    warnings = make(path="leads.jsonl", id_column="key", deleted_column="deleted").check()
    assert len(warnings) == 1 and "settings.deleted_column" in warnings[0]
    write_jsonl(tmp_path / "broken.jsonl", ["[1, 2]"])
    with pytest.raises(ConnectorError, match="line 1 is not a JSON object"):
        make(path="broken.jsonl").check()


def test_check_warns_about_empty_files_and_repeated_columns(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write(tmp_path / "leads.csv", "")
    assert "is empty" in make().check()[0]
    write(tmp_path / "leads.jsonl", "\n")
    assert "is empty" in make(path="leads.jsonl").check()[0]
    write(tmp_path / "leads.csv", "id,updated_at,email,email\n")
    warnings = make().check()
    assert any("repeats 'email'" in w for w in warnings)
    assert any("no rows yet" in w for w in warnings)


# -- timestamps ------------------------------------------------------------------------------------


PARIS_NOON = datetime(2026, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-01T10:00:00Z", PARIS_NOON),
        ("2026-05-01T10:00:00z", PARIS_NOON),
        ("2026-05-01T12:00:00+02:00", PARIS_NOON),
        ("2026-05-01T12:00:00+0200", PARIS_NOON),
        ("2026-05-01 10:00:00", PARIS_NOON),
        ("2026-05-01T10:00:00.250Z", PARIS_NOON + timedelta(milliseconds=250)),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC)),
        (" 2026-05-01 ", datetime(2026, 5, 1, tzinfo=UTC)),
        (1777629600, PARIS_NOON),
        (1777629600.5, PARIS_NOON + timedelta(milliseconds=500)),
        ("1777629600", PARIS_NOON),
        ("1777629600.5", PARIS_NOON + timedelta(milliseconds=500)),
        (datetime(2026, 5, 1, 10), PARIS_NOON),
    ],
)
def test_timestamp_formats(value: Any, expected: datetime) -> None:
    parsed = parse_timestamp(value)
    assert parsed == expected
    assert parsed.tzinfo is UTC


def test_naive_timestamps_use_the_configured_zone() -> None:
    paris = CustomSettings(path="a.csv", timezone="Europe/Paris")
    from naturalead_sync_custom.settings import zone

    tz = zone(paris.timezone)
    assert parse_timestamp("2026-05-01T12:00:00", tz) == PARIS_NOON  # CEST, +02:00
    assert parse_timestamp("2026-01-01", tz) == datetime(2025, 12, 31, 23, tzinfo=UTC)
    assert parse_timestamp("2026-05-01T12:00:00Z", tz) == datetime(2026, 5, 1, 12, tzinfo=UTC)
    offset = timezone(timedelta(hours=-5))
    assert parse_timestamp("2026-05-01T05:00:00", offset) == PARIS_NOON


def test_connector_applies_the_timezone_setting(
    tmp_path: Path, make: Callable[..., CustomConnector]
) -> None:
    write(tmp_path / "leads.csv", "id,updated_at\n1,2026-05-01 12:00\n")
    (record,) = make(timezone="Europe/Paris").fetch_changed(EVERYTHING)
    assert record.modified_at == PARIS_NOON


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "not a timestamp; use ISO 8601"),
        ("05/01/2026", "not a timestamp"),
        ("", "empty"),
        (None, "not a timestamp"),
        (True, "not a timestamp"),
        (float("nan"), "not a timestamp"),
        ("20260501", "ambiguous"),
        (1777629600000, "out of range (milliseconds?"),
        ([2026, 5, 1], "not a timestamp but list"),
    ],
)
def test_bad_timestamps_raise_clear_errors(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_timestamp(value)


def test_sorted_setting_declares_the_order(make: Callable[..., CustomConnector]) -> None:
    assert make().ordered is False
    assert make(sorted=True).ordered is True
