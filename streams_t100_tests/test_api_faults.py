"""API faults, injected by the simulator one request at a time: each one is retried and then
survived, or fails the run with a message naming the week, the page and the reason. Either
way the week's previous rows stay as they were, and the fake credentials used throughout
appear in no log line, event, error or stored row."""

import copy
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._serdes import serialize_value

from streams_t100.assets.enriched import weekly_top_channels
from streams_t100.assets.raw import raw_channel_pages
from streams_t100.simulator import Simulator
from streams_t100.simulator_faults import Fault, truncated
from streams_t100.streams_charts import StreamsChartsClient
from streams_t100_tests.helpers import materialize_weeks, step_error

CLIENT_ID = "SECRET-CLIENT-ID-5b7e"
TOKEN = "SECRET-TOKEN-91c4"
WEEK = "2025-01-06"
ASSETS = [raw_channel_pages, weekly_top_channels]
MAX_ATTEMPTS = 3


def set_first_record(**changes):
    def mutate(document):
        document["data"][0].update(changes)

    return mutate


def drop_from_first_record(name):
    def mutate(document):
        del document["data"][0][name]

    return mutate


def repeat_first_record(document):
    document["data"][1] = copy.deepcopy(document["data"][0])


def replace_data(value):
    def mutate(document):
        document["data"] = value

    return mutate


def without_data(document):
    del document["data"]


def next_link(url):
    def mutate(document):
        document["links"]["next"] = url

    return mutate


def truncated_body() -> str:
    return truncated({"data": [{"platform": "twitch", "channel_name": "sim_x"}] * 50})


# (case, faults for the faulty run, pages, expected request count, expected change to rows)
SURVIVED = [
    ("429 with Retry-After", [Fault(status=429, retry_after="1")], 1, 2, None),
    ("429 without Retry-After", [Fault(status=429)], 1, 2, None),
    ("500 then recovery", [Fault(status=500)], 1, 2, None),
    ("502 then recovery", [Fault(status=502)], 1, 2, None),
    ("503 twice then recovery", [Fault(status=503), Fault(status=503)], 1, 3, None),
    ("connection reset", [Fault(reset=True)], 1, 2, None),
    ("read past the timeout", [Fault(stall_seconds=1.5)], 1, 2, None),
    ("negative follower gain", [Fault(mutate=set_first_record(followers_gain=-500))], 1, 1,
     ("followers_gain", -500)),
    ("new unknown fields", [Fault(mutate=set_first_record(subscribers=123, tags=["a"]))], 1, 1,
     None),
    ("more pages than asked", [], 1, 1, None),
]  # fmt: skip

FAILED = [
    ("Retry-After above the cap", [Fault(status=429, retry_after="3600")], 1, 1,
     "page 1: the API asked to retry after 3600 s, longer than the configured maximum of 5 s"),
    ("500 that does not recover", [Fault(status=500)] * MAX_ATTEMPTS, 1, MAX_ATTEMPTS,
     "page 1: HTTP 500 from http"),
    ("502 that does not recover", [Fault(status=502)] * MAX_ATTEMPTS, 1, MAX_ATTEMPTS,
     "page 1: HTTP 502 from http"),
    ("503 that does not recover", [Fault(status=503)] * MAX_ATTEMPTS, 1, MAX_ATTEMPTS,
     "still failing after the last retry"),
    ("resets that do not recover", [Fault(reset=True)] * MAX_ATTEMPTS, 1, MAX_ATTEMPTS,
     "page 1: request to http"),
    ("reads that keep stalling", [Fault(stall_seconds=1.5)] * MAX_ATTEMPTS, 1, MAX_ATTEMPTS,
     "Read timed out"),
    ("401", [Fault(status=401)], 1, 1, "page 1: the API refused the credentials (HTTP 401)"),
    ("403", [Fault(status=403)], 1, 1, "page 1: the API refused the credentials (HTTP 403)"),
    ("body not JSON", [Fault(body="<html>Bad gateway</html>")], 1, 1,
     "page 1: the body is not valid JSON"),
    ("truncated JSON", [Fault(body=truncated_body())], 1, 1, "page 1: the body is not valid JSON"),
    ("JSON without data", [Fault(mutate=without_data)], 1, 1, "page 1: the body has no 'data'"),
    ("data not a list", [Fault(mutate=replace_data({"a": 1}))], 1, 1,
     "page 1: 'data' must be a list, got object"),
    ("empty list", [Fault(mutate=replace_data([]))], 1, 1, "page 1: 'data' is an empty list"),
    ("missing field", [Fault(mutate=drop_from_first_record("peak_viewers"))], 1, 1,
     "page 1: record 1 is missing peak_viewers"),
    ("null count", [Fault(mutate=set_first_record(hours_watched=None))], 1, 1,
     "page 1: record 1: hours_watched must be an integer, got null"),
    ("count as a string", [Fault(mutate=set_first_record(average_viewers="120"))], 1, 1,
     "page 1: record 1: average_viewers must be an integer, got string '120'"),
    ("count as a float", [Fault(mutate=set_first_record(airtime_in_m=90.5))], 1, 1,
     "page 1: record 1: airtime_in_m must be an integer, got float 90.5"),
    ("duplicate channels", [Fault(mutate=repeat_first_record)], 1, 1, "is listed twice"),
    ("links.next to another host", [Fault(mutate=next_link("http://elsewhere.invalid/p2"))],
     2, 1, "page 1: links.next points to host 'elsewhere.invalid'"),
    ("fewer pages than asked", [Fault(mutate=next_link(None))], 2, 1,
     "page 1: links.next is empty, so the API has no page 2"),
]  # fmt: skip


