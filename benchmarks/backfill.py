"""Measure what a backfill costs: Dagster runs of many weeks against a plain script.

    uv run python benchmarks/backfill.py                  # 52 and 260 weeks, both storages
    uv run python benchmarks/backfill.py --weeks 52 --no-postgres
    uv run python benchmarks/backfill.py --repeat 3         # medians of three runs

It starts the simulator in its own process, then runs every measurement in a fresh Python
process, so that each peak RSS belongs to one measurement. Postgres storage is the
deployment's: deploy/dagster.yaml and the event batch size that docker-compose.yml sets,
against a throwaway database on 127.0.0.1:5432 (user postgres).

Measurements:
- `import dagster` and loading streams_t100.definitions;
- one week of the whole graph through `dagster asset materialize`, as the schedule runs it;
- N weeks as one Dagster run, on Dagster's default local storage and on Postgres: the two
  base assets, the whole graph, and two assets that do no work (Dagster's own bookkeeping);
- the floor: a plain script making the same requests with the same client session, parsing
  with the same polars code and inserting into DuckDB directly;
- the time spent in streams_t100's own code during a base-asset run, from cProfile;
- for the largest N, each of the deployment's Postgres settings on its own, and the opt-in
  setting that writes one "materialization planned" event per asset.
"""

import argparse
import cProfile
import json
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FIRST_WEEK = date(2020, 1, 6)
SIMULATOR_PORT_ENV = "BENCHMARK_SIMULATOR_URL"

# Entry points into streams_t100 whose cumulative time is "our own code" in a profiled run.
OWN_CODE_FUNCTIONS = {
    ("raw.py", "raw_channel_pages"),
    ("enriched.py", "weekly_top_channels"),
    ("analytics.py", "weekly_channel_movers"),
    ("analytics.py", "weekly_category_summary"),
    ("analytics.py", "channel_profiles"),
    ("warehouse.py", "handle_output"),
    ("warehouse.py", "load_input"),
    ("warehouse.py", "_open_connection"),
    ("warehouse.py", "delete_table_slice"),
}


def week_keys(count: int) -> list[str]:
    return [(FIRST_WEEK + timedelta(weeks=offset)).isoformat() for offset in range(count)]


# ---------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON line with its measurements.
# ---------------------------------------------------------------------------------------


def simulator_client(**settings):
    from streams_t100.simulator import SIMULATOR_CLIENT_ID, SIMULATOR_TOKEN
    from streams_t100.streams_charts import StreamsChartsClient

    return StreamsChartsClient(
        base_url=os.environ[SIMULATOR_PORT_ENV],
        client_id=SIMULATOR_CLIENT_ID,
        token=SIMULATOR_TOKEN,
        allow_paid_requests=True,
        **settings,
    )


def worker_import() -> dict:
    started = time.perf_counter()
    import dagster  # noqa: F401

    imported = time.perf_counter()
    import streams_t100.definitions  # noqa: F401

    loaded = time.perf_counter()
    return {"import_dagster": imported - started, "load_definitions": loaded - imported}


