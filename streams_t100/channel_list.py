"""Parse the channel-list pages of a week into typed rows, one row per channel.

Every check on a response body lives here, so that the raw layer can refuse a bad page before
anything is stored, and the enriched layer can rebuild its rows from the stored pages alone.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from streams_t100.partitions import Week

# Channels per page of the channel list; the API documents 100 rows a page.
PAGE_SIZE = 100

# The 16 fields of a channel record, under the API's own names, with their stored types.
API_FIELDS: dict[str, pl.DataType] = {
    "platform": pl.String(),
    "channel_name": pl.String(),
    "channel_display_name": pl.String(),
    "channel_id": pl.String(),
    "hours_watched": pl.Int64(),
    "peak_viewers": pl.Int64(),
    "average_viewers": pl.Int64(),
    "airtime_in_m": pl.Int64(),
    "followers_gain": pl.Int64(),
    "live_views": pl.Int64(),
    "last_streamed_game": pl.String(),
    "avatar_url": pl.String(),
    "channel_country": pl.String(),
    "stream_language": pl.String(),
    "partnership_status": pl.String(),
    "channel_type": pl.String(),
}

FIELD_NAMES = frozenset(API_FIELDS)
COUNT_FIELDS = tuple(name for name, dtype in API_FIELDS.items() if dtype == pl.Int64())
REQUIRED_TEXT_FIELDS = ("platform", "channel_name", "channel_id")
OPTIONAL_TEXT_FIELDS = tuple(
    name
    for name, dtype in API_FIELDS.items()
    if dtype == pl.String() and name not in REQUIRED_TEXT_FIELDS
)

WEEKLY_TOP_CHANNELS_SCHEMA = pl.Schema(
    {
        "week_start": pl.Date(),
        "week_end": pl.Date(),
        "iso_year": pl.Int32(),
        "iso_week": pl.Int32(),
        "rank": pl.Int32(),
        **API_FIELDS,
        "fetched_at": pl.Datetime("us", "UTC"),
    }
)


class ChannelListError(ValueError):
    """A channel-list page whose body cannot be turned into rows."""

    def __init__(self, week: Week, page: int, reason: str):
        super().__init__(f"week {week.key}, page {page}: {reason}")
        self.week = week
        self.page = page
        self.reason = reason


@dataclass(frozen=True)
class StoredPage:
    """The parts of a raw page that parsing needs."""

    page: int
    fetched_at: datetime
    body: str


@dataclass(frozen=True)
class CheckedWeek:
    """One week's checked channel records, as columns of stored Python types, in rank order."""

    week: Week
    columns: dict[str, list[Any]]
    fetched_at: list[datetime]

    @property
    def channel_count(self) -> int:
        return len(self.fetched_at)


def check_week(week: Week, pages: Sequence[StoredPage]) -> CheckedWeek:
    """Check one week's pages and return their records as columns, in the API's order.

    Raises ChannelListError naming the week, the page and the reason for a body that is not
    a JSON object with a non-empty `data` list, a record with a missing or mistyped field, or
    a channel listed twice.
    """
    columns: dict[str, list[Any]] = {name: [] for name in API_FIELDS}
    fetched_at: list[datetime] = []
    first_seen_on_page: dict[str, int] = {}
    for stored in sorted(pages, key=lambda p: p.page):
        records = page_records(week, stored.page, stored.body)
        page_columns = typed_columns(week, stored.page, records)
        check_listed_once(week, stored.page, page_columns, first_seen_on_page)
        for name, values in page_columns.items():
            columns[name].extend(values)
        fetched_at.extend([stored.fetched_at] * len(records))
    return CheckedWeek(week, columns, fetched_at)


def parse_week(week: Week, pages: Sequence[StoredPage]) -> pl.DataFrame:
    """Turn one week's pages into one row per channel, ranked in the API's order.

    Raises ChannelListError as `check_week` does.
    """
    return rows_frame([check_week(week, pages)])


def rows_frame(weeks: Sequence[CheckedWeek]) -> pl.DataFrame:
    """Build the `weekly_top_channels` rows of checked weeks as one frame.

    A frame per week, concatenated, took about as long as all the other parsing together
    (profiled over 260 weeks), so all the weeks of a run go into one frame.
    """

    def each_row(value_for_week) -> list[Any]:
        return [value for checked in weeks for value in value_for_week(checked)]

    columns = {
        "week_start": each_row(lambda checked: [checked.week.start] * checked.channel_count),
        "week_end": each_row(lambda checked: [checked.week.end] * checked.channel_count),
        "iso_year": each_row(lambda checked: [checked.week.iso_year] * checked.channel_count),
        "iso_week": each_row(lambda checked: [checked.week.iso_week] * checked.channel_count),
        "rank": each_row(lambda checked: range(1, checked.channel_count + 1)),
        **{name: each_row(lambda checked, name=name: checked.columns[name]) for name in API_FIELDS},
        "fetched_at": each_row(lambda checked: checked.fetched_at),
    }
    return pl.DataFrame(columns, schema=WEEKLY_TOP_CHANNELS_SCHEMA)


