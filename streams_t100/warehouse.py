"""The warehouse IO manager: polars frames in MotherDuck, or in a local DuckDB file.

It is the dagster-duckdb-polars IO manager with two changes that keep stored weeks safe:
- the delete of a partition and the insert of its new rows run in one transaction, so a
  write that fails leaves the previous rows as they were;
- rows are inserted by column name, so a table whose columns were reordered or extended
  still receives each value in its own column. A frame with a column that the table lacks
  fails the write instead of shifting values.
"""

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler, TableSlice
from dagster_duckdb.io_manager import DuckDbClient

# The stock client's WHERE clause for a partition slice, so deletes match its loads exactly.
from dagster_duckdb.io_manager import _partition_where_clause as partition_where_clause
from dagster_duckdb_polars import DuckDBPolarsTypeHandler
from pydantic import Field, field_validator

SCHEMA = "streams_t100"
DEFAULT_DUCKDB_PATH = "data/streams_t100.duckdb"
DEFAULT_MOTHERDUCK_DATABASE = "streams_t100"

# connect() fails at once while another process holds the local file's write lock. Waiting
# a little covers a short overlap, and the concurrency pool keeps long runs apart.
LOCK_WAIT_ATTEMPTS = 20
LOCK_WAIT_SECONDS = 0.5

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def qualified_name(table_slice: TableSlice) -> str:
    # Qualified with the catalog too: the default file streams_t100.duckdb attaches a catalog
    # named like the schema, and DuckDB rejects `streams_t100.table` as ambiguous.
    return ".".join(
        quoted(part) for part in (table_slice.database, table_slice.schema, table_slice.table)
    )


def local_table(duckdb_path: str | Path, table: str) -> str:
    """Return the fully qualified name of a warehouse table in a local DuckDB file."""
    return ".".join(quoted(part) for part in (Path(duckdb_path).stem, SCHEMA, table))


def where_clause(table_slice: TableSlice) -> str:
    if not table_slice.partition_dimensions:
        return ""
    return f" where {partition_where_clause(table_slice.partition_dimensions)}"


def select_statement(table_slice: TableSlice) -> str:
    columns = ", ".join(quoted(column) for column in table_slice.columns or []) or "*"
    return f"select {columns} from {qualified_name(table_slice)}{where_clause(table_slice)}"


def table_exists(connection: duckdb.DuckDBPyConnection, table_slice: TableSlice) -> bool:
    found = connection.execute(
        "select count(*) from duckdb_tables() "
        "where database_name = ? and schema_name = ? and table_name = ?",
        [table_slice.database, table_slice.schema, table_slice.table],
    ).fetchone()
    return bool(found and found[0])


class TransactionalDuckDbClient(DuckDbClient):
    """Opens one connection per load or store and runs all of its statements in one transaction."""

    def __init__(self, target: str, config: dict[str, str]):
        self._target = target
        self._config = config

    @contextmanager
    def connect(self, context, table_slice: TableSlice) -> Iterator[duckdb.DuckDBPyConnection]:
        connection = self._open_connection()
        try:
            connection.begin()
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()

    @staticmethod
    def delete_table_slice(context, table_slice: TableSlice, connection) -> None:
        # Checked first rather than caught, so that no error ever occurs inside the transaction.
        if table_exists(connection, table_slice):
            connection.execute(delete_statement(table_slice))

    @staticmethod
    def ensure_schema_exists(context, table_slice: TableSlice, connection) -> None:
        schema = f"{quoted(table_slice.database)}.{quoted(table_slice.schema)}"
        connection.execute(f"create schema if not exists {schema}")

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        return select_statement(table_slice)

    def _open_connection(self) -> duckdb.DuckDBPyConnection:
        for attempt in range(1, LOCK_WAIT_ATTEMPTS + 1):
            try:
                return duckdb.connect(self._target, config=self._config)
            except duckdb.IOException as error:
                if "lock" not in str(error).lower() or attempt == LOCK_WAIT_ATTEMPTS:
                    raise
                time.sleep(LOCK_WAIT_SECONDS)
        raise AssertionError("unreachable: the last attempt either returns or raises")


