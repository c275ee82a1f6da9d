"""Settings from the environment: secrets stay EnvVar references, and invalid values are
rejected with a message that names the valid values."""

import dagster as dg
import pytest
from pydantic import ValidationError

from streams_t100.settings import (
    InvalidSettingError,
    env_flag,
    streams_charts_from_env,
    warehouse_from_env,
)
from streams_t100.warehouse import WarehouseIOManager


def test_secrets_stay_env_references(monkeypatch):
    monkeypatch.setenv("STREAMS_CHARTS_CLIENT_ID", "client-value")
    monkeypatch.setenv("STREAMS_CHARTS_TOKEN", "token-value")
    monkeypatch.setenv("MOTHERDUCK_TOKEN", "motherduck-value")

    client = streams_charts_from_env()
    warehouse = warehouse_from_env()

    # Dagster stores an EnvVar as the variable's name, so the value never reaches storage.
    assert client.client_id == dg.EnvVar("STREAMS_CHARTS_CLIENT_ID")
    assert isinstance(client.client_id, dg.EnvVar)
    assert isinstance(client.token, dg.EnvVar)
    assert isinstance(warehouse.motherduck_token, dg.EnvVar)


def test_no_motherduck_token_means_local_file(monkeypatch):
    monkeypatch.delenv("MOTHERDUCK_TOKEN", raising=False)
    monkeypatch.setenv("STREAMS_T100_DUCKDB_PATH", "/tmp/elsewhere/warehouse.duckdb")

    warehouse = warehouse_from_env()

    assert warehouse.motherduck_token is None
    assert warehouse.duckdb_path == dg.EnvVar("STREAMS_T100_DUCKDB_PATH")


def test_motherduck_target_uses_database_name():
    warehouse = WarehouseIOManager(motherduck_token="token", motherduck_database="weekly_t100")

    assert warehouse.connection_target() == "md:weekly_t100"
    assert warehouse.catalog_name() == "weekly_t100"


@pytest.mark.parametrize("name", ["bad-name!", "1starts_with_digit", "", "two words"])
def test_invalid_motherduck_database_rejected(name):
    with pytest.raises(ValidationError, match="use letters, digits and underscores"):
        WarehouseIOManager(motherduck_token="token", motherduck_database=name)


def test_invalid_motherduck_database_from_env_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv("MOTHERDUCK_TOKEN", "token")
    monkeypatch.setenv("MOTHERDUCK_DATABASE", "bad-name!")

    @dg.asset
    def needs_warehouse() -> None:
        raise AssertionError("the IO manager should have failed to initialize")

    result = dg.materialize(
        [needs_warehouse], resources={"io_manager": warehouse_from_env()}, raise_on_error=False
    )

    (failure,) = [event for event in result.all_events if event.is_resource_init_failure]
    assert "invalid name 'bad-name!'" in failure.event_specific_data.error.to_string()


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("Yes", True), ("0", False), ("", False)]
)
def test_env_flag_values(monkeypatch, raw, expected):
    monkeypatch.setenv("STREAMS_CHARTS_ALLOW_PAID", raw)

    assert env_flag("STREAMS_CHARTS_ALLOW_PAID") is expected


def test_env_flag_rejects_other_words(monkeypatch):
    monkeypatch.setenv("STREAMS_CHARTS_ALLOW_PAID", "maybe")

    with pytest.raises(
        InvalidSettingError, match=r"invalid STREAMS_CHARTS_ALLOW_PAID='maybe'.*true"
    ):
        env_flag("STREAMS_CHARTS_ALLOW_PAID")
