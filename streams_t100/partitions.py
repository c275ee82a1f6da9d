"""Weekly partitions: one partition a week, Monday 00:00 to the next Monday 00:00 UTC.

The partition key is the Monday's date (`2025-01-06` is the week 2025-01-06 to 2025-01-12).
"""

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

# The earliest week that Dagster offers for materialization and backfills. Change it here, or
# set STREAMS_T100_FIRST_WEEK to another Monday.
DEFAULT_FIRST_WEEK = "2020-01-06"
FIRST_WEEK_ENV_VAR = "STREAMS_T100_FIRST_WEEK"

PARTITION_KEY_FORMAT = "%Y-%m-%d"


class InvalidWeekError(ValueError):
    """A date string that is not the Monday that starts a partition week."""


@dataclass(frozen=True)
class Week:
    """A Monday-to-Sunday week in UTC, identified by its Monday."""

    start: date

    def __post_init__(self) -> None:
        if self.start.weekday() != 0:
            raise InvalidWeekError(
                f"{self.start.isoformat()} is a {self.start:%A}, but a week starts on a Monday; "
                f"the Monday of that week is {monday_on_or_before(self.start).isoformat()}"
            )

    @classmethod
    def from_key(cls, key: str) -> "Week":
        try:
            start = datetime.strptime(key, PARTITION_KEY_FORMAT).date()
        except ValueError:
            raise InvalidWeekError(
                f"invalid week {key!r}: expected the Monday's date as YYYY-MM-DD"
            ) from None
        return cls(start)

    @classmethod
    def containing(cls, day: date) -> "Week":
        return cls(monday_on_or_before(day))

    @property
    def key(self) -> str:
        return self.start.isoformat()

    @property
    def end(self) -> date:
        """The Sunday, the last day of the week."""
        return self.start + timedelta(days=6)

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time(0), tzinfo=UTC)

    @property
    def ends_at(self) -> datetime:
        """The moment the week is over: the next Monday at 00:00 UTC."""
        return self.starts_at + timedelta(days=7)

    @property
    def iso_year(self) -> int:
        # ISO weeks also run Monday to Sunday, so the Monday's ISO week is the whole week's.
        return self.start.isocalendar().year

    @property
    def iso_week(self) -> int:
        return self.start.isocalendar().week

    def previous(self) -> "Week":
        return Week(self.start - timedelta(days=7))

    def __str__(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"


def monday_on_or_before(day: date) -> date:
    return day - timedelta(days=day.weekday())


def last_complete_week(now: datetime) -> Week:
    """Return the latest week that has fully ended at `now`."""
    return Week.containing(now.astimezone(UTC).date()).previous()


def first_week_from_env() -> Week:
    key = os.environ.get(FIRST_WEEK_ENV_VAR) or DEFAULT_FIRST_WEEK
    try:
        return Week.from_key(key)
    except InvalidWeekError as error:
        raise InvalidWeekError(f"{FIRST_WEEK_ENV_VAR}: {error}") from None


def build_weekly_partitions(first_week: Week) -> dg.WeeklyPartitionsDefinition:
    # day_offset=1 makes the weeks start on Monday (0 would be Sunday).
    return dg.WeeklyPartitionsDefinition(
        start_date=first_week.key,
        day_offset=1,
        timezone="UTC",
        fmt=PARTITION_KEY_FORMAT,
    )


weekly_partitions = build_weekly_partitions(first_week_from_env())
