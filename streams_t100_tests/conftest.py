import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest

from streams_t100.simulator import Simulator
from streams_t100_tests.deployment import (
    ServiceProcess,
    compose_command,
    compose_environment,
    dagster_home_from_repository,
    deployment_environment,
    free_port,
    fresh_postgres_database,
    http_ok,
    port_open,
    postgres_variables,
    simulator_variables,
    wait_until,
)


@pytest.fixture
def simulator():
    with Simulator() as running:
        yield running


@pytest.fixture
def duckdb_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "streams_t100.duckdb"


def instance_from_home(dagster_home: Path, variables: dict[str, str]) -> dg.DagsterInstance:
    """Build the instance that dagster.yaml in `dagster_home` describes, with `variables`."""
    with mock.patch.dict(os.environ, {**variables, "DAGSTER_HOME": str(dagster_home)}):
        return dg.DagsterInstance.from_config(str(dagster_home))


@dataclass
class Deployment:
    """The compose services, run here as processes against a fresh Postgres database."""

    database: str
    dagster_home: Path
    duckdb_path: Path
    environment: dict[str, str]
    webserver_url: str
    simulator: Simulator
    services: dict[str, ServiceProcess]

    def instance(self) -> dg.DagsterInstance:
        return instance_from_home(self.dagster_home, self.environment)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n{service.log_tail()}" for name, service in self.services.items()
        )


@pytest.fixture(scope="session")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("deployment")
    dagster_home = dagster_home_from_repository(folder / "dagster_home")
    duckdb_path = folder / "data" / "streams_t100.duckdb"
    code_server_port, webserver_port = free_port(), free_port()

    with fresh_postgres_database() as database, Simulator() as simulator:
        environment = deployment_environment(
            DAGSTER_HOME=str(dagster_home),
            DAGSTER_LISTEN_HOST="127.0.0.1",
            DAGSTER_CODE_SERVER_HOST="127.0.0.1",
            DAGSTER_CODE_SERVER_PORT=str(code_server_port),
            DAGSTER_WEBSERVER_PORT=str(webserver_port),
            **simulator_variables(simulator, duckdb_path),
            **postgres_variables(database),
        )
        services: dict[str, ServiceProcess] = {}
        try:
            for name in ("code_server", "webserver", "daemon"):
                command = compose_command(name, environment)
                # The service's environment from compose, with this machine's host names.
                settings = compose_environment(name, environment)
                service_environment = {**settings, **environment}
                services[name] = ServiceProcess(name, command, service_environment, folder)
                if name == "code_server":
                    wait_until(lambda: port_open(code_server_port), 120, "the code server")
            webserver_url = f"http://127.0.0.1:{webserver_port}"
            wait_until(lambda: http_ok(f"{webserver_url}/server_info"), 120, "the webserver")
            yield Deployment(
                database=database,
                dagster_home=dagster_home,
                duckdb_path=duckdb_path,
                environment=environment,
                webserver_url=webserver_url,
                simulator=simulator,
                services=services,
            )
        finally:
            for service in reversed(list(services.values())):
                service.stop()