def worker_plain(weeks: int, duckdb_path: str) -> dict:
    import duckdb

    from streams_t100.assets.raw import raw_pages_frame, stored_page
    from streams_t100.channel_list import check_week, rows_frame
    from streams_t100.partitions import Week

    started = time.perf_counter()
    client = simulator_client()
    pages, checked_weeks = [], []
    for key in week_keys(weeks):
        week = Week.from_key(key)
        week_pages = client.fetch_week(week, client.time_value_for(week, _now()))
        checked_weeks.append(check_week(week, [stored_page(page) for page in week_pages]))
        pages.extend(week_pages)
    raw, channels = raw_pages_frame(pages), rows_frame(checked_weeks)

    with duckdb.connect(duckdb_path) as connection:
        connection.begin()
        connection.execute("create schema if not exists plain")
        for name, frame in (("raw_channel_pages", raw), ("weekly_top_channels", channels)):
            connection.register("incoming", frame.to_arrow())
            connection.execute(
                f"create table if not exists plain.{name} as select * from incoming limit 0"
            )
            connection.execute(f"insert into plain.{name} by name select * from incoming")
            connection.unregister("incoming")
        connection.commit()
    return {"wall": time.perf_counter() - started}


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def noop_assets():
    import dagster as dg

    from streams_t100.partitions import weekly_partitions

    @dg.asset(
        name="raw_channel_pages",
        partitions_def=weekly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def raw_noop() -> None:
        return None

    @dg.asset(
        name="weekly_top_channels",
        partitions_def=weekly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[raw_noop],
    )
    def top_noop() -> None:
        return None

    return [raw_noop, top_noop]


def selected_assets(graph: str):
    from streams_t100.assets.enriched import weekly_top_channels
    from streams_t100.assets.raw import raw_channel_pages
    from streams_t100.definitions import ASSETS

    if graph == "noop":
        return noop_assets()
    if graph == "base":
        return [raw_channel_pages, weekly_top_channels]
    return ASSETS


def worker_dagster(weeks: int, duckdb_path: str, graph: str, profile: bool) -> dict:
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from streams_t100.warehouse import WarehouseIOManager

    keys = week_keys(weeks)
    instance = dg.DagsterInstance.get()  # DAGSTER_HOME is set by the parent
    resources = {
        "streams_charts": simulator_client(),
        "io_manager": WarehouseIOManager(duckdb_path=duckdb_path),
    }
    assets = selected_assets(graph)
    profiler = cProfile.Profile() if profile else None

    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = dg.materialize(
        assets,
        instance=instance,
        resources=resources,
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )
    if profiler:
        profiler.disable()
    wall = time.perf_counter() - started

    events = len(instance.all_logs(result.run_id))
    measured = {"wall": wall, "events": events, "success": result.success}
    if profiler:
        measured["own_code"] = own_code_seconds(profiler)
        measured["profiled_wall"] = wall
    instance.dispose()
    return measured


def own_code_seconds(profiler: cProfile.Profile) -> float:
    stats = pstats.Stats(profiler)
    total = 0.0
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():
        if "streams_t100" in filename and (Path(filename).name, function) in OWN_CODE_FUNCTIONS:
            total += cumulative
    return total


def run_worker(arguments: argparse.Namespace) -> None:
    if arguments.worker == "import":
        measured = worker_import()
    elif arguments.worker == "plain":
        measured = worker_plain(arguments.weeks, arguments.duckdb)
    else:
        measured = worker_dagster(
            arguments.weeks, arguments.duckdb, arguments.graph, arguments.profile
        )
    measured["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(measured))


# ---------------------------------------------------------------------------------------
# The parent: starts the simulator and the workers, and prints the table.
# ---------------------------------------------------------------------------------------


def run_child(command: list[str], environment: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return its wall seconds, its peak RSS in MB and its stdout."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=REPOSITORY_ROOT, env=environment, stdout=stdout, stderr=stderr
        )
        # wait4 instead of wait, for the child's own resource usage.
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"{command[:4]} failed:\n{stderr.read()[-3000:]}")
        return wall, usage.ru_maxrss / 1024, stdout.read()


def worker_measurement(environment: dict[str, str], *worker_arguments: str) -> dict:
    command = [sys.executable, __file__, "--worker", *worker_arguments]
    _, _, stdout = run_child(command, environment)
    return json.loads(stdout.strip().splitlines()[-1])


def start_simulator(environment: dict[str, str]) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    simulator = subprocess.Popen(
        [str(BIN / "streams-t100"), "simulate", "--port", str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/jazz"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return simulator, url
        time.sleep(0.2)
    simulator.kill()
    raise RuntimeError("the simulator did not start")


def create_postgres_database() -> str:
    import psycopg2

    name = f"streams_t100_benchmark_{uuid.uuid4().hex[:8]}"
    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    with closing(connection), connection.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    with closing(connection), connection.cursor() as cursor:
        cursor.execute(f'drop database if exists "{name}" with (force)')


@dataclass(frozen=True)
class Storage:
    """The Dagster storage of a measured run: its instance file and environment variables."""

    label: str
    instance_file: str  # copied, relative to the repository, into the run's DAGSTER_HOME
    variables: tuple[tuple[str, str], ...] = ()  # set in the run's environment
    # True: dagster-postgres' own storage in place of the deployment's pooled one, which
    # measures what the pool saves.
    stock_postgres: bool = False

    def with_variables(self, label: str, **variables: str) -> "Storage":
        return replace(self, label=label, variables=(*self.variables, *variables.items()))

    def home(self, folder: Path) -> Path:
        home = folder / f"home_{uuid.uuid4().hex[:8]}"
        home.mkdir(parents=True)
        settings = yaml.safe_load((REPOSITORY_ROOT / self.instance_file).read_text())
        if self.stock_postgres:
            settings["storage"] = {"postgres": settings["storage"]["custom"]["config"]}
        (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
        return home

    def environment(self, base: dict[str, str], folder: Path) -> dict[str, str]:
        return {**base, **dict(self.variables), "DAGSTER_HOME": str(self.home(folder))}


def compose_event_batch_size() -> str:
    """Return the event batch size that docker-compose.yml gives the Dagster services."""
    compose = yaml.safe_load((REPOSITORY_ROOT / "docker-compose.yml").read_text())
    setting = compose["services"]["code_server"]["environment"]["DAGSTER_EVENT_BATCH_SIZE"]
    return re.fullmatch(r"\$\{DAGSTER_EVENT_BATCH_SIZE:-(\d+)\}", setting).group(1)


LOCAL = Storage("local", "dagster.yaml")
# The deployment: deploy/dagster.yaml's pooled storage and compose's event batch size.
POSTGRES = Storage(
    "Postgres", "deploy/dagster.yaml", (("DAGSTER_EVENT_BATCH_SIZE", compose_event_batch_size()),)
)
ONE_PLANNED_EVENT = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}

# The deployment's settings one at a time, and the opt-in setting on top of each storage.
SETTINGS = [
    Storage("dagster-postgres as shipped", "deploy/dagster.yaml", stock_postgres=True),
    Storage("kept connections only", "deploy/dagster.yaml"),
    Storage(
        "batched event writes only", "deploy/dagster.yaml", POSTGRES.variables, stock_postgres=True
    ),
    LOCAL.with_variables("local, one planned event per asset", **ONE_PLANNED_EVENT),
    POSTGRES.with_variables("Postgres, one planned event per asset", **ONE_PLANNED_EVENT),
]


def dagster_run(
    environment: dict[str, str], folder: Path, storage: Storage, weeks: int, graph: str,
    *flags: str,
) -> dict:  # fmt: skip
    return worker_measurement(
        storage.environment(environment, folder), "dagster", "--weeks", str(weeks),
        "--duckdb", str(folder / f"{uuid.uuid4().hex}.duckdb"), "--graph", graph, *flags,
    )  # fmt: skip


def measure(arguments: argparse.Namespace) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="streams_t100_benchmark_"))
    base_environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STREAMS_", "DAGSTER_", "MOTHERDUCK_"))
    }
    simulator, url = start_simulator(base_environment)
    database = create_postgres_database() if arguments.postgres else None
    storages = [LOCAL, POSTGRES] if arguments.postgres else [LOCAL]
    rows: list[dict] = []
    try:
        environment = {**base_environment, SIMULATOR_PORT_ENV: url}
        if database:
            environment.update(
                DAGSTER_PG_HOST="127.0.0.1", DAGSTER_PG_PORT="5432", DAGSTER_PG_USER="postgres",
                DAGSTER_PG_PASSWORD="unused", DAGSTER_PG_DB=database,
            )  # fmt: skip

        # The simulator builds each week on its first request. One unreported pass fills its
        # cache, so that no measurement pays for building the weeks.
        max_weeks = str(max(arguments.weeks))
        worker_measurement(environment, "plain", "--weeks", max_weeks, "--duckdb",
                           str(folder / "warm_up.duckdb"))  # fmt: skip

        startup = worker_measurement(environment, "import")
        rows.append({"name": "import dagster", "weeks": 0, "wall": startup["import_dagster"]})
        rows.append({"name": "load definitions", "weeks": 0, "wall": startup["load_definitions"]})
        for storage in storages:
            rows.append(one_week_cli(environment, folder, url, storage))

        for weeks in arguments.weeks:
            rows.extend(measure_weeks(environment, folder, weeks, storages))
        if arguments.postgres:
            weeks = max(arguments.weeks)
            for storage in SETTINGS:
                for graph in ("base", "full"):
                    measured = dagster_run(environment, folder, storage, weeks, graph)
                    rows.append({"name": f"{graph}: {storage.label}", "weeks": weeks, **measured,
                                 "setting": True})  # fmt: skip
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
        if database:
            drop_postgres_database(database)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def measure_weeks(
    environment: dict[str, str], folder: Path, weeks: int, storages: list[Storage]
) -> list[dict]:
    """Measure the plain script, then each graph on each storage, for `weeks` weeks."""
    duckdb_path = str(folder / f"plain_{weeks}.duckdb")
    plain = worker_measurement(environment, "plain", "--weeks", str(weeks), "--duckdb", duckdb_path)
    rows = [{"name": "plain script", "weeks": weeks, **plain, "floor": True}]
    for storage in storages:
        for graph in ("noop", "base", "full"):
            measured = dagster_run(environment, folder, storage, weeks, graph)
            rows.append({"name": f"dagster {graph}, {storage.label}", "weeks": weeks, **measured})
        profiled = dagster_run(environment, folder, storage, weeks, "base", "--profile")
        rows.append({"name": f"own code in base run, {storage.label} (profiled)", "weeks": weeks,
                     "wall": profiled["own_code"], "peak_rss_mb": profiled["peak_rss_mb"],
                     "profiled_wall": profiled["wall"]})  # fmt: skip
    plain_profiled_wall = profile_plain(environment, folder, weeks)
    rows.append({"name": "plain script (profiled)", "weeks": weeks, "wall": plain_profiled_wall})
    return rows