def delete_statement(table_slice: TableSlice) -> str:
    """Return the statement that deletes the partitions being written, or every row."""
    return f"delete from {qualified_name(table_slice)}{where_clause(table_slice)}"


class PolarsByNameTypeHandler(DuckDBPolarsTypeHandler):
    """Stores polars frames, creating the table on first write and inserting by name after."""

    def handle_output(self, context, table_slice: TableSlice, obj: pl.DataFrame, connection):
        connection.register("incoming_rows", obj.to_arrow())
        try:
            if table_exists(connection, table_slice):
                connection.execute(
                    f"insert into {qualified_name(table_slice)} by name select * from incoming_rows"
                )
            else:
                connection.execute(
                    f"create table {qualified_name(table_slice)} as select * from incoming_rows"
                )
        finally:
            connection.unregister("incoming_rows")

        column_schema = dg.TableSchema(
            columns=[
                dg.TableColumn(name=name, type=str(dtype)) for name, dtype in obj.schema.items()
            ]
        )
        return {
            "dagster/row_count": dg.MetadataValue.int(obj.height),
            "dagster/column_schema": dg.MetadataValue.table_schema(column_schema),
        }

    def load_input(self, context, table_slice: TableSlice, connection) -> pl.DataFrame:
        if table_slice.partition_dimensions and not context.asset_partition_keys:
            return pl.DataFrame()
        return connection.execute(select_statement(table_slice)).pl()


class WarehouseIOManager(dg.ConfigurableIOManagerFactory):
    """Weekly tables in MotherDuck when a token is set, otherwise in a local DuckDB file."""

    duckdb_path: str = Field(
        default=DEFAULT_DUCKDB_PATH, description="Local DuckDB file, used without a token."
    )
    motherduck_token: str | None = Field(
        default=None, description="MotherDuck token; when set, the warehouse is MotherDuck."
    )
    motherduck_database: str = Field(default=DEFAULT_MOTHERDUCK_DATABASE)
    schema_name: str = Field(default=SCHEMA, description="Schema that contains every table.")

    @field_validator("motherduck_database", "schema_name", mode="before")
    @classmethod
    def _valid_identifier(cls, name: object) -> object:
        # An EnvVar is checked once Dagster resolves it to its value, when a run starts.
        if isinstance(name, dg.EnvVar):
            return name
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise ValueError(
                f"invalid name {name!r}: use letters, digits and underscores, not starting "
                "with a digit"
            )
        return name

    @property
    def uses_motherduck(self) -> bool:
        return bool(self.motherduck_token)

    def connection_target(self) -> str:
        # NOTE: the MotherDuck branch has not been run against MotherDuck itself: the tests
        # run where there is no network, so they cover only the local file.
        if self.uses_motherduck:
            return f"md:{self.motherduck_database}"
        Path(self.duckdb_path).parent.mkdir(parents=True, exist_ok=True)
        return self.duckdb_path

    def catalog_name(self) -> str:
        """Return the catalog name that DuckDB gives the warehouse, for qualified table names."""
        if self.uses_motherduck:
            return self.motherduck_database
        return Path(self.duckdb_path).stem

    def create_io_manager(self, context) -> DbIOManager:
        config = {"custom_user_agent": "streams_t100"}
        if self.uses_motherduck:
            config["motherduck_token"] = self.motherduck_token or ""
        return DbIOManager(
            db_client=TransactionalDuckDbClient(self.connection_target(), config),
            database=self.catalog_name(),
            schema=self.schema_name,
            type_handlers=self.type_handlers(),
            default_load_type=pl.DataFrame,
            io_manager_name="WarehouseIOManager",
        )

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [PolarsByNameTypeHandler()]
