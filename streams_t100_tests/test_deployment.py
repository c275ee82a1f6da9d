"""A deployment as docker compose runs it: deploy/dagster.yaml on the machine's Postgres, and
the code server, daemon and webserver started with their compose commands."""

import itertools
import subprocess
import threading
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from streams_t100_tests.conftest import instance_from_home
from streams_t100_tests.deployment import (
    VENV_BIN,
    compose_services,
    dagster_home_from_repository,
    deployment_environment,
    fresh_postgres_database,
    interpolate,
    launch_asset_backfill,
    materialize_command,
    postgres_variables,
    query_postgres,
    simulator_variables,
    wait_for_backfill,
    wait_until,
)
from streams_t100_tests.helpers import client_for, materialize_weeks, query

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

WEEKLY_ASSETS = [
    "raw_channel_pages",
    "weekly_top_channels",
    "weekly_channel_movers",
    "weekly_category_summary",
]
ALL_ASSETS = [*WEEKLY_ASSETS, "channel_profiles"]
BASE_ASSETS = "raw_channel_pages,weekly_top_channels"


def test_instance_stores_runs_in_postgres(tmp_path, simulator, duckdb_path):
    with fresh_postgres_database() as database:
        home = dagster_home_from_repository(tmp_path / "dagster_home")
        instance = instance_from_home(home, postgres_variables(database))
        client = client_for(
            simulator.base_url, simulator.client_id, simulator.token, allow_paid_requests=True
        )

        result = materialize_weeks(client, duckdb_path, "2025-01-06", instance=instance)

        assert type(instance.run_storage).__name__ == "PooledRunStorage"
        assert type(instance.event_log_storage).__name__ == "PooledEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        runs = instance.get_runs()
        assert [run.run_id for run in runs] == [result.run_id]
        assert runs[0].status == DagsterRunStatus.SUCCESS
        for asset in WEEKLY_ASSETS:
            partitions = instance.get_materialized_partitions(dg.AssetKey(asset))
            assert partitions == {"2025-01-06"}, asset
        instance.dispose()

        # The same facts, read straight from Postgres.
        assert query_postgres(database, "select run_id, status from runs") == [
            (result.run_id, "SUCCESS")
        ]
        materialized = query_postgres(
            database,
            "select asset_key, partition from event_logs "
            "where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION' order by 1",
            (result.run_id,),
        )
        assert materialized == [
            ('["channel_profiles"]', None),
            ('["raw_channel_pages"]', "2025-01-06"),
            ('["weekly_category_summary"]', "2025-01-06"),
            ('["weekly_channel_movers"]', "2025-01-06"),
            ('["weekly_top_channels"]', "2025-01-06"),
        ]


def backfill_runs(instance, backfill_id: str):
    return instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill_id}))


def test_daemon_runs_three_week_backfill(deployment):
    weeks = ["2025-02-03", "2025-02-10", "2025-02-17"]
    instance = deployment.instance()

    backfill_id = launch_asset_backfill(deployment.webserver_url, WEEKLY_ASSETS, weeks)
    backfill = wait_for_backfill(deployment, instance, backfill_id)

    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, deployment.logs()
    # The single-run backfill policy gives each run a whole range of weeks. The movers get a
    # run of their own because each week's movers read the week before, so the daemon starts
    # them once the first run has stored those weeks. It also adds the week after the range,
    # whose movers read the range's last week.
    runs_by_assets = {
        tuple(sorted(key.to_user_string() for key in run.asset_selection)): run
        for run in backfill_runs(instance, backfill_id)
    }
    base_assets = ("raw_channel_pages", "weekly_category_summary", "weekly_top_channels")
    assert set(runs_by_assets) == {base_assets, ("weekly_channel_movers",)}
    week_ranges = {
        assets: (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG])
        for assets, run in runs_by_assets.items()
    }
    assert week_ranges[base_assets] == ("2025-02-03", "2025-02-17")
    assert week_ranges[("weekly_channel_movers",)] == ("2025-02-03", "2025-02-24")
    assert {run.status for run in runs_by_assets.values()} == {DagsterRunStatus.SUCCESS}
    stored = query(
        deployment.duckdb_path,
        "select week_start, count(*) from {table} where week_start between ? and ? "
        "group by 1 order by 1",
        "weekly_top_channels",
        [weeks[0], weeks[-1]],
    )
    assert [(str(week), count) for week, count in stored] == [(week, 100) for week in weeks]
    for asset in WEEKLY_ASSETS:
        assert set(weeks) <= instance.get_materialized_partitions(dg.AssetKey(asset)), asset
    movers_weeks = query(
        deployment.duckdb_path,
        "select distinct week_start from {table} where week_start between ? and ? order by 1",
        "weekly_channel_movers",
        ["2025-02-03", "2025-02-24"],
    )
    # The week after the range has no top list yet, so it has no movers either.
    assert [str(week) for (week,) in movers_weeks] == weeks
    instance.dispose()


