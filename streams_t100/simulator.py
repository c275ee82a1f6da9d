"""A local HTTP server that speaks the Streams Charts channel-list API with simulated data.

It serves `GET /api/jazz/channels` as the API documents it: the `Client-ID` and `Token`
headers (401 without them), `platform`, `time` (`7-days` or a `YYYY-MM-DD,YYYY-MM-DD` range),
`page`, and the `data`, `links` and `meta` blocks. Each week's list is generated from a fixed
seed, so the same week always returns the same channels, and the ranking moves from one week
to the next. The data is labelled as simulated: every channel name starts with `sim_`,
`meta.simulated` is true and every response carries an `X-Simulated-Data: true` header.

Only whole Monday-to-Sunday weeks are served for explicit ranges; other ranges get a 400.
Faults (error statuses, resets, stalls, broken bodies) can be queued with `inject()`, one per
request; see simulator_faults.py.
"""

import json
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from streams_t100.channel_list import PAGE_SIZE
from streams_t100.partitions import Week, last_complete_week
from streams_t100.simulator_faults import Fault
from streams_t100.streams_charts import PLATFORMS

SIMULATOR_CLIENT_ID = "simulator-client-id"
SIMULATOR_TOKEN = "simulator-token"
API_PATH = "/api/jazz"
CHANNELS_PATH = f"{API_PATH}/channels"
NO_FAULT = Fault()
SIMULATED_LABEL = "simulated data from the streams_t100 simulator, not real Streams Charts data"

NAME_STARTS = (
    "nova", "pixel", "storm", "lunar", "frost", "ember", "echo", "rogue", "atlas", "vivid",
    "blaze", "orbit", "zen", "hyper", "koda", "mira", "sol", "vex", "tide", "onyx",
)  # fmt: skip
NAME_ENDS = (
    "plays", "tv", "gg", "live", "fps", "hq", "zone", "cast", "lab", "wolf", "fox", "byte",
    "ace", "jr", "x",
)  # fmt: skip
GAMES = (
    "Just Chatting", "Grand Theft Auto V", "League of Legends", "Counter-Strike", "VALORANT",
    "Fortnite", "Minecraft", "Dota 2", "World of Warcraft", "Apex Legends",
    "Call of Duty: Warzone", "EA Sports FC 25", "Hearthstone", "Rust", "Escape from Tarkov",
)  # fmt: skip
# (stream_language, channel_country) pairs, weighted roughly like the top of Twitch.
LOCALES = (
    ("en", "US"), ("en", "US"), ("en", "US"), ("en", "CA"), ("en", "GB"), ("es", "ES"),
    ("es", "MX"), ("es", "AR"), ("pt", "BR"), ("pt", "BR"), ("fr", "FR"), ("de", "DE"),
    ("ru", "RU"), ("ko", "KR"), ("ja", "JP"), ("it", "IT"),
)  # fmt: skip
PARTNERSHIP_STATUSES = ("partner", "partner", "partner", "affiliate")
CHANNEL_TYPES = ("male", "male", "female", "team")


@dataclass(frozen=True)
class SimulatedChannel:
    name: str
    display_name: str
    channel_id: str
    language: str
    country: str
    main_game: str
    partnership_status: str
    channel_type: str
    typical_hours_watched: int


@cache
def channel_pool(platform: str) -> tuple[SimulatedChannel, ...]:
    """Return the same 300 channels for a platform on every call, most popular first."""
    rng = random.Random(f"streams_t100 simulator channels {platform}")
    name_parts = [(start, end) for start in NAME_STARTS for end in NAME_ENDS]
    rng.shuffle(name_parts)

    channels = []
    for popularity_rank, (start, end) in enumerate(name_parts, start=1):
        language, country = rng.choice(LOCALES)
        channels.append(
            SimulatedChannel(
                name=f"sim_{start}{end}",
                display_name=f"Sim_{start.capitalize()}{end.capitalize()}",
                channel_id=str(rng.randint(10_000_000, 999_999_999)),
                language=language,
                country=country,
                main_game=rng.choice(GAMES),
                partnership_status=rng.choice(PARTNERSHIP_STATUSES),
                channel_type=rng.choice(CHANNEL_TYPES),
                # A Zipf-like fall-off from about 3.5 million hours a week at the top.
                typical_hours_watched=int(3_500_000 / popularity_rank**0.8),
            )
        )
    return tuple(channels)


