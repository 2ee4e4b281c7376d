"""The conformance suite every connector runs: the contract, then behaviour through the engine.

A connector's tests subclass :class:`ConnectorConformance` and provide one fixture, ``source``,
that returns a :class:`SourceHarness` over a source they control (an emulator on loopback, a
file, a database)::

    from naturalead_sync.conformance import ConnectorConformance, SourceHarness

    class TestAcmeConformance(ConnectorConformance):
        @pytest.fixture
        def source(self, tmp_path):
            with serve(AcmeEmulator()) as server:
                yield AcmeHarness(server)

The suite then checks the contract (settings reject unknown keys, ``to_lead`` keeps the native
id, ``fetch_changed`` keeps the order it declares) and drives real runs, engine and Naturalead
client included, against the embedded sandbox: initial sync, incremental sync, an unchanged
re-run that sends nothing, deletes, many records sharing one modification time, records changed
during the run, and a run that fails midway then resumes. The ``naturalead_sync`` pytest plugin
(installed with core) provides the ``naturalead_sandbox`` fixture it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import pytest
from pydantic import ValidationError

from .client import NaturaleadClient
from .config import Config, ConnectionConfig, DestinationConfig, LimitsConfig, StateConfig
from .connector import Connector, ConnectorContext
from .engine import RunOptions
from .hookspecs import hookimpl
from .models import Lead, SourceRecord, Window
from .plugins import get_connectors, get_plugin_manager
from .report import ConnectionReport
from .runner import Runtime, connector_settings, run
from .sandbox import DEFAULT_KEY, Sandbox, SandboxTransport

__all__ = ["ConnectorConformance", "SourceHarness", "SyncDriver"]


class SourceHarness(Protocol):
    """What a connector's tests provide: a source the suite can change, and how to reach it.

    ``now`` is the source's clock (the suite ties each run's window to it), ``advance`` moves
    it. ``update`` must change something the lead shows in its ``name`` (the suite checks that
    ``marker`` appears there). ``deletes`` says how the connector learns of deletes: from its
    own feed (``"feed"``) or only by reconciliation (``"reconcile"``).
    """

    connector: str
    settings: Mapping[str, Any]
    deletes: Literal["feed", "reconcile"]

    def now(self) -> datetime:
        """The source's clock."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the source's clock forward."""
        ...

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        """Create ``count`` valid records (all with one modification time when ``same_time``)
        and return their native ids."""
        ...

    def update(self, native_id: str, marker: str) -> None:
        """Change record ``native_id`` so that its lead's name contains ``marker``."""
        ...

    def delete(self, native_id: str) -> None:
        """Delete record ``native_id``."""
        ...


@dataclass
class SyncDriver:
    """Runs a harness's connection through the engine into an in-process sandbox."""

    source: SourceHarness
    sandbox: Sandbox
    folder: Path
    plugins: list[object] = field(default_factory=list)

    def config(self, **connection: Any) -> Config:
        """The config of one connection to ``source``, with pacing lifted."""
        limits = LimitsConfig(requests_per_window=10_000, window=timedelta(seconds=1))
        entry = ConnectionConfig.model_validate(
            {
                "name": "conformance",
                "connector": self.source.connector,
                "settings": dict(self.source.settings),
                "settle": "0s",
                **connection,
            }
        )
        return Config(
            destination=DestinationConfig(sandbox=str(self.folder / "unused.db"), limits=limits),
            state=StateConfig(path=str(self.folder / "state.db")),
            connections=[entry],
            base_dir=self.folder,
        )

    def sync(self, **connection: Any) -> ConnectionReport:
        """One run, its window ending at the source's ``now``."""
        sandbox = self.sandbox

        def client(config: Config) -> NaturaleadClient:
            return NaturaleadClient(
                "http://sandbox.invalid",
                DEFAULT_KEY,
                limits=config.destination.limits,
                retry=config.destination.retry.model_copy(
                    update={"max_attempts": 2, "backoff_initial": timedelta(milliseconds=1)}
                ),
                transport=SandboxTransport(sandbox),
            )

        runtime = Runtime(self.config(**connection), client_factory=client)
        for plugin in [*_harness_plugins(self.source), *self.plugins]:
            runtime.pm.register(plugin)
        now = self.source.now()
        return run(runtime, options=RunOptions(now=lambda: now)).connections[0]

    def connector(self) -> Connector:
        """The connector built as a run builds it (for contract checks)."""
        config = self.config()
        entry = config.connections[0]
        pm = get_plugin_manager()
        for plugin in _harness_plugins(self.source):
            pm.register(plugin)
        info, settings = connector_settings(entry, get_connectors(pm))
        return info.cls(settings, ConnectorContext(connection=entry.name, base_dir=self.folder))

    def lead(self, native_id: str) -> dict[str, Any]:
        """The sandbox's lead for ``native_id`` (the test fails when there is none)."""
        lead = self.sandbox.lead(native_id)
        assert lead is not None, f"the sandbox holds no lead {native_id!r}"
        return lead


def _harness_plugins(source: SourceHarness) -> list[object]:
    return list(getattr(source, "plugins", ()))


class _ChangeDuringRun:
    """A plugin that, on the first lead it sees, changes two records in the source."""

    def __init__(self, change: Callable[[], None]) -> None:
        self._change: Callable[[], None] | None = change

    @hookimpl
    def transform_lead(self, lead: Lead, record: SourceRecord, connection: str) -> Lead:
        if self._change is not None:
            change, self._change = self._change, None
            change()
        return lead


