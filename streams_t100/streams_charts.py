"""The Streams Charts API client, as a Dagster resource.

It requests the channel list of one platform for one week, page by page, and returns each
response body untouched so that the raw layer can store exactly what the API sent.
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dagster as dg
import requests
from pydantic import Field, PrivateAttr, field_validator
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from streams_t100.partitions import Week
from streams_t100.request_window import time_value_for_week

DEFAULT_BASE_URL = "https://streamscharts.com/api/jazz"

# Retries are logged here; the instance files list this logger under managed_python_loggers,
# so the lines also appear in each run's Dagster log.
logger = logging.getLogger(__name__)

# The platforms that the channel list accepts, as the Streams Charts documentation lists them.
PLATFORMS = (
    "twitch",
    "youtube",
    "kick",
    "rumble",
    "trovo",
    "nimo",
    "bigo",
    "nonolive",
    "afreecatv",
    "mildom",
    "chzzk",
    "soop",
    "steam",
)

RETRIED_STATUSES = (429, 500, 502, 503, 504)
CREDENTIALS_REJECTED_STATUSES = (401, 403)


class StreamsChartsError(RuntimeError):
    """A request for a week's channel list that failed, or returned something unusable."""

    def __init__(self, week: Week, page: int, reason: str):
        super().__init__(f"Streams Charts request for week {week.key}, page {page}: {reason}")
        self.week = week
        self.page = page
        self.reason = reason


class RetryAfterTooLongError(RuntimeError):
    """The API asked the client to wait longer than the configured maximum."""

    def __init__(self, seconds: float, max_seconds: float):
        super().__init__(
            f"the API asked to retry after {seconds:.0f} s, longer than the configured maximum "
            f"of {max_seconds:.0f} s (max_retry_after_seconds)"
        )


class CappedRetry(Retry):
    """urllib3's Retry, except that a Retry-After above `max_retry_after` fails at once.

    Plain Retry sleeps for as long as the server requests, or with `retry_after_max` sleeps
    for less and retries too early. A clear failure is better than a run that hangs for an hour.
    """

    max_retry_after: float = 60.0

    def new(self, **kwargs: Any) -> "CappedRetry":
        retry = super().new(**kwargs)
        retry.max_retry_after = self.max_retry_after
        return retry

    def increment(
        self, method=None, url=None, response=None, error=None, **kwargs
    ) -> "CappedRetry":
        # super() raises MaxRetryError once attempts run out, so only real retries are logged.
        retry = super().increment(method, url, response, error, **kwargs)
        reason = f"HTTP {response.status}" if response is not None else type(error).__name__
        logger.warning(
            "Retrying %s %s after %s (%d retries left)", method, url, reason, retry.total
        )
        return retry

    def get_retry_after(self, response) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is not None and seconds > self.max_retry_after:
            raise RetryAfterTooLongError(seconds, self.max_retry_after)
        return seconds


@dataclass(frozen=True)
class FetchedPage:
    """One page of the channel list, exactly as the API returned it."""

    week: Week
    platform: str
    page: int
    time_value: str
    request_url: str
    fetched_at: datetime
    http_status: int
    body: str