@cache
def week_ranking(platform: str, week_start: date) -> tuple[dict[str, Any], ...]:
    """Return every simulated channel's record for a week, most hours watched first."""
    records = [
        simulated_record(platform, week_start, channel) for channel in channel_pool(platform)
    ]
    records.sort(key=lambda record: (-record["hours_watched"], record["channel_name"]))
    return tuple(records)


def simulated_record(platform: str, week_start: date, channel: SimulatedChannel) -> dict[str, Any]:
    rng = random.Random(f"{platform} {week_start.isoformat()} {channel.name}")

    # Most weeks vary around the channel's typical audience; some are spent mostly offline,
    # which is what moves channels in and out of the top 100.
    week_factor = rng.lognormvariate(0, 0.35)
    if rng.random() < 0.08:
        week_factor *= 0.15
    hours_watched = max(1, int(channel.typical_hours_watched * week_factor))

    airtime_in_m = rng.randint(600, 5400)
    average_viewers = max(1, round(hours_watched * 60 / airtime_in_m))
    return {
        "platform": platform,
        "channel_name": channel.name,
        "channel_display_name": channel.display_name,
        "channel_id": channel.channel_id,
        "hours_watched": hours_watched,
        "peak_viewers": int(average_viewers * rng.uniform(1.3, 2.8)),
        "average_viewers": average_viewers,
        "airtime_in_m": airtime_in_m,
        # Channels lose followers in some weeks; the real API reports that as a negative gain.
        "followers_gain": int(rng.gauss(hours_watched / 150, hours_watched / 250)),
        "live_views": str(int(hours_watched * rng.uniform(2.0, 4.0))),
        "last_streamed_game": channel.main_game if rng.random() < 0.75 else rng.choice(GAMES),
        "avatar_url": f"https://simulator.invalid/avatars/{channel.name}.png",
        "channel_country": channel.country,
        "stream_language": channel.language,
        "partnership_status": channel.partnership_status,
        "channel_type": channel.channel_type,
    }


