"""Client of the cursor-based incremental ticket export, as used by the export Lambda.

``CursorExportClient.iter_pages`` walks ``GET <base>/api/v2/incremental/tickets/cursor.json`` from a
``start_time`` or a stored cursor until ``end_of_stream``. Each page carries the raw ticket dicts (to land as
they are) and their parsed :class:`SourceTicket` form; a page that does not validate raises
:class:`~tenant_analytics.errors.MalformedPage` before it is yielded, so nothing from it can be landed.

Failures:

* connection refused, DNS failure and other connection errors raise ``SourceUnreachable`` at once;
* timeouts and HTTP 5xx are retried with jittered exponential backoff, HTTP 429 after its ``Retry-After``; when
  the :class:`RetryPolicy` is exhausted they raise ``SourceUnreachable`` naming the last status or the timeout;
* any other HTTP 4xx raises ``SourceError`` naming the status and the URL.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode, urlsplit

import requests
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic_core import ErrorDetails

from tenant_analytics.errors import InvalidInput, MalformedPage, SourceError, SourceUnreachable

logger = logging.getLogger(__name__)

EXPORT_PATH: Final = "/api/v2/incremental/tickets/cursor.json"
# Sources reject (or silently under-report) a start_time in the last minute, so never ask for one.
MIN_START_TIME_AGE_S: Final = 60


def _parse_api_timestamp(value: object) -> datetime:
    """Accept only ISO-8601 strings with an offset or ``Z``; return them in UTC."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no timezone; expected a 'Z' or an offset")
    return parsed.astimezone(UTC)


ApiTimestamp = Annotated[datetime, BeforeValidator(_parse_api_timestamp)]
TicketStatus = Literal["new", "open", "pending", "hold", "solved", "closed", "deleted"]
TicketPriority = Literal["low", "normal", "high", "urgent"]


class TicketVia(BaseModel):
    """How the ticket reached the support team."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    channel: StrictStr


class SourceTicket(BaseModel):
    """The ticket fields the platform uses; every other field of the source's ticket JSON is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: StrictInt
    created_at: ApiTimestamp
    updated_at: ApiTimestamp
    status: TicketStatus
    priority: TicketPriority | None = None
    via: TicketVia
    requester_id: StrictInt
    assignee_id: StrictInt | None = None
    group_id: StrictInt | None = None
    organization_id: StrictInt | None = None

    @property
    def channel(self) -> str:
        """Return ``via.channel``."""
        return self.via.channel


class TicketPage(BaseModel):
    """One validated page of the export: the raw ticket dicts, their parsed form and where to continue."""

    model_config = ConfigDict(frozen=True)

    url: str
    page_number: int
    tickets: list[dict[str, Any]]
    parsed: list[SourceTicket]
    after_cursor: str | None
    after_url: str | None
    end_of_stream: bool


class _PageEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    tickets: list[dict[str, Any]]
    after_cursor: StrictStr | None = None
    after_url: StrictStr | None = None
    end_of_stream: StrictBool


