"""The deployment files: docker-compose.yml, the Dockerfile, both dagster.yaml files and
.env.example agree with each other and with what the deployment tests run."""

import re

import yaml

from streams_t100_tests.deployment import (
    COMPOSE_FILE,
    DEPLOYMENT_INSTANCE_FILE,
    ENV_EXAMPLE,
    LOCAL_INSTANCE_FILE,
    REPOSITORY_ROOT,
    compose_command,
    compose_environment,
    compose_services,
    compose_variables,
)

DAGSTER_SERVICES = ("code_server", "webserver", "daemon")
PACKAGE = REPOSITORY_ROOT / "streams_t100"


def env_example_names() -> set[str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z0-9_]+=", line)}


def test_compose_has_four_services():
    assert set(compose_services()) == {"postgres", *DAGSTER_SERVICES}


def test_dagster_services_read_env_file():
    for name in DAGSTER_SERVICES:
        service = compose_services()[name]
        assert service["env_file"] == ".env", name
        assert service["restart"] == "unless-stopped", name
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name


def test_postgres_has_volume_and_healthcheck():
    postgres = compose_services()["postgres"]

    assert postgres["volumes"] == ["postgres_data:/var/lib/postgresql/data"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["restart"] == "unless-stopped"


def test_warehouse_volume_on_run_host():
    # Runs are launched by the code server, so the DuckDB file's folder is mounted there, at
    # the default path data/ under the image's working directory.
    dockerfile = (REPOSITORY_ROOT / "Dockerfile").read_text()
    workdir = re.search(r"^WORKDIR (\S+)$", dockerfile, re.MULTILINE).group(1)

    assert compose_services()["code_server"]["volumes"] == [f"warehouse:{workdir}/data"]


def test_webserver_and_daemon_wait_for_code_server():
    for name in ("webserver", "daemon"):
        depends_on = compose_services()[name]["depends_on"]
        assert depends_on["code_server"] == {"condition": "service_healthy"}, name


def test_service_commands():
    environment = {"DAGSTER_CODE_SERVER_PORT": "4000", "DAGSTER_WEBSERVER_PORT": "3000"}

    assert compose_command("code_server", environment) == [
        "dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000",
        "--module-name", "streams_t100.definitions",
    ]  # fmt: skip
    assert compose_command("webserver", environment) == [
        "dagster-webserver", "--host", "0.0.0.0", "--port", "3000", "--workspace", "workspace.yaml",
    ]  # fmt: skip
    assert compose_command("daemon", environment) == [
        "dagster-daemon", "run", "--workspace", "workspace.yaml",
    ]  # fmt: skip


def test_dagster_services_batch_event_writes():
    for name in DAGSTER_SERVICES:
        environment = compose_environment(name, {})
        assert environment["DAGSTER_EVENT_BATCH_SIZE"] == "1000", name


def test_compose_variables_in_env_example():
    missing = compose_variables() - env_example_names()

    assert missing == set()


def test_code_variables_in_env_example():
    # Every variable that the package, the instance files or the workspace file reads.
    sources = [*PACKAGE.rglob("*.py"), DEPLOYMENT_INSTANCE_FILE, REPOSITORY_ROOT / "workspace.yaml"]
    pattern = re.compile(
        r"""(?:EnvVar(?:\.int)?\(|environ\.get\(|env_flag\(|env_or_default\(|env: )"""
        r"""["']?([A-Z][A-Z0-9_]+)"""
    )
    found = {name for path in sources for name in pattern.findall(path.read_text())}
    # Names held in a constant, like FIRST_WEEK_ENV_VAR, are read from the constants below.
    read = {name for name in found if not name.endswith("_ENV_VAR")}
    constants = re.findall(r'^[A-Z_]+_ENV_VAR = "([A-Z0-9_]+)"', "".join(
        path.read_text() for path in PACKAGE.rglob("*.py")
    ), re.MULTILINE)  # fmt: skip

    assert "DAGSTER_PG_PASSWORD" in read
    assert "STREAMS_CHARTS_TOKEN" in read
    # DAGSTER_HOME is set by the Dockerfile, not by .env.
    assert {*read, *constants} - env_example_names() - {"DAGSTER_HOME"} == set()


def test_instance_files_differ_only_in_storage():
    deployment = yaml.safe_load(DEPLOYMENT_INSTANCE_FILE.read_text())
    local = yaml.safe_load(LOCAL_INSTANCE_FILE.read_text())

    storage = deployment.pop("storage")["custom"]
    assert deployment == local
    assert (storage["module"], storage["class"]) == (
        "streams_t100.instance_storage", "PooledPostgresStorage",
    )  # fmt: skip
    assert set(storage["config"]["postgres_db"]) == {
        "hostname", "port", "username", "password", "db_name",
    }  # fmt: skip
    assert local["concurrency"]["pools"] == {"granularity": "run", "default_limit": 1}
    assert local["telemetry"] == {"enabled": False}


def test_dockerfile_installs_deployment_instance():
    dockerfile = (REPOSITORY_ROOT / "Dockerfile").read_text()

    assert "COPY deploy/dagster.yaml ${DAGSTER_HOME}/dagster.yaml" in dockerfile
    assert "uv sync --locked --no-dev" in dockerfile
    assert COMPOSE_FILE.exists()
