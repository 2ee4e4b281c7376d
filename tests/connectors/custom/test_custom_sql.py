"""The custom connector's SQL source against SQLite and a real PostgreSQL server on loopback.

PostgreSQL comes from the machine (Debian's ``postgresql`` package, installed by ``.ci/run``);
the fixture runs ``initdb`` and ``pg_ctl`` in a temporary folder on a free port and stops the
server afterwards. Without PostgreSQL the PostgreSQL tests are skipped with the install
command, except under ``CI``, where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa

from naturalead_sync import ConnectorContext, ConnectorError, ConnectorSettings, Window
from naturalead_sync.conformance import ConnectorConformance
from naturalead_sync_custom import CustomConnector, CustomSettings
from naturalead_sync_custom.sql import SqlSource
from naturalead_sync_custom.sql_settings import SqlSettings
from support import SourceClock, run_process

INSTALL = "apt-get install -y postgresql"
EVERYTHING = Window(None, datetime(2100, 1, 1, tzinfo=UTC))


# -- a PostgreSQL server for the session ----------------------------------------------------------


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server in a temporary folder on a free loopback port, as a SQLAlchemy URL."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        message = f"PostgreSQL is not installed: {INSTALL} (as root; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="naturalead-pg-"))
    if as_root:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()

    def pg(*args: str) -> None:
        run_process([*prefix, *args], check=True, timeout=60)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N")
    options = f"-F -p {port} -k {folder} -c listen_addresses=127.0.0.1"
    pg(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


# -- a harness over one table, for SQLite and PostgreSQL ------------------------------------------


class SqlHarness(SourceClock):
    """A leads table with a soft-delete flag, written through SQLAlchemy, and a clock."""

    connector = "custom"
    deletes: Literal["feed", "reconcile"] = "feed"

    def __init__(self, url: str, *, aware: bool) -> None:
        super().__init__()
        self.engine = sa.create_engine(url)
        self.name = f"leads_{uuid.uuid4().hex[:8]}"
        self.table = sa.Table(
            self.name,
            sa.MetaData(),
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("first_name", sa.String),
            sa.Column("last_name", sa.String),
            sa.Column("phone", sa.String),
            sa.Column("email", sa.String),
            sa.Column("updated_at", sa.DateTime(timezone=aware), index=True),
            sa.Column("deleted", sa.Boolean, default=False),
        )
        self.table.create(self.engine)
        self.aware = aware
        self.settings: dict[str, Any] = {
            "source": "sql",
            "url": url,
            "table": self.name,
            "deleted_column": "deleted",
            "batch_size": 50,
        }
        if not aware:
            self.settings["timezone"] = "UTC"

    def stamp(self, moment: datetime) -> datetime:
        return moment if self.aware else moment.replace(tzinfo=None)

    def create(self, count: int, *, same_time: bool = False) -> list[str]:
        rows = []
        for n, at in self.numbered(count, same_time=same_time):
            rows.append(
                {
                    "id": n,
                    "first_name": f"First{n}",
                    "last_name": f"Last{n}",
                    "phone": f"+1{(212, 415, 617)[n % 3]}555{n:04d}",
                    "email": f"lead{n}@example.com",
                    "updated_at": self.stamp(at),
                    "deleted": False,
                }
            )
        with self.engine.begin() as connection:
            connection.execute(self.table.insert(), rows)
        return [str(row["id"]) for row in rows]

    def _set(self, native_id: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                self.table.update()
                .where(self.table.c.id == int(native_id))
                .values(updated_at=self.stamp(self.clock), **values)
            )

    def update(self, native_id: str, marker: str) -> None:
        self._set(native_id, first_name=marker)

    def delete(self, native_id: str) -> None:
        self._set(native_id, deleted=True)


@pytest.fixture
def sqlite_harness(tmp_path: Path) -> Iterator[SqlHarness]:
    url = f"sqlite:///{tmp_path / 'leads.db'}"
    with sa.create_engine(url).connect() as connection:  # writers go on while a run reads
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    harness = SqlHarness(url, aware=False)
    yield harness
    harness.engine.dispose()


@pytest.fixture
def pg_harness(postgres_url: str) -> Iterator[SqlHarness]:
    harness = SqlHarness(postgres_url, aware=True)
    yield harness
    harness.table.drop(harness.engine)
    harness.engine.dispose()


class TestSqliteConformance(ConnectorConformance):
    @pytest.fixture
    def source(self, sqlite_harness: SqlHarness) -> SqlHarness:
        return sqlite_harness


class TestPostgresConformance(ConnectorConformance):
    @pytest.fixture
    def source(self, pg_harness: SqlHarness) -> SqlHarness:
        return pg_harness


# -- specifics ------------------------------------------------------------------------------------

Bad = list[tuple[str | None, str]]


def connect(settings: dict[str, Any], base_dir: Path, bad: Bad | None = None) -> CustomConnector:
    sink = None if bad is None else (lambda where, why, rid: bad.append((rid, f"{where}: {why}")))
    context = ConnectorContext(connection="t", base_dir=base_dir, bad_record_sink=sink)
    return CustomConnector(CustomSettings.model_validate(settings), context)


def test_source_selects_the_settings_model() -> None:
    settings = CustomSettings.model_validate({"source": "sql", "url": "sqlite://", "table": "t"})
    assert isinstance(settings, SqlSettings)
    assert "sqlite" not in repr(settings.url)  # a SecretStr: never printed
    with pytest.raises(ValueError, match="exactly one of table"):
        CustomSettings.model_validate({"source": "sql", "url": "sqlite://"})
    with pytest.raises(ValueError, match="path"):
        CustomSettings.model_validate(
            {"source": "sql", "url": "sqlite://", "table": "t", "path": "x"}
        )
    with pytest.raises(ValueError, match="'file', 'sql', 'rest' or 'class'"):
        CustomSettings.model_validate({"source": "mongo"})


def test_relative_sqlite_path_naive_times_bad_rows_and_a_query(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE people (pid TEXT, name TEXT, changed TEXT, kind TEXT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO people VALUES ('a', 'Ada', '2026-05-01 10:00:00.000000', 'lead'),"
            "(NULL, 'No Id', '2026-05-01 11:00:00.000000', 'lead'),"
            "('b', 'Bad Time', '2026-05-01 noon', 'lead'),"
            "('c', 'Cy', '2026-05-02 09:00:00.000000', 'lead'),"
            "('d', 'Dee', '2026-05-02 09:30:00.000000', 'customer')"
        )
    engine.dispose()
    bad: Bad = []
    settings = {
        "source": "sql",
        "url": "sqlite:///crm.db",  # relative: starts at the config file's folder
        "query": "SELECT * FROM people WHERE kind = 'lead'",
        "id_column": "pid",
        "modified_column": "changed",
        "timezone": "Europe/Paris",
    }
    connector = connect(settings, tmp_path, bad)
    try:
        records = list(connector.fetch_changed(EVERYTHING))
        assert [r.id for r in records] == ["a", "c"]
        assert records[0].modified_at == datetime(2026, 5, 1, 8, tzinfo=UTC)
        assert connector.to_lead(records[0]).name == "Ada"
        assert len(bad) == 2 and "settings.id_column" in bad[0][1]
        assert bad[1][0] == "b" and "settings.modified_column" in bad[1][1]
        window = Window(datetime(2026, 5, 2, 6, tzinfo=UTC), datetime(2026, 5, 2, 8, tzinfo=UTC))
        assert [r.id for r in connector.fetch_changed(window)] == ["c"]  # 09:00 Paris = 07:00Z
        assert [r.id for r in connector.fetch_by_ids(["c", "zz", "a"])] == ["a", "c"]
        assert sorted(connector.fetch_all_ids()) == ["a", "b", "c"]
        assert connector.check() == []
    finally:
        connector.close()


def test_a_deletions_table_feeds_deletes(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE leads (id INTEGER, name TEXT, updated_at TEXT)")
        connection.exec_driver_sql("CREATE TABLE gone (lead INTEGER, at TEXT)")
        connection.exec_driver_sql(
            "INSERT INTO gone VALUES (7, '2026-05-01 10:00:00.000000'),"
            "(8, '2026-05-03 10:00:00.000000')"
        )
    engine.dispose()
    settings = {
        "source": "sql",
        "url": f"sqlite:///{tmp_path / 'crm.db'}",
        "table": "leads",
        "deleted_table": "gone",
        "deleted_id_column": "lead",
        "deleted_at_column": "at",
        "timezone": "UTC",
    }
    connector = connect(settings, tmp_path)
    try:
        window = Window(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC))
        assert list(connector.fetch_deleted(window)) == ["7"]
        assert connector.check() == [f"sqlite:///{tmp_path / 'crm.db'}: leads has no rows yet"]
    finally:
        connector.close()


def test_errors_name_the_setting_and_never_the_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://sync:s3cret-pw@127.0.0.1:{_free_port()}/crm"
    connector = connect({"source": "sql", "url": url, "table": "leads"}, tmp_path)
    try:
        with pytest.raises(ConnectorError) as caught:
            connector.check()
        assert "s3cret-pw" not in str(caught.value)
        assert "settings.url" in str(caught.value)
    finally:
        connector.close()
    missing = connect({"source": "sql", "url": "sqlite://", "table": "nope"}, tmp_path)
    with pytest.raises(ConnectorError, match=r"settings\.table"):
        list(missing.fetch_changed(EVERYTHING))


def test_postgres_naive_timestamps_stream_in_batches(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    name = f"naive_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE {name} (id TEXT, name TEXT, updated_at TIMESTAMP WITHOUT TIME ZONE)"
        )
        connection.exec_driver_sql(
            f"INSERT INTO {name} SELECT 'r' || g, 'Lead ' || g, "
            "TIMESTAMP '2026-05-01 00:00:00' + g * INTERVAL '1 second' "
            "FROM generate_series(1, 2500) g"
        )
    settings = {
        "source": "sql",
        "url": postgres_url,
        "table": name,
        "timezone": "America/New_York",
        "batch_size": 100,
    }
    connector = connect(settings, tmp_path)
    try:
        start = datetime(2026, 5, 1, 4, 0, 10, tzinfo=UTC)  # 00:00:10 in New York
        window = Window(start, start + timedelta(seconds=2000))
        records = list(connector.fetch_changed(window))
        assert [r.id for r in records[:2]] == ["r10", "r11"] and len(records) == 2000
        ids = [f"r{n}" for n in range(1, 1201)]
        assert len(list(connector.fetch_by_ids(ids))) == 1200  # three IN lists
    finally:
        connector.close()
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE {name}")
        engine.dispose()


def test_sql_source_rejects_other_settings(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="SqlSettings"):
        SqlSource(CustomSettings(path="a.csv"), ConnectorContext(connection="t"))


def test_the_connector_loads_without_sqlalchemy_until_a_sql_source_is_used() -> None:
    import sys

    probe = (
        "import sys, naturalead_sync_custom; "
        "from naturalead_sync.plugins import get_connectors, get_plugin_manager; "
        "get_connectors(get_plugin_manager()); "
        "print('sqlalchemy' in sys.modules)"
    )
    done = run_process([sys.executable, "-c", probe], timeout=60, check=True)
    assert done.stdout.strip() == "False"  # SQLAlchemy is the [sql] extra, loaded on demand


def test_the_custom_connector_takes_each_source_model_and_refuses_others() -> None:
    from naturalead_sync_custom import CustomConnector

    for settings in (
        CustomSettings.model_validate({"path": "a.csv"}),
        CustomSettings.model_validate({"source": "sql", "url": "sqlite://", "table": "t"}),
        CustomSettings.model_validate({"source": "rest", "url": "https://x.test/leads"}),
    ):
        assert CustomConnector.accepts(settings), settings
    with pytest.raises(TypeError, match="CustomConnector needs CustomSettings"):
        CustomConnector(ConnectorSettings(), ConnectorContext(connection="t"))