def profile_plain(environment: dict[str, str], folder: Path, weeks: int) -> float:
    """Return the plain script's wall time under cProfile, to compare with profiled runs."""
    duckdb_path = str(folder / f"plain_profiled_{weeks}.duckdb")
    command = [
        sys.executable, "-m", "cProfile", "-o", str(folder / "plain.prof"), __file__,
        "--worker", "plain", "--weeks", str(weeks), "--duckdb", duckdb_path,
    ]  # fmt: skip
    _, _, stdout = run_child(command, environment)
    return json.loads(stdout.strip().splitlines()[-1])["wall"]


def one_week_cli(environment: dict[str, str], folder: Path, url: str, storage: Storage) -> dict:
    from streams_t100.simulator import SIMULATOR_CLIENT_ID, SIMULATOR_TOKEN

    cli_environment = {
        **storage.environment(environment, folder),
        "STREAMS_CHARTS_BASE_URL": url,
        "STREAMS_CHARTS_CLIENT_ID": SIMULATOR_CLIENT_ID,
        "STREAMS_CHARTS_TOKEN": SIMULATOR_TOKEN,
        "STREAMS_CHARTS_ALLOW_PAID": "true",
        "STREAMS_T100_DUCKDB_PATH": str(folder / f"one_week_{uuid.uuid4().hex}.duckdb"),
    }
    command = [
        str(BIN / "dagster"), "asset", "materialize", "-m", "streams_t100.definitions",
        "--select", "*", "--partition", week_keys(1)[0],
    ]  # fmt: skip
    # The first run also creates the instance's tables. The schedule's runs find them in
    # place, so the second run is the one reported.
    run_child(command, cli_environment)
    wall, peak_rss, _ = run_child([*command[:-1], week_keys(2)[1]], cli_environment)
    return {"name": f"one week, whole graph, `dagster asset materialize`, {storage.label}",
            "weeks": 1, "wall": wall, "peak_rss_mb": peak_rss}  # fmt: skip


