from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenant_analytics.errors import MalformedPage, SourceError, SourceUnreachable
from tenant_analytics.sources.client import CursorExportClient, RetryPolicy
from tenant_analytics.sources.server import FaultKind, SourceServer
from tenant_analytics.sources.synthetic import TenantSpec, TicketVersion, generate_dataset

START = datetime(2024, 3, 4, tzinfo=UTC)
END = START + timedelta(days=5)
TENANT = "initech"
PAGE_SIZE = 40


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[TicketVersion]]:
    return generate_dataset(8, [TenantSpec(TENANT, 250)], START, END)


@pytest.fixture
def server(dataset: dict[str, list[TicketVersion]]) -> Iterator[SourceServer]:
    with SourceServer(dataset, page_size=PAGE_SIZE, now=END) as running:
        yield running


def _client(base_url: str, sleeps: list[float], *, timeout: float = 5.0, **policy: Any) -> CursorExportClient:
    retry = RetryPolicy(backoff_initial=0.001, backoff_max=0.01, **policy)
    return CursorExportClient(base_url, timeout=timeout, retry=retry, sleep=sleeps.append)


def _export(client: CursorExportClient) -> list[list[dict[str, Any]]]:
    return [page.tickets for page in client.iter_pages(start_time=0)]


@pytest.fixture
def clean_export(server: SourceServer) -> list[list[dict[str, Any]]]:
    pages = _export(_client(server.base_url(TENANT), []))
    assert len(pages) > 3
    return pages


@pytest.mark.parametrize("kind", ["http_500", "http_429"])
def test_transient_errors_are_retried_and_change_nothing(
    server: SourceServer, clean_export: list[list[dict[str, Any]]], kind: FaultKind
) -> None:
    # Given the source will fail the next two requests
    server.inject(kind, count=2)
    sleeps: list[float] = []
    # When the client exports the tenant
    pages = _export(_client(server.base_url(TENANT), sleeps))
    # Then it waited twice and got the same pages as without faults
    assert pages == clean_export
    assert len(sleeps) == 2


def test_rate_limit_waits_for_retry_after(server: SourceServer, clean_export: list[list[dict[str, Any]]]) -> None:
    # Given the source rate-limits the third request with Retry-After: 1
    sleeps: list[float] = []
    pages = _client(server.base_url(TENANT), sleeps).iter_pages(start_time=0)
    first, second = next(pages), next(pages)
    server.inject("http_429")
    # When the client goes on
    rest = list(pages)
    # Then it waited exactly the second asked for, re-asked the same page and missed nothing
    assert sleeps == [1.0]
    requested = server.request_log
    assert requested[-len(rest) - 1] == requested[-len(rest)]
    assert [first.tickets, second.tickets, *[page.tickets for page in rest]] == clean_export


def test_server_errors_beyond_the_retry_budget_raise_unreachable(server: SourceServer) -> None:
    # Given the source fails more often than the client retries
    server.inject("http_500", count=3)
    sleeps: list[float] = []
    client = _client(server.base_url(TENANT), sleeps, max_retries=2)
    # When the client exports
    with pytest.raises(SourceUnreachable) as raised:
        _export(client)
    # Then it gave up after three attempts, naming the status and the URL
    assert len(sleeps) == 2
    assert "HTTP 500" in str(raised.value) and server.export_url(TENANT) in str(raised.value)


def test_malformed_json_raises_malformed_page_naming_page_and_url(server: SourceServer) -> None:
    # Given two pages already read
    pages = _client(server.base_url(TENANT), []).iter_pages(start_time=0)
    next(pages)
    second = next(pages)
    # When the third answer is not JSON
    server.inject("malformed_json")
    with pytest.raises(MalformedPage) as raised:
        next(pages)
    # Then the error names page 3 and its URL with the cursor from page 2
    expected_url = f"{server.export_url(TENANT)}?cursor={second.after_cursor}"
    assert str(raised.value).startswith(f"page 3 of {expected_url}: body is not JSON")


