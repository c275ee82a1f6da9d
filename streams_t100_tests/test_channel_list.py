"""Parsing channel-list pages into typed rows, starting from the documented sample response."""

import json
from datetime import UTC, date, datetime

import polars as pl
import pytest

from streams_t100.channel_list import (
    WEEKLY_TOP_CHANNELS_SCHEMA,
    ChannelListError,
    StoredPage,
    check_week,
    parse_week,
    rows_frame,
)
from streams_t100.partitions import Week
from streams_t100_tests.helpers import DOCUMENTED_SAMPLE, documented_sample

WEEK = Week.from_key("2025-01-06")
FETCHED_AT = datetime(2025, 1, 13, 8, 0, 5, tzinfo=UTC)


def parse_bodies(*bodies: str) -> pl.DataFrame:
    pages = [StoredPage(page, FETCHED_AT, body) for page, body in enumerate(bodies, start=1)]
    return parse_week(WEEK, pages)


def parse_records(records: object) -> pl.DataFrame:
    return parse_bodies(json.dumps({"data": records}))


def sample_record(**changes: object) -> dict:
    record = dict(documented_sample()["data"][0])
    record.update(changes)
    return record


def test_documented_sample_rows():
    rows = parse_bodies(DOCUMENTED_SAMPLE.read_text()).to_dicts()

    assert len(rows) == 2
    xqc, loud_coringa = rows
    # Every value below is copied by hand from the documented sample response.
    assert xqc == {
        "week_start": date(2025, 1, 6),
        "week_end": date(2025, 1, 12),
        "iso_year": 2025,
        "iso_week": 2,
        "rank": 1,
        "platform": "twitch",
        "channel_name": "xqc",
        "channel_display_name": "xQc",
        "channel_id": "71092938",
        "hours_watched": 4094054,
        "peak_viewers": 105095,
        "average_viewers": 63148,
        "airtime_in_m": 3890,
        "followers_gain": 30419,
        "live_views": 12977101,
        "last_streamed_game": "Grand Theft Auto V",
        "avatar_url": "https://static-cdn.jtvnw.net/jtv_user_pictures/xqc-profile_image-9298dca608632101-300x300.jpeg",
        "channel_country": "CA",
        "stream_language": "en",
        "partnership_status": "partner",
        "channel_type": "male",
        "fetched_at": FETCHED_AT,
    }
    assert loud_coringa["rank"] == 2
    assert loud_coringa["channel_id"] == "569325723"
    assert loud_coringa["hours_watched"] == 2672997
    assert loud_coringa["peak_viewers"] == 110919
    assert loud_coringa["average_viewers"] == 68539
    assert loud_coringa["live_views"] == 11252398
    assert loud_coringa["channel_country"] == "BR"
    assert loud_coringa["stream_language"] == "pt"


def test_parsed_schema_is_declared_schema():
    frame = parse_bodies(DOCUMENTED_SAMPLE.read_text())

    assert frame.schema == WEEKLY_TOP_CHANNELS_SCHEMA
    assert frame.schema["live_views"] == pl.Int64()
    assert frame.schema["channel_id"] == pl.String()


def test_rank_continues_across_pages():
    first, second = documented_sample()["data"]

    frame = parse_bodies(json.dumps({"data": [first]}), json.dumps({"data": [second]}))

    assert frame.select("rank", "channel_name").rows() == [(1, "xqc"), (2, "loud_coringa")]


def test_unknown_fields_are_ignored():
    frame = parse_records([sample_record(subscribers=1234, new_metric={"a": 1})])

    assert frame.columns == WEEKLY_TOP_CHANNELS_SCHEMA.names()
    assert frame.item(0, "hours_watched") == 4094054


def test_negative_followers_gain_is_valid():
    frame = parse_records([sample_record(followers_gain=-120)])

    assert frame.item(0, "followers_gain") == -120


def test_optional_text_may_be_null():
    frame = parse_records([sample_record(channel_country=None, last_streamed_game=None)])

    assert frame.item(0, "channel_country") is None
    assert frame.item(0, "last_streamed_game") is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html>Bad gateway</html>", "page 1: the body is not valid JSON"),
        ('{"data": [', "page 1: the body is not valid JSON"),
        ("[]", "page 1: the body is not a JSON object"),
        ('{"links": {}}', "page 1: the body has no 'data' field"),
        ('{"data": {"platform": "twitch"}}', "page 1: 'data' must be a list, got object"),
        ('{"data": []}', "page 1: 'data' is an empty list"),
    ],
)
def test_bad_body_rejected(body, reason):
    with pytest.raises(ChannelListError, match=f"week 2025-01-06, {reason}"):
        parse_bodies(body)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {k: v for k, v in sample_record().items() if k != "hours_watched"},
            "is missing hours_watched",
        ),
        (sample_record(peak_viewers=None), "peak_viewers must be an integer, got null None"),
        (sample_record(average_viewers="63148"), "average_viewers must be an integer, got string"),
        (sample_record(airtime_in_m=3890.5), "airtime_in_m must be an integer, got float 3890.5"),
        (
            sample_record(live_views="12,977,101"),
            "live_views must be an integer or a string of digits",
        ),
        (sample_record(hours_watched=True), "hours_watched must be an integer, got boolean"),
        (sample_record(channel_name=""), "channel_name must be a non-empty string"),
        (sample_record(stream_language=7), "stream_language must be a string or null"),
        ("xqc", "record 1 must be an object, got string"),
    ],
)
def test_bad_record_rejected(record, reason):
    with pytest.raises(ChannelListError, match=f"week 2025-01-06, page 1: .*{reason}"):
        parse_records([record])


def test_duplicate_channel_rejected():
    first, second = documented_sample()["data"]
    repeated = dict(first, channel_display_name="xQc again")

    with pytest.raises(ChannelListError, match=r"page 2: channel 'xqc' .* twice, first on page 1"):
        parse_bodies(json.dumps({"data": [first, second]}), json.dumps({"data": [repeated]}))


def test_rows_frame_ranks_each_week():
    first, second = documented_sample()["data"]
    next_week = Week.from_key("2025-01-13")
    checked = [
        check_week(WEEK, [StoredPage(1, FETCHED_AT, json.dumps({"data": [first, second]}))]),
        check_week(next_week, [StoredPage(1, FETCHED_AT, json.dumps({"data": [second]}))]),
    ]

    frame = rows_frame(checked)

    assert frame.schema == WEEKLY_TOP_CHANNELS_SCHEMA
    assert frame.select("week_start", "week_end", "iso_week", "rank", "channel_name").rows() == [
        (date(2025, 1, 6), date(2025, 1, 12), 2, 1, "xqc"),
        (date(2025, 1, 6), date(2025, 1, 12), 2, 2, "loud_coringa"),
        (date(2025, 1, 13), date(2025, 1, 19), 3, 1, "loud_coringa"),
    ]


def test_rows_frame_of_no_weeks_is_empty():
    frame = rows_frame([])

    assert frame.height == 0
    assert frame.schema == WEEKLY_TOP_CHANNELS_SCHEMA
