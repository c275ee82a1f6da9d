"""Weekly partitions: Monday to Sunday in UTC, keyed by the Monday, with ISO year and week."""

from datetime import UTC, date, datetime

import pytest

from streams_t100.partitions import (
    InvalidWeekError,
    Week,
    build_weekly_partitions,
    first_week_from_env,
    last_complete_week,
    weekly_partitions,
)


@pytest.mark.parametrize(
    ("moment", "expected_key"),
    [
        # The first and last instants of the week 2025-01-06 to 2025-01-12.
        (datetime(2025, 1, 6, 0, 0, tzinfo=UTC), "2025-01-06"),
        (datetime(2025, 1, 12, 23, 59, 59, tzinfo=UTC), "2025-01-06"),
        # Midnight UTC on Monday starts the next week.
        (datetime(2025, 1, 13, 0, 0, tzinfo=UTC), "2025-01-13"),
        # A Wednesday in the middle of a week that spans a year end.
        (datetime(2025, 1, 1, 12, 0, tzinfo=UTC), "2024-12-30"),
    ],
)
def test_partition_key_for_moment(moment, expected_key):
    assert weekly_partitions.get_partition_key_for_timestamp(moment.timestamp()) == expected_key
    assert Week.containing(moment.date()).key == expected_key


@pytest.mark.parametrize(
    ("key", "sunday", "iso_year", "iso_week"),
    [
        ("2025-01-06", date(2025, 1, 12), 2025, 2),
        # Starts in December but contains 2025-01-02, the first Thursday of 2025, so ISO week 1.
        ("2024-12-30", date(2025, 1, 5), 2025, 1),
        # 2020 began on a Wednesday and was a leap year, so it has an ISO week 53.
        ("2020-12-28", date(2021, 1, 3), 2020, 53),
        # 2026 begins on a Thursday, so it has an ISO week 53 as well.
        ("2026-12-28", date(2027, 1, 3), 2026, 53),
        ("2027-01-04", date(2027, 1, 10), 2027, 1),
    ],
)
def test_week_dates_and_iso_week(key, sunday, iso_year, iso_week):
    week = Week.from_key(key)

    assert week.start == date.fromisoformat(key)
    assert week.end == sunday
    assert week.iso_year == iso_year
    assert week.iso_week == iso_week


def test_dagster_window_matches_week():
    window = weekly_partitions.time_window_for_partition_key("2024-12-30")
    week = Week.from_key("2024-12-30")

    assert window.start == week.starts_at
    assert window.end == week.ends_at
    assert window.end == datetime(2025, 1, 6, tzinfo=UTC)


def test_last_complete_week_on_monday_morning():
    monday_morning = datetime(2025, 1, 13, 8, 0, tzinfo=UTC)

    assert last_complete_week(monday_morning).key == "2025-01-06"


def test_week_rejects_non_monday():
    with pytest.raises(InvalidWeekError, match=r"2025-01-08 is a Wednesday.*2025-01-06"):
        Week.from_key("2025-01-08")


def test_week_rejects_malformed_key():
    with pytest.raises(InvalidWeekError, match=r"'2025/01/06'.*YYYY-MM-DD"):
        Week.from_key("2025/01/06")


def test_first_week_comes_from_env(monkeypatch):
    monkeypatch.setenv("STREAMS_T100_FIRST_WEEK", "2023-01-02")

    partitions = build_weekly_partitions(first_week_from_env())

    assert partitions.get_first_partition_key() == "2023-01-02"


def test_first_week_env_must_be_monday(monkeypatch):
    monkeypatch.setenv("STREAMS_T100_FIRST_WEEK", "2023-01-01")

    with pytest.raises(InvalidWeekError, match=r"STREAMS_T100_FIRST_WEEK: 2023-01-01 is a Sunday"):
        first_week_from_env()