COLUMNS = ("measurement", "weeks", "wall s", "range s", "s/week", "x floor", "RSS MB", "events")
WIDTHS = (62, 5, 8, 12, 8, 8, 8, 7)


def table_line(cells) -> str:
    first, *rest = (str(cell) for cell in cells)
    return " ".join(
        [first.ljust(WIDTHS[0]), *(c.rjust(w) for c, w in zip(rest, WIDTHS[1:], strict=True))]
    )


def median_rows(repetitions: list[list[dict]]) -> list[dict]:
    """Combine repeated measurements row by row: the median wall time, the range, max RSS."""
    combined = []
    for same_rows in zip(*repetitions, strict=True):
        walls = sorted(row["wall"] for row in same_rows)
        row = {**same_rows[0], "wall": statistics.median(walls), "walls": walls}
        if "peak_rss_mb" in row:
            row["peak_rss_mb"] = max(measured["peak_rss_mb"] for measured in same_rows)
        combined.append(row)
    return combined


def print_table(rows: list[dict]) -> None:
    floors = {row["weeks"]: row["wall"] for row in rows if row.get("floor")}
    print(table_line(COLUMNS))
    for row in rows:
        weeks = row["weeks"]
        walls = row.get("walls", [row["wall"]])
        print(
            table_line(
                (
                    row["name"],
                    weeks,
                    f"{row['wall']:.2f}",
                    f"{walls[0]:.2f}-{walls[-1]:.2f}" if len(walls) > 1 else "",
                    f"{row['wall'] / weeks:.4f}" if weeks else "",
                    f"{row['wall'] / floors[weeks]:.2f}" if weeks in floors and weeks > 1 else "",
                    f"{row['peak_rss_mb']:.0f}" if "peak_rss_mb" in row else "",
                    row.get("events", ""),
                )
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weeks", type=lambda text: [int(n) for n in text.split(",")], default=[52, 260]
    )
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument(
        "--repeat", type=int, default=1,
        help="Measure everything this many times and report each row's median wall time.",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="Also write the rows to this file.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--duckdb", help=argparse.SUPPRESS)
    parser.add_argument("--graph", help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        arguments.weeks = (
            arguments.weeks[0] if isinstance(arguments.weeks, list) else arguments.weeks
        )
        run_worker(arguments)
        return

    rows = median_rows([measure(arguments) for _ in range(arguments.repeat)])
    print_table(rows)
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
