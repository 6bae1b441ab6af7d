from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tenant_analytics.errors import SourceError
from tenant_analytics.sources.client import CursorExportClient, TicketPage
from tenant_analytics.sources.server import SourceServer
from tenant_analytics.sources.synthetic import (
    TenantSpec,
    TicketVersion,
    changed_since,
    default_tenants,
    generate_dataset,
    latest_versions,
    parse_timestamp,
)

START = datetime(2024, 3, 4, tzinfo=UTC)
END = START + timedelta(days=7)
MID = START + timedelta(days=3, hours=5, minutes=17, seconds=3)


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[TicketVersion]]:
    tenants = [*default_tenants(), TenantSpec("empty", 0)]
    return generate_dataset(21, tenants, START, END)


@pytest.fixture
def server(dataset: dict[str, list[TicketVersion]]) -> Iterator[SourceServer]:
    with SourceServer(dataset, page_size=50, now=END) as running:
        yield running


def _client(server: SourceServer, tenant_id: str) -> CursorExportClient:
    # The client clock follows the server's so the start_time clamp sees the same "now".
    return CursorExportClient(server.base_url(tenant_id), timeout=5.0, clock=lambda: server.now.timestamp())


def _read_all(pages: Iterator[TicketPage]) -> tuple[list[dict[str, Any]], list[TicketPage]]:
    collected = list(pages)
    return [ticket for page in collected for ticket in page.tickets], collected


@pytest.mark.parametrize(("tenant_id", "page_size"), [("initech", 1), ("initech", 7), ("acme", 100), ("globex", 5000)])
def test_full_export_returns_latest_version_of_every_visible_ticket(
    dataset: dict[str, list[TicketVersion]], tenant_id: str, page_size: int
) -> None:
    # Given a server whose clock is in the middle of the window
    with SourceServer(dataset, page_size=page_size, now=MID) as server:
        # When a client pages through the tenant from the beginning of time
        tickets, pages = _read_all(_client(server, tenant_id).iter_pages(start_time=0))
    # Then it received each ticket once, as its latest version at that clock, and nothing newer
    ids = [ticket["id"] for ticket in tickets]
    assert len(ids) == len(set(ids))
    assert {ticket["id"]: ticket for ticket in tickets} == latest_versions(dataset[tenant_id], MID)
    # And the pages are full except the last, ordered by (updated_at, id), and only the last ends the stream
    assert all(len(page.tickets) == page_size for page in pages[:-1])
    assert [page.end_of_stream for page in pages] == [False] * (len(pages) - 1) + [True]
    keys = [(ticket["updated_at"], ticket["id"]) for ticket in tickets]
    assert keys == sorted(keys)


def test_a_version_becomes_visible_exactly_at_its_updated_at(
    server: SourceServer, dataset: dict[str, list[TicketVersion]]
) -> None:
    # Given an update of an existing ticket
    update = next(v for v in dataset["hooli"] if v.ticket["updated_at"] != v.ticket["created_at"])
    client = _client(server, "hooli")
    # When the source's clock reads one second before it, and then exactly its updated_at
    server.set_now(update.valid_from - timedelta(seconds=1))
    before, _ = _read_all(client.iter_pages(start_time=0))
    server.set_now(update.valid_from)
    at, _ = _read_all(client.iter_pages(start_time=0))
    # Then the update is hidden before and served at that instant
    assert {t["id"]: t for t in before}[update.ticket_id] != update.ticket
    assert {t["id"]: t for t in at}[update.ticket_id] == update.ticket