def test_page_without_tickets_raises_malformed_page(server: SourceServer) -> None:
    # Given the source answers valid JSON without tickets
    server.inject("bad_page")
    # When the client exports
    with pytest.raises(MalformedPage) as raised:
        _export(_client(server.base_url(TENANT), []))
    # Then the error names the URL and the missing field, and it is not retried
    assert str(raised.value) == f"page 1 of {server.export_url(TENANT)}?start_time=0: field 'tickets' is missing"
    assert len(server.request_log) == 1


def test_slow_answer_times_out_and_is_retried(server: SourceServer, clean_export: list[list[dict[str, Any]]]) -> None:
    # Given the source stalls the next request for longer than the client waits
    server.inject("slow", delay=3.0)
    sleeps: list[float] = []
    # When the client exports with a short timeout
    pages = _export(_client(server.base_url(TENANT), sleeps, timeout=0.3))
    # Then it retried once and got the same pages
    assert len(sleeps) == 1
    assert pages == clean_export


def test_source_that_never_answers_in_time_is_unreachable(server: SourceServer) -> None:
    # Given the source stalls every attempt
    server.inject("slow", count=2, delay=3.0)
    # When the client exports with a short timeout and one retry
    with pytest.raises(SourceUnreachable) as raised:
        _export(_client(server.base_url(TENANT), [], timeout=0.2, max_retries=1))
    # Then the error names the URL and the timeout
    assert server.export_url(TENANT) in str(raised.value)
    assert "no answer within 0.2 s; gave up after 2 attempts" in str(raised.value)


def test_closed_port_raises_unreachable_without_retrying() -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    base_url = f"http://127.0.0.1:{port}/tenants/{TENANT}"
    # When the client exports from it
    with pytest.raises(SourceUnreachable) as raised:
        _export(_client(base_url, sleeps))
    # Then it fails at once, on one line naming the URL and the refused connection
    message = str(raised.value)
    assert sleeps == []
    assert base_url in message and "Connection refused" in message and "\n" not in message


def test_unknown_tenant_raises_source_error_with_404(server: SourceServer) -> None:
    # Given a tenant the source does not serve
    sleeps: list[float] = []
    # When the client exports it
    with pytest.raises(SourceError) as raised:
        _export(_client(server.base_url("nobody"), sleeps))
    # Then the error carries the 404 and is not retried
    assert "HTTP 404" in str(raised.value)
    assert not isinstance(raised.value, SourceUnreachable) and sleeps == []


def test_faults_apply_only_to_the_next_requests(server: SourceServer) -> None:
    # Given one injected 500
    server.inject("http_500")
    before = len(server.request_log)
    sleeps: list[float] = []
    # When the client exports twice
    _export(_client(server.base_url(TENANT), sleeps))
    _export(_client(server.base_url(TENANT), sleeps))
    # Then only the first request of the first export failed
    assert len(sleeps) == 1
    assert len(server.request_log) - before == 2 * (250 // PAGE_SIZE + 1) + 1


def test_a_request_stalled_when_the_server_stops_is_released_and_answered_quietly(
    dataset: dict[str, list[TicketVersion]], clean_export: list[list[dict[str, Any]]], capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a server stalling the next request for longer than the test lasts, and a client waiting on it
    server = SourceServer(dataset, page_size=PAGE_SIZE, now=END)
    server.start()
    url = server.export_url(TENANT) + "?start_time=0"
    server.inject("slow", delay=60.0)
    answers: list[tuple[int, dict[str, Any]]] = []

    def request() -> None:
        with urllib.request.urlopen(url, timeout=30) as response:
            answers.append((response.status, json.loads(response.read())))

    client = threading.Thread(target=request)
    client.start()
    for _ in range(500):
        if server.request_log:
            break
        time.sleep(0.01)
    capfd.readouterr()

    # When the server stops, the stalled request resuming only once stop() has returned (its clock held meanwhile)
    with server._state_lock:
        server.stop()
    client.join(timeout=30)

    # Then the stalled request was answered with its page, and nothing was printed as an error
    assert [(status, body["tickets"]) for status, body in answers] == [(200, clean_export[0])]
    assert "Traceback" not in capfd.readouterr().err
