"""The schedule: every Monday at 08:00 UTC, the week that ended the night before."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._utils.schedules import cron_string_iterator

from streams_t100.definitions import defs

weekly_top100_schedule = defs.resolve_schedule_def("weekly_top100_job_schedule")

# A span that crosses two year ends, including the ISO week 53 of 2026.
FIRST_TICK = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)
LAST_TICK = datetime(2027, 1, 25, 8, 0, tzinfo=UTC)


def mondays_at_eight() -> list[datetime]:
    ticks, tick = [], FIRST_TICK
    while tick <= LAST_TICK:
        ticks.append(tick)
        tick += timedelta(weeks=1)
    return ticks


def test_schedule_ticks_only_mondays_at_eight():
    ticks = []
    iterator = cron_string_iterator(
        (FIRST_TICK - timedelta(minutes=1)).timestamp(),
        weekly_top100_schedule.cron_schedule,
        weekly_top100_schedule.execution_timezone,
    )
    for tick in iterator:
        if tick > LAST_TICK:
            break
        ticks.append(tick.astimezone(UTC))

    assert ticks == mondays_at_eight()


def test_schedule_requests_week_just_ended():
    for tick in mondays_at_eight():
        context = dg.build_schedule_context(scheduled_execution_time=tick)

        requests = weekly_top100_schedule.evaluate_tick(context).run_requests

        expected_week = (tick.date() - timedelta(days=7)).isoformat()
        assert [request.partition_key for request in requests] == [expected_week], tick


def test_schedule_covers_year_end_weeks():
    requested = set()
    for tick in mondays_at_eight():
        context = dg.build_schedule_context(scheduled_execution_time=tick)
        requested.update(
            r.partition_key for r in weekly_top100_schedule.evaluate_tick(context).run_requests
        )

    # The weeks that start in December and end in January, and ISO week 2026-W53.
    assert {"2025-12-29", "2026-12-28"} <= requested
    assert len(requested) == len(mondays_at_eight())
