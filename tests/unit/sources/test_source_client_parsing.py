from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tenant_analytics.errors import InvalidInput, MalformedPage, SourceError, SourceUnreachable
from tenant_analytics.sources.client import (
    CursorExportClient,
    RetryPolicy,
    SourceTicket,
    parse_page,
)
from tenant_analytics.sources.endpoints import Entity
from tenant_analytics.sources.records import validate_record
from tenant_analytics.sources.time_export import TimeExportClient, parse_time_page

URL = "http://127.0.0.1:9/tenants/acme/api/v2/incremental/tickets/cursor.json?cursor=abc"
BASE = "http://source.test/tenants/acme"
TS = "2024-03-01T09:00:00Z"


def _event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": 1,
        "ticket_id": 2,
        "created_at": TS,
        "event_type": "comment",
        "author_id": 900_001,
        "public": True,
        "previous_value": None,
        "value": "Thanks",
    }
    event.update(overrides)
    return event


def _ticket(**overrides: Any) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "id": 17,
        "created_at": "2024-03-01T09:00:00Z",
        "updated_at": "2024-03-02T10:30:05Z",
        "status": "open",
        "priority": None,
        "via": {"channel": "email", "source": {"from": {}}},
        "requester_id": 100_001,
        "assignee_id": None,
        "group_id": 50_001,
        "organization_id": None,
        "subject": "Cannot log in",
        "tags": ["login"],
        "custom_fields": [{"id": 1, "value": "pro"}],
    }
    ticket.update(overrides)
    return ticket


def _body(tickets: list[dict[str, Any]], **envelope: Any) -> bytes:
    document: dict[str, Any] = {"tickets": tickets, "after_cursor": "next", "after_url": None, "end_of_stream": False}
    document.update(envelope)
    return json.dumps(document).encode()


def test_valid_page_keeps_raw_tickets_and_parses_used_fields() -> None:
    # Given a page with a ticket carrying extra fields
    raw = _ticket()
    # When it is parsed
    page = parse_page(_body([raw]), url=URL, page_number=2)
    # Then the raw dict is kept as served and the parsed ticket has typed, UTC fields
    assert page.tickets == [raw]
    parsed = page.parsed[0]
    assert parsed.id == 17
    assert parsed.updated_at == datetime(2024, 3, 2, 10, 30, 5, tzinfo=UTC)
    assert parsed.channel == "email"
    assert not hasattr(parsed, "subject")
    assert (page.after_cursor, page.end_of_stream, page.page_number, page.url) == ("next", False, 2, URL)


def test_offsets_are_converted_to_utc() -> None:
    # Given a timestamp with an offset instead of Z
    ticket = SourceTicket.model_validate(_ticket(updated_at="2024-03-02T12:30:05+02:00"))
    # Then it is parsed to the same instant in UTC
    assert ticket.updated_at == datetime(2024, 3, 2, 10, 30, 5, tzinfo=UTC)
    assert ticket.updated_at.tzinfo == UTC


@pytest.mark.parametrize(
    ("ticket", "expected"),
    [
        ({k: v for k, v in _ticket().items() if k != "id"}, "field 'id' is missing"),
        (_ticket(id="17"), "field 'id' is invalid: Input should be a valid integer (got '17')"),
        (_ticket(id=True), "field 'id' is invalid"),
        (_ticket(updated_at="yesterday"), "field 'updated_at' is not an ISO-8601 time: 'yesterday'"),
        (_ticket(updated_at="2024-03-02T10:30:05"), "field 'updated_at' is an ISO-8601 time without a timezone"),
        (_ticket(updated_at=1709375405), "field 'updated_at' is not an ISO-8601 time: 1709375405"),
        ({k: v for k, v in _ticket().items() if k != "updated_at"}, "field 'updated_at' is missing"),
        (_ticket(status="weird"), "field 'status' is invalid"),
        (_ticket(via={}), "field 'via.channel' is missing"),
    ],
)
def test_bad_ticket_is_rejected_with_its_reason_and_the_rest_is_kept(ticket: dict[str, Any], expected: str) -> None:
    # Given a page whose second of three tickets is broken
    body = _body([_ticket(id=1), ticket, _ticket(id=3)])
    # When it is parsed
    page = parse_page(body, url=URL, page_number=3)
    # Then the good tickets are kept and the bad one comes back as served, with the reason
    assert [t["id"] for t in page.items] == [1, 3] == [t.id for t in page.parsed]
    assert len(page.rejected) == 1
    record, reason = page.rejected[0]
    assert record == ticket and reason.startswith(expected)
    # And validate_record gives the same reason on its own
    assert validate_record("tickets", ticket) == reason


