"""What every source API client shares: the base URL, credentials, timeouts and the retry policy of one GET.

Failures of one page request:

* connection refused, DNS failure and other connection errors raise ``SourceUnreachable`` at once;
* timeouts and HTTP 5xx are retried with jittered exponential backoff, HTTP 429 after its ``Retry-After``; when
  the :class:`RetryPolicy` is exhausted they raise ``SourceUnreachable`` naming the last status or the timeout;
* HTTP 401 raises ``SourceError`` naming the URL and "401 unauthorized"; any other HTTP 4xx raises ``SourceError``
  naming the status and the URL.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Callable
from datetime import UTC
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tenant_analytics.errors import InvalidInput, MalformedPage, SourceError, SourceUnreachable
from tenant_analytics.sources.endpoints import MIN_START_TIME_AGE_S
from tenant_analytics.sources.records import describe_error, error_location

logger = logging.getLogger(__name__)

_Envelope = TypeVar("_Envelope", bound=BaseModel)


class RetryPolicy(BaseModel):
    """How hard one page request is retried after a timeout, HTTP 5xx or HTTP 429."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=3, ge=0, description="retries after the first attempt")
    backoff_initial: float = Field(default=0.5, ge=0, description="seconds before the first retry")
    backoff_max: float = Field(default=8.0, ge=0, description="longest single backoff, in seconds")
    jitter: float = Field(default=0.5, ge=0, le=1, description="share of each backoff drawn at random")
    max_retry_after: float = Field(default=60.0, ge=0, description="longest Retry-After honoured, in seconds")
    max_total_wait: float = Field(default=60.0, ge=0, description="total sleep allowed for one page, in seconds")


class ClientOptions(TypedDict, total=False):
    """The keywords every source client accepts; see :meth:`SourceHttpClient.__init__`."""

    session: requests.Session | None
    timeout: float
    retry: RetryPolicy | None
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    rng: random.Random | None
    auth: tuple[str, str] | None
    bearer_token: str | None


class SourceHttpClient:
    """Base of the source clients: GETs JSON pages from one tenant's ``base_url`` with retries and credentials."""

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
        auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        """Create a client; ``sleep``, ``clock`` and ``rng`` are injectable so tests need not wait or guess.

        ``auth`` is HTTP basic auth, e.g. ``("agent@acme.com/token", "<api token>")``; ``bearer_token`` sends
        ``Authorization: Bearer <token>`` instead. Give at most one.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(f"source base URL {base_url!r} must be an absolute http(s) URL", field="base_url")
        if timeout <= 0:
            raise InvalidInput(f"timeout must be positive, got {timeout}", field="timeout")
        if auth is not None and bearer_token is not None:
            raise InvalidInput("give either basic auth or a bearer token, not both", field="auth")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._auth = auth
        self._headers = {"Accept": "application/json"}
        if bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {bearer_token}"

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def latest_start_time(self) -> int:
        """Return the most recent ``start_time`` a request may carry: now minus 60 seconds."""
        return int(self._clock()) - MIN_START_TIME_AGE_S

    def clamp_start_time(self, start_time: int) -> int:
        """Return ``start_time`` moved back, if needed, to at most now minus 60 seconds.

        Moving it back only re-reads records already seen (loads merge by id and ``updated_at``); asking for a
        more recent start would be refused or miss records whose updates the source has not indexed yet.
        """
        return min(start_time, self.latest_start_time())

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
                response = self._session.get(url, timeout=self.timeout, headers=self._headers, auth=self._auth)
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
                elif status == 401:
                    sent = "credentials were sent" if self._auth or "Authorization" in self._headers else "none sent"
                    raise SourceError(
                        f"{where}: HTTP 401 unauthorized ({sent}); check the tenant's source credentials: "
                        f"{_error_detail(response)}"
                    )
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


def load_document(body: bytes, where: str) -> dict[str, Any]:
    """Return a page body as a JSON object; raise ``MalformedPage`` naming ``where`` if it is not one."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPage(f"{where}: body is not JSON ({exc}); it starts with {body[:80]!r}") from exc
    if not isinstance(document, dict):
        raise MalformedPage(f"{where}: body is a JSON {type(document).__name__}, not an object")
    return document


def validate_envelope(model: type[_Envelope], document: dict[str, Any], where: str) -> _Envelope:
    """Validate a page's list and paging fields with ``model``; raise ``MalformedPage`` naming the first fault."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise MalformedPage(f"{where}: {describe_error(error)}", field=error_location(error)) from exc


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
