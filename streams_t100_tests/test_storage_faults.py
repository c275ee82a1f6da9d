"""Storage faults: a week's rows survive a write that fails or is killed half way, columns
are matched by name, concurrent writers do not corrupt the file, and an unreachable Postgres
gives a short error."""

import socket
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from streams_t100.assets.enriched import weekly_top_channels
from streams_t100.assets.raw import raw_channel_pages
from streams_t100.partitions import weekly_partitions
from streams_t100.simulator import week_ranking
from streams_t100.simulator_faults import Fault
from streams_t100.warehouse import local_table
from streams_t100_tests.conftest import instance_from_home
from streams_t100_tests.deployment import (
    REPOSITORY_ROOT,
    VENV_BIN,
    dagster_home_from_repository,
    deployment_environment,
    fresh_postgres_database,
    materialize_command,
    postgres_variables,
    query_postgres,
    simulator_variables,
    wait_until,
)
from streams_t100_tests.helpers import client_for, materialize_weeks, query, step_error

FIRST, SECOND = date(2025, 1, 6), date(2025, 1, 13)
BASE_ASSETS = [raw_channel_pages, weekly_top_channels]


@pytest.fixture
def paid_client(simulator):
    return client_for(
        simulator.base_url, simulator.client_id, simulator.token, allow_paid_requests=True
    )


@pytest.fixture
def first_week(paid_client, duckdb_path) -> Path:
    assert materialize_weeks(paid_client, duckdb_path, "2025-01-06", assets=BASE_ASSETS).success
    return duckdb_path


def week_rows(duckdb_path: Path, week_start: date = FIRST) -> list[tuple]:
    return query(
        duckdb_path,
        "select rank, channel_id, hours_watched, live_views, fetched_at from {table} "
        "where week_start = ? order by rank",
        "weekly_top_channels",
        [week_start],
    )


def served_values(week_start: date = FIRST) -> list[tuple]:
    return [
        (rank, record["channel_id"], record["hours_watched"], int(record["live_views"]))
        for rank, record in enumerate(week_ranking("twitch", week_start)[:100], start=1)
    ]


@dg.asset(
    name="weekly_top_channels",
    partitions_def=weekly_partitions,
    metadata={"partition_expr": "week_start"},
)
def week_with_unconvertible_count() -> pl.DataFrame:
    """Stands in for a bad write: the insert fails on its value, after the delete has run."""
    return pl.DataFrame(
        {"week_start": [FIRST], "channel_id": ["1"], "hours_watched": ["not a number"]}
    )


def test_insert_failing_after_delete_keeps_rows(first_week, paid_client):
    before = week_rows(first_week)

    result = materialize_weeks(
        paid_client, first_week, "2025-01-06", assets=[week_with_unconvertible_count],
        raise_on_error=False,
    )  # fmt: skip

    assert not result.success
    assert "not a number" in step_error(result).message
    assert week_rows(first_week) == before


def test_write_killed_midway_keeps_rows(first_week):
    before = week_rows(first_week)
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("write_then_pause.py")), str(first_week)],
        cwd=REPOSITORY_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    paused_after_delete = False
    try:
        for line in writer.stdout:
            if line.strip() == "deleted":
                paused_after_delete = True
                break
    finally:
        writer.kill()
        writer.wait(timeout=30)

    assert paused_after_delete, "the writer ended before it deleted the week's rows"
    assert week_rows(first_week) == before
    assert len(before) == 100


def reorder_columns(duckdb_path: Path) -> None:
    table = local_table(duckdb_path, "weekly_top_channels")
    with duckdb.connect(str(duckdb_path)) as connection:
        columns = [row[0] for row in connection.execute(f"describe {table}").fetchall()]
        reversed_columns = ", ".join(f'"{name}"' for name in reversed(columns))
        connection.execute(f"create table reordered as select {reversed_columns} from {table}")
        connection.execute(f"drop table {table}")
        connection.execute(f"create table {table} as select * from reordered")
        connection.execute("drop table reordered")


def test_reordered_columns_receive_right_values(first_week, paid_client):
    reorder_columns(first_week)

    result = materialize_weeks(paid_client, first_week, "2025-01-13", assets=BASE_ASSETS)

    assert result.success
    assert [row[:4] for row in week_rows(first_week, SECOND)] == served_values(SECOND)
    assert [row[:4] for row in week_rows(first_week, FIRST)] == served_values(FIRST)


