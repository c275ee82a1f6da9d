"""Dagster's Postgres storage, keeping its connections open instead of opening one per event.

dagster-postgres opens a new connection for every statement it sends. A backfill of five
years of the whole graph writes about 2,400 events, each in one to three statements, and on
Postgres a new connection costs more than the insert it carries. The webserver avoids part
of this by calling `optimize_for_webserver` on its instance, which gives each storage a pool
of one connection. Storing an asset event needs two at once, though: one for its
transaction and one for a table check made inside it. So here the run and event log
storages keep two connections open each, in every process that loads deploy/dagster.yaml:
the run workers, the daemon and the code server.

The schedule storage stays as dagster-postgres has it. It writes little, a tick or two a
minute, and `DagsterInstance.dispose` does not dispose it, so a pool there would keep its
connections open after the instance is disposed.

deploy/dagster.yaml selects `PooledPostgresStorage` under `storage: custom:`, with the same
`postgres_db` config as `storage: postgres:`.
"""

from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.engine import Engine

# Kept open per storage: an asset event's transaction and the check made inside it.
KEPT_CONNECTIONS = 2
# No limit on the connections opened beside those, as without a pool. Each thread that
# stores an event uses two at once, so with a limit enough threads would wait on each other
# until the pool timed out. The extra connections are closed when they are returned.
UNLIMITED_EXTRA_CONNECTIONS = -1
# A connection older than this is replaced when it is next taken from the pool, before an
# idle limit in Postgres or a proxy is likely to close it.
CONNECTION_RECYCLE_SECONDS = 1800


def pooled_engine(postgres_url: str, token_provider) -> Engine:
    return create_pg_engine(
        postgres_url,
        token_provider,
        isolation_level="AUTOCOMMIT",
        pool_size=KEPT_CONNECTIONS,
        max_overflow=UNLIMITED_EXTRA_CONNECTIONS,
        pool_recycle=CONNECTION_RECYCLE_SECONDS,
        # Each connection is tested as it is taken from the pool. A run then outlives Postgres
        # ending its connections, in a restart for example, as it does without a pool.
        pool_pre_ping=True,
    )


class KeptConnections:
    """Mixin for a dagster-postgres storage: its engine keeps connections open.

    dagster-postgres has no setting for the pool. Each storage keeps its engine in `_engine`,
    which its own `optimize_for_webserver` replaces the same way.
    """

    def __init__(
        self, postgres_url, should_autocreate_tables=True, inst_data=None, token_provider=None
    ):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._engine.dispose()
        self._engine = pooled_engine(postgres_url, token_provider)

    def optimize_for_webserver(self, statement_timeout, pool_recycle, max_overflow) -> None:
        # The webserver's pool replaces this one, so this one's connections are closed first.
        self._engine.dispose()
        super().optimize_for_webserver(statement_timeout, pool_recycle, max_overflow)

    def dispose(self) -> None:
        # dagster-postgres has nothing to close here, because it keeps no connection open.
        # The engine opens new connections if the storage is used again.
        super().dispose()
        self._engine.dispose()


class PooledRunStorage(KeptConnections, PostgresRunStorage):
    """Run storage of `PooledPostgresStorage`."""


class PooledEventLogStorage(KeptConnections, PostgresEventLogStorage):
    """Event log storage of `PooledPostgresStorage`."""


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose run and event log storages keep connections open."""

    def __init__(
        self, postgres_url, should_autocreate_tables=True, inst_data=None, token_provider=None
    ):
        # DagsterPostgresStorage.__init__ would build the stock storages, so its attributes
        # are set here instead, with the pooled storages.
        # NOTE: these are private attributes of dagster-postgres 0.29. If they change,
        # test_instance_stores_runs_in_postgres fails on the storage types.
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PooledRunStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._event_log_storage = PooledEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        self._schedule_storage = PostgresScheduleStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return pg_config()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "PooledPostgresStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
