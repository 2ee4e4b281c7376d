"""Plugin loading, registration, the env switch, and each hook in action."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy
import pytest

from naturalead_sync import (
    ConfigError,
    ConnectionReport,
    Connector,
    Lead,
    RecordError,
    SkipLead,
    SourceRecord,
    Window,
    hookimpl,
)
from naturalead_sync.plugins import get_connectors, get_plugin_manager
from naturalead_sync.runner import run
from naturalead_sync.sandbox import Sandbox
from support import lead_row, make_config, sandbox_runtime, write_csv


class _Base(Connector):
    def fetch_changed(self, window: Window) -> Iterable[SourceRecord]:
        return []

    def fetch_by_ids(self, ids: list[str]) -> Iterable[SourceRecord]:
        return []

    def to_lead(self, record: SourceRecord) -> Lead:
        return Lead(lead_id=record.id)


class AlphaConnector(_Base):
    name = "alpha"


class OtherAlphaConnector(_Base):
    name = "alpha"


def test_installed_custom_connector_is_found_through_its_entry_point(
    pm: pluggy.PluginManager,
) -> None:
    found = get_connectors(pm)
    assert found["custom"].distribution == "naturalead-sync-custom"
    assert found["custom"].version


def test_disabled_plugins_env_blocks_by_name_or_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for value in ("custom", "naturalead-sync-custom", "x, custom"):
        monkeypatch.setenv("NATURALEAD_SYNC_DISABLED_PLUGINS", value)
        assert "custom" not in get_connectors(get_plugin_manager())


def test_hook_register_connectors() -> None:
    pm = get_plugin_manager(load_entry_points=False)

    class Plugin:
        @hookimpl
        def register_connectors(self, register: Any) -> None:
            register(AlphaConnector)

    pm.register(Plugin(), name="alpha-plugin")
    found = get_connectors(pm)
    assert list(found) == ["alpha"]
    assert found["alpha"].cls is AlphaConnector


def test_two_plugins_registering_one_name_is_an_error_naming_both() -> None:
    pm = get_plugin_manager(load_entry_points=False)

    class One:
        @hookimpl
        def register_connectors(self, register: Any) -> None:
            register(AlphaConnector)

    class Two:
        @hookimpl
        def register_connectors(self, register: Any) -> None:
            register(OtherAlphaConnector)

    pm.register(One(), name="one")
    pm.register(Two(), name="two")
    with pytest.raises(ConfigError, match=r"'alpha' is registered twice: by .*one.* and by .*two"):
        get_connectors(pm)


def test_registering_something_that_is_not_a_connector_is_an_error() -> None:
    pm = get_plugin_manager(load_entry_points=False)

    class Bad:
        @hookimpl
        def register_connectors(self, register: Any) -> None:
            register(dict)

    pm.register(Bad(), name="bad")
    with pytest.raises(ConfigError, match="not a Connector subclass"):
        get_connectors(pm)


def test_misspelled_hook_fails_at_load() -> None:
    pm = get_plugin_manager(load_entry_points=False)

    class Typo:
        @hookimpl
        def register_conectors(self, register: Any) -> None:
            pass

    pm.register(Typo(), name="typo")
    with pytest.raises(pluggy.PluginValidationError, match="register_conectors"):
        pm.check_pending()


def _run_with(tmp_path: Path, sandbox: Sandbox, plugin: object) -> ConnectionReport:
    write_csv(tmp_path / "leads.csv", [lead_row(n) for n in range(6)])
    runtime = sandbox_runtime(make_config(tmp_path), sandbox)
    runtime.pm.register(plugin, name="test-plugin")
    return run(runtime).connections[0]


def test_hook_transform_lead(tmp_path: Path, sandbox: Sandbox) -> None:
    class Transform:
        @hookimpl
        def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead | None:
            assert connection == "csv"
            if record.id == "1":
                raise SkipLead("internal test lead")
            if record.id == "2":
                raise RecordError("name: not allowed here")
            if record.id == "3":
                return None
            return lead.model_copy(update={"tags": [*lead.tags, "vip"]})

    report = _run_with(tmp_path, sandbox, Transform())
    assert report.filtered == 1
    assert [(r.lead_id, r.reason) for r in report.rejections] == [("2", "name: not allowed here")]
    leads = {lead["lead_id"]: lead for lead in sandbox.leads()}
    assert set(leads) == {"0", "3", "4", "5"}
    assert leads["0"]["tags"] == ["vip"]
    assert leads["3"]["tags"] == []


def test_transform_lead_bug_becomes_a_rejection_naming_the_plugin(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    class Broken:
        @hookimpl
        def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead | None:
            raise KeyError("oops")

    report = _run_with(tmp_path, sandbox, Broken())
    assert report.rejected == 6
    assert "test-plugin" in report.rejections[0].reason


def test_hook_run_finished(tmp_path: Path, sandbox: Sandbox) -> None:
    seen: list[ConnectionReport] = []

    class Observer:
        @hookimpl
        def run_finished(self, report: ConnectionReport) -> None:
            seen.append(report)
            raise RuntimeError("an observer failing must not fail the run")

    report = _run_with(tmp_path, sandbox, Observer())
    assert seen == [report]
    assert (report.status, report.created) == ("ok", 6)


def test_trace_switch_logs_each_hook_call(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NATURALEAD_SYNC_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.DEBUG, logger="naturalead_sync.plugins"):
        get_connectors(get_plugin_manager())
    assert "hook register_connectors -> plugin custom" in caplog.text


def _install_fake_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """A distribution 'acme-sync' on sys.path whose entry point 'acme' runs ``source``."""
    (tmp_path / "acme_sync_plugin.py").write_text(source)
    info = tmp_path / "acme_sync-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sync\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[naturalead_sync]\nacme = acme_sync_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_sync_plugin", raising=False)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('raise ImportError("needs libacme")', "ImportError: needs libacme"),
        (
            "from naturalead_sync import hookimpl\n\n"
            "@hookimpl\ndef register_conectors(register):\n    pass\n",
            "register_conectors",
        ),
    ],
    ids=["import error", "misspelled hook"],
)
def test_a_broken_plugin_is_named_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, expected: str
) -> None:
    _install_fake_plugin(tmp_path, monkeypatch, source)
    with pytest.raises(ConfigError) as caught:
        get_plugin_manager()
    message = str(caught.value)
    assert "plugin 'acme' (from acme-sync) failed to load" in message
    assert expected in message
    assert "NATURALEAD_SYNC_DISABLED_PLUGINS=acme" in message
    monkeypatch.setenv("NATURALEAD_SYNC_DISABLED_PLUGINS", "acme")
    assert "custom" in get_connectors(get_plugin_manager())
