"""The Streams Charts client over real HTTP: headers, paging, and refused credentials."""

import json

import dagster as dg
import pytest
from pydantic import ValidationError

from streams_t100.partitions import Week
from streams_t100.settings import streams_charts_from_env
from streams_t100.simulator_faults import Fault
from streams_t100.streams_charts import StreamsChartsClient, StreamsChartsError
from streams_t100_tests.helpers import StaticApi, client_for, documented_sample

WEEK = Week.from_key("2025-01-06")
EXPLICIT = "2025-01-06,2025-01-12"


def test_headers_sent_without_pasted_quotes():
    with StaticApi(json.dumps(documented_sample())) as api:
        client = client_for(api.base_url, ' "client-123" ', "'token-456'")
        client.fetch_week(WEEK, "7-days")

    (request,) = api.requests
    assert request["Client-ID"] == "client-123"
    assert request["Token"] == "token-456"
    assert request["path"] == "/api/jazz/channels?platform=twitch&time=7-days&page=1"


def test_testing_mode_sent_when_enabled():
    with StaticApi(json.dumps(documented_sample())) as api:
        client_for(api.base_url, "c", "t", testing_mode=True).fetch_week(WEEK, "7-days")

    assert api.requests[0]["path"].endswith("&testing_mode=true")


def test_pages_follow_next_links(simulator):
    client = client_for(simulator.base_url, simulator.client_id, simulator.token, pages=3)

    pages = client.fetch_week(WEEK, EXPLICIT)

    assert [page.page for page in pages] == [1, 2, 3]
    assert [request.query["page"] for request in simulator.requests] == ["1", "2", "3"]
    assert json.loads(pages[2].body)["meta"]["from"] == 201


def test_fewer_pages_than_asked(simulator):
    # The simulator lists 300 channels, so a fourth page does not exist.
    client = client_for(simulator.base_url, simulator.client_id, simulator.token, pages=4)

    with pytest.raises(StreamsChartsError, match=r"week 2025-01-06, page 3: .*no page 4, but 4"):
        client.fetch_week(WEEK, EXPLICIT)


def test_next_link_rebuilt_on_configured_host():
    # The API writes links.next with http:// and without a port. The client keeps only the
    # link's path and query, and sends them to the configured scheme, host and port.
    sample = documented_sample()
    sample["links"]["next"] = (
        "http://127.0.0.1/api/jazz/channels?platform=twitch&time=7-days&page=2"
    )
    with StaticApi(json.dumps(sample)) as api:
        pages = client_for(api.base_url, "c", "t", pages=2).fetch_week(WEEK, "7-days")

    assert [page.page for page in pages] == [1, 2]
    assert api.requests[1]["path"] == "/api/jazz/channels?platform=twitch&time=7-days&page=2"
    assert pages[1].request_url == f"{api.base_url}/channels?platform=twitch&time=7-days&page=2"


def test_next_link_to_other_host_not_followed():
    # The documented sample's links.next points at streamscharts.com itself.
    with StaticApi(json.dumps(documented_sample())) as api:
        client = client_for(api.base_url, "c", "t", pages=2)
        with pytest.raises(StreamsChartsError, match=r"page 1: links.next .*'streamscharts.com'"):
            client.fetch_week(WEEK, "7-days")

    assert len(api.requests) == 1


def test_refused_credentials_named_without_secret(simulator):
    client = client_for(simulator.base_url, simulator.client_id, "wrong-token-SECRET123")

    with pytest.raises(StreamsChartsError) as refused:
        client.fetch_week(WEEK, EXPLICIT)

    message = str(refused.value)
    assert "week 2025-01-06, page 1" in message
    assert "refused the credentials (HTTP 401)" in message
    assert "SECRET123" not in message
    assert len(simulator.requests) == 1


def test_unknown_platform_rejected():
    with pytest.raises(ValidationError, match=r"unknown platform 'twich'; valid: twitch, youtube"):
        client_for("http://127.0.0.1:9/api/jazz", "c", "t", platform="twich")


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("pages", 0, "must be 1 or more, got 0"),
        ("free_window_tolerance_hours", -1, "must be 0 or more, got -1"),
        ("read_timeout_seconds", 0, "must be more than 0 seconds"),
    ],
)
def test_invalid_setting_rejected(setting, value, reason):
    with pytest.raises(ValidationError, match=reason):
        client_for("http://127.0.0.1:9/api/jazz", "c", "t", **{setting: value})


def test_platform_from_env_var_is_used(monkeypatch, simulator):
    monkeypatch.setenv("STREAMS_CHARTS_PLATFORM", "kick")
    monkeypatch.setenv("STREAMS_CHARTS_BASE_URL", simulator.base_url)
    monkeypatch.setenv("STREAMS_CHARTS_CLIENT_ID", simulator.client_id)
    monkeypatch.setenv("STREAMS_CHARTS_TOKEN", simulator.token)

    @dg.asset
    def platform_sent(streams_charts: StreamsChartsClient) -> None:
        streams_charts.fetch_week(WEEK, EXPLICIT)

    result = dg.materialize(
        [platform_sent], resources={"streams_charts": streams_charts_from_env()}
    )

    assert result.success
    assert [request.query["platform"] for request in simulator.requests] == ["kick"]


def test_platform_from_env_var_is_validated(monkeypatch):
    monkeypatch.setenv("STREAMS_CHARTS_PLATFORM", "twich")
    monkeypatch.setenv("STREAMS_CHARTS_CLIENT_ID", "c")
    monkeypatch.setenv("STREAMS_CHARTS_TOKEN", "t")

    @dg.asset
    def never_runs(streams_charts: StreamsChartsClient) -> None:
        raise AssertionError("the resource should have failed to initialize")

    result = dg.materialize(
        [never_runs], resources={"streams_charts": streams_charts_from_env()}, raise_on_error=False
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_resource_init_failure]
    assert (
        "unknown platform 'twich'; valid: twitch" in failure.event_specific_data.error.to_string()
    )


def test_retries_are_logged_without_secrets(simulator, caplog):
    simulator.inject(Fault(status=503), Fault(reset=True))
    client = client_for(simulator.base_url, simulator.client_id, simulator.token)

    with caplog.at_level("WARNING", logger="streams_t100.streams_charts"):
        pages = client.fetch_week(WEEK, EXPLICIT)

    assert len(pages) == 1
    retries = [
        record.getMessage()
        for record in caplog.records
        if record.name == "streams_t100.streams_charts"
    ]
    assert len(retries) == 2
    assert "after HTTP 503 (3 retries left)" in retries[0]
    assert "/api/jazz/channels?platform=twitch" in retries[0]
    assert "(2 retries left)" in retries[1]
    assert all(simulator.token not in line for line in retries)