def test_start_time_selects_tickets_updated_at_or_after_it(
    server: SourceServer, dataset: dict[str, list[TicketVersion]]
) -> None:
    # Given the time of a ticket's latest update, so that this ticket sits exactly on the bound
    latest = sorted(ticket["updated_at"] for ticket in latest_versions(dataset["globex"], END).values())
    boundary = parse_timestamp(latest[len(latest) // 2])
    # When exporting from that start_time
    tickets, _ = _read_all(_client(server, "globex").iter_pages(start_time=int(boundary.timestamp())))
    # Then exactly the tickets whose latest version is at or after it are returned
    expected = {k: v for k, v in latest_versions(dataset["globex"], END).items() if v["updated_at"] >= _iso(boundary)}
    assert {ticket["id"]: ticket for ticket in tickets} == expected
    assert any(ticket["updated_at"] == _iso(boundary) for ticket in tickets)


def test_resuming_from_the_last_cursor_returns_exactly_the_changed_tickets(
    server: SourceServer, dataset: dict[str, list[TicketVersion]]
) -> None:
    # Given a full export with the source's clock at MID, remembered by its last cursor
    server.set_now(MID)
    client = _client(server, "acme")
    _, first_pages = _read_all(client.iter_pages(start_time=0))
    cursor = first_pages[-1].after_cursor
    assert cursor is not None
    # When the source's clock moves a day on and the client resumes from that cursor
    later = MID + timedelta(days=1)
    server.set_now(later)
    changed, _ = _read_all(client.iter_pages(cursor=cursor))
    # Then it receives exactly the tickets created or updated in (MID, later], once, in their latest version
    expected = changed_since(dataset["acme"], MID, later)
    assert len(changed) == len(expected) > 0
    assert {ticket["id"]: ticket for ticket in changed} == expected


def test_resuming_with_nothing_changed_gives_an_empty_last_page_with_the_same_cursor(server: SourceServer) -> None:
    # Given a complete export and its last cursor
    client = _client(server, "umbrella")
    _, pages = _read_all(client.iter_pages(start_time=0))
    cursor = pages[-1].after_cursor
    assert cursor is not None
    # When resuming without any change at the source
    _, again = _read_all(client.iter_pages(cursor=cursor))
    # Then one empty page comes back, ending the stream, at the same position
    assert [(page.tickets, page.end_of_stream, page.after_cursor) for page in again] == [([], True, cursor)]
    assert again[0].after_url == f"{server.export_url('umbrella')}?cursor={cursor}"


def test_empty_tenant_still_returns_a_cursor_to_resume_from(server: SourceServer) -> None:
    # Given a tenant without tickets
    client = _client(server, "empty")
    # When exporting it
    _, pages = _read_all(client.iter_pages(start_time=0))
    # Then a single empty last page carries a cursor that the server accepts again
    assert len(pages) == 1 and pages[0].tickets == [] and pages[0].end_of_stream
    assert pages[0].after_cursor
    assert [page.tickets for page in client.iter_pages(cursor=pages[0].after_cursor)] == [[]]


def test_successive_hours_together_equal_one_export(
    server: SourceServer, dataset: dict[str, list[TicketVersion]]
) -> None:
    # Given hourly exports over one day, each resuming from the previous cursor
    server.set_now(MID)
    client = _client(server, "globex")
    _, pages = _read_all(client.iter_pages(start_time=0))
    merged = {ticket["id"]: ticket for page in pages for ticket in page.tickets}
    cursor = pages[-1].after_cursor
    for hour in range(1, 25):
        server.set_now(MID + timedelta(hours=hour))
        _, pages = _read_all(client.iter_pages(cursor=cursor))
        # Loads merge by id, keeping the latest updated_at, as the platform does.
        merged.update({ticket["id"]: ticket for page in pages for ticket in page.tickets})
        cursor = pages[-1].after_cursor
    # Then merging them gives the same state as a single export at the end
    assert merged == latest_versions(dataset["globex"], MID + timedelta(hours=24))


def test_unknown_tenant_is_a_source_error_with_404(server: SourceServer) -> None:
    # Given a tenant the source does not know
    client = _client(server, "nobody")
    # When exporting it
    with pytest.raises(SourceError) as raised:
        list(client.iter_pages(start_time=0))
    # Then the error names the status, the URL and the source's explanation
    message = str(raised.value)
    assert "HTTP 404" in message and server.base_url("nobody") in message and "'nobody'" in message


def test_bad_cursor_is_a_source_error_with_400(server: SourceServer) -> None:
    # Given a cursor this source never issued
    client = _client(server, "hooli")
    # When resuming from it
    with pytest.raises(SourceError, match="HTTP 400") as raised:
        list(client.iter_pages(cursor="not-a-cursor"))
    # Then the message names the cursor
    assert "not-a-cursor" in str(raised.value)


@pytest.mark.parametrize(
    "query",
    ["", "?start_time=abc", "?start_time=-1", "?cursor=%21%21", "?start_time=0&cursor=x"],
)
def test_server_rejects_bad_parameters_with_json_400(server: SourceServer, query: str) -> None:
    # Given a malformed export request
    # When it is sent
    response = requests.get(server.export_url("hooli") + query, timeout=5)
    # Then the server answers 400 with a JSON error
    assert response.status_code == 400
    assert response.json()["error"]["message"]


def test_start_time_in_the_last_minute_is_refused_by_the_server_but_clamped_by_the_client(
    server: SourceServer, dataset: dict[str, list[TicketVersion]]
) -> None:
    # Given a start_time equal to the source's clock
    now = int(server.now.timestamp())
    # When asked directly, Then the server refuses it
    response = requests.get(f"{server.export_url('hooli')}?start_time={now}", timeout=5)
    assert response.status_code == 400 and "too recent" in response.text
    # And the client moves it back a minute and gets the tickets updated in that minute
    tickets, _ = _read_all(_client(server, "hooli").iter_pages(start_time=now))
    assert all(parse_timestamp(ticket["updated_at"]) >= END - timedelta(seconds=60) for ticket in tickets)


def test_unknown_path_is_a_json_404(server: SourceServer) -> None:
    # Given a path outside the export API
    # When it is requested
    response = requests.get(server.base_url("acme") + "/api/v2/tickets.json", timeout=5)
    # Then the answer is a JSON 404
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_wall_clock_is_used_when_no_time_is_set(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given a server without a set clock, serving data from the past
    with SourceServer(dataset) as server:
        # When exporting a tenant
        tickets, _ = _read_all(CursorExportClient(server.base_url("hooli")).iter_pages(start_time=0))
    # Then every version is visible
    assert {ticket["id"]: ticket for ticket in tickets} == latest_versions(dataset["hooli"], END)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