class ApiRequestError(Exception):
    """A request that the simulated API rejects with an error status and message."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def week_for_time_value(time_value: str | None, now: datetime) -> Week:
    if time_value == "7-days":
        # The real API returns the seven days before the call. The simulator serves the last
        # complete week instead, which is what a call on the following Monday returns.
        return last_complete_week(now)
    if time_value and "," in time_value:
        first, _, last = time_value.partition(",")
        try:
            week = Week.from_key(first)
        except ValueError:
            week = None
        if week is not None and last == week.end.isoformat():
            return week
    raise ApiRequestError(
        HTTPStatus.BAD_REQUEST,
        f"The simulator serves time=7-days or a Monday-to-Sunday range, not {time_value!r}.",
    )


def channel_list_page(query: dict[str, str], host: str, now: datetime) -> dict[str, Any]:
    """Build the response document for one channel-list request."""
    platform = query.get("platform", "twitch")
    if platform not in PLATFORMS:
        raise ApiRequestError(HTTPStatus.UNPROCESSABLE_ENTITY, "The selected platform is invalid.")
    week = week_for_time_value(query.get("time"), now)
    try:
        page = int(query.get("page", "1"))
    except ValueError:
        raise ApiRequestError(HTTPStatus.BAD_REQUEST, "The page must be an integer.") from None
    if page < 1:
        raise ApiRequestError(HTTPStatus.BAD_REQUEST, "The page must be at least 1.")

    ranking = week_ranking(platform, week.start)
    first_index = (page - 1) * PAGE_SIZE
    # Copies, so that a fault that changes a record cannot change the cached week.
    records = [dict(record) for record in ranking[first_index : first_index + PAGE_SIZE]]
    has_next = first_index + PAGE_SIZE < len(ranking)

    def page_link(number: int) -> str:
        # Like the real API, links are written with http:// whatever scheme was used.
        return f"http://{host}{CHANNELS_PATH}?{urlencode({**query, 'page': str(number)})}"

    return {
        "data": records,
        "links": {
            "first": page_link(1),
            "last": None,
            "prev": page_link(page - 1) if page > 1 else None,
            "next": page_link(page + 1) if has_next else None,
        },
        "meta": {
            "current_page": page,
            "from": first_index + 1 if records else None,
            "path": f"http://{host}{CHANNELS_PATH}",
            "per_page": PAGE_SIZE,
            "to": first_index + len(records) if records else None,
            "simulated": True,
            "notice": SIMULATED_LABEL,
        },
    }


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    server: "SimulatorHttpServer"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        simulator = self.server.simulator
        simulator.record_request(url.path, query)
        fault = simulator.next_fault()

        if fault.stall_seconds:
            time.sleep(fault.stall_seconds)
        if fault.reset:
            self._reset_connection()
            return
        if fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._send_json(HTTPStatus(fault.status), fault.error_document(), headers)
            return

        try:
            document = self._route(url.path, query)
        except ApiRequestError as error:
            self._send_json(error.status, {"message": error.message})
            return
        if fault.mutate is not None:
            fault.mutate(document)
        if fault.body is not None:
            self._send_body(HTTPStatus.OK, fault.body.encode())
            return
        self._send_json(HTTPStatus.OK, document)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP reset instead of a clean end.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _route(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        simulator = self.server.simulator
        if path.rstrip("/") != CHANNELS_PATH:
            raise ApiRequestError(HTTPStatus.NOT_FOUND, f"No route for {path}.")
        if (
            self.headers.get("Client-ID") != simulator.client_id
            or self.headers.get("Token") != simulator.token
        ):
            raise ApiRequestError(HTTPStatus.UNAUTHORIZED, "Unauthenticated.")
        host = self.headers.get("Host") or f"{simulator.host}:{simulator.port}"
        return channel_list_page(query, host, simulator.now())

    def _send_json(
        self, status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send_body(status, json.dumps(document).encode(), headers)

    def _send_body(
        self, status: HTTPStatus, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Simulated-Data", "true")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines go to stderr only when serving on its own, to keep test runs readable.
        if self.server.simulator.log_requests:
            super().log_message(format, *args)


class SimulatorHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], simulator: "Simulator"):
        super().__init__(address, SimulatorRequestHandler)
        self.simulator = simulator


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: dict[str, str]


class Simulator:
    """The simulated API on a loopback port; use it as a context manager or call serve()."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = SIMULATOR_CLIENT_ID,
        token: str = SIMULATOR_TOKEN,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        log_requests: bool = False,
        faults: Iterable[Fault] = (),
    ):
        self.client_id = client_id
        self.token = token
        self.now = clock
        self.log_requests = log_requests
        # The latest requests, kept so that tests can see what was sent; bounded for long runs.
        self.requests: deque[RecordedRequest] = deque(maxlen=10_000)
        self._faults: deque[Fault] = deque(faults)
        self._lock = threading.Lock()
        self._server = SimulatorHttpServer((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PATH}"

    def record_request(self, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(path, query))

    def inject(self, *faults: Fault) -> None:
        """Queue faults: each of the next requests gets the next fault, in order."""
        with self._lock:
            self._faults.extend(faults)

    def next_fault(self) -> Fault:
        with self._lock:
            return self._faults.popleft() if self._faults else NO_FAULT

    def serve(self) -> None:
        """Serve until interrupted, in the calling thread."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def start(self) -> "Simulator":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