@pytest.mark.parametrize(
    ("entity", "record", "expected"),
    [
        ("users", {"id": 1, "name": "Ada", "role": "agent", "created_at": TS, "updated_at": TS}, None),
        ("users", {"id": 1, "name": "Ada", "role": "owner", "created_at": TS, "updated_at": TS}, "field 'role'"),
        ("organizations", {"id": 7, "name": "Acme", "created_at": TS, "updated_at": "yesterday"}, "'yesterday'"),
        ("organizations", {"id": 7, "name": "Acme", "domain_names": "a.com", "created_at": TS, "updated_at": TS},
         "field 'domain_names' is invalid"),
        ("groups", {"id": 5, "name": "Billing", "created_at": TS, "updated_at": TS}, None),
        ("groups", {"name": "Billing", "created_at": TS, "updated_at": TS}, "field 'id' is missing"),
        ("ticket_events", _event(), None),
        ("ticket_events", _event(event_type="merge"), "field 'event_type' is invalid"),
        ("ticket_events", _event(public="yes"), "field 'public' is invalid"),
        ("ticket_events", _event(value=3), "field 'value' is invalid"),
        ("ticket_events", [1, 2], "record is a JSON list, not an object"),
    ],
)  # fmt: skip
def test_validate_record_names_the_first_problem(entity: Entity, record: Any, expected: str | None) -> None:
    # Given a record of an entity
    # When it is validated
    reason = validate_record(entity, record)
    # Then valid records give None and invalid ones a reason naming the field
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_validate_record_refuses_an_unknown_entity() -> None:
    # Given an entity no endpoint serves, When a record is validated, Then the error lists the allowed ones
    with pytest.raises(InvalidInput, match="unknown entity 'macros'"):
        validate_record("macros", {})  # type: ignore[arg-type]


def test_users_page_keeps_items_under_the_users_key() -> None:
    # Given a users page with an agent and a broken user
    good = {"id": 9, "name": "Ada", "role": "admin", "created_at": TS, "updated_at": TS, "email": "a@x.com"}
    body = json.dumps({"users": [good, {"id": 10}], "after_cursor": "c", "end_of_stream": False}).encode()
    # When it is parsed as the users export
    page = parse_page(body, url=URL, page_number=1, entity="users")
    # Then the items and the alias hold the agent, the broken user is rejected
    assert page.items == page.tickets == [good] and page.entity == "users"
    assert [reason for _, reason in page.rejected] == ["field 'name' is missing"]
    # And a ticket page is not a users page
    with pytest.raises(MalformedPage, match="field 'users' is missing"):
        parse_page(_body([_ticket()]), url=URL, page_number=1, entity="users")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "body is not JSON"),
        (json.dumps({"end_time": 5, "end_of_stream": True}).encode(), "field 'ticket_events' is missing"),
        (json.dumps({"ticket_events": [], "end_of_stream": True}).encode(), "field 'end_time' is missing"),
        (json.dumps({"ticket_events": [], "end_time": "5", "end_of_stream": True}).encode(), "'end_time' is invalid"),
        (json.dumps({"ticket_events": {}, "end_time": 5, "end_of_stream": True}).encode(), "'ticket_events' is inv"),
    ],
)
def test_bad_time_page_is_malformed(body: bytes, expected: str) -> None:
    # Given a time-based page without its list or paging fields
    # When it is parsed, Then the whole page is refused naming the URL and the fault
    with pytest.raises(MalformedPage) as raised:
        parse_time_page(body, url=URL, page_number=2, entity="ticket_events")
    assert str(raised.value).startswith(f"page 2 of {URL}: ") and expected in str(raised.value)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html>Bad gateway</html>", "body is not JSON"),
        (b'{"tickets": [', "body is not JSON"),
        (b"[]", "body is a JSON list, not an object"),
        (json.dumps({"end_of_stream": True}).encode(), "field 'tickets' is missing"),
        (json.dumps({"tickets": [], "after_cursor": "c"}).encode(), "field 'end_of_stream' is missing"),
        (json.dumps({"tickets": [], "end_of_stream": "yes"}).encode(), "field 'end_of_stream' is invalid"),
        (json.dumps({"tickets": [1], "end_of_stream": True}).encode(), "field 'tickets[0]' is invalid"),
        (json.dumps({"tickets": [], "end_of_stream": False}).encode(), "'after_cursor' is missing"),
    ],
)
def test_bad_envelope_names_url_and_fault(body: bytes, expected: str) -> None:
    # Given a response body that is not a valid export page
    # When it is parsed
    with pytest.raises(MalformedPage) as raised:
        parse_page(body, url=URL, page_number=1)
    # Then the message names the URL and what is wrong
    assert URL in str(raised.value)
    assert expected in str(raised.value)


