"""A local HTTP server speaking the cursor-based incremental ticket export protocol, one path prefix per tenant.

``GET /tenants/<tenant_id>/api/v2/incremental/tickets/cursor.json?start_time=<unix s>`` (or ``?cursor=<c>``)
answers ``{"tickets": [...], "after_cursor": ..., "after_url": ..., "end_of_stream": ...}``:

* each ticket appears once, as its latest version visible at the server's clock (``updated_at <= now``);
* tickets are ordered by ``(updated_at, id)`` of that version, ``page_size`` per page;
* ``start_time`` selects tickets with ``updated_at >= start_time`` and must be at least 60 s before ``now``;
* a cursor means "after this ``(updated_at, id)``"; every page, even an empty last one, carries the cursor of its
  end position, so calling again later with the last ``after_cursor`` returns exactly the tickets changed since.

Tests move the clock with :meth:`SourceServer.set_now` and make the next requests fail with
:meth:`SourceServer.inject`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import math
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, get_args
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tenant_analytics.sources.client import EXPORT_PATH, MIN_START_TIME_AGE_S
from tenant_analytics.sources.synthetic import TicketVersion

logger = logging.getLogger(__name__)

FaultKind = Literal["http_500", "http_429", "malformed_json", "bad_page", "slow"]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)


class BadRequest(ValueError):
    """A request parameter the server rejects with HTTP 400."""


@dataclass(frozen=True)
class Position:
    """A place in the ``(updated_at, id)`` order; ``ticket_id=None`` means "before every ticket at ``updated_at``"."""

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


class _TenantTickets:
    """One tenant's versions, sorted by ``valid_from``, with the visible snapshot of the last clock reading cached."""

    def __init__(self, versions: Sequence[TicketVersion]) -> None:
        ordered = sorted(versions, key=lambda version: (version.valid_from, version.ticket_id))
        self._times = [math.floor(version.valid_from.timestamp()) for version in ordered]
        self._versions = ordered
        self._lock = threading.Lock()
        self._cached_at: int | None = None
        self._cached: tuple[list[tuple[int, int]], list[Mapping[str, Any]]] = ([], [])

    def visible(self, now_s: int) -> tuple[list[tuple[int, int]], list[Mapping[str, Any]]]:
        """Return the sort keys and JSON of each ticket's latest version with ``updated_at <= now_s``, in order."""
        with self._lock:
            if self._cached_at != now_s:
                count = bisect.bisect_right(self._times, now_s)
                latest: dict[int, tuple[int, Mapping[str, Any]]] = {}
                for updated_s, version in zip(self._times[:count], self._versions[:count], strict=True):
                    latest[version.ticket_id] = (updated_s, version.ticket)
                ordered = sorted((updated_s, ticket_id) for ticket_id, (updated_s, _) in latest.items())
                self._cached = (ordered, [latest[ticket_id][1] for _, ticket_id in ordered])
                self._cached_at = now_s
            return self._cached


