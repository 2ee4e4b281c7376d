"""What core hands a connector: its HTTP client, paths, and the bad-record channel."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from naturalead_sync import ConnectorContext, ConnectorSettings


def test_http_client_carries_core_timeout_and_user_agent(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    context = ConnectorContext(
        "crm", base_dir=tmp_path, timeout_seconds=7.5, user_agent="naturalead-sync/9"
    )
    with context.http_client(
        transport=httpx.MockTransport(handler), headers={"Authorization": "Bearer t"}
    ) as client:
        client.get("https://crm.example.test/x")
        assert client.timeout.read == 7.5
    assert seen[0].headers["user-agent"] == "naturalead-sync/9"
    assert seen[0].headers["authorization"] == "Bearer t"


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    context = ConnectorContext("crm", base_dir=tmp_path)
    assert context.resolve_path("leads.csv") == tmp_path / "leads.csv"
    assert context.resolve_path("/abs/leads.csv") == Path("/abs/leads.csv")


def test_bad_records_go_to_the_sink_or_the_log(caplog: pytest.LogCaptureFixture) -> None:
    got: list[tuple[str, str, str | None]] = []
    ConnectorContext("crm", bad_record_sink=lambda *a: got.append(a)).report_bad_record(
        "file line 3", "no id", None
    )
    assert got == [("file line 3", "no id", None)]
    with caplog.at_level(logging.WARNING):
        ConnectorContext("crm").report_bad_record("file line 4", "bad time", "42")
    assert "crm: bad record file line 4: bad time" in caplog.text


def test_a_connector_refuses_settings_of_another_model() -> None:
    from naturalead_sync_hubspot import HubSpotConnector

    with pytest.raises(TypeError, match="HubSpotConnector needs HubSpotSettings, not"):
        HubSpotConnector(ConnectorSettings(), ConnectorContext(connection="t"))