def test_last_page_may_have_no_cursor() -> None:
    # Given an empty last page without after_cursor
    page = parse_page(json.dumps({"tickets": [], "end_of_stream": True}).encode(), url=URL, page_number=1)
    # Then it is accepted
    assert page.end_of_stream and page.after_cursor is None and page.tickets == []


def test_start_time_is_clamped_to_a_minute_before_now() -> None:
    # Given a client whose clock reads 10_000
    client = CursorExportClient(BASE, clock=lambda: 10_000.0)
    # Then a recent start_time is moved back to now - 60 and an older one is kept
    assert client.clamp_start_time(9_990) == 9_940
    assert client.clamp_start_time(9_940) == 9_940
    assert client.clamp_start_time(100) == 100


class _ScriptedSession(requests.Session):
    """Answers GETs from a script of statuses (or exceptions) and records the URLs asked for."""

    def __init__(self, script: Sequence[int | Exception], retry_after: str | None = None) -> None:
        super().__init__()
        self.script = list(script)
        self.retry_after = retry_after
        self.urls: list[str] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.urls.append(str(url))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        response = requests.Response()
        response.status_code = step
        response.url = str(url)
        if step == 200:
            response._content = _body([_ticket()], end_of_stream=True)
        else:
            response._content = json.dumps({"error": {"code": "x", "message": f"scripted {step}"}}).encode()
        if self.retry_after is not None:
            response.headers["Retry-After"] = self.retry_after
        return response


def _client(session: requests.Session, sleeps: list[float], **policy: Any) -> CursorExportClient:
    retry = RetryPolicy(backoff_initial=0.01, backoff_max=0.04, jitter=0.0, **policy)
    return CursorExportClient(BASE, session=session, retry=retry, sleep=sleeps.append, clock=lambda: 2e9)


def _pages(client: CursorExportClient) -> Iterator[int]:
    return (len(page.tickets) for page in client.iter_pages(start_time=0))


def test_server_errors_are_retried_with_exponential_backoff() -> None:
    # Given a source answering 503, 500, 502 and then 200
    sleeps: list[float] = []
    session = _ScriptedSession([503, 500, 502, 200])
    # When the client reads it
    counts = list(_pages(_client(session, sleeps)))
    # Then it waited 10, 20 and 40 ms and got the page
    assert counts == [1]
    assert sleeps == pytest.approx([0.01, 0.02, 0.04])


def test_backoff_is_capped_and_jittered() -> None:
    # Given a policy with full jitter and a 0.03 s cap
    sleeps: list[float] = []
    session = _ScriptedSession([500, 500, 500, 200])
    retry = RetryPolicy(backoff_initial=0.02, backoff_max=0.03, jitter=1.0)
    client = CursorExportClient(BASE, session=session, retry=retry, sleep=sleeps.append, clock=lambda: 2e9)
    # When the client retries three times
    list(client.iter_pages(start_time=0))
    # Then each wait is within [0, min(cap, 0.02 * 2^k)]
    assert len(sleeps) == 3
    assert all(0 <= slept <= cap for slept, cap in zip(sleeps, [0.02, 0.03, 0.03], strict=True))


