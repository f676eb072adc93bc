"""Dagster's run, event-log and schedule storage in PostgreSQL, for a deployment past one machine
(several run workers, a daemon and the UI on different hosts, which SQLite files cannot serve).

Dagster's own SQL storages (`SqlRunStorage`, `SqlEventLogStorage`, `SqlScheduleStorage`) do
the work; these classes only connect them to a PostgreSQL URL and create the tables the first
time, stamped at Dagster's current schema revision. The integration package dagster-postgres
would do the same but pins the previous Dagster release, so it cannot be installed beside the
pinned one. Selected in dagster.yaml (see the commented block there):

    run_storage:
      module: pipelines.pg_storage
      class: PostgresRunStorage
      config:
        postgres_url: {env: SHUKU_DAGSTER_POSTGRES_URL}

with the same block for `event_log_storage` (PostgresEventLogStorage) and `schedule_storage`
(PostgresScheduleStorage). The URL is read when the instance starts, never at import.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import sqlalchemy as db
from dagster import StringSource
from dagster._core.storage.event_log.polling_event_watcher import SqlPollingEventWatcher
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.runs import sqlite as runs_sqlite
from dagster._core.storage.runs.schema import InstanceInfo, RunStorageSqlMetadata
from dagster._core.storage.runs.sql_run_storage import SqlRunStorage
from dagster._core.storage.schedules.schema import ScheduleStorageSqlMetadata
from dagster._core.storage.schedules.sql_schedule_storage import SqlScheduleStorage
from dagster._core.storage.sql import (
    check_alembic_revision,
    get_alembic_config,
    run_alembic_upgrade,
    stamp_alembic_rev,
)
from dagster._serdes import ConfigurableClass, ConfigurableClassData

# Dagster ships one alembic.ini per storage beside its SQLite classes; all name the same migrations.
_ALEMBIC_INI_BESIDE = runs_sqlite.__file__
_CREATE_LOCK = 7_365_001   # pg_advisory_xact_lock key: two processes starting at once create the tables once


class _SavepointInsertConnection(db.Connection):
    """Dagster's SQL storages insert and, on IntegrityError, update in the same transaction; SQLite
    goes on after the failed insert, PostgreSQL aborts the whole transaction. Each INSERT in a
    transaction therefore runs in its own savepoint, so a conflict leaves the transaction usable."""

    def execute(self, statement, parameters=None, *, execution_options=None):
        if isinstance(statement, db.Insert) and self.in_transaction():
            with self.begin_nested():
                return super().execute(statement, parameters, execution_options=execution_options)
        return super().execute(statement, parameters, execution_options=execution_options)


def _engine_for(url: str) -> db.Engine:
    if not url.startswith(("postgresql://", "postgresql+psycopg2://")):
        raise ValueError("postgres_url must be a PostgreSQL URL (postgresql://user:password@host:port/database); "
                         f"got one starting {url.split(':', 1)[0]!r}. Set it in dagster.yaml or its environment variable.")
    engine = db.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1),
                              pool_size=2, max_overflow=4, pool_pre_ping=True, pool_recycle=3600)
    engine._connection_cls = _SavepointInsertConnection   # the class engine.connect() makes (SQLAlchemy 2.x)
    return engine


class _PostgresStorage(ConfigurableClass):
    """What the three storages share: the URL config, the connection and first-time creation."""

    metadata: db.MetaData

    def __init__(self, postgres_url: str, inst_data: ConfigurableClassData | None = None):
        self.postgres_url = postgres_url
        self._inst_data = inst_data
        self._engine = _engine_for(postgres_url)
        self._alembic = get_alembic_config(_ALEMBIC_INI_BESIDE)
        super().__init__()
        if self._create_tables():
            self._after_first_creation()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict:
        return {"postgres_url": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    def _create_tables(self) -> bool:
        """Create this storage's tables at the current revision unless stamped already; True if created."""
        with self._engine.connect() as conn, conn.begin():
            conn.execute(db.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
            tables = set(db.inspect(conn).get_table_names())
            if set(self.metadata.tables) <= tables:
                return False
            self.metadata.create_all(conn)
            if not check_alembic_revision(self._alembic, conn)[0]:
                stamp_alembic_rev(self._alembic, conn)
            return True

    def _after_first_creation(self) -> None:
        """Mark Dagster's data migrations done on a new, empty database."""

    @contextmanager
    def connect(self) -> Iterator[db.Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def upgrade(self) -> None:
        with self.connect() as conn:
            run_alembic_upgrade(self._alembic, conn)

    def alembic_version(self):
        with self.connect() as conn:
            return check_alembic_revision(self._alembic, conn)

    def has_table(self, table_name: str) -> bool:
        with self._engine.connect() as conn:
            return bool(self._engine.dialect.has_table(conn, table_name))

    def dispose(self) -> None:
        self._engine.dispose()


class PostgresRunStorage(_PostgresStorage, SqlRunStorage):
    """Runs, their tags and snapshots, daemon heartbeats, in PostgreSQL."""

    metadata = RunStorageSqlMetadata

    def _create_tables(self) -> bool:
        created = super()._create_tables()
        if not self.has_table("instance_info"):
            InstanceInfo.create(self._engine)
        return created

    def _after_first_creation(self) -> None:
        self.migrate()
        self.optimize()


class PostgresEventLogStorage(_PostgresStorage, SqlEventLogStorage):
    """Every run's events and the asset index (materialisations, checks, partitions), in PostgreSQL."""

    metadata = SqlEventLogStorageMetadata

    def _after_first_creation(self) -> None:
        self.reindex_events()
        self.reindex_assets()

    def run_connection(self, run_id: str | None = None):
        return self.connect()

    def index_connection(self):
        return self.connect()

    @cached_property
    def _watcher(self) -> SqlPollingEventWatcher:
        return SqlPollingEventWatcher(self)

    def watch(self, run_id, cursor, callback) -> None:
        self._watcher.watch_run(run_id, cursor, callback)

    def end_watch(self, run_id, handler) -> None:
        self._watcher.unwatch_run(run_id, handler)

    @cached_property
    def supports_global_concurrency_limits(self) -> bool:
        return self.has_table("concurrency_limits")

    def dispose(self) -> None:
        if "_watcher" in self.__dict__:
            self._watcher.close()
        super().dispose()


class PostgresScheduleStorage(_PostgresStorage, SqlScheduleStorage):
    """Schedule and sensor state and their ticks, in PostgreSQL."""

    metadata = ScheduleStorageSqlMetadata

    def _after_first_creation(self) -> None:
        self.migrate()
        self.optimize()