class RetryPolicy(BaseModel):
    """How hard one page request is retried after a timeout, HTTP 5xx or HTTP 429."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=3, ge=0, description="retries after the first attempt")
    backoff_initial: float = Field(default=0.5, ge=0, description="seconds before the first retry")
    backoff_max: float = Field(default=8.0, ge=0, description="longest single backoff, in seconds")
    jitter: float = Field(default=0.5, ge=0, le=1, description="share of each backoff drawn at random")
    max_retry_after: float = Field(default=60.0, ge=0, description="longest Retry-After honoured, in seconds")
    max_total_wait: float = Field(default=60.0, ge=0, description="total sleep allowed for one page, in seconds")


def parse_page(body: bytes, *, url: str, page_number: int) -> TicketPage:
    """Validate the body of an export response; raise ``MalformedPage`` naming the page, URL and fault."""
    where = f"page {page_number} of {url}"
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPage(f"{where}: body is not JSON ({exc}); it starts with {body[:80]!r}") from exc
    if not isinstance(document, dict):
        raise MalformedPage(f"{where}: body is a JSON {type(document).__name__}, not an object")
    try:
        envelope = _PageEnvelope.model_validate(document)
    except ValidationError as exc:
        raise MalformedPage(f"{where}: {_describe(exc.errors()[0])}", field=_location(exc.errors()[0])) from exc
    if not envelope.end_of_stream and not envelope.after_cursor:
        raise MalformedPage(
            f"{where}: field 'after_cursor' is missing but end_of_stream is false", field="after_cursor"
        )
    parsed: list[SourceTicket] = []
    for index, ticket in enumerate(envelope.tickets):
        try:
            parsed.append(SourceTicket.model_validate(ticket))
        except ValidationError as exc:
            error = exc.errors()[0]
            ticket_id = ticket.get("id")
            label = f"ticket[{index}]" + (f" (id {ticket_id})" if type(ticket_id) is int else "")
            raise MalformedPage(
                f"{where}: {label} {_describe(error)}", field=f"tickets[{index}].{_location(error)}"
            ) from exc
    return TicketPage(
        url=url,
        page_number=page_number,
        tickets=envelope.tickets,
        parsed=parsed,
        after_cursor=envelope.after_cursor,
        after_url=envelope.after_url,
        end_of_stream=envelope.end_of_stream,
    )


class CursorExportClient:
    """Reads one tenant's incremental ticket export from ``base_url`` (e.g. ``https://acme.example.com``)."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """Create a client; ``sleep``, ``clock`` and ``rng`` are injectable so tests need not wait or guess."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"source base URL {base_url!r} must be an absolute http(s) URL", field="base_url")
        if timeout <= 0:
            raise InvalidInput(f"timeout must be positive, got {timeout}", field="timeout")
        self.base_url = base_url.rstrip("/")
        self.export_url = self.base_url + EXPORT_PATH
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> CursorExportClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def clamp_start_time(self, start_time: int) -> int:
        """Return ``start_time`` moved back, if needed, to at most now minus 60 seconds.

        Moving it back only re-reads tickets already seen (loads merge by id and ``updated_at``); asking for a
        more recent start would be refused or miss tickets whose updates the source has not indexed yet.
        """
        return min(start_time, int(self._clock()) - MIN_START_TIME_AGE_S)

    def iter_pages(self, *, start_time: int | None = None, cursor: str | None = None) -> Iterator[TicketPage]:
        """Yield validated pages from ``start_time`` (unix seconds) or ``cursor`` until ``end_of_stream``.

        Give exactly one of the two. The last page's ``after_cursor`` is where the next export resumes.
        """
        if (start_time is None) == (cursor is None):
            raise InvalidInput("give exactly one of start_time or cursor", field="start_time")
        if start_time is not None:
            if start_time < 0:
                raise InvalidInput(f"start_time must be >= 0 unix seconds, got {start_time}", field="start_time")
            params = {"start_time": str(self.clamp_start_time(start_time))}
        else:
            if not cursor:
                raise InvalidInput("cursor must not be empty", field="cursor")
            params = {"cursor": cursor}
        page_number = 1
        while True:
            url = f"{self.export_url}?{urlencode(params)}"
            page = parse_page(self._get(url, page_number), url=url, page_number=page_number)
            if not page.end_of_stream and page.after_cursor == params.get("cursor"):
                raise MalformedPage(
                    f"page {page_number} of {url}: after_cursor did not advance and end_of_stream is false",
                    field="after_cursor",
                )
            yield page
            if page.end_of_stream:
                return
            assert page.after_cursor is not None  # parse_page guarantees it when end_of_stream is false
            params = {"cursor": page.after_cursor}
            page_number += 1

    def _get(self, url: str, page_number: int) -> bytes:
        """Return the body of a 200 answer to ``GET url``, retrying as the policy allows."""
        where = f"page {page_number} of {url}"
        policy = self.retry
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._session.get(url, timeout=self.timeout, headers={"Accept": "application/json"})
            except requests.Timeout as exc:
                failure = f"no answer within {self.timeout:g} s"
                logger.debug("%s: %s (%s)", where, failure, exc)
            except requests.ConnectionError as exc:
                raise SourceUnreachable(f"{where}: cannot connect: {_root_cause(exc)}") from exc
            except requests.RequestException as exc:
                raise SourceError(f"{where}: request failed: {_root_cause(exc)}") from exc
            else:
                status = response.status_code
                if status == 200:
                    return response.content
                if status == 429:
                    failure = "HTTP 429 (rate limited)"
                    retry_after = _retry_after_seconds(response.headers.get("Retry-After"), self._clock())
                elif status >= 500:
                    failure = f"HTTP {status}"
                else:
                    raise SourceError(f"{where}: HTTP {status} from source: {_error_detail(response)}")
            if attempt > policy.max_retries:
                raise SourceUnreachable(f"{where}: {failure}; gave up after {attempt} attempts")
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise SourceUnreachable(
                    f"{where}: {failure} with Retry-After {retry_after:g} s, longer than the "
                    f"{policy.max_retry_after:g} s this client waits"
                )
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if waited + delay > policy.max_total_wait:
                raise SourceUnreachable(
                    f"{where}: {failure}; retrying after {delay:g} s more would exceed the "
                    f"{policy.max_total_wait:g} s retry budget ({attempt} attempts made)"
                )
            logger.warning("%s: %s; retry %d in %.2f s", where, failure, attempt, delay)
            self._sleep(delay)
            waited += delay

    def _backoff(self, attempt: int) -> float:
        """Return the jittered exponential delay before retry number ``attempt`` (1-based)."""
        policy = self.retry
        ceiling = min(policy.backoff_max, policy.backoff_initial * 2.0 ** (attempt - 1))
        return ceiling * (1 - policy.jitter * self._rng.random())


