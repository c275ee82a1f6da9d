"""The asset graph end to end: real HTTP to the simulator, a real DuckDB file, and Dagster's
in-process materialize. Expected values come from the simulator's own week lists, which are
what the API served, and are worked out here without the pipeline's parsing code."""

import json
from collections import defaultdict
from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest

from streams_t100.assets.enriched import weekly_top_channels
from streams_t100.assets.raw import raw_channel_pages
from streams_t100.partitions import weekly_partitions
from streams_t100.simulator import week_ranking
from streams_t100.warehouse import local_table
from streams_t100_tests.helpers import (
    StaticApi,
    client_for,
    documented_sample,
    materialize_weeks,
    query,
    step_error,
)

FIRST, SECOND = date(2025, 1, 6), date(2025, 1, 13)


def served_top_100(week_start: date) -> list[dict]:
    return list(week_ranking("twitch", week_start)[:100])


@pytest.fixture
def paid_client(simulator):
    return client_for(
        simulator.base_url, simulator.client_id, simulator.token, allow_paid_requests=True
    )


@pytest.fixture
def two_weeks(paid_client, duckdb_path):
    result = materialize_weeks(paid_client, duckdb_path, "2025-01-06", "2025-01-13")
    assert result.success
    return duckdb_path


def test_raw_pages_keep_exact_bodies(two_weeks, simulator):
    rows = query(
        two_weeks,
        "select week_start, platform, page, time_value, http_status, body from {table} "
        "order by week_start",
        "raw_channel_pages",
    )

    assert [row[:5] for row in rows] == [
        (FIRST, "twitch", 1, "2025-01-06,2025-01-12", 200),
        (SECOND, "twitch", 1, "2025-01-13,2025-01-19", 200),
    ]
    assert json.loads(rows[0][5])["data"] == served_top_100(FIRST)
    assert json.loads(rows[1][5])["meta"]["simulated"] is True
    assert len(simulator.requests) == 2


def test_top_channels_match_served_list(two_weeks):
    for week_start in (FIRST, SECOND):
        served = served_top_100(week_start)
        stored = query(
            two_weeks,
            "select rank, channel_id, hours_watched, live_views from {table} "
            "where week_start = ? order by rank",
            "weekly_top_channels",
            [week_start],
        )

        assert stored == [
            (position, record["channel_id"], record["hours_watched"], int(record["live_views"]))
            for position, record in enumerate(served, start=1)
        ]


def test_top_channels_week_columns(two_weeks):
    weeks = query(
        two_weeks,
        "select distinct week_start, week_end, iso_year, iso_week from {table} order by 1",
        "weekly_top_channels",
    )

    assert weeks == [
        (FIRST, date(2025, 1, 12), 2025, 2),
        (SECOND, date(2025, 1, 19), 2025, 3),
    ]


def test_movers_against_week_before(two_weeks):
    first = {r["channel_id"]: rank for rank, r in enumerate(served_top_100(FIRST), start=1)}
    second = {r["channel_id"]: rank for rank, r in enumerate(served_top_100(SECOND), start=1)}
    movers = {
        channel_id: (movement, rank, previous_rank, rank_change)
        for channel_id, movement, rank, previous_rank, rank_change in query(
            two_weeks,
            "select channel_id, movement, rank, previous_rank, rank_change from {table} "
            "where week_start = ?",
            "weekly_channel_movers",
            [SECOND],
        )
    }

    assert {c for c, m in movers.items() if m[0] == "new"} == second.keys() - first.keys()
    assert {c for c, m in movers.items() if m[0] == "dropped_out"} == first.keys() - second.keys()
    for channel_id in second.keys() & first.keys():
        before, now = first[channel_id], second[channel_id]
        expected = "unchanged"
        if now < before:
            expected = "up"
        elif now > before:
            expected = "down"
        assert movers[channel_id] == (expected, now, before, before - now)


def test_movers_without_week_before_are_unknown(two_weeks):
    # 2024-12-30 was never materialized, so the first week cannot be compared.
    movements = query(
        two_weeks,
        "select movement, count(*) from {table} where week_start = ? group by 1",
        "weekly_channel_movers",
        [FIRST],
    )

    assert movements == [("unknown", 100)]


def test_category_summary_shares(two_weeks):
    hours_by_game: dict[str, int] = defaultdict(int)
    channels_by_game: dict[str, int] = defaultdict(int)
    served = served_top_100(FIRST)
    for record in served:
        hours_by_game[record["last_streamed_game"]] += record["hours_watched"]
        channels_by_game[record["last_streamed_game"]] += 1
    total = sum(record["hours_watched"] for record in served)

    stored = query(
        two_weeks,
        "select value, channels, hours_watched, hours_watched_share from {table} "
        "where week_start = ? and dimension = 'game'",
        "weekly_category_summary",
        [FIRST],
    )

    assert {row[0] for row in stored} == hours_by_game.keys()
    for game, channels, hours_watched, share in stored:
        assert channels == channels_by_game[game]
        assert hours_watched == hours_by_game[game]
        assert share == pytest.approx(hours_by_game[game] / total)


