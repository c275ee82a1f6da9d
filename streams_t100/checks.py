"""Asset checks, evaluated on the rows an asset has just produced.

Each check returns one result for all the weeks of a run, with the failing weeks in its
metadata. The checks on `weekly_top_channels` that protect the analytics are blocking: when
one fails, the downstream assets of that run are not materialized.
"""

from collections.abc import Callable

import dagster as dg
import polars as pl

from streams_t100.channel_list import COUNT_FIELDS

# followers_gain is left out because a channel can lose followers over a week.
NON_NEGATIVE_COUNTS = tuple(name for name in COUNT_FIELDS if name != "followers_gain")

WEEKLY_TOP_CHANNELS_CHECKS: dict[str, tuple[str, bool]] = {
    # name: (description, blocking)
    "rows_per_week": ("Each week has 100 channels for every page fetched.", True),
    "unique_channel_per_week": ("No channel_id appears twice in a week.", True),
    "non_negative_counts": (
        "Hours watched, viewers, airtime and live views are never negative.",
        True,
    ),
    "rank_follows_hours_watched": (
        "Ranks run 1, 2, 3, ... with hours watched never rising as the rank number grows.",
        True,
    ),
    "average_within_peak": ("average_viewers is at most peak_viewers.", False),
}


def check_specs_for(asset_key: str, checks: dict[str, tuple[str, bool]]) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name, asset=asset_key, description=description, blocking=blocking)
        for name, (description, blocking) in checks.items()
    ]


def check_result(
    name: str, failing_weeks: pl.Series, checks: dict[str, tuple[str, bool]], detail: str
) -> dg.AssetCheckResult:
    """Build a check result from the weeks that failed it (an empty series passes)."""
    _, blocking = checks[name]
    weeks = sorted(str(week) for week in failing_weeks.unique().to_list())
    return dg.AssetCheckResult(
        check_name=name,
        passed=not weeks,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        metadata={
            "failing_weeks": dg.MetadataValue.int(len(weeks)),
            "first_failing_weeks": ", ".join(weeks[:10]) or "none",
            "detail": detail,
        },
    )


def weeks_where(frame: pl.DataFrame, condition: pl.Expr) -> pl.Series:
    return frame.filter(condition).get_column("week_start")


def check_weekly_top_channels(
    channels: pl.DataFrame, expected_rows_per_week: dict[object, int]
) -> list[dg.AssetCheckResult]:
    """Evaluate every check on `weekly_top_channels` for the weeks in `channels`."""
    evaluations: dict[str, Callable[[], tuple[pl.Series, str]]] = {
        "rows_per_week": lambda: (
            weeks_with_wrong_row_count(channels, expected_rows_per_week),
            "rows per week must equal 100 times the pages fetched for it",
        ),
        "unique_channel_per_week": lambda: (
            weeks_where(channels, pl.struct("week_start", "channel_id").is_duplicated()),
            "duplicate (week_start, channel_id) pairs",
        ),
        "non_negative_counts": lambda: (
            weeks_where(channels, pl.any_horizontal(pl.col(NON_NEGATIVE_COUNTS) < 0)),
            f"checked columns: {', '.join(NON_NEGATIVE_COUNTS)}",
        ),
        "rank_follows_hours_watched": lambda: (
            weeks_with_rank_out_of_order(channels),
            "within a week, sorted by rank, ranks are 1..n and hours_watched never increases",
        ),
        "average_within_peak": lambda: (
            weeks_where(channels, pl.col("average_viewers") > pl.col("peak_viewers")),
            "rows where average_viewers > peak_viewers",
        ),
    }
    results = []
    for name, evaluate in evaluations.items():
        failing, detail = evaluate()
        results.append(check_result(name, failing, WEEKLY_TOP_CHANNELS_CHECKS, detail))
    return results


def weeks_with_wrong_row_count(
    channels: pl.DataFrame, expected_rows_per_week: dict[object, int]
) -> pl.Series:
    counts = dict(channels.group_by("week_start").len().iter_rows())
    wrong = [
        week for week, expected in expected_rows_per_week.items() if counts.get(week, 0) != expected
    ]
    return pl.Series("week_start", wrong, dtype=pl.Date())


def weeks_with_rank_out_of_order(channels: pl.DataFrame) -> pl.Series:
    ordered = channels.sort("week_start", "rank").with_columns(
        position=pl.int_range(1, pl.len() + 1).over("week_start"),
        hours_before=pl.col("hours_watched").shift(1).over("week_start"),
    )
    out_of_order = (pl.col("rank") != pl.col("position")) | (
        pl.col("hours_watched") > pl.col("hours_before")
    )
    return weeks_where(ordered, out_of_order.fill_null(False))


CATEGORY_SUMMARY_CHECKS: dict[str, tuple[str, bool]] = {
    "shares_add_up": (
        "For each week and dimension, the hours-watched shares add up to 1.",
        False,
    ),
}


def check_category_summary(summary: pl.DataFrame) -> list[dg.AssetCheckResult]:
    totals = summary.group_by("week_start", "dimension").agg(
        share_total=pl.col("hours_watched_share").sum()
    )
    failing = weeks_where(totals, (pl.col("share_total") - 1).abs() > 1e-9)
    return [
        check_result(
            "shares_add_up", failing, CATEGORY_SUMMARY_CHECKS, "sum of hours_watched_share"
        )
    ]