def _retry_after_seconds(header: str | None, now: float) -> float | None:
    """Return the wait a ``Retry-After`` header asks for (seconds or HTTP date), or None if absent or unreadable."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)


def _error_detail(response: requests.Response) -> str:
    """Return the source's own explanation of an error answer, on one line and short."""
    try:
        document = response.json()
    except ValueError:
        document = None
    detail: object = response.text
    if isinstance(document, dict):
        error = document.get("error")
        if isinstance(error, dict):
            detail = error.get("message", error)
        elif error is not None:
            detail = document.get("description", error)
    return " ".join(str(detail).split())[:200] or "(empty body)"


def _root_cause(exc: BaseException) -> str:
    """Return the innermost cause of a requests failure on one line, e.g. ``[Errno 111] Connection refused``."""
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        inner = next(
            (
                candidate
                for candidate in (
                    current.__cause__,
                    reason if isinstance(reason, BaseException) else None,
                    current.args[0] if current.args and isinstance(current.args[0], BaseException) else None,
                    current.__context__,
                )
                if candidate is not None
            ),
            None,
        )
        if inner is None:
            break
        current = inner
    text = str(current) or type(current).__name__
    # urllib3 prefixes messages with the repr of its connection object; it names nothing useful.
    return " ".join(re.sub(r"<[^>]* object at 0x[0-9a-f]+>: ", "", text).split())


def _location(error: ErrorDetails) -> str:
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts)


def _describe(error: ErrorDetails) -> str:
    """Turn one pydantic error into "field 'x' is missing" or "field 'x' is invalid: why (got ...)"."""
    field = _location(error)
    if error["type"] == "missing":
        return f"field '{field}' is missing"
    got = repr(error.get("input"))
    if len(got) > 60:
        got = got[:57] + "..."
    return f"field '{field}' is invalid: {error['msg']} (got {got})"
