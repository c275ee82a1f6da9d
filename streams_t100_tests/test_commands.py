"""The commands a user runs: `streams-t100 demo`, and Dagster's CLI from the repository root."""

import re
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams_t100.cli import main
from streams_t100_tests.deployment import (
    deployment_environment,
    materialize_command,
    simulator_variables,
)
from streams_t100_tests.helpers import query

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_demo_writes_the_weeks_it_reports(tmp_path):
    completed = run(
        [str(BIN / "streams-t100"), "demo", "--weeks", "3"], tmp_path, deployment_environment()
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    reported = re.search(r"Wrote 3 weeks to (\S+): (.+)", completed.stdout)
    assert reported, completed.stdout
    database = tmp_path / reported.group(1).rstrip(":")
    assert database == tmp_path / "data" / "streams_t100.duckdb"

    # The three weeks before the current one, worked out from today's date.
    this_monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    expected = [this_monday - timedelta(weeks=n) for n in (3, 2, 1)]
    assert reported.group(2).split(", ") == [week.isoformat() for week in expected]

    for table in ("raw_channel_pages", "weekly_top_channels", "weekly_channel_movers"):
        weeks = query(database, "select distinct week_start from {table} order by 1", table)
        assert weeks == [(week,) for week in expected], table
    counts = query(
        database, "select count(*) from {table} group by week_start", "weekly_top_channels"
    )
    assert counts == [(100,), (100,), (100,)]
    assert "SIMULATED DATA" in completed.stdout
    assert completed.stdout.count("Sim_") == 10


@pytest.mark.parametrize(
    ("partition_arguments", "expected_weeks"),
    [
        (("--partition", "2025-01-06"), ["2025-01-06"]),
        (
            ("--partition-range", "2025-01-06...2025-01-20"),
            ["2025-01-06", "2025-01-13", "2025-01-20"],
        ),
    ],
    ids=["one week", "range of weeks"],
)
def test_readme_materialize_commands(simulator, tmp_path, partition_arguments, expected_weeks):
    database = tmp_path / "streams_t100.duckdb"
    command = materialize_command("*", *partition_arguments)

    completed = run(
        command, REPOSITORY_ROOT, deployment_environment(**simulator_variables(simulator, database))
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    weeks = query(
        database, "select week_start, count(*) from {table} group by 1 order by 1",
        "weekly_top_channels",
    )  # fmt: skip
    assert [(str(week), count) for week, count in weeks] == [(week, 100) for week in expected_weeks]
    # One paid request per week, each for that week's Monday-to-Sunday range.
    expected_times = [
        f"{week},{(date.fromisoformat(week) + timedelta(days=6))}" for week in expected_weeks
    ]
    assert [request.query["time"] for request in simulator.requests] == expected_times
    # A range is one run, because every asset has a single-run backfill policy.
    assert completed.stderr.count("RUN_SUCCESS") == 1


def test_code_location_found_without_flags():
    # `dagster dev` and `dagster definitions validate` find the code location through
    # [tool.dagster] in pyproject.toml when run from the root with no flags.
    completed = run(
        [str(BIN / "dagster"), "definitions", "validate"], REPOSITORY_ROOT, deployment_environment()
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Validation successful for code location streams_t100" in completed.stdout


def test_simulate_reports_busy_port():
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]

        outcome = CliRunner().invoke(main, ["simulate", "--port", str(port)])

    assert outcome.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in outcome.output
    assert "choose another with --port" in outcome.output