class SourceServer:
    """A multi-tenant fake of a support API's incremental ticket export, served on loopback from a thread."""

    def __init__(
        self,
        dataset: Mapping[str, Sequence[TicketVersion]],
        *,
        page_size: int = 100,
        now: datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Serve ``dataset`` (tenant id -> versions); ``now=None`` follows the wall clock."""
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.page_size = page_size
        self._tenants = {tenant_id: _TenantTickets(versions) for tenant_id, versions in dataset.items()}
        self._now = _check_aware(now)
        self._host = host
        self._port = port
        self._state_lock = threading.Lock()
        self._faults: deque[tuple[FaultKind, float]] = deque()
        self._request_log: list[str] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind the socket and serve requests from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("SourceServer is already started")
        self._stopping.clear()
        httpd = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
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
        return f"http://{self._host}:{self.port}/tenants/{quote(tenant_id, safe='')}"

    def export_url(self, tenant_id: str) -> str:
        """Return the full URL of a tenant's incremental ticket export endpoint (without query)."""
        return self.base_url(tenant_id) + EXPORT_PATH

    @property
    def now(self) -> datetime:
        """Return the server's clock: the time set last, or the wall clock if none was set."""
        with self._state_lock:
            return self._now if self._now is not None else datetime.now(UTC)

    def set_now(self, now: datetime | None) -> None:
        """Set the server's clock; only versions with ``updated_at <= now`` are visible. ``None`` = wall clock."""
        checked = _check_aware(now)
        with self._state_lock:
            self._now = checked

    # --- fault injection -------------------------------------------------------------------------------------

    def inject(self, kind: FaultKind, count: int = 1, *, delay: float = 2.0) -> None:
        """Make the next ``count`` requests fail with ``kind`` (after any faults already queued).

        ``http_500`` answers 500; ``http_429`` answers 429 with ``Retry-After: 1``; ``malformed_json`` answers 200
        with a body that is not JSON; ``bad_page`` answers 200 with JSON lacking ``tickets``; ``slow`` waits
        ``delay`` seconds and then answers normally.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        with self._state_lock:
            self._faults.extend([(kind, delay)] * count)

    def clear_faults(self) -> None:
        """Drop every fault not yet applied."""
        with self._state_lock:
            self._faults.clear()

    @property
    def request_log(self) -> list[str]:
        """Return the path and query of every request received so far, in order of arrival."""
        with self._state_lock:
            return list(self._request_log)

    # --- request handling (called from handler threads) ------------------------------------------------------

    def _next_fault(self, target: str) -> tuple[FaultKind, float] | None:
        with self._state_lock:
            self._request_log.append(target)
            return self._faults.popleft() if self._faults else None

    def _handle(self, target: str) -> _Response:
        fault = self._next_fault(target)
        if fault is not None:
            kind, delay = fault
            if kind == "slow":
                self._stopping.wait(delay)
            else:
                return _fault_response(kind)
        split = urlsplit(target)
        prefix, _, rest = split.path.partition("/tenants/")
        tenant_id, slash, endpoint = rest.partition("/")
        if prefix or not slash or "/" + endpoint != EXPORT_PATH:
            return _error(HTTPStatus.NOT_FOUND, "not_found", f"no endpoint at {split.path}")
        tenant_id = unquote(tenant_id)
        tickets = self._tenants.get(tenant_id)
        if tickets is None:
            return _error(HTTPStatus.NOT_FOUND, "unknown_tenant", f"tenant '{tenant_id}' is not known to this source")
        try:
            return self._export_page(tenant_id, tickets, parse_qs(split.query, keep_blank_values=True))
        except BadRequest as exc:
            return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", str(exc))

    def _export_page(self, tenant_id: str, tickets: _TenantTickets, query: dict[str, list[str]]) -> _Response:
        now_s = math.floor(self.now.timestamp())
        start_times, cursors = query.get("start_time", []), query.get("cursor", [])
        if len(start_times) + len(cursors) != 1:
            raise BadRequest("give exactly one of start_time or cursor, once")
        position = parse_start_time(start_times[0], now_s) if start_times else decode_cursor(cursors[0])
        keys, payloads = tickets.visible(now_s)
        first = _first_after(keys, position)
        last = min(first + self.page_size, len(keys))
        end_position = Position(*keys[last - 1]) if last > first else position
        after_cursor = encode_cursor(end_position)
        body = {
            "tickets": list(payloads[first:last]),
            "after_cursor": after_cursor,
            "after_url": f"{self.export_url(tenant_id)}?cursor={after_cursor}",
            "before_cursor": None,
            "before_url": None,
            "end_of_stream": last == len(keys),
        }
        return _Response(HTTPStatus.OK, json.dumps(body).encode())


def _first_after(keys: list[tuple[int, int]], position: Position) -> int:
    """Return the index of the first key after ``position`` in the sorted ``keys``."""
    if position.ticket_id is None:
        return bisect.bisect_left(keys, position.updated_at, key=lambda key: key[0])
    return bisect.bisect_right(keys, (position.updated_at, position.ticket_id))


@dataclass(frozen=True)
class _Response:
    status: HTTPStatus
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


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
            response = server._handle(self.path)
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
