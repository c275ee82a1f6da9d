"""Names and helpers shared by the asset layers."""

import dagster as dg

from streams_t100.partitions import Week, weekly_partitions

# Every asset that writes the warehouse runs in this pool. With a limit of 1 in the Dagster
# instance, runs that write the local DuckDB file queue instead of failing on its lock.
WAREHOUSE_POOL = "duckdb_warehouse"

GROUP_NAME = "streams_t100"


def weeks_in_run(context: dg.AssetExecutionContext) -> list[Week]:
    """Return the weeks this run materializes: one, or a range in a single-run backfill."""
    return [Week.from_key(key) for key in context.partition_keys]


# Settings shared by every weekly table: the week partitions, one run for a whole backfill
# range, and `week_start` as the column by which the IO manager replaces a week's rows.
WEEKLY_ASSET_SETTINGS = dict(
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"partition_expr": "week_start"},
    kinds={"duckdb", "polars"},
    group_name=GROUP_NAME,
    pool=WAREHOUSE_POOL,
)
