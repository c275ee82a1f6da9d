"""Helpers for the deployment tests: a fresh Postgres database, a Dagster home built from
deploy/dagster.yaml, and the docker-compose services' commands run as processes."""

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg2
import requests
import yaml
from dagster._core.execution.backfill import BulkActionStatus

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPOSITORY_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPOSITORY_ROOT / ".env.example"
DEPLOYMENT_INSTANCE_FILE = REPOSITORY_ROOT / "deploy" / "dagster.yaml"
LOCAL_INSTANCE_FILE = REPOSITORY_ROOT / "dagster.yaml"
VENV_BIN = Path(os.sys.executable).parent

POSTGRES_HOST = os.environ.get("STREAMS_T100_TEST_PG_HOST", "127.0.0.1")
POSTGRES_PORT = os.environ.get("STREAMS_T100_TEST_PG_PORT", "5432")
POSTGRES_USER = os.environ.get("STREAMS_T100_TEST_PG_USER", "postgres")

# ${NAME} and ${NAME:-default}, the two forms of compose interpolation that the file uses.
COMPOSE_VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")

# Variables from the developer's shell that would point a process at another API,
# warehouse or Dagster instance.
PROJECT_VARIABLES = re.compile(r"^(STREAMS_CHARTS_|STREAMS_T100_|MOTHERDUCK_|DAGSTER_)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def admin_connection():
    connection = psycopg2.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname="postgres"
    )
    connection.autocommit = True
    return connection


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty database, and drop it when the block ends."""
    name = f"streams_t100_test_{uuid.uuid4().hex[:12]}"
    # closing(), not `with connection`: psycopg2 2.9 opens a transaction for the latter even
    # in autocommit mode, and CREATE DATABASE cannot run inside one.
    with closing(admin_connection()) as connection, connection.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with closing(admin_connection()) as connection, connection.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')


def query_postgres(database: str, sql: str, parameters: tuple = ()) -> list[tuple]:
    with (
        psycopg2.connect(
            host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname=database
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, parameters)
        return cursor.fetchall()


def dagster_home_from_repository(folder: Path) -> Path:
    """Make a DAGSTER_HOME whose dagster.yaml is the deployment's, unchanged."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEPLOYMENT_INSTANCE_FILE, folder / "dagster.yaml")
    return folder


def deployment_environment(**variables: str) -> dict[str, str]:
    """Return this process's environment without project variables, plus `variables`."""
    environment = {k: v for k, v in os.environ.items() if not PROJECT_VARIABLES.match(k)}
    return {**environment, **variables}


def simulator_variables(simulator, duckdb_path: Path) -> dict[str, str]:
    """Return the variables that point the pipeline at `simulator` and a DuckDB file."""
    return {
        "STREAMS_CHARTS_BASE_URL": simulator.base_url,
        "STREAMS_CHARTS_CLIENT_ID": simulator.client_id,
        "STREAMS_CHARTS_TOKEN": simulator.token,
        "STREAMS_CHARTS_ALLOW_PAID": "true",
        "STREAMS_T100_DUCKDB_PATH": str(duckdb_path),
    }


def materialize_command(selection: str, *partition_arguments: str) -> list[str]:
    """Return the `dagster asset materialize` command for `selection` and the given weeks."""
    return [
        str(VENV_BIN / "dagster"), "asset", "materialize", "-m", "streams_t100.definitions",
        "--select", selection, *partition_arguments,
    ]  # fmt: skip


def postgres_variables(database: str) -> dict[str, str]:
    return {
        "DAGSTER_PG_HOST": POSTGRES_HOST,
        "DAGSTER_PG_PORT": POSTGRES_PORT,
        "DAGSTER_PG_USER": POSTGRES_USER,
        # The machine's Postgres trusts local connections, so any password is accepted.
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_PG_DB": database,
    }


def compose_services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def compose_variables() -> set[str]:
    """Return every variable name that docker-compose.yml interpolates."""
    return {match["name"] for match in COMPOSE_VARIABLE.finditer(COMPOSE_FILE.read_text())}


def interpolate(value: str, environment: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name, default = match["name"], match["default"]
        if environment.get(name):
            return environment[name]
        if default is not None:
            return default
        raise KeyError(f"{name} is referenced by docker-compose.yml but not set")

    return COMPOSE_VARIABLE.sub(replace, value)


def compose_command(service: str, environment: dict[str, str]) -> list[str]:
    """Return a compose service's command, interpolated as compose would with `environment`."""
    command = compose_services()[service]["command"]
    return [interpolate(str(part), environment) for part in command]


def compose_environment(service: str, environment: dict[str, str]) -> dict[str, str]:
    """Return the variables a compose service sets for its container, interpolated."""
    variables = compose_services()[service].get("environment", {})
    return {name: interpolate(str(value), environment) for name, value in variables.items()}


class ServiceProcess:
    """A compose service's command, run here as a process with its output in a log file."""

    def __init__(self, name: str, command: list[str], environment: dict[str, str], logs: Path):
        self.name = name
        self.log_path = logs / f"{name}.log"
        executable = VENV_BIN / command[0]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(executable), *command[1:]],
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, characters: int = 4000) -> str:
        return self.log_path.read_text()[-characters:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


def wait_until(
    condition: Callable[[], Any], timeout: float, description: str, interval: float = 0.5
):
    """Poll `condition` until it returns a truthy value, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {description}")


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def launch_asset_backfill(webserver_url: str, assets: list[str], weeks: list[str]) -> str:
    """Submit an asset backfill through the webserver's GraphQL API, as the UI does."""
    params = {
        "partitionNames": weeks,
        "assetSelection": [{"path": [asset]} for asset in assets],
        "fromFailure": False,
    }
    response = requests.post(
        f"{webserver_url}/graphql",
        json={"query": LAUNCH_BACKFILL, "variables": {"params": params}},
        timeout=60,
    )
    response.raise_for_status()
    result = response.json()["data"]["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill was not launched: {result}")
    return result["backfillId"]


BACKFILL_FINISHED = (
    BulkActionStatus.COMPLETED_SUCCESS,
    BulkActionStatus.COMPLETED_FAILED,
    BulkActionStatus.COMPLETED,
    BulkActionStatus.FAILED,
    BulkActionStatus.CANCELED,
)


def wait_for_backfill(deployment, instance, backfill_id: str, timeout: float = 300):
    """Wait until the daemon has finished a backfill; on a timeout, fail with the services' logs."""

    def finished():
        backfill = instance.get_backfill(backfill_id)
        return backfill if backfill.status in BACKFILL_FINISHED else None

    try:
        return wait_until(finished, timeout, f"backfill {backfill_id}", interval=1)
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{deployment.logs()}") from None