def test_channel_profiles_over_weeks(two_weeks):
    first = {r["channel_id"]: rank for rank, r in enumerate(served_top_100(FIRST), start=1)}
    second = {r["channel_id"]: rank for rank, r in enumerate(served_top_100(SECOND), start=1)}
    profiles = {
        row[0]: row[1:]
        for row in query(
            two_weeks,
            "select channel_id, first_week_seen, last_week_seen, weeks_in_top_100, best_rank "
            "from {table}",
            "channel_profiles",
        )
    }

    assert profiles.keys() == first.keys() | second.keys()
    for channel_id, (first_seen, last_seen, weeks, best_rank) in profiles.items():
        ranks = [week[channel_id] for week in (first, second) if channel_id in week]
        assert weeks == len(ranks)
        assert best_rank == min(ranks)
        assert first_seen == (FIRST if channel_id in first else SECOND)
        assert last_seen == (SECOND if channel_id in second else FIRST)


def test_rematerialize_replaces_only_that_week(two_weeks, paid_client):
    with_marker = "update {table} set channel_display_name = 'edited' where week_start = ?"
    with duckdb.connect(str(two_weeks)) as connection:
        table = local_table(two_weeks, "weekly_top_channels")
        connection.execute(with_marker.format(table=table), [FIRST])
        connection.execute(with_marker.format(table=table), [SECOND])
        # A stray row that a correct rerun of the first week must remove.
        connection.execute(
            f"insert into {table} by name select * replace ('stray' as channel_id, 101 as rank) "
            f"from {table} where week_start = ? and rank = 1",
            [FIRST],
        )

    result = materialize_weeks(
        paid_client, two_weeks, "2025-01-06", assets=[raw_channel_pages, weekly_top_channels]
    )
    assert result.success

    rows_per_week = query(
        two_weeks,
        "select week_start, count(*), count(*) filter (channel_display_name = 'edited') "
        "from {table} group by 1 order by 1",
        "weekly_top_channels",
    )
    assert rows_per_week == [(FIRST, 100, 0), (SECOND, 100, 100)]
    raw_rows = query(
        two_weeks,
        "select week_start, count(*) from {table} group by 1 order by 1",
        "raw_channel_pages",
    )
    assert raw_rows == [(FIRST, 1), (SECOND, 1)]


@dg.asset(
    name="weekly_top_channels",
    partitions_def=weekly_partitions,
    metadata={"partition_expr": "week_start"},
)
def weekly_top_channels_with_new_column() -> pl.DataFrame:
    """Stands in for a changed asset whose frame gained a column the table lacks."""
    return pl.DataFrame({"week_start": [FIRST], "channel_id": ["1"], "column_the_table_lacks": [1]})


def test_failed_write_keeps_previous_rows(two_weeks, paid_client):
    result = materialize_weeks(
        paid_client,
        two_weeks,
        "2025-01-06",
        assets=[weekly_top_channels_with_new_column],
        raise_on_error=False,
    )

    assert not result.success
    assert "column_the_table_lacks" in step_error(result).message
    rows = query(
        two_weeks,
        "select week_start, count(*) from {table} group by 1 order by 1",
        "weekly_top_channels",
    )
    assert rows == [(FIRST, 100), (SECOND, 100)]


def test_documented_sample_through_graph(duckdb_path):
    body = json.dumps(documented_sample())
    with StaticApi(body) as api:
        client = client_for(api.base_url, "sample-client", "sample-token", allow_paid_requests=True)
        result = materialize_weeks(client, duckdb_path, "2025-01-06", raise_on_error=False)

    stored = query(
        duckdb_path, "select rank, channel_name, live_views from {table}", "weekly_top_channels"
    )
    assert stored == [(1, "xqc", 12977101), (2, "loud_coringa", 11252398)]
    assert query(duckdb_path, "select body from {table}", "raw_channel_pages") == [(body,)]

    # Two channels where 100 were expected fails the blocking row-count check, so nothing
    # downstream is built from the short list.
    checks = {
        evaluation.check_name: evaluation.passed
        for evaluation in result.get_asset_check_evaluations()
    }
    assert checks["rows_per_week"] is False
    assert checks["unique_channel_per_week"] is True
    assert checks["rank_follows_hours_watched"] is True
    materialized = {
        event.asset_key.to_user_string() for event in result.get_asset_materialization_events()
    }
    assert materialized == {"raw_channel_pages", "weekly_top_channels"}
