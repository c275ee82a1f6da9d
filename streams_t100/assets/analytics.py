"""The analytics layer, built from `weekly_top_channels` alone."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import polars as pl

from streams_t100.assets.common import (
    GROUP_NAME,
    WAREHOUSE_POOL,
    WEEKLY_ASSET_SETTINGS,
    weeks_in_run,
)
from streams_t100.checks import CATEGORY_SUMMARY_CHECKS, check_category_summary, check_specs_for
from streams_t100.partitions import Week

ONE_WEEK = timedelta(days=7)

MOVEMENTS = ("up", "down", "unchanged", "new", "dropped_out", "unknown")


@dg.asset(
    **WEEKLY_ASSET_SETTINGS,
    ins={
        "weekly_top_channels": dg.AssetIn(
            # Each week is compared with the week before it, so the run also loads that week.
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
            )
        )
    },
)
def weekly_channel_movers(
    context: dg.AssetExecutionContext, weekly_top_channels: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """One row per channel listed this week or the week before: rank and hours watched in
    both weeks and the change. `movement` is up, down, unchanged, new, dropped_out, or unknown
    when the week before is not in the warehouse."""
    weeks = weeks_in_run(context)
    movers = channel_movers(weekly_top_channels, weeks)
    counts = dict(movers.group_by("movement").len().iter_rows())
    context.log.info("Movers over %d weeks: %s", len(weeks), counts)

    without_list = weeks_without_top_list(weekly_top_channels, weeks)
    if without_list:
        context.log.warning(
            "No movers for %s: weekly_top_channels has no rows for these weeks yet",
            ", ".join(week.key for week in without_list),
        )
    metadata = {movement: dg.MetadataValue.int(counts.get(movement, 0)) for movement in MOVEMENTS}
    metadata["weeks_without_top_list"] = ", ".join(week.key for week in without_list) or "none"
    return dg.Output(movers, metadata=metadata)


def weeks_without_top_list(top_channels: pl.DataFrame, weeks: list[Week]) -> list[Week]:
    """Return the weeks of the run that `weekly_top_channels` has no rows for.

    An asset backfill also rebuilds the movers of the week after its last week, because that
    week's movers read the last week. When that week has not been fetched yet, it gets no rows.
    """
    loaded = set(top_channels.get_column("week_start").unique().to_list())
    return [week for week in weeks if week.start not in loaded]


def channel_movers(top_channels: pl.DataFrame, weeks: list[Week]) -> pl.DataFrame:
    """Compare each week in `weeks` with the week before it, as far as both are loaded."""
    columns = ["week_start", "channel_id", "channel_name", "channel_display_name"]
    this_week = top_channels.select(*columns, "rank", "hours_watched")
    week_before = top_channels.select(
        pl.col("week_start") + ONE_WEEK,
        "channel_id",
        pl.col("channel_name").alias("previous_channel_name"),
        pl.col("channel_display_name").alias("previous_display_name"),
        pl.col("rank").alias("previous_rank"),
        pl.col("hours_watched").alias("previous_hours_watched"),
    )
    loaded_weeks = top_channels.get_column("week_start").unique().implode()
    run_weeks = pl.Series([week.start for week in weeks], dtype=pl.Date()).implode()

    # Only weeks whose own list is loaded are compared: without it, every channel of the week
    # before would look as if it had dropped out.
    compared = this_week.join(
        week_before, on=["week_start", "channel_id"], how="full", coalesce=True
    ).filter(pl.col("week_start").is_in(run_weeks) & pl.col("week_start").is_in(loaded_weeks))

    previous_week_loaded = (pl.col("week_start") - ONE_WEEK).is_in(loaded_weeks)
    movement = (
        pl.when(~previous_week_loaded)
        .then(pl.lit("unknown"))
        .when(pl.col("rank").is_null())
        .then(pl.lit("dropped_out"))
        .when(pl.col("previous_rank").is_null())
        .then(pl.lit("new"))
        .when(pl.col("previous_rank") > pl.col("rank"))
        .then(pl.lit("up"))
        .when(pl.col("previous_rank") < pl.col("rank"))
        .then(pl.lit("down"))
        .otherwise(pl.lit("unchanged"))
    )
    return compared.select(
        "week_start",
        "channel_id",
        pl.coalesce("channel_name", "previous_channel_name").alias("channel_name"),
        pl.coalesce("channel_display_name", "previous_display_name").alias("channel_display_name"),
        "rank",
        "previous_rank",
        # Positive when the channel climbed: rank 5 last week and 2 this week is +3.
        (pl.col("previous_rank") - pl.col("rank")).alias("rank_change"),
        "hours_watched",
        "previous_hours_watched",
        (pl.col("hours_watched") - pl.col("previous_hours_watched")).alias("hours_watched_change"),
        movement.alias("movement"),
    ).sort("week_start", pl.col("rank").fill_null(1_000_000), "previous_rank")


CATEGORY_DIMENSIONS = {"game": "last_streamed_game", "language": "stream_language"}


@dg.asset(
    **WEEKLY_ASSET_SETTINGS,
    check_specs=check_specs_for("weekly_category_summary", CATEGORY_SUMMARY_CHECKS),
)
def weekly_category_summary(
    context: dg.AssetExecutionContext, weekly_top_channels: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    """One row per week, dimension (game or language) and value: channels in the week's list,
    their hours watched, and that value's share of the list's hours watched."""
    summary = category_summary(weekly_top_channels)
    context.log.info("Summarised %d weeks into %d rows", len(weeks_in_run(context)), summary.height)
    yield dg.Output(summary, metadata={"dagster/row_count": dg.MetadataValue.int(summary.height)})
    yield from check_category_summary(summary)


def category_summary(top_channels: pl.DataFrame) -> pl.DataFrame:
    frames = []
    for dimension, column in CATEGORY_DIMENSIONS.items():
        frames.append(
            top_channels.group_by("week_start", pl.col(column).fill_null("unknown").alias("value"))
            .agg(
                channels=pl.len().cast(pl.Int32()),
                hours_watched=pl.col("hours_watched").sum(),
            )
            .with_columns(dimension=pl.lit(dimension))
        )
    summary = pl.concat(frames)
    return (
        summary.with_columns(
            hours_watched_share=pl.col("hours_watched")
            / pl.col("hours_watched").sum().over("week_start", "dimension")
        )
        .select(
            "week_start", "dimension", "value", "channels", "hours_watched", "hours_watched_share"
        )
        .sort("week_start", "dimension", pl.col("hours_watched"), descending=[False, False, True])
    )


@dg.asset(
    kinds={"duckdb", "polars"},
    group_name=GROUP_NAME,
    pool=WAREHOUSE_POOL,
    # Not partitioned, but declared so that a week range with `--select '*'` stays one run.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def channel_profiles(weekly_top_channels: pl.DataFrame) -> dg.Output[pl.DataFrame]:
    """One row per channel ever listed: its latest names and attributes, the first and last
    week it was seen, the weeks it spent in the top 100 and its best rank."""
    profiles = latest_channel_profiles(weekly_top_channels)
    return dg.Output(profiles, metadata={"channels": dg.MetadataValue.int(profiles.height)})


LATEST_ATTRIBUTES = (
    "channel_name",
    "channel_display_name",
    "avatar_url",
    "channel_country",
    "stream_language",
    "partnership_status",
    "channel_type",
    "last_streamed_game",
)


def latest_channel_profiles(top_channels: pl.DataFrame) -> pl.DataFrame:
    in_top_100 = pl.col("rank") <= 100
    return (
        top_channels.sort("week_start")
        .group_by("platform", "channel_id")
        .agg(
            *[pl.col(name).last() for name in LATEST_ATTRIBUTES],
            first_week_seen=pl.col("week_start").min(),
            last_week_seen=pl.col("week_start").max(),
            weeks_in_top_100=pl.col("week_start").filter(in_top_100).n_unique().cast(pl.Int32()),
            best_rank=pl.col("rank").min(),
            total_hours_watched=pl.col("hours_watched").sum(),
        )
        .sort("best_rank", "channel_name")
    )
