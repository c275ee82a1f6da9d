"""The enriched layer: one typed, ranked row per channel per week, parsed from the raw pages."""

from collections.abc import Iterator

import dagster as dg
import polars as pl

from streams_t100.assets.common import WEEKLY_ASSET_SETTINGS, weeks_in_run
from streams_t100.channel_list import PAGE_SIZE, StoredPage, check_week, rows_frame
from streams_t100.checks import (
    WEEKLY_TOP_CHANNELS_CHECKS,
    check_specs_for,
    check_weekly_top_channels,
)
from streams_t100.partitions import Week
from streams_t100.preview import markdown_table


class MissingRawPagesError(RuntimeError):
    """A week whose raw pages are not in the warehouse."""


@dg.asset(
    **WEEKLY_ASSET_SETTINGS,
    check_specs=check_specs_for("weekly_top_channels", WEEKLY_TOP_CHANNELS_CHECKS),
)
def weekly_top_channels(
    context: dg.AssetExecutionContext, raw_channel_pages: pl.DataFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    """One row per channel per week: the 16 API fields with typed counts, the week's dates,
    ISO year and week, and rank (1 = most hours watched), parsed from the stored raw pages."""
    weeks = weeks_in_run(context)
    pages_by_week = stored_pages_by_week(raw_channel_pages)

    checked_weeks = []
    for week in weeks:
        if week.start not in pages_by_week:
            raise MissingRawPagesError(
                f"week {week.key}: no raw_channel_pages rows are stored for this week; "
                "materialize raw_channel_pages for it first"
            )
        checked_weeks.append(check_week(week, pages_by_week[week.start]))
    channels = rows_frame(checked_weeks)
    context.log.info("Parsed %d channels over %d weeks", channels.height, len(weeks))

    yield dg.Output(channels, metadata=top_channels_metadata(channels, weeks))

    expected_rows = {week.start: PAGE_SIZE * len(pages_by_week[week.start]) for week in weeks}
    yield from check_weekly_top_channels(channels, expected_rows)


def stored_pages_by_week(raw_pages: pl.DataFrame) -> dict[object, list[StoredPage]]:
    pages: dict[object, list[StoredPage]] = {}
    for week_start, page, fetched_at, body in raw_pages.select(
        "week_start", "page", "fetched_at", "body"
    ).iter_rows():
        pages.setdefault(week_start, []).append(StoredPage(page, fetched_at, body))
    return pages


def top_channels_metadata(channels: pl.DataFrame, weeks: list[Week]) -> dict[str, object]:
    latest = max(weeks, key=lambda week: week.start)
    top_ten = (
        channels.filter(pl.col("week_start") == latest.start)
        .sort("rank")
        .head(10)
        .select("rank", "channel_display_name", "hours_watched", "average_viewers")
    )
    return {
        "weeks": dg.MetadataValue.int(len(weeks)),
        "latest_week": latest.key,
        "top_10_latest_week": dg.MetadataValue.md(markdown_table(top_ten)),
    }