def test_extended_table_receives_right_values(first_week, paid_client):
    table = local_table(first_week, "weekly_top_channels")
    with duckdb.connect(str(first_week)) as connection:
        connection.execute(f"alter table {table} add column analyst_note varchar default 'kept'")

    result = materialize_weeks(paid_client, first_week, "2025-01-06", assets=BASE_ASSETS)

    assert result.success
    assert [row[:4] for row in week_rows(first_week)] == served_values(FIRST)
    notes = query(first_week, "select distinct analyst_note from {table}", "weekly_top_channels")
    # A column the frame lacks takes its default for the new rows.
    assert notes == [("kept",)]


def clear_country(document):
    for record in document["data"]:
        record["channel_country"] = None


def test_all_null_week_keeps_declared_type(simulator, paid_client, duckdb_path):
    simulator.inject(Fault(mutate=clear_country))

    assert materialize_weeks(paid_client, duckdb_path, "2025-01-06", assets=BASE_ASSETS).success
    assert materialize_weeks(paid_client, duckdb_path, "2025-01-13", assets=BASE_ASSETS).success

    types = dict(
        (name, kind)
        for name, kind, *_ in query(duckdb_path, "describe {table}", "weekly_top_channels")
    )
    assert types["channel_country"] == "VARCHAR"
    counts = query(
        duckdb_path,
        "select week_start, count(channel_country) from {table} group by 1 order by 1",
        "weekly_top_channels",
    )
    assert counts == [(FIRST, 0), (SECOND, 100)]


def test_two_processes_write_different_weeks(simulator, duckdb_path):
    environment = deployment_environment(**simulator_variables(simulator, duckdb_path))
    writers = [
        subprocess.Popen(
            materialize_command("raw_channel_pages,weekly_top_channels", "--partition", week),
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for week in ("2025-01-06", "2025-01-13")
    ]
    outcomes = [writer.communicate(timeout=300) for writer in writers]

    assert [writer.returncode for writer in writers] == [0, 0], [err[-2000:] for _, err in outcomes]
    assert [row[:4] for row in week_rows(duckdb_path, FIRST)] == served_values(FIRST)
    assert [row[:4] for row in week_rows(duckdb_path, SECOND)] == served_values(SECOND)


def test_unreachable_postgres_named_briefly(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    home = dagster_home_from_repository(tmp_path / "dagster_home")
    environment = deployment_environment(
        DAGSTER_HOME=str(home),
        **{**postgres_variables("streams_t100"), "DAGSTER_PG_PORT": str(port)},
    )

    completed = subprocess.run(
        [str(VENV_BIN / "streams-t100"), "demo", "--weeks", "1", "--database",
         str(tmp_path / "demo.duckdb")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert completed.returncode == 1
    assert f"cannot reach Dagster's Postgres storage at 127.0.0.1:{port}" in completed.stderr
    assert "Connection refused" in completed.stderr
    assert "Traceback" not in completed.stderr


def drop_connections_during_stalled_request(
    simulator, database: str
) -> tuple[threading.Thread, list[int]]:
    """Once the second API request is being held back, end every connection to `database`.

    Returns the thread that does it and the list it fills with one entry per ended connection.
    """
    terminated: list[int] = []

    def drop() -> None:
        wait_until(lambda: len(simulator.requests) >= 2, 60, "the second API request")
        rows = query_postgres(
            database,
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = %s and pid <> pg_backend_pid()",
            (database,),
        )
        terminated.extend(1 for (ended,) in rows if ended)

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    return thread, terminated


def test_run_outlives_postgres_ending_its_connections(
    tmp_path, simulator, paid_client, duckdb_path
):
    with fresh_postgres_database() as database:
        home = dagster_home_from_repository(tmp_path / "dagster_home")
        instance = instance_from_home(home, postgres_variables(database))
        # The second week's page is held back for two seconds, while the run's kept
        # connections to Postgres are ended from outside, as a Postgres restart ends them.
        simulator.inject(Fault(), Fault(stall_seconds=2))
        dropper, terminated = drop_connections_during_stalled_request(simulator, database)

        result = materialize_weeks(
            paid_client, duckdb_path, "2025-01-06", "2025-01-20", assets=BASE_ASSETS,
            instance=instance,
        )  # fmt: skip
        dropper.join(timeout=60)

        assert terminated, "no connection of the run was open to end"
        assert result.success
        weeks = instance.get_materialized_partitions(dg.AssetKey("weekly_top_channels"))
        assert weeks == {"2025-01-06", "2025-01-13", "2025-01-20"}
        instance.dispose()
    assert [row[:4] for row in week_rows(duckdb_path, SECOND)] == served_values(SECOND)
