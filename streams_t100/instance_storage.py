"""Dagster's Postgres storage, keeping its connections open instead of opening one per event.

dagster-postgres opens a new connection for every statement it sends. A backfill of five
years of the whole graph writes about 2,400 events, each in one to three statements, and on
Postgres a new connection costs more than the insert it carries. The webserver avoids part
of this by calling `optimize_for_webserver` on its instance, which gives each storage a pool
of one connection. Storing an asset event needs two at once, though: one for its
transaction and one for a table check made inside it. So this storage gives each of its
three storages a pool that keeps two, in every process that loads deploy/dagster.yaml: the
run workers, the daemon and the code server.

deploy/dagster.yaml selects it under `storage: custom:`, with the same `postgres_db` config
as `storage: postgres:`.
"""

from dagster._core.storage.config import pg_config
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from sqlalchemy.engine import Engine

# Kept open per storage: an asset event's transaction and the check made inside it.
KEPT_CONNECTIONS = 2
# Opened beside those while several threads of the daemon or the webserver write at once,
# and closed again when they are returned.
EXTRA_CONNECTIONS = 4
# A connection older than this is replaced when it is next taken from the pool, before an
# idle limit in Postgres or a proxy is likely to close it.
CONNECTION_RECYCLE_SECONDS = 1800


def pooled_engine(postgres_url: str, token_provider) -> Engine:
    return create_pg_engine(
        postgres_url,
        token_provider,
        isolation_level="AUTOCOMMIT",
        pool_size=KEPT_CONNECTIONS,
        max_overflow=EXTRA_CONNECTIONS,
        pool_recycle=CONNECTION_RECYCLE_SECONDS,
        # Each connection is tested as it is taken from the pool. A run then outlives Postgres
        # ending its connections, in a restart for example, as it does without a pool.
        pool_pre_ping=True,
    )


class PooledPostgresStorage(DagsterPostgresStorage):
    """`DagsterPostgresStorage` whose run, event log and schedule storages pool connections."""

    def __init__(
        self, postgres_url, should_autocreate_tables=True, inst_data=None, token_provider=None
    ):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            # dagster-postgres has no setting for the pool. Each storage keeps its engine in
            # `_engine`, which its own optimize_for_webserver replaces the same way.
            storage._engine.dispose()
            storage._engine = pooled_engine(postgres_url, token_provider)

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
