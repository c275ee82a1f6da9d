"""Start replacing week 2025-01-06 of weekly_top_channels, then pause until killed.

Run as a script by the storage tests: it prints `deleted` once the IO manager has deleted
the week's old rows inside its transaction, then sleeps so that the test can kill it there.
"""

import sys
import time
from datetime import date

import dagster as dg
import polars as pl

from streams_t100.partitions import weekly_partitions
from streams_t100.warehouse import PolarsByNameTypeHandler, WarehouseIOManager


class PausingTypeHandler(PolarsByNameTypeHandler):
    def handle_output(self, context, table_slice, obj, connection):
        print("deleted", flush=True)
        time.sleep(120)
        return super().handle_output(context, table_slice, obj, connection)


class PausingWarehouse(WarehouseIOManager):
    @staticmethod
    def type_handlers():
        return [PausingTypeHandler()]


@dg.asset(
    name="weekly_top_channels",
    partitions_def=weekly_partitions,
    metadata={"partition_expr": "week_start"},
)
def replacement_week() -> pl.DataFrame:
    return pl.DataFrame({"week_start": [date(2025, 1, 6)], "channel_id": ["replacement"]})


if __name__ == "__main__":
    dg.materialize(
        [replacement_week],
        resources={"io_manager": PausingWarehouse(duckdb_path=sys.argv[1])},
        partition_key="2025-01-06",
    )