def check_listed_once(
    week: Week, page: int, columns: dict[str, list[Any]], first_seen_on_page: dict[str, int]
) -> None:
    """Raise ChannelListError for a channel seen earlier this week; record the rest."""
    for channel_id, channel_name in zip(
        columns["channel_id"], columns["channel_name"], strict=True
    ):
        if channel_id in first_seen_on_page:
            raise ChannelListError(
                week,
                page,
                f"channel {channel_name!r} (channel_id {channel_id}) is listed twice, first "
                f"on page {first_seen_on_page[channel_id]}",
            )
        first_seen_on_page[channel_id] = page


def page_records(week: Week, page: int, body: str) -> list[Any]:
    """Return the `data` list of a page body, or raise ChannelListError."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise ChannelListError(week, page, f"the body is not valid JSON ({error})") from None

    if not isinstance(document, dict):
        raise ChannelListError(week, page, "the body is not a JSON object")
    if "data" not in document:
        raise ChannelListError(week, page, "the body has no 'data' field")

    records = document["data"]
    if not isinstance(records, list):
        raise ChannelListError(week, page, f"'data' must be a list, got {json_type_name(records)}")
    if not records:
        raise ChannelListError(week, page, "'data' is an empty list: no channels returned")
    return records


def typed_columns(week: Week, page: int, records: list[Any]) -> dict[str, list[Any]]:
    """Check a page's records and return their 16 fields as columns of stored Python types.

    Each field is checked across the whole page at once, which keeps parsing a week to about
    a millisecond. Only when a column fails is it checked value by value, for the message.
    """
    for index, record in enumerate(records):
        if type(record) is not dict:
            raise ChannelListError(
                week, page, f"record {index + 1} must be an object, got {json_type_name(record)}"
            )
        if not FIELD_NAMES <= record.keys():
            missing = [name for name in API_FIELDS if name not in record]
            raise ChannelListError(
                week, page, f"record {index + 1} is missing {', '.join(missing)}"
            )

    columns = {name: [record[name] for record in records] for name in API_FIELDS}
    # The API sends channel_id as a string; a number is accepted in case that ever changes.
    columns["channel_id"] = [
        str(value) if type(value) is int else value for value in columns["channel_id"]
    ]
    columns["live_views"] = [
        int(value) if type(value) is str and value.strip().isdigit() else value
        for value in columns["live_views"]
    ]

    for name in REQUIRED_TEXT_FIELDS:
        if not all(type(value) is str and value.strip() for value in columns[name]):
            check_each(week, page, name, columns[name], required_text)
    for name in OPTIONAL_TEXT_FIELDS:
        if not all(value is None or type(value) is str for value in columns[name]):
            check_each(week, page, name, columns[name], optional_text)
    for name in COUNT_FIELDS:
        # type() rather than isinstance(), because JSON true and false arrive as bool, an int.
        if not all(type(value) is int for value in columns[name]):
            check_each(week, page, name, columns[name], count)
    return columns


def check_each(week: Week, page: int, name: str, values: list[Any], check_value) -> None:
    for index, value in enumerate(values):
        check_value(week, page, f"record {index + 1}", name, value)


def required_text(week: Week, page: int, where: str, name: str, value: Any) -> str:
    # The API sends channel_id as a string; a number is accepted in case that ever changes.
    if isinstance(value, int) and not isinstance(value, bool) and name == "channel_id":
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ChannelListError(
            week, page, f"{where}: {name} must be a non-empty string, got {value!r}"
        )
    return value


def optional_text(week: Week, page: int, where: str, name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ChannelListError(week, page, f"{where}: {name} must be a string or null, got {value!r}")


def count(week: Week, page: int, where: str, name: str, value: Any) -> int:
    """Return a count as an int. Only `live_views` may arrive as a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if name == "live_views" and isinstance(value, str) and value.strip().isdigit():
        return int(value)

    expected = "an integer or a string of digits" if name == "live_views" else "an integer"
    raise ChannelListError(
        week, page, f"{where}: {name} must be {expected}, got {json_type_name(value)} {value!r}"
    )


def json_type_name(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", float: "float"}
    if value is None:
        return "null"
    return names.get(type(value), "integer" if isinstance(value, int) else type(value).__name__)