class StreamsChartsClient(dg.ConfigurableResource):
    """Streams Charts API: the week's channel list, one request per page."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="API root, without /channels.")
    client_id: str = Field(description="Streams Charts Client-ID header.")
    token: str = Field(description="Streams Charts Token header.")
    platform: str = Field(default="twitch", description=f"One of: {', '.join(PLATFORMS)}.")
    pages: int = Field(default=1, description="Pages of 100 channels to fetch per week.")
    allow_paid_requests: bool = Field(
        default=False,
        description="Request explicit date ranges, which cost credits, for weeks outside the "
        "free window.",
    )
    testing_mode: bool = Field(
        default=False, description="Send testing_mode=true: fake data that costs no credits."
    )
    free_window_tolerance_hours: float = Field(
        default=24.0,
        description="Hours after a week ends during which the free 7-days request still "
        "counts as that week.",
    )
    connect_timeout_seconds: float = Field(default=5.0)
    read_timeout_seconds: float = Field(default=30.0)
    max_attempts: int = Field(default=5, description="Attempts per request, retries included.")
    backoff_factor_seconds: float = Field(
        default=1.0, description="Exponential backoff base between retries."
    )
    max_retry_after_seconds: float = Field(
        default=120.0, description="Longest Retry-After to honour; longer fails the step."
    )

    _session: requests.Session | None = PrivateAttr(default=None)

    @field_validator("platform", mode="before")
    @classmethod
    def _known_platform(cls, platform: object) -> object:
        # At definition time an EnvVar carries the variable's name; Dagster validates again
        # with the variable's value when the resource is built for a run.
        if isinstance(platform, dg.EnvVar):
            return platform
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r}; valid: {', '.join(PLATFORMS)}")
        return platform

    @field_validator("pages", "max_attempts")
    @classmethod
    def _at_least_one(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"must be 1 or more, got {value}")
        return value

    @field_validator("free_window_tolerance_hours", "max_retry_after_seconds")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError(f"must be 0 or more, got {value}")
        return value

    @field_validator("connect_timeout_seconds", "read_timeout_seconds")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be more than 0 seconds, got {value}")
        return value

    def time_value_for(self, week: Week, now: datetime, allow_paid_for_run: bool = False) -> str:
        """Return the `time` value for `week` at `now`; raises RequestWindowError if refused.

        `allow_paid_for_run` allows paid requests for one run even where the resource does not.
        """
        tolerance = timedelta(hours=self.free_window_tolerance_hours)
        allow_paid = self.allow_paid_requests or allow_paid_for_run
        return time_value_for_week(week, now, tolerance, allow_paid)

    def fetch_week(self, week: Week, time_value: str) -> list[FetchedPage]:
        """Fetch the configured number of pages of the channel list for `week`.

        `time_value` comes from `time_value_for`. Raises StreamsChartsError for a request
        that failed, an HTTP error status, too few pages or a link to another host.
        """
        return list(self._fetch_pages(week, time_value))

    def _fetch_pages(self, week: Week, time_value: str) -> Iterator[FetchedPage]:
        url = self._first_page_url(time_value)
        for page in range(1, self.pages + 1):
            fetched = self._get_page(week, page, time_value, url)
            yield fetched
            if page == self.pages:
                # The last page's links.next is not read, so a bad link there cannot fail the run.
                return
            next_url = self._next_page_url(week, page, fetched.body)
            if next_url is None:
                raise StreamsChartsError(
                    week,
                    page,
                    f"links.next is empty, so the API has no page {page + 1}, but "
                    f"{self.pages} pages were requested (the resource's `pages` setting)",
                )
            url = next_url

    def _first_page_url(self, time_value: str) -> str:
        query = {"platform": self.platform, "time": time_value, "page": "1"}
        if self.testing_mode:
            query["testing_mode"] = "true"
        return f"{self.base_url.rstrip('/')}/channels?{urlencode(query)}"

    def _get_page(self, week: Week, page: int, time_value: str, url: str) -> FetchedPage:
        fetched_at = datetime.now(UTC)
        try:
            response = self._get_session().get(
                url, timeout=(self.connect_timeout_seconds, self.read_timeout_seconds)
            )
        except RetryAfterTooLongError as error:
            raise StreamsChartsError(week, page, str(error)) from None
        except requests.RequestException as error:
            reason = f"request to {url} failed after {self.max_attempts} attempts: {error}"
            raise StreamsChartsError(week, page, reason) from None

        check_response_status(week, page, url, response)
        return FetchedPage(
            week=week,
            platform=self.platform,
            page=page,
            time_value=time_value,
            request_url=url,
            fetched_at=fetched_at,
            http_status=response.status_code,
            body=response.text,
        )

    def _next_page_url(self, week: Week, page: int, body: str) -> str | None:
        """Return the URL of the page after `page`, rebuilt on the configured scheme and host.

        The API writes `links.next` with http:// even when it is called over https, so only
        the path and query are taken from it, and a link to any other host is rejected.
        """
        try:
            next_link = json.loads(body).get("links", {}).get("next")
        except (ValueError, AttributeError):
            next_link = None
        if not next_link:
            return None

        base = urlsplit(self.base_url)
        link = urlsplit(next_link)
        if (link.hostname or "").lower() != (base.hostname or "").lower():
            raise StreamsChartsError(
                week,
                page,
                f"links.next points to host {link.hostname!r}, not the configured API host "
                f"{base.hostname!r}; it was not followed",
            )
        query = dict(parse_qsl(link.query))
        if self.testing_mode:
            query["testing_mode"] = "true"
        return urlunsplit((base.scheme, base.netloc, link.path, urlencode(query), ""))

    def _get_session(self) -> requests.Session:
        if self._session is None:
            self._session = self._build_session()
        return self._session

    def _build_session(self) -> requests.Session:
        retry = CappedRetry(
            total=self.max_attempts - 1,
            backoff_factor=self.backoff_factor_seconds,
            status_forcelist=RETRIED_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        retry.max_retry_after = self.max_retry_after_seconds

        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update(
            {
                "Client-ID": strip_pasted_quotes(self.client_id),
                "Token": strip_pasted_quotes(self.token),
                "Accept": "application/json",
                "User-Agent": "streams_t100",
            }
        )
        return session


def check_response_status(week: Week, page: int, url: str, response: requests.Response) -> None:
    """Raise StreamsChartsError for any status but 200, without echoing credentials."""
    status = response.status_code
    if status == 200:
        return
    if status in CREDENTIALS_REJECTED_STATUSES:
        reason = (
            f"the API refused the credentials (HTTP {status}); check STREAMS_CHARTS_CLIENT_ID "
            "and STREAMS_CHARTS_TOKEN"
        )
    elif status in RETRIED_STATUSES:
        reason = f"HTTP {status} from {url}, still failing after the last retry"
    else:
        reason = f"HTTP {status} from {url}"
    raise StreamsChartsError(week, page, reason)


def strip_pasted_quotes(secret: str) -> str:
    """Remove whitespace and one pair of quotes that a value pasted into `.env` may carry."""
    secret = secret.strip()
    if len(secret) >= 2 and secret[0] == secret[-1] and secret[0] in "\"'":
        secret = secret[1:-1].strip()
    return secret