def test_exhausted_retries_raise_unreachable_with_status_and_url() -> None:
    # Given a source that keeps answering 503
    sleeps: list[float] = []
    session = _ScriptedSession([503] * 3)
    # When the client reads it with two retries allowed
    with pytest.raises(SourceUnreachable) as raised:
        list(_pages(_client(session, sleeps, max_retries=2)))
    # Then it made three attempts and the error names the status, the URL and the attempts
    assert len(session.urls) == 3
    assert "HTTP 503" in str(raised.value) and session.urls[0] in str(raised.value)
    assert "3 attempts" in str(raised.value)


def test_retry_after_is_honoured() -> None:
    # Given a source answering 429 with Retry-After: 7, then 200
    sleeps: list[float] = []
    session = _ScriptedSession([429, 200], retry_after="7")
    # When the client reads it
    counts = list(_pages(_client(session, sleeps)))
    # Then it waited exactly the 7 s asked for
    assert counts == [1]
    assert sleeps == [7.0]


def test_retry_after_as_http_date_is_honoured() -> None:
    # Given a Retry-After HTTP date 5 s after the client's clock
    sleeps: list[float] = []
    session = _ScriptedSession([429, 200], retry_after="Wed, 18 May 2033 03:33:25 GMT")
    client = CursorExportClient(BASE, session=session, sleep=sleeps.append, clock=lambda: 2_000_000_000.0)
    # When the client reads it
    list(client.iter_pages(start_time=0))
    # Then it waited those 5 s
    assert sleeps == [5.0]


def test_retry_after_longer_than_allowed_fails_without_waiting() -> None:
    # Given a source asking to come back in 120 s while the client waits at most 60 s
    sleeps: list[float] = []
    session = _ScriptedSession([429, 200], retry_after="120")
    # When the client reads it
    with pytest.raises(SourceUnreachable, match="Retry-After 120 s"):
        list(_pages(_client(session, sleeps)))
    # Then it did not sleep at all
    assert sleeps == []


def test_total_wait_is_bounded() -> None:
    # Given a 2.5 s budget and a source asking for 1 s pauses three times
    sleeps: list[float] = []
    session = _ScriptedSession([429, 429, 429, 200], retry_after="1")
    # When the client reads it
    with pytest.raises(SourceUnreachable, match=r"2\.5 s retry budget"):
        list(_pages(_client(session, sleeps, max_total_wait=2.5)))
    # Then it slept only within the budget
    assert sleeps == [1.0, 1.0]


def test_other_client_errors_are_not_retried() -> None:
    # Given a source answering 403
    sleeps: list[float] = []
    session = _ScriptedSession([403, 200])
    # When the client reads it
    with pytest.raises(SourceError) as raised:
        list(_pages(_client(session, sleeps)))
    # Then it fails at once with the status, the URL and the source's message
    assert not isinstance(raised.value, SourceUnreachable)
    assert sleeps == [] and len(session.urls) == 1
    assert "HTTP 403" in str(raised.value) and "scripted 403" in str(raised.value)
    assert session.urls[0] in str(raised.value)


def test_timeouts_are_retried_then_reported() -> None:
    # Given a source that times out twice, then answers
    sleeps: list[float] = []
    session = _ScriptedSession([requests.ReadTimeout("read timed out")] * 2 + [200])
    # When the client reads it
    counts = list(_pages(_client(session, sleeps)))
    # Then it recovered after two waits
    assert counts == [1] and len(sleeps) == 2
    # And a source that always times out is reported unreachable with the timeout
    session = _ScriptedSession([requests.ConnectTimeout("connect timed out")] * 4)
    with pytest.raises(SourceUnreachable, match=r"no answer within 10 s; gave up after 4 attempts"):
        list(_pages(_client(session, [])))


def test_connection_errors_fail_fast_naming_the_cause() -> None:
    # Given a connection error caused by a refused connection
    cause = ConnectionRefusedError(111, "Connection refused")
    error = requests.ConnectionError("pool exhausted")
    error.__cause__ = cause
    sleeps: list[float] = []
    session = _ScriptedSession([error, 200])
    # When the client reads it
    with pytest.raises(SourceUnreachable) as raised:
        list(_pages(_client(session, sleeps)))
    # Then it did not retry and the one-line message names the URL and the cause
    assert sleeps == []
    message = str(raised.value)
    assert "\n" not in message and session.urls[0] in message and "Connection refused" in message


