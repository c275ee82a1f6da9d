"""The `streams-t100` command: a demo run on simulated data, and the simulator on its own."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from streams_t100.partitions import Week, last_complete_week, weekly_partitions
from streams_t100.simulator import SIMULATED_LABEL, Simulator
from streams_t100.simulator_faults import InvalidFaultError, parse_fault
from streams_t100.streams_charts import StreamsChartsClient
from streams_t100.warehouse import DEFAULT_DUCKDB_PATH, WarehouseIOManager, local_table

DEFAULT_SIMULATOR_PORT = 8321


@click.group()
def main() -> None:
    """streams_t100: the weekly top 100 Twitch channels, as a Dagster asset graph."""


@main.command()
@click.option("--weeks", default=8, show_default=True, help="Number of past weeks to build.")
@click.option(
    "--database",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("STREAMS_T100_DUCKDB_PATH", DEFAULT_DUCKDB_PATH),
    show_default=f"$STREAMS_T100_DUCKDB_PATH or {DEFAULT_DUCKDB_PATH}",
    help="Local DuckDB file to write.",
)
def demo(weeks: int, database: Path) -> None:
    """Build the whole graph for the last WEEKS weeks from the bundled simulator.

    The simulator serves past weeks as explicit date ranges, which the real API charges
    for; here they cost nothing. The run goes to Dagster's instance in $DAGSTER_HOME when it
    is set, and to a throwaway instance otherwise. The warehouse is always the local file.
    """
    if weeks < 1:
        raise click.BadParameter("must be 1 or more", param_hint="--weeks")
    run_weeks = demo_weeks(weeks, datetime.now(UTC))

    with Simulator() as simulator:
        click.echo(f"Simulator serving on {simulator.base_url} ({SIMULATED_LABEL}).")
        click.echo(
            f"Materializing {len(run_weeks)} weeks, {run_weeks[0].key} to {run_weeks[-1].key}, "
            f"into {database} ..."
        )
        result = run_demo_job(simulator, run_weeks, database)

    if not result.success:
        raise click.ClickException("the demo run failed; the log above names the failing step")
    print_summary(database, run_weeks)


def demo_weeks(count: int, now: datetime) -> list[Week]:
    latest = last_complete_week(now)
    first_available = Week.from_key(weekly_partitions.get_first_partition_key())
    weeks = [Week(latest.start - timedelta(weeks=offset)) for offset in range(count)]
    return sorted(
        (week for week in weeks if week.start >= first_available.start), key=lambda w: w.start
    )


def run_demo_job(
    simulator: Simulator, weeks: list[Week], database: Path
) -> dg.ExecuteInProcessResult:
    # Imported here so that `streams-t100 simulate` does not load the Dagster definitions.
    from streams_t100.definitions import build_definitions

    definitions = build_definitions(
        StreamsChartsClient(
            base_url=simulator.base_url,
            client_id=simulator.client_id,
            token=simulator.token,
            allow_paid_requests=True,
        ),
        WarehouseIOManager(duckdb_path=str(database)),
    )
    job = definitions.resolve_job_def("weekly_top100_job")
    instance = open_instance() if os.environ.get("DAGSTER_HOME") else None
    return job.execute_in_process(
        instance=instance,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: weeks[0].key,
            ASSET_PARTITION_RANGE_END_TAG: weeks[-1].key,
        },
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )


def open_instance() -> dg.DagsterInstance:
    """Open the instance in $DAGSTER_HOME, with a short error if its Postgres is unreachable."""
    from dagster_postgres.utils import DagsterPostgresException

    try:
        return dg.DagsterInstance.get()
    except DagsterPostgresException as error:
        cause = getattr(error.__cause__, "orig", error.__cause__) or error
        first_line = str(cause).strip().splitlines()[0]
        host = os.environ.get("DAGSTER_PG_HOST", "the configured host")
        port = os.environ.get("DAGSTER_PG_PORT", "the configured port")
        raise click.ClickException(
            f"cannot reach Dagster's Postgres storage at {host}:{port} ({first_line}). Check "
            "that the server is running and that DAGSTER_PG_HOST and DAGSTER_PG_PORT point at it."
        ) from None


def print_summary(database: Path, weeks: list[Week]) -> None:
    table = local_table(database, "weekly_top_channels")
    with duckdb.connect(str(database), read_only=True) as connection:
        stored = connection.execute(
            f"select distinct week_start from {table} "
            "where week_start between ? and ? order by week_start",
            [weeks[0].start, weeks[-1].start],
        ).fetchall()
        top_ten = connection.execute(
            "select rank, channel_display_name, hours_watched, average_viewers, "
            f"last_streamed_game from {table} where week_start = ? order by rank limit 10",
            [weeks[-1].start],
        ).fetchall()

    weeks_word = "week" if len(stored) == 1 else "weeks"
    stored_keys = ", ".join(str(week_start) for (week_start,) in stored)
    click.echo(f"\nWrote {len(stored)} {weeks_word} to {database}: {stored_keys}")
    click.echo(f"\nTop 10 of week {weeks[-1]} (SIMULATED DATA):")
    click.echo(f"{'rank':>4}  {'channel':<20} {'hours watched':>14} {'avg viewers':>12}  game")
    for rank, name, hours_watched, average_viewers, game in top_ten:
        click.echo(f"{rank:>4}  {name:<20} {hours_watched:>14,} {average_viewers:>12,}  {game}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_SIMULATOR_PORT, show_default=True, help="TCP port.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="A fault for the next request, in order; repeat for more. Formats: "
    "status=CODE[,retry_after=SECONDS], reset, stall=SECONDS, body=TEXT.",
)
def simulate(host: str, port: int, faults: tuple[str, ...]) -> None:
    """Serve the simulated Streams Charts API until interrupted (for `dagster dev`)."""
    try:
        queued = [parse_fault(fault) for fault in faults]
    except InvalidFaultError as error:
        raise click.BadParameter(str(error), param_hint="--fault") from None
    try:
        simulator = Simulator(host=host, port=port, log_requests=True, faults=queued)
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({error.strerror}); choose another with --port"
        ) from None
    click.echo(f"Simulator serving on {simulator.base_url} ({SIMULATED_LABEL}).")
    click.echo("Point the pipeline at it:")
    click.echo(f"  export STREAMS_CHARTS_BASE_URL={simulator.base_url}")
    click.echo(f"  export STREAMS_CHARTS_CLIENT_ID={simulator.client_id}")
    click.echo(f"  export STREAMS_CHARTS_TOKEN={simulator.token}")
    click.echo("  export STREAMS_CHARTS_ALLOW_PAID=true   # past weeks; free against the simulator")
    try:
        simulator.serve()
    except KeyboardInterrupt:
        click.echo("Simulator stopped.")


if __name__ == "__main__":
    main()
