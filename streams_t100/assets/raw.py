"""The raw layer: every page the API returned, stored as it came."""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
import polars as pl
from pydantic import Field

from streams_t100.assets.common import WEEKLY_ASSET_SETTINGS, weeks_in_run
from streams_t100.channel_list import StoredPage, check_week
from streams_t100.request_window import FREE_TIME_VALUE
from streams_t100.streams_charts import FetchedPage, StreamsChartsClient

RAW_CHANNEL_PAGES_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date(),
        "platform": pl.String(),
        "page": pl.Int32(),
        "time_value": pl.String(),
        "request_url": pl.String(),
        "fetched_at": pl.Datetime("us", "UTC"),
        "http_status": pl.Int32(),
        "body": pl.String(),
    }
)


class RawChannelPagesConfig(dg.Config):
    """Run config of `raw_channel_pages`, for choices made one run at a time."""

    allow_paid_requests: bool = Field(
        default=False,
        description="Allow paid requests in this run, even where the streams_charts resource "
        "does not (STREAMS_CHARTS_ALLOW_PAID).",
    )


@dg.asset(**WEEKLY_ASSET_SETTINGS)
def raw_channel_pages(
    context: dg.AssetExecutionContext,
    config: RawChannelPagesConfig,
    streams_charts: StreamsChartsClient,
) -> dg.Output[pl.DataFrame]:
    """One row per channel-list page fetched for a week: the request's `time` value, when it
    was fetched, the HTTP status and the exact response body as JSON text."""
    weeks = weeks_in_run(context)
    now = datetime.now(UTC)

    # Every week is checked against the request window before the first request, so that a
    # week that may not be requested fails the run before any other week spends credits.
    time_values = {
        week: streams_charts.time_value_for(week, now, config.allow_paid_requests) for week in weeks
    }

    pages: list[FetchedPage] = []
    channel_count = 0
    for week in weeks:
        week_pages = streams_charts.fetch_week(week, time_values[week])
        # Checking here rejects a bad page before it is stored. The rows themselves are built
        # downstream from what is stored.
        channel_count += check_week(week, [stored_page(page) for page in week_pages]).channel_count
        pages.extend(week_pages)

    # One line for the run, not one a week: each log line is an event that Dagster stores,
    # which costs a backfill of five years more than the parsing does.
    free_weeks = sum(1 for value in time_values.values() if value == FREE_TIME_VALUE)
    context.log.info(
        "Fetched %d weeks, %s to %s: %d pages, %d channels; %d free (time=%s), %d paid",
        len(weeks),
        weeks[0].key,
        weeks[-1].key,
        len(pages),
        channel_count,
        free_weeks,
        FREE_TIME_VALUE,
        len(weeks) - free_weeks,
    )
    frame = raw_pages_frame(pages)
    return dg.Output(
        frame,
        metadata={
            "weeks": dg.MetadataValue.int(len(weeks)),
            "pages": dg.MetadataValue.int(frame.height),
            "free_weeks": dg.MetadataValue.int(free_weeks),
            "paid_weeks": dg.MetadataValue.int(len(weeks) - free_weeks),
            "api": streams_charts.base_url,
        },
    )


def stored_page(page: FetchedPage) -> StoredPage:
    return StoredPage(page=page.page, fetched_at=page.fetched_at, body=page.body)


def raw_pages_frame(pages: Sequence[FetchedPage]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "week_start": [page.week.start for page in pages],
            "platform": [page.platform for page in pages],
            "page": [page.page for page in pages],
            "time_value": [page.time_value for page in pages],
            "request_url": [page.request_url for page in pages],
            "fetched_at": [page.fetched_at for page in pages],
            "http_status": [page.http_status for page in pages],
            "body": [page.body for page in pages],
        },
        schema=RAW_CHANNEL_PAGES_SCHEMA,
    )