def test_pool_queues_second_run(deployment):
    instance = deployment.instance()

    # Two backfills submitted together give two runs that both write the DuckDB file.
    backfill_ids = [
        launch_asset_backfill(deployment.webserver_url, WEEKLY_ASSETS, [week])
        for week in ("2025-03-03", "2025-03-10")
    ]
    for backfill_id in backfill_ids:
        wait_for_backfill(deployment, instance, backfill_id)

    runs = [run for backfill_id in backfill_ids for run in backfill_runs(instance, backfill_id)]
    # Each backfill makes two runs, one of them for the movers.
    assert len(runs) == 4
    assert {run.status for run in runs} == {DagsterRunStatus.SUCCESS}, deployment.logs()
    windows = sorted(
        (instance.get_run_stats(run.run_id) for run in runs), key=lambda stats: stats.start_time
    )
    # The pool admits one run at a time: each run starts only after the one before has ended.
    for earlier, later in itertools.pairwise(windows):
        assert later.start_time >= earlier.end_time
    instance.dispose()


def test_compose_healthchecks_pass(deployment):
    # The healthcheck commands that compose runs inside the containers, run here the same way.
    for name in ("code_server", "webserver"):
        kind, executable, *arguments = compose_services()[name]["healthcheck"]["test"]
        command = [str(VENV_BIN / executable)]
        command += [interpolate(part, deployment.environment) for part in arguments]

        completed = subprocess.run(
            command, env=deployment.environment, capture_output=True, text=True, timeout=60
        )

        assert kind == "CMD", name
        assert completed.returncode == 0, f"{name}: {completed.stderr[-2000:]}"


def postgres_sessions(database: str) -> int:
    """Return how many connections to `database` have been opened since it was created."""
    [(sessions,)] = query_postgres(
        database, "select sessions from pg_stat_database where datname = %s", (database,)
    )
    return sessions


def stock_postgres_home(folder: Path) -> Path:
    """A Dagster home like the deployment's, but with dagster-postgres' own storage."""
    home = dagster_home_from_repository(folder)
    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    settings["storage"] = {"postgres": settings["storage"]["custom"]["config"]}
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    return home


def materialize_base_assets(home: Path, database: str, simulator, duckdb: Path, weeks: str):
    """Run the base assets for `weeks` (a partition range) as one `dagster asset materialize`."""
    environment = deployment_environment(
        DAGSTER_HOME=str(home),
        **simulator_variables(simulator, duckdb),
        **postgres_variables(database),
    )
    command = materialize_command(BASE_ASSETS, "--partition-range", weeks)
    completed = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def event_count(database: str) -> int:
    [(events,)] = query_postgres(database, "select count(*) from event_logs")
    return events


def test_run_reuses_postgres_connections(tmp_path, simulator):
    # The same runs on dagster-postgres' own storage, which opens a connection for every
    # event it writes, show that the counter counts the runs' connections.
    homes = {
        "deployment": dagster_home_from_repository(tmp_path / "deployment_home"),
        "stock": stock_postgres_home(tmp_path / "stock_home"),
    }
    opened, events = {}, {}
    for name, home in homes.items():
        duckdb = tmp_path / f"{name}.duckdb"
        with fresh_postgres_database() as database:
            # The first run creates Dagster's tables, with many connections of its own.
            materialize_base_assets(home, database, simulator, duckdb, "2025-01-06...2025-01-06")
            events_before, sessions_before = event_count(database), postgres_sessions(database)

            materialize_base_assets(home, database, simulator, duckdb, "2025-01-13...2025-03-17")

            # Each query here opens a connection of its own: two between the counts.
            opened[name] = postgres_sessions(database) - sessions_before - 2
            events[name] = event_count(database) - events_before

    assert events["deployment"] == events["stock"] > 40
    assert opened["stock"] >= events["stock"]
    # The run and event log storages each open one connection for their startup check and
    # keep two. The schedule storage is not pooled: it opened two connections here.
    assert opened["deployment"] <= 9, opened


def open_connections(database: str) -> int:
    """Return how many connections other than this query's are open to `database`."""
    [(count,)] = query_postgres(
        database,
        "select count(*) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
        (database,),
    )
    return count


def test_many_threads_store_events_at_once(tmp_path):
    # Storing an asset event uses two connections at once, so with a capped pool enough
    # threads would wait on each other.
    threads, events_per_thread = 8, 3
    with fresh_postgres_database() as database:
        home = dagster_home_from_repository(tmp_path / "dagster_home")
        instance = instance_from_home(home, postgres_variables(database))
        errors: list[BaseException] = []

        def store_events(thread: int) -> None:
            try:
                for week in range(events_per_thread):
                    instance.report_runless_asset_event(
                        dg.AssetMaterialization(f"thread_{thread}", partition=f"week_{week}")
                    )
            except BaseException as error:
                errors.append(error)

        writers = [threading.Thread(target=store_events, args=(n,)) for n in range(threads)]
        for writer in writers:
            writer.start()
        for writer in writers:
            # A bound for a hang, not a timing: the writes take well under a second.
            writer.join(timeout=120)

        assert [writer.name for writer in writers if writer.is_alive()] == []
        assert errors == []
        stored = query_postgres(
            database,
            "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'",
        )
        assert stored == [(threads * events_per_thread,)]
        instance.dispose()


def test_disposed_instance_closes_connections(tmp_path):
    with fresh_postgres_database() as database:
        home = dagster_home_from_repository(tmp_path / "dagster_home")
        instance = instance_from_home(home, postgres_variables(database))
        # One read from the run storage and one from the event log storage.
        instance.get_runs()
        instance.all_logs("no-such-run")
        assert open_connections(database) == 2

        instance.dispose()

        wait_until(lambda: open_connections(database) == 0, 10, "the connections to close")
