"""Which `time` value a week is requested with, and the refusal without paid requests."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from streams_t100.assets.raw import raw_channel_pages
from streams_t100.partitions import Week
from streams_t100.request_window import RequestWindowError, time_value_for_week
from streams_t100_tests.helpers import client_for, materialize_weeks, step_error

WEEK = Week.from_key("2025-01-06")  # ends Monday 2025-01-13 00:00 UTC
ONE_DAY = timedelta(hours=24)


@pytest.mark.parametrize(
    ("now", "tolerance", "allow_paid", "expected"),
    [
        # The schedule's moment: Monday 08:00 after the week ends.
        (datetime(2025, 1, 13, 8, 0, tzinfo=UTC), ONE_DAY, False, "7-days"),
        (datetime(2025, 1, 13, 0, 0, tzinfo=UTC), ONE_DAY, False, "7-days"),
        (datetime(2025, 1, 13, 23, 59, tzinfo=UTC), ONE_DAY, False, "7-days"),
        # Tuesday 00:00 is outside a 24-hour tolerance, inside a 48-hour one.
        (datetime(2025, 1, 14, 0, 0, tzinfo=UTC), ONE_DAY, True, "2025-01-06,2025-01-12"),
        (datetime(2025, 1, 14, 0, 0, tzinfo=UTC), 2 * ONE_DAY, False, "7-days"),
        # A year later, only the explicit Monday-to-Sunday range describes the week.
        (datetime(2026, 1, 5, 8, 0, tzinfo=UTC), ONE_DAY, True, "2025-01-06,2025-01-12"),
        # Another time zone names the same instant: 2025-01-13 09:00 in UTC+1 is 08:00 UTC.
        (
            datetime(2025, 1, 13, 9, 0, tzinfo=timezone(timedelta(hours=1))),
            ONE_DAY,
            False,
            "7-days",
        ),
    ],
)
def test_time_value_for_week(now, tolerance, allow_paid, expected):
    assert time_value_for_week(WEEK, now, tolerance, allow_paid) == expected


def test_paid_week_refused_without_paid_requests():
    tuesday = datetime(2025, 1, 14, 0, 0, tzinfo=UTC)

    with pytest.raises(RequestWindowError) as refused:
        time_value_for_week(WEEK, tuesday, ONE_DAY, allow_paid_requests=False)

    message = str(refused.value)
    assert "week 2025-01-06" in message
    assert "time=7-days" in message
    assert "2025-01-14 00:00 UTC" in message
    assert "STREAMS_CHARTS_ALLOW_PAID=true" in message
    assert "allow_paid_requests" in message


def test_unfinished_week_refused_even_with_paid_requests():
    sunday_evening = datetime(2025, 1, 12, 20, 0, tzinfo=UTC)

    with pytest.raises(RequestWindowError, match=r"week 2025-01-06 .* has not ended yet"):
        time_value_for_week(WEEK, sunday_evening, ONE_DAY, allow_paid_requests=True)


def test_refused_run_sends_no_request(simulator, duckdb_path):
    client = client_for(simulator.base_url, simulator.client_id, simulator.token)

    result = materialize_weeks(client, duckdb_path, "2025-01-06", raise_on_error=False)

    assert not result.success
    failure = step_error(result)
    assert "RequestWindowError" in failure.cls_name
    assert "week 2025-01-06" in failure.message
    assert "STREAMS_CHARTS_ALLOW_PAID=true" in failure.message
    assert list(simulator.requests) == []
    assert not duckdb_path.exists()


def test_refused_week_in_range_stops_every_request(simulator, duckdb_path):
    # Two weeks in one run: the refusal of either must come before any request at all.
    client = client_for(simulator.base_url, simulator.client_id, simulator.token)

    result = materialize_weeks(
        client, duckdb_path, "2025-01-06", "2025-01-13", raise_on_error=False
    )

    assert not result.success
    assert list(simulator.requests) == []


def test_paid_request_sends_explicit_range(simulator, duckdb_path):
    client = client_for(
        simulator.base_url, simulator.client_id, simulator.token, allow_paid_requests=True
    )

    materialize_weeks(client, duckdb_path, "2025-01-06")

    sent = [request.query["time"] for request in simulator.requests]
    assert sent == ["2025-01-06,2025-01-12"]


def test_free_request_for_week_just_ended(duckdb_path):
    # The simulator's clock and the run's clock must agree for the free window; pin the
    # simulator to just after the latest complete week ended.
    from streams_t100.partitions import last_complete_week
    from streams_t100.simulator import Simulator

    latest = last_complete_week(datetime.now(UTC))
    with Simulator(clock=lambda: latest.ends_at + timedelta(hours=8)) as simulator:
        client = client_for(
            simulator.base_url,
            simulator.client_id,
            simulator.token,
            # The run happens now, so the tolerance must reach from the week's end to now.
            free_window_tolerance_hours=24 * 8,
        )
        materialize_weeks(client, duckdb_path, latest.key)

        sent = [request.query["time"] for request in simulator.requests]
    assert sent == ["7-days"]


def test_run_config_allows_paid_for_one_run(simulator, duckdb_path):
    client = client_for(simulator.base_url, simulator.client_id, simulator.token)
    run_config = {"ops": {"raw_channel_pages": {"config": {"allow_paid_requests": True}}}}

    result = materialize_weeks(
        client, duckdb_path, "2025-01-06", assets=[raw_channel_pages], run_config=run_config
    )

    assert result.success
    assert [request.query["time"] for request in simulator.requests] == ["2025-01-06,2025-01-12"]