def test_start_time_sent_is_clamped() -> None:
    # Given a client whose clock reads 2e9 asked to start in the future
    sleeps: list[float] = []
    session = _ScriptedSession([200])
    # When it reads
    list(_client(session, sleeps).iter_pages(start_time=3_000_000_000))
    # Then the request asked for now - 60
    assert session.urls == [f"{BASE}/api/v2/incremental/tickets/cursor.json?start_time=1999999940"]


@pytest.mark.parametrize(
    "arguments",
    [{}, {"start_time": 0, "cursor": "c"}, {"start_time": -1}, {"cursor": ""}],
)
def test_iter_pages_needs_exactly_one_valid_starting_point(arguments: dict[str, Any]) -> None:
    # Given a client and neither, both or an invalid starting point
    session = _ScriptedSession([200])
    client = _client(session, [])
    # When pages are requested, Then the call is refused before any request
    with pytest.raises(InvalidInput):
        next(client.iter_pages(**arguments))
    assert session.urls == []


@pytest.mark.parametrize("base_url", ["source.test/tenants/acme", "ftp://source.test", "http://"])
def test_base_url_must_be_absolute_http(base_url: str) -> None:
    # Given a base URL that is not absolute http(s)
    # When a client is created, Then it is refused naming the URL
    with pytest.raises(InvalidInput, match="base URL"):
        CursorExportClient(base_url)


class _AuthSession(_ScriptedSession):
    """A scripted session that also records the auth and headers of each request."""

    def __init__(self, script: Sequence[int | Exception]) -> None:
        super().__init__(script)
        self.sent: list[tuple[Any, dict[str, str]]] = []

    def get(self, url: str | bytes, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((kwargs.get("auth"), dict(kwargs.get("headers") or {})))
        return super().get(url, **kwargs)


def test_unauthorized_names_the_url_and_is_not_retried() -> None:
    # Given a source answering 401
    sleeps: list[float] = []
    session = _AuthSession([401, 200])
    # When a client without credentials reads it
    with pytest.raises(SourceError) as raised:
        list(_pages(_client(session, sleeps)))
    # Then it fails at once, naming the URL and "401 unauthorized"
    message = str(raised.value)
    assert "401 unauthorized" in message and session.urls[0] in message and "none sent" in message
    assert not isinstance(raised.value, SourceUnreachable) and sleeps == [] and len(session.urls) == 1


def test_credentials_are_sent_with_every_request() -> None:
    # Given one client with basic auth and one with a bearer token
    basic, bearer = _AuthSession([200]), _AuthSession([200])
    auth = ("agent@acme.test/token", "secret")
    list(CursorExportClient(BASE, session=basic, auth=auth, clock=lambda: 2e9).iter_pages(start_time=0))
    list(CursorExportClient(BASE, session=bearer, bearer_token="tok", clock=lambda: 2e9).iter_pages(start_time=0))
    # Then the first sends the pair to requests and the second an Authorization header
    assert basic.sent == [(auth, {"Accept": "application/json"})]
    assert bearer.sent == [(None, {"Accept": "application/json", "Authorization": "Bearer tok"})]
    # And giving both is refused
    with pytest.raises(InvalidInput, match="not both"):
        CursorExportClient(BASE, auth=auth, bearer_token="tok")


@pytest.mark.parametrize("entity", ["tickets", "groups"])
def test_time_client_only_serves_time_based_entities(entity: str) -> None:
    # Given an entity without a time-based export, When a client is made for it, Then it is refused
    with pytest.raises(InvalidInput, match="no time-based export"):
        TimeExportClient(BASE, entity=entity)  # type: ignore[arg-type]
    # And the cursor client refuses entities without a cursor export
    with pytest.raises(InvalidInput, match="no cursor export"):
        CursorExportClient(BASE, entity="organizations")  # type: ignore[arg-type]
