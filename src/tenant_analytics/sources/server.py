"""A local HTTP server speaking a support API's export endpoints, one path prefix per tenant.

Every endpoint lives under ``/tenants/<tenant_id>``; the server's clock (:meth:`SourceServer.set_now`) decides what
is visible: a version or event from its ``updated_at`` / ``created_at`` on.

Cursor-based, ``GET .../api/v2/incremental/{tickets,users}/cursor.json?start_time=<unix s>`` (or ``?cursor=<c>``)
answers ``{"tickets" | "users": [...], "after_cursor", "after_url", "before_cursor", "before_url", "end_of_stream"}``:

* each record appears once, as its latest version visible at the server's clock;
* records are ordered by ``(updated_at, id)`` of that version, ``page_size`` per page;
* ``start_time`` selects records with ``updated_at >= start_time`` and must be at least 60 s before ``now``;
* a cursor means "after this ``(updated_at, id)``"; every page, even an empty last one, carries the cursor of its
  end position, so calling again later with the last ``after_cursor`` returns exactly the records changed since.

Time-based, ``GET .../api/v2/incremental/{ticket_events,organizations}.json?start_time=<unix s>`` answers
``{"ticket_events" | "organizations": [...], "next_page", "end_time", "count", "end_of_stream"}``:

* items with timestamp ``>= start_time`` (events by ``created_at``; the latest version of each organization by
  ``updated_at``), ordered by ``(timestamp, id)``;
* a page holds ``page_size`` items but never splits the items of its last second, so it may hold more;
* ``end_time`` is the last item's timestamp and ``next_page`` starts there, so that second's items come again on
  the next page (clients drop the duplicates). When a whole page shares one second, ``end_time`` is that second
  plus one, so paging always advances. An empty page has ``end_time = start_time``;
* ``end_of_stream`` is true when fewer than ``page_size`` items came back.

Plain paging, ``GET .../api/v2/groups.json?page=<n>`` answers ``{"groups": [...], "next_page", "count"}``.

Tenants listed in ``credentials`` must send HTTP basic auth ``("<email>/token", "<api token>")`` or
``Authorization: Bearer <api token>``; other requests get 401.

Tests make the next requests fail with :meth:`SourceServer.inject`, or a random share of all requests with
:meth:`SourceServer.fault_rate`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hmac
import json
import logging
import math
import random
import sys
import threading
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tenant_analytics.sources.endpoints import (
    ENDPOINTS,
    GROUPS_PATH,
    MIN_START_TIME_AGE_S,
    ORGANIZATIONS_PATH,
    TICKET_EVENTS_PATH,
    TICKETS_CURSOR_PATH,
    USERS_CURSOR_PATH,
    Entity,
)
from tenant_analytics.sources.synthetic import RecordVersion, SupportDataset, TicketVersion
from tenant_analytics.sources.timestamps import parse_timestamp

logger = logging.getLogger(__name__)


class _SourceHttpServer(ThreadingHTTPServer):
    """The HTTP server of the fake source; a client that hangs up mid-answer (a timeout on a ``slow`` fault) is
    expected, not an error to print."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipeError, ConnectionResetError
            logger.debug("client %s hung up before the answer was written", client_address)
            return
        super().handle_error(request, client_address)


FaultKind = Literal["http_500", "http_429", "malformed_json", "bad_page", "slow", "malformed_record"]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
# Kinds a client recovers from by retrying (or waiting): a run with them must land exactly what a clean run lands.
RETRYABLE_FAULT_KINDS: Final[tuple[FaultKind, ...]] = ("http_500", "http_429", "slow")

EXPORT_PATH: Final = TICKETS_CURSOR_PATH
_ROUTES: Final[dict[str, Entity]] = {endpoint.path: entity for entity, endpoint in ENDPOINTS.items()}


class BadRequest(ValueError):
    """A request parameter the server rejects with HTTP 400."""


@dataclass(frozen=True)
class Position:
    """A place in the ``(updated_at, id)`` order; ``ticket_id=None`` means "before every record at ``updated_at``"."""

    updated_at: int
    ticket_id: int | None