@pytest.fixture
def secret_simulator():
    with Simulator(client_id=CLIENT_ID, token=TOKEN) as running:
        yield running


@pytest.fixture
def secret_environment(monkeypatch, secret_simulator):
    monkeypatch.setenv("TEST_STREAMS_CHARTS_BASE_URL", secret_simulator.base_url)
    monkeypatch.setenv("TEST_STREAMS_CHARTS_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("TEST_STREAMS_CHARTS_TOKEN", TOKEN)


def env_wired_client(pages: int) -> StreamsChartsClient:
    # Wired through EnvVar as in definitions.py, so the secrets reach Dagster as references.
    return StreamsChartsClient(
        base_url=dg.EnvVar("TEST_STREAMS_CHARTS_BASE_URL"),
        client_id=dg.EnvVar("TEST_STREAMS_CHARTS_CLIENT_ID"),
        token=dg.EnvVar("TEST_STREAMS_CHARTS_TOKEN"),
        pages=pages,
        allow_paid_requests=True,
        max_attempts=MAX_ATTEMPTS,
        backoff_factor_seconds=0.01,
        read_timeout_seconds=0.5,
        max_retry_after_seconds=5,
    )


def stored_rows(duckdb_path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        return {
            table: connection.execute(
                f'select * from streams_t100.streams_t100."{table}" order by all'
            ).fetchall()
            for table in ("raw_channel_pages", "weekly_top_channels")
        }


def assert_no_secrets(instance, result, duckdb_path: Path, captured: str) -> None:
    records = [serialize_value(record) for record in instance.all_logs(result.run_id)]
    run = instance.get_run_by_id(result.run_id)
    texts = {
        "events": "\n".join(records),
        "run": serialize_value(run),
        "job snapshot": serialize_value(instance.get_job_snapshot(run.job_snapshot_id)),
        "stored rows": repr(stored_rows(duckdb_path)),
        "console output": captured,
    }
    for where, text in texts.items():
        for secret in (CLIENT_ID, TOKEN):
            assert secret not in text, f"{secret} found in {where}"


def run_week(pages, duckdb_path, instance, raise_on_error=False):
    return materialize_weeks(
        env_wired_client(pages),
        duckdb_path,
        WEEK,
        assets=ASSETS,
        instance=instance,
        raise_on_error=raise_on_error,
    )


@pytest.mark.parametrize(
    ("faults", "pages", "expected_requests", "changed_value"),
    [case[1:] for case in SURVIVED],
    ids=[case[0] for case in SURVIVED],
)
def test_fault_survived(
    faults, pages, expected_requests, changed_value, secret_environment, secret_simulator,
    duckdb_path, capfd,
):  # fmt: skip
    instance = dg.DagsterInstance.ephemeral()
    run_week(pages, duckdb_path, instance, raise_on_error=True)
    secret_simulator.requests.clear()
    secret_simulator.inject(*faults)

    result = run_week(pages, duckdb_path, instance)

    assert result.success
    assert len(secret_simulator.requests) == expected_requests
    rows = stored_rows(duckdb_path)
    assert len(rows["raw_channel_pages"]) == pages
    assert len(rows["weekly_top_channels"]) == 100 * pages
    if changed_value is not None:
        column, value = changed_value
        with duckdb.connect(str(duckdb_path), read_only=True) as connection:
            stored = connection.execute(
                f"select {column} from streams_t100.streams_t100.weekly_top_channels where rank = 1"
            ).fetchone()[0]
        assert stored == value
    assert_no_secrets(instance, result, duckdb_path, "".join(capfd.readouterr()))


@pytest.mark.parametrize(
    ("faults", "pages", "expected_requests", "reason"),
    [case[1:] for case in FAILED],
    ids=[case[0] for case in FAILED],
)
def test_fault_fails_clearly(
    faults, pages, expected_requests, reason, secret_environment, secret_simulator, duckdb_path,
    capfd,
):  # fmt: skip
    instance = dg.DagsterInstance.ephemeral()
    run_week(pages, duckdb_path, instance, raise_on_error=True)
    rows_before = stored_rows(duckdb_path)
    secret_simulator.requests.clear()
    secret_simulator.inject(*faults)

    result = run_week(pages, duckdb_path, instance)

    assert not result.success
    message = step_error(result).message
    assert f"week {WEEK}" in message
    assert reason in message
    assert len(secret_simulator.requests) == expected_requests
    assert stored_rows(duckdb_path) == rows_before
    assert_no_secrets(instance, result, duckdb_path, "".join(capfd.readouterr()) + message)
