"""Resources built from environment variables, so that `dagster dev`, `dagster asset
materialize`, the daemon and docker compose all read the same names."""

import os

import dagster as dg

from streams_t100.streams_charts import DEFAULT_BASE_URL, StreamsChartsClient
from streams_t100.warehouse import (
    DEFAULT_DUCKDB_PATH,
    DEFAULT_MOTHERDUCK_DATABASE,
    WarehouseIOManager,
)

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


class InvalidSettingError(ValueError):
    """An environment variable whose value cannot be used."""


def env_flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    valid = ", ".join(TRUE_WORDS + FALSE_WORDS[:-1])
    raise InvalidSettingError(f"invalid {name}={raw!r}: use one of {valid}, or leave it unset")


def env_or_default(name: str, default: str) -> str:
    """Return an EnvVar for `name` when it is set, so the UI shows the variable's name and
    not its value; otherwise return `default`."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def streams_charts_from_env() -> StreamsChartsClient:
    return StreamsChartsClient(
        base_url=env_or_default("STREAMS_CHARTS_BASE_URL", DEFAULT_BASE_URL),
        client_id=dg.EnvVar("STREAMS_CHARTS_CLIENT_ID"),
        token=dg.EnvVar("STREAMS_CHARTS_TOKEN"),
        platform=env_or_default("STREAMS_CHARTS_PLATFORM", "twitch"),
        allow_paid_requests=env_flag("STREAMS_CHARTS_ALLOW_PAID"),
        testing_mode=env_flag("STREAMS_CHARTS_TESTING_MODE"),
    )


def warehouse_from_env() -> WarehouseIOManager:
    return WarehouseIOManager(
        duckdb_path=env_or_default("STREAMS_T100_DUCKDB_PATH", DEFAULT_DUCKDB_PATH),
        motherduck_token=dg.EnvVar("MOTHERDUCK_TOKEN")
        if os.environ.get("MOTHERDUCK_TOKEN")
        else None,
        motherduck_database=env_or_default("MOTHERDUCK_DATABASE", DEFAULT_MOTHERDUCK_DATABASE),
    )