def encode_cursor(position: Position) -> str:
    """Return the opaque cursor for ``position``: unpadded urlsafe base64 of a small JSON object."""
    raw = json.dumps({"updated_at": position.updated_at, "id": position.ticket_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> Position:
    """Return the position a cursor from :func:`encode_cursor` stands for; raise :class:`BadRequest` otherwise."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"cursor {cursor!r} is not a cursor this source issued ({exc})") from exc
    if not isinstance(payload, dict):
        raise BadRequest(f"cursor {cursor!r} is not a cursor this source issued (not an object)")
    updated_at, ticket_id = payload.get("updated_at"), payload.get("id")
    if type(updated_at) is not int or not (ticket_id is None or type(ticket_id) is int):
        raise BadRequest(f"cursor {cursor!r} is not a cursor this source issued (bad updated_at or id)")
    return Position(updated_at, ticket_id)


def parse_start_time(text: str, now_s: int) -> Position:
    """Return the position of ``start_time``; it must be a whole number of seconds, at least 60 s before now."""
    if not text.isdigit():
        raise BadRequest(f"start_time {text!r} must be a non-negative integer of unix seconds")
    start_time = int(text)
    if start_time > now_s - MIN_START_TIME_AGE_S:
        raise BadRequest(
            f"start_time {start_time} is too recent: it must be at least {MIN_START_TIME_AGE_S} s before the "
            f"source's current time {now_s}"
        )
    return Position(start_time, None)


@dataclass(frozen=True)
class _Visible:
    """The latest visible version of each record: sort keys ``(updated_s, id)``, their seconds, and the JSON."""

    keys: list[tuple[int, int]]
    times: list[int]
    payloads: list[Mapping[str, Any]]


class _LatestVersions:
    """One entity's versions of one tenant, sorted by time, with the snapshot of the last clock reading cached."""

    def __init__(self, versions: Sequence[tuple[int, int, Mapping[str, Any]]]) -> None:
        ordered = sorted(versions, key=lambda version: (version[0], version[1]))
        self._times = [version[0] for version in ordered]
        self._versions = ordered
        self._lock = threading.Lock()
        self._cached_at: int | None = None
        self._cached = _Visible([], [], [])

    def visible(self, now_s: int) -> _Visible:
        """Return each record's latest version with ``updated_at <= now_s``, in ``(updated_at, id)`` order."""
        with self._lock:
            if self._cached_at != now_s:
                count = bisect.bisect_right(self._times, now_s)
                latest: dict[int, tuple[int, Mapping[str, Any]]] = {}
                for updated_s, record_id, record in self._versions[:count]:
                    latest[record_id] = (updated_s, record)
                keys = sorted((updated_s, record_id) for record_id, (updated_s, _) in latest.items())
                self._cached = _Visible(keys, [key[0] for key in keys], [latest[record_id][1] for _, record_id in keys])
                self._cached_at = now_s
            return self._cached


@dataclass(frozen=True)
class _TenantSource:
    """Everything the server holds for one tenant."""

    tickets: _LatestVersions
    users: _LatestVersions
    organizations: _LatestVersions
    event_times: list[int] = field(repr=False)
    events: Sequence[Mapping[str, Any]] = field(repr=False)
    groups: Sequence[Mapping[str, Any]] = field(repr=False)

    @classmethod
    def of(cls, data: SupportDataset | Sequence[TicketVersion]) -> _TenantSource:
        tickets: Sequence[TicketVersion]
        users: Sequence[RecordVersion]
        organizations: Sequence[RecordVersion]
        events: Sequence[Mapping[str, Any]]
        groups: Sequence[Mapping[str, Any]]
        if isinstance(data, SupportDataset):
            tickets, users, organizations = data.tickets, data.users, data.organizations
            events = sorted(data.ticket_events, key=lambda event: (event["created_at"], event["id"]))
            groups = sorted(data.groups, key=lambda group: int(group["id"]))
        else:
            tickets, users, organizations, events, groups = data, [], [], [], []
        return cls(
            tickets=_LatestVersions([(_seconds(v.valid_from), v.ticket_id, v.ticket) for v in tickets]),
            users=_LatestVersions([(_seconds(v.valid_from), v.record_id, v.record) for v in users]),
            organizations=_LatestVersions([(_seconds(v.valid_from), v.record_id, v.record) for v in organizations]),
            event_times=[_seconds(parse_timestamp(event["created_at"])) for event in events],
            events=events,
            groups=groups,
        )


@dataclass(frozen=True)
class _Response:
    status: HTTPStatus
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Page:
    """A page before serialization, so that a ``malformed_record`` fault can corrupt one of its items."""

    document: dict[str, Any]
    list_key: str


class SourceServer:
    """A multi-tenant fake of a support API's export endpoints, served on loopback from a thread."""

    def __init__(
        self,
        dataset: Mapping[str, SupportDataset | Sequence[TicketVersion]],
        *,
        page_size: int = 100,
        now: datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """Serve ``dataset`` (tenant id -> support dataset, or only its ticket versions); ``now=None`` = wall clock.

        ``credentials`` maps tenant ids to the ``("<email>/token", "<api token>")`` pair their requests must carry.
        """
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.page_size = page_size
        self._tenants = {tenant_id: _TenantSource.of(data) for tenant_id, data in dataset.items()}
        self._credentials = dict(credentials or {})
        self._now = _check_aware(now)
        self._host = host
        self._port = port
        self._state_lock = threading.Lock()
        self._faults: deque[tuple[FaultKind, float]] = deque()
        self._fault_rate = 0.0
        self._fault_rate_kinds: tuple[FaultKind, ...] = ()
        self._fault_rate_delay = 0.0
        self._fault_rng = random.Random(0)
        self._corrupted = 0
        self._request_log: list[str] = []
        self._faults_served: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the socket and serve requests from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("SourceServer is already started")
        self._stopping.clear()
        httpd = _SourceHttpServer((self._host, self._port), _handler_for(self))
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="source-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; requests still sleeping in a ``slow`` fault are released."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SourceServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses and clock ---------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """Return the bound port; only valid while started."""
        if self._httpd is None:
            raise RuntimeError("SourceServer is not started; call start() first")
        return int(self._httpd.server_address[1])

    def base_url(self, tenant_id: str) -> str:
        """Return the API base of a tenant, e.g. ``http://127.0.0.1:PORT/tenants/acme``."""
        return self._base_url(self.port, tenant_id)

    def _base_url(self, port: int, tenant_id: str) -> str:
        return f"http://{self._host}:{port}/tenants/{quote(tenant_id, safe='')}"

    def export_url(self, tenant_id: str) -> str:
        """Return the full URL of a tenant's incremental ticket export endpoint (without query)."""
        return self.base_url(tenant_id) + EXPORT_PATH

    def endpoint_url(self, tenant_id: str, entity: Entity) -> str:
        """Return the full URL of a tenant's endpoint for ``entity`` (without query)."""
        return self._endpoint_url(self.port, tenant_id, entity)

    def _endpoint_url(self, port: int, tenant_id: str, entity: Entity) -> str:
        return self._base_url(port, tenant_id) + ENDPOINTS[entity].path

    @property
    def now(self) -> datetime:
        """Return the server's clock: the time set last, or the wall clock if none was set."""
        with self._state_lock:
            return self._now if self._now is not None else datetime.now(UTC)

    def set_now(self, now: datetime | None) -> None:
        """Set the server's clock; only versions and events at or before ``now`` are visible. ``None`` = wall clock."""
        checked = _check_aware(now)
        with self._state_lock:
            self._now = checked

    # --- fault injection -------------------------------------------------------------------------------------

    def inject(self, kind: FaultKind, count: int = 1, *, delay: float = 2.0) -> None:
        """Make the next ``count`` requests, to any endpoint, fail with ``kind`` (after faults already queued).

        ``http_500`` answers 500; ``http_429`` answers 429 with ``Retry-After: 1``; ``malformed_json`` answers 200
        with a body that is not JSON; ``bad_page`` answers 200 with JSON lacking the list; ``slow`` waits
        ``delay`` seconds and then answers normally; ``malformed_record`` answers normally except that one item of
        the page (if it has any) loses its ``id``, gets a string ``id`` or an unreadable timestamp, in turn.
        """
        _check_kinds([kind])
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        with self._state_lock:
            self._faults.extend([(kind, delay)] * count)

    def fault_rate(self, rate: float, kinds: Sequence[FaultKind], seed: int, *, delay: float = 0.05) -> None:
        """Fail a random share ``rate`` of the requests not taken by :meth:`inject`, with kinds drawn from ``kinds``.

        Draws come from ``random.Random(seed)`` in order of arrival, so a client reading sequentially meets the
        same faults on every run. ``slow`` faults wait ``delay`` seconds. ``rate=0`` turns the mode off.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate}")
        if rate > 0 and not kinds:
            raise ValueError("give at least one fault kind for a positive rate")
        _check_kinds(kinds)
        with self._state_lock:
            self._fault_rate = rate
            self._fault_rate_kinds = tuple(kinds)
            self._fault_rate_delay = delay
            self._fault_rng = random.Random(seed)

    def clear_faults(self) -> None:
        """Drop every fault not yet applied and turn off the random fault rate."""
        with self._state_lock:
            self._faults.clear()
            self._fault_rate = 0.0

    @property
    def request_log(self) -> list[str]:
        """Return the path and query of every request received so far, in order of arrival."""
        with self._state_lock:
            return list(self._request_log)

    # --- request handling (called from handler threads) ------------------------------------------------------

    @property
    def faults_served(self) -> Counter[str]:
        """How many faults of each kind the server has answered with so far."""
        with self._state_lock:
            return Counter(self._faults_served)

    def _next_fault(self, target: str) -> tuple[FaultKind, float] | None:
        with self._state_lock:
            self._request_log.append(target)
            fault: tuple[FaultKind, float] | None = None
            if self._faults:
                fault = self._faults.popleft()
            elif self._fault_rate > 0 and self._fault_rng.random() < self._fault_rate:
                fault = self._fault_rng.choice(self._fault_rate_kinds), self._fault_rate_delay
            if fault is not None:
                self._faults_served[fault[0]] += 1
            return fault

    def _handle(self, target: str, headers: Message | None, port: int) -> _Response:
        """Answer one request that came in on ``port`` (its own: a request still being answered while the server
        stops must not need the server)."""
        fault = self._next_fault(target)
        kind: FaultKind | None = None
        if fault is not None:
            kind, delay = fault
            if kind == "slow":
                self._stopping.wait(delay)
            elif kind != "malformed_record":
                return _fault_response(kind)
        split = urlsplit(target)
        prefix, _, rest = split.path.partition("/tenants/")
        tenant_id, slash, endpoint = rest.partition("/")
        entity = _ROUTES.get("/" + endpoint)
        if prefix or not slash or entity is None:
            return _error(HTTPStatus.NOT_FOUND, "not_found", f"no endpoint at {split.path}")
        tenant_id = unquote(tenant_id)
        source = self._tenants.get(tenant_id)
        if source is None:
            return _error(HTTPStatus.NOT_FOUND, "unknown_tenant", f"tenant '{tenant_id}' is not known to this source")
        if not self._authorized(tenant_id, headers):
            return _error(
                HTTPStatus.UNAUTHORIZED,
                "unauthorized",
                f"tenant '{tenant_id}' needs valid credentials (basic auth '<email>/token' and API token, or a bearer "
                "token)",
                headers=(("WWW-Authenticate", 'Basic realm="source"'),),
            )
        query = parse_qs(split.query, keep_blank_values=True)
        now_s = math.floor(self.now.timestamp())
        url = self._endpoint_url(port, tenant_id, entity)
        try:
            if entity == "tickets":
                page = self._cursor_page(url, "tickets", source.tickets, query, now_s)
            elif entity == "users":
                page = self._cursor_page(url, "users", source.users, query, now_s)
            elif entity == "ticket_events":
                page = self._time_page(url, "ticket_events", source.event_times, source.events, query, now_s)
            elif entity == "organizations":
                visible = source.organizations.visible(now_s)
                page = self._time_page(url, "organizations", visible.times, visible.payloads, query, now_s)
            else:
                page = self._groups_page(url, source.groups, query, now_s)
        except BadRequest as exc:
            return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", str(exc))
        if kind == "malformed_record":
            self._corrupt_one(page, entity)
        return _Response(HTTPStatus.OK, json.dumps(page.document).encode())

    def _authorized(self, tenant_id: str, headers: Message | None) -> bool:
        expected = self._credentials.get(tenant_id)
        if expected is None:
            return True
        header = headers.get("Authorization", "") if headers is not None else ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(value.strip().encode(), expected[1].encode())
        if scheme.lower() != "basic":
            return False
        try:
            user, _, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(f"{user}:{token}".encode(), f"{expected[0]}:{expected[1]}".encode())

    def _cursor_page(
        self, url: str, list_key: str, records: _LatestVersions, query: dict[str, list[str]], now_s: int
    ) -> _Page:
        start_times, cursors = query.get("start_time", []), query.get("cursor", [])
        if len(start_times) + len(cursors) != 1:
            raise BadRequest("give exactly one of start_time or cursor, once")
        position = parse_start_time(start_times[0], now_s) if start_times else decode_cursor(cursors[0])
        visible = records.visible(now_s)
        keys = visible.keys
        first = _first_after(keys, position)
        last = min(first + self.page_size, len(keys))
        end_position = Position(*keys[last - 1]) if last > first else position
        after_cursor = encode_cursor(end_position)
        document = {
            list_key: list(visible.payloads[first:last]),
            "after_cursor": after_cursor,
            "after_url": f"{url}?cursor={after_cursor}",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": last == len(keys),
        }
        return _Page(document, list_key)

    def _time_page(
        self,
        url: str,
        list_key: str,
        times: Sequence[int],
        items: Sequence[Mapping[str, Any]],
        query: dict[str, list[str]],
        now_s: int,
    ) -> _Page:
        start_times = query.get("start_time", [])
        if len(start_times) != 1:
            raise BadRequest("give start_time, once")
        start_time = parse_start_time(start_times[0], now_s).updated_at
        visible = bisect.bisect_right(times, now_s)
        first = bisect.bisect_left(times, start_time, hi=visible)
        last = min(first + self.page_size, visible)
        end_time = start_time
        if last > first:
            end_time = times[last - 1]
            # Never split a second: take every item sharing the last item's timestamp.
            last = bisect.bisect_right(times, end_time, lo=last - 1, hi=visible)
            if last - max(first, bisect.bisect_left(times, end_time, lo=first)) >= self.page_size:
                end_time += 1  # the whole page is one second: restarting at it would return this page again
        document = {
            list_key: list(items[first:last]),
            "next_page": f"{url}?start_time={end_time}",
            "end_time": end_time,
            "count": last - first,
            "end_of_stream": last - first < self.page_size,
        }
        return _Page(document, list_key)

    def _groups_page(
        self, url: str, groups: Sequence[Mapping[str, Any]], query: dict[str, list[str]], now_s: int
    ) -> _Page:
        pages = query.get("page", ["1"])
        if len(pages) != 1 or not pages[0].isdigit() or int(pages[0]) < 1:
            raise BadRequest(f"page {pages!r} must be one positive integer")
        number = int(pages[0])
        visible = [group for group in groups if _seconds(parse_timestamp(group["created_at"])) <= now_s]
        first = (number - 1) * self.page_size
        last = min(first + self.page_size, len(visible))
        document = {
            "groups": visible[first:last],
            "next_page": f"{url}?page={number + 1}" if last < len(visible) else None,
            "previous_page": f"{url}?page={number - 1}" if number > 1 else None,
            "count": len(visible),
        }
        return _Page(document, "groups")

    def _corrupt_one(self, page: _Page, entity: Entity) -> None:
        """Break the middle item of the page: drop its id, make the id a string, or garble its timestamp."""
        items: list[dict[str, Any]] = page.document[page.list_key]
        if not items:
            return
        with self._state_lock:
            way = self._corrupted % 3
            self._corrupted += 1
        index = len(items) // 2
        item = dict(items[index])  # the payloads are shared with the dataset; never mutate them
        if way == 0:
            item.pop("id", None)
        elif way == 1:
            item["id"] = str(item.get("id"))
        else:
            item[ENDPOINTS[entity].time_field] = "yesterday"
        items[index] = item


def _first_after(keys: list[tuple[int, int]], position: Position) -> int:
    """Return the index of the first key after ``position`` in the sorted ``keys``."""
    if position.ticket_id is None:
        return bisect.bisect_left(keys, position.updated_at, key=lambda key: key[0])
    return bisect.bisect_right(keys, (position.updated_at, position.ticket_id))


def _seconds(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def _check_kinds(kinds: Sequence[str]) -> None:
    for kind in kinds:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")


def _error(status: HTTPStatus, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, json.dumps({"error": {"code": code, "message": message}}).encode(), headers)


def _fault_response(kind: FaultKind) -> _Response:
    if kind == "http_500":
        return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "injected server error")
    if kind == "http_429":
        return _error(
            HTTPStatus.TOO_MANY_REQUESTS, "rate_limited", "injected rate limit", headers=(("Retry-After", "1"),)
        )
    if kind == "malformed_json":
        return _Response(HTTPStatus.OK, b'{"tickets": [{"id": 1, "updated_at": "2024-')
    return _Response(HTTPStatus.OK, json.dumps({"after_cursor": None, "end_of_stream": False}).encode())


def _check_aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ValueError(f"the server clock needs a timezone-aware datetime, got naive {moment.isoformat()}")
    return moment


def _handler_for(server: SourceServer) -> type[BaseHTTPRequestHandler]:
    class _ExportHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, delayed ACKs add ~40 ms to every keep-alive request.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            response = server._handle(self.path, self.headers, int(self.connection.getsockname()[1]))
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)
            except (BrokenPipeError, ConnectionResetError):
                logger.debug("client went away before the response to %s was sent", self.path)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return _ExportHandler


__all__ = [
    "EXPORT_PATH",
    "FAULT_KINDS",
    "GROUPS_PATH",
    "ORGANIZATIONS_PATH",
    "RETRYABLE_FAULT_KINDS",
    "TICKET_EVENTS_PATH",
    "USERS_CURSOR_PATH",
    "BadRequest",
    "FaultKind",
    "Position",
    "SourceServer",
    "decode_cursor",
    "encode_cursor",
    "parse_start_time",
]