class ConnectorConformance:
    """The suite: subclass it in a ``Test...`` class and provide the ``source`` fixture."""

    #: Records the tied-times check creates: set it above the connector's page size.
    tied_records: ClassVar[int] = 250

    @pytest.fixture
    def driver(
        self, source: SourceHarness, naturalead_sandbox: Sandbox, tmp_path: Path
    ) -> SyncDriver:
        """Runs ``source`` through the engine into the sandbox."""
        return SyncDriver(source, naturalead_sandbox, tmp_path)

    @contextmanager
    def _connector(self, driver: SyncDriver) -> Iterator[Connector]:
        connector = driver.connector()
        try:
            yield connector
        finally:
            connector.close()

    # -- the contract ----------------------------------------------------------------------------

    def test_connector_is_registered_through_an_entry_point(self, source: SourceHarness) -> None:
        name = getattr(source, "registered_name", source.connector)
        info = get_connectors(get_plugin_manager()).get(name)
        assert info is not None, f"connector {name!r} is not installed"
        assert info.distribution, "the connector must come from an installed distribution"

    def test_settings_reject_unknown_keys(self, driver: SyncDriver) -> None:
        with self._connector(driver) as connector:
            settings = dict(driver.source.settings)
            with pytest.raises(ValidationError, match="not_a_setting"):
                type(connector).Settings.model_validate({**settings, "not_a_setting": 1})

    def test_to_lead_keeps_the_native_id_and_order_holds(self, driver: SyncDriver) -> None:
        driver.source.create(12)
        driver.source.advance(1)
        window = Window(None, driver.source.now())
        with self._connector(driver) as connector:
            records = list(connector.fetch_changed(window))
            assert len(records) == 12
            for record in records:
                assert record.modified_at.tzinfo is not None
                assert record.modified_at < window.end
                assert connector.to_lead(record).lead_id == record.id
            if connector.ordered:
                times = [record.modified_at for record in records]
                assert times == sorted(times), "ordered connectors yield by modification time"

    # -- behaviour through the engine ------------------------------------------------------------

    def test_initial_sync_then_incremental_then_nothing(self, driver: SyncDriver) -> None:
        source = driver.source
        ids = source.create(30)
        source.advance(1)
        first = driver.sync()
        assert (first.status, first.created, first.rejected) == ("ok", 30, 0), first.error
        assert {driver.lead(native)["lead_id"] for native in ids} == set(ids)
        source.advance(60)
        source.update(ids[4], "Changed4")
        (new,) = source.create(1)
        source.advance(1)
        second = driver.sync()
        assert (second.status, second.created, second.updated) == ("ok", 1, 1), second.error
        assert "Changed4" in driver.lead(ids[4])["name"]
        driver.lead(new)
        source.advance(60)
        third = driver.sync()
        assert (third.status, third.upsert_requests, third.delete_requests) == ("ok", 0, 0)

    def test_deletes_reach_naturalead(self, driver: SyncDriver) -> None:
        source = driver.source
        ids = source.create(20)
        source.advance(1)
        reconcile = {"reconcile_deletes": source.deletes == "reconcile"}
        assert driver.sync(**reconcile).status == "ok"
        source.advance(60)
        source.delete(ids[3])
        source.advance(120)  # some delete feeds count whole minutes (Salesforce's getDeleted)
        report = driver.sync(**reconcile)
        assert (report.status, report.deleted) == ("ok", 1), report.error
        assert driver.sandbox.lead(ids[3]) is None
        assert len(driver.sandbox.leads()) == 19

    def test_records_sharing_one_modification_time_all_arrive(self, driver: SyncDriver) -> None:
        source = driver.source
        ids = source.create(self.tied_records, same_time=True)
        source.advance(1)
        report = driver.sync()
        assert (report.status, report.created) == ("ok", self.tied_records), report.error
        assert len(driver.sandbox.leads()) == len(ids)

    def test_records_changed_during_the_run_arrive_next_run(self, driver: SyncDriver) -> None:
        source = driver.source
        ids = source.create(150)
        source.advance(1)
        assert driver.sync().status == "ok"
        source.advance(60)
        for native in ids:
            source.update(native, "Bulk")
        source.advance(1)
        first, last = ids[0], ids[-1]

        def change() -> None:
            source.update(first, "DuringFirst")
            source.update(last, "DuringLast")

        driver.plugins.append(_ChangeDuringRun(change))
        assert driver.sync().status == "ok"
        driver.plugins.clear()
        source.advance(60)
        assert driver.sync().status == "ok"
        assert "DuringFirst" in driver.lead(first)["name"]
        assert "DuringLast" in driver.lead(last)["name"]

    def test_a_failed_run_resumes_without_loss_or_duplicates(self, driver: SyncDriver) -> None:
        source = driver.source
        ids = source.create(250)
        source.advance(1)
        driver.sandbox.script("ok", "500", "500")  # the second batch fails for good
        failed = driver.sync()
        assert failed.status == "failed"
        assert len(driver.sandbox.leads()) == 100
        source.advance(60)
        resumed = driver.sync()
        assert (resumed.status, resumed.created) == ("ok", 150), resumed.error
        assert len(driver.sandbox.leads()) == len(ids)
        log = driver.sandbox.request_log
        assert sum(r.items for r in log if r.status == 200) == 250  # nothing sent twice
