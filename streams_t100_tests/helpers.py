"""Shared test helpers: materializing weeks against a local API, and reading the warehouse."""

import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from streams_t100.definitions import ASSETS
from streams_t100.streams_charts import StreamsChartsClient
from streams_t100.warehouse import WarehouseIOManager, local_table

DATA = Path(__file__).parent / "data"
DOCUMENTED_SAMPLE = DATA / "free_request_documented_sample.json"


def client_for(base_url: str, client_id: str, token: str, **settings: Any) -> StreamsChartsClient:
    return StreamsChartsClient(
        base_url=base_url,
        client_id=client_id,
        token=token,
        # Small waits keep the retry tests fast; the retry logic itself is unchanged.
        backoff_factor_seconds=0.01,
        **settings,
    )


def materialize_weeks(
    client: StreamsChartsClient,
    duckdb_path: Path,
    first_week: str,
    last_week: str | None = None,
    assets: Sequence[Any] = ASSETS,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
    run_config: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize `assets` for the weeks from `first_week` to `last_week` in one run."""
    return dg.materialize(
        assets,
        instance=instance,
        run_config=run_config,
        resources={
            "streams_charts": client,
            "io_manager": WarehouseIOManager(duckdb_path=str(duckdb_path)),
        },
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first_week,
            ASSET_PARTITION_RANGE_END_TAG: last_week or first_week,
        },
        raise_on_error=raise_on_error,
    )


def query(duckdb_path: Path, sql: str, table: str, parameters: Sequence[Any] = ()) -> list[tuple]:
    """Run `sql` with `{table}` replaced by the qualified name of a warehouse table."""
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        return connection.execute(
            sql.format(table=local_table(duckdb_path, table)), list(parameters)
        ).fetchall()


class StaticApi:
    """An HTTP server on loopback that returns one fixed JSON body for every GET."""

    def __init__(self, body: str, status: int = 200):
        self.body = body.encode()
        self.status = status
        self.requests: list[dict[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append({"path": self.path, **dict(self.headers)})
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.body)))
                self.end_headers()
                self.wfile.write(api.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/api/jazz"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "StaticApi":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def documented_sample() -> dict[str, Any]:
    return json.loads(DOCUMENTED_SAMPLE.read_text())


def step_error(result: dg.ExecuteInProcessResult):
    """Return the exception raised in the first failed step, unwrapped from Dagster's error."""
    error = result.get_step_failure_events()[0].event_specific_data.error
    while error.cause is not None:
        error = error.cause
    return error
