from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tenant_analytics.errors import MalformedPage, SourceError
from tenant_analytics.sources.client import CursorExportClient
from tenant_analytics.sources.groups import GroupsClient
from tenant_analytics.sources.http import RetryPolicy
from tenant_analytics.sources.server import RETRYABLE_FAULT_KINDS, SourceServer
from tenant_analytics.sources.synthetic import (
    SupportDataset,
    TenantSpec,
    events_until,
    generate_support_data,
    latest_organizations,
    latest_users,
    parse_timestamp,
)
from tenant_analytics.sources.time_export import TimeExportClient, TimePage

START = datetime(2024, 3, 4, tzinfo=UTC)
END = START + timedelta(days=7)
MID = START + timedelta(days=3, hours=5, minutes=17, seconds=3)
TENANT = "acme"
AUTH = ("agent@acme.test/token", "s3cret")


@pytest.fixture(scope="module")
def support() -> dict[str, SupportDataset]:
    tenants = [TenantSpec(TENANT, 400), TenantSpec("small", 80), TenantSpec("locked", 40)]
    return generate_support_data(21, tenants, START, END)


@pytest.fixture
def server(support: dict[str, SupportDataset]) -> Iterator[SourceServer]:
    with SourceServer(support, page_size=50, now=END, credentials={"locked": AUTH}) as running:
        yield running


def _time_client(server: SourceServer, entity: Any, tenant_id: str = TENANT, **options: Any) -> TimeExportClient:
    # The client clock follows the server's so the start_time limit sees the same "now".
    options = {"timeout": 5.0, "clock": lambda: server.now.timestamp(), **options}
    return TimeExportClient(server.base_url(tenant_id), entity=entity, **options)


def _items(pages: Iterator[TimePage]) -> tuple[list[dict[str, Any]], list[TimePage]]:
    collected = list(pages)
    return [item for page in collected for item in page.items], collected


@pytest.mark.parametrize("page_size", [1, 3, 7, 50, 100_000])
def test_time_paging_returns_each_event_once_after_dedupe(support: dict[str, SupportDataset], page_size: int) -> None:
    # Given a source serving a tenant's events with a given page size, its clock in the middle of the window
    expected = events_until(support["small"].ticket_events, MID)
    with SourceServer(support, page_size=page_size, now=MID) as server:
        # When a client pages through them from the beginning
        events, pages = _items(_time_client(server, "ticket_events", "small").iter_pages(start_time=0))
    # Then it got every visible event exactly once, in id order
    assert events == expected
    # And pages end mid-second only never: each page's last second is repeated by the next page as duplicates
    assert [page.end_of_stream for page in pages] == [False] * (len(pages) - 1) + [True]
    if page_size == 1:
        # A one-item page is always a whole second, so end_time moves past it and nothing is repeated
        assert sum(page.duplicates for page in pages) == 0
    elif page_size < 50:
        assert sum(page.duplicates for page in pages) > 0
        seconds = Counter(event["created_at"] for event in expected)
        assert any(count > 1 for count in seconds.values())  # the data does have seconds with several events


def test_pages_never_split_a_second_and_end_time_is_the_last_item(
    server: SourceServer, support: dict[str, SupportDataset]
) -> None:
    # Given a second holding several events
    seconds = Counter(event["created_at"] for event in support[TENANT].ticket_events)
    busy = next(second for second, count in seconds.items() if count >= 3)
    start = int(parse_timestamp(busy).timestamp())
    with SourceServer(support, page_size=1, now=END) as one_per_page:
        # When a page of size 1 is asked from that second
        body = requests.get(f"{one_per_page.endpoint_url(TENANT, 'ticket_events')}?start_time={start}", timeout=5)
    document = body.json()
    # Then every event of that second comes back, and end_time moves past it (the whole page is one second)
    assert [event["created_at"] for event in document["ticket_events"]] == [busy] * seconds[busy]
    assert document["count"] == seconds[busy] and document["end_of_stream"] is False
    assert document["end_time"] == start + 1
    assert document["next_page"].endswith(f"?start_time={start + 1}")


def test_event_paging_resumes_from_end_time(server: SourceServer, support: dict[str, SupportDataset]) -> None:
    # Given a full export at MID, remembered by its last end_time
    server.set_now(MID)
    client = _time_client(server, "ticket_events")
    _, pages = _items(client.iter_pages(start_time=0))
    resume = pages[-1].end_time
    # When the clock moves a day on and the client resumes from end_time
    later = MID + timedelta(days=1)
    server.set_now(later)
    events, _ = _items(client.iter_pages(start_time=resume))
    # Then it gets the events since that second (the boundary second again, which loads merge by id)
    since = datetime.fromtimestamp(resume, UTC)
    assert events == events_until(support[TENANT].ticket_events, later, since=since)
    assert {event["id"] for event in events} >= {
        event["id"] for event in support[TENANT].ticket_events if MID < parse_timestamp(event["created_at"]) <= later
    }


def test_organizations_changed_since_a_time(server: SourceServer, support: dict[str, SupportDataset]) -> None:
    # Given a start time inside the window
    since = START + timedelta(days=2)
    # When the organizations export is read from it
    organizations, _ = _items(_time_client(server, "organizations").iter_pages(start_time=int(since.timestamp())))
    # Then exactly the organizations whose latest version is at or after it come back, once, as that version
    expected = latest_organizations(support[TENANT].organizations, END, since=since)
    assert len(organizations) == len(expected) > 0
    assert {organization["id"]: organization for organization in organizations} == expected


def test_users_by_cursor_export_and_resume(server: SourceServer, support: dict[str, SupportDataset]) -> None:
    # Given a full users export at MID
    server.set_now(MID)
    client = CursorExportClient(
        server.base_url(TENANT), entity="users", timeout=5.0, clock=lambda: server.now.timestamp()
    )
    pages = list(client.iter_pages(start_time=0))
    users = [user for page in pages for user in page.items]
    # Then each user visible at MID comes once, as its latest version
    assert {user["id"]: user for user in users} == latest_users(support[TENANT].users, MID)
    assert len(users) == len({user["id"] for user in users})
    # When the clock moves on and the export resumes from the last cursor
    server.set_now(END)
    assert pages[-1].after_cursor is not None
    changed = [user for page in client.iter_pages(cursor=pages[-1].after_cursor) for user in page.items]
    # Then exactly the users created or changed since MID come back
    expected = {
        user_id: user
        for user_id, user in latest_users(support[TENANT].users, END).items()
        if parse_timestamp(user["updated_at"]) > MID
    }
    assert {user["id"]: user for user in changed} == expected and expected


def test_groups_are_listed_page_by_page(support: dict[str, SupportDataset]) -> None:
    # Given a source with two groups per page
    with SourceServer(support, page_size=2, now=END) as server:
        # When every group is fetched
        client = GroupsClient(server.base_url(TENANT), timeout=5.0)
        pages = list(client.iter_pages())
        groups, rejected = client.fetch_all()
    # Then all groups come back, over pages linked by next_page
    assert groups == support[TENANT].groups and rejected == []
    assert len(pages) == (len(groups) + 1) // 2
    assert pages[-1].next_page is None and all(page.next_page for page in pages[:-1])


def test_tenant_with_credentials_needs_them(server: SourceServer, support: dict[str, SupportDataset]) -> None:
    # Given a tenant whose source requires credentials
    url = server.endpoint_url("locked", "ticket_events")
    # When a client without them reads, Then it fails naming the URL and 401
    with pytest.raises(SourceError) as raised:
        list(_time_client(server, "ticket_events", "locked").iter_pages(start_time=0))
    assert "401 unauthorized" in str(raised.value) and url in str(raised.value)
    # And wrong credentials are refused too
    with pytest.raises(SourceError, match="401 unauthorized"):
        list(_time_client(server, "ticket_events", "locked", auth=(AUTH[0], "wrong")).iter_pages(start_time=0))
    # When the right basic auth or bearer token is sent, Then every event comes back
    for options in ({"auth": AUTH}, {"bearer_token": AUTH[1]}):
        events, _ = _items(_time_client(server, "ticket_events", "locked", **options).iter_pages(start_time=0))
        assert events == support["locked"].ticket_events
    # And other tenants need none
    assert list(_time_client(server, "organizations").iter_pages(start_time=0))


def test_malformed_record_is_rejected_with_its_reason_and_the_rest_of_the_page_kept(
    server: SourceServer, support: dict[str, SupportDataset]
) -> None:
    # Given the source corrupts one event on each of the next three pages
    server.inject("malformed_record", count=3)
    # When the client exports the events
    events, pages = _items(_time_client(server, "ticket_events").iter_pages(start_time=0))
    # Then three records are rejected, each with a reason, one per page, while the pages' other items are kept
    rejected = [(page.page_number, reason) for page in pages for _, reason in page.rejected]
    assert [number for number, _ in rejected] == [1, 2, 3]
    reasons = [reason for _, reason in rejected]
    assert reasons[0] == "field 'id' is missing"
    assert reasons[1].startswith("field 'id' is invalid")
    assert reasons[2] == "field 'created_at' is not an ISO-8601 time: 'yesterday'"
    assert all(len(page.items) + len(page.rejected) + page.duplicates >= 50 for page in pages[:3])
    # And apart from the three corrupted events, everything arrived exactly once
    expected = support[TENANT].ticket_events
    assert len(events) == len({event["id"] for event in events}) == len(expected) - 3
    assert all(event in expected for event in events)


def test_malformed_record_applies_to_cursor_exports_too(server: SourceServer) -> None:
    # Given the source corrupts one ticket of the next page
    server.inject("malformed_record")
    # When tickets are exported
    client = CursorExportClient(server.base_url(TENANT), timeout=5.0, clock=lambda: server.now.timestamp())
    pages = list(client.iter_pages(start_time=0))
    # Then the first page has one rejected ticket and 49 kept; the export went on to the end
    assert [len(page.rejected) for page in pages[:2]] == [1, 0]
    assert len(pages[0].tickets) == 49 and pages[-1].end_of_stream


@pytest.mark.parametrize(("entity", "page_size"), [("ticket_events", 60), ("organizations", 1)])
def test_random_retryable_faults_change_nothing(
    support: dict[str, SupportDataset], entity: str, page_size: int
) -> None:
    # Given a clean export of an entity
    with SourceServer(support, page_size=page_size, now=END) as server:
        clean, _ = _items(_time_client(server, entity).iter_pages(start_time=0))
        # When the source fails 20% of requests with 500, 429 or a slow answer, and the client exports again
        server.fault_rate(0.2, list(RETRYABLE_FAULT_KINDS), seed=7, delay=0.4)
        sleeps: list[float] = []
        retry = RetryPolicy(max_retries=8, backoff_initial=0.001, backoff_max=0.01, max_total_wait=120)
        faulty, _ = _items(
            _time_client(server, entity, timeout=0.2, retry=retry, sleep=sleeps.append).iter_pages(start_time=0)
        )
        requests_made = len(server.request_log)
    # Then the same items came back, after retries
    assert faulty == clean and len(clean) > 0
    assert sleeps and requests_made > 2 * len(sleeps)


def test_time_export_start_time_in_the_last_minute_is_refused_by_the_server_but_clamped_by_the_client(
    server: SourceServer, support: dict[str, SupportDataset]
) -> None:
    # Given a start_time equal to the source's clock
    now = int(server.now.timestamp())
    # When asked directly, Then the server refuses it
    response = requests.get(f"{server.endpoint_url(TENANT, 'ticket_events')}?start_time={now}", timeout=5)
    assert response.status_code == 400 and "too recent" in response.text
    # And the client asks for now - 60 instead and never follows a next page inside the last minute
    before = len(server.request_log)
    events, _ = _items(_time_client(server, "ticket_events").iter_pages(start_time=now))
    assert events == events_until(support[TENANT].ticket_events, END, since=END - timedelta(seconds=60))
    assert all(int(entry.rsplit("=", 1)[1]) <= now - 60 for entry in server.request_log[before:])


def test_every_endpoint_is_prefixed_per_tenant(server: SourceServer) -> None:
    # Given the endpoints of an unknown tenant
    for entity in ("tickets", "users", "ticket_events", "organizations", "groups"):
        # When one is requested, Then the answer is a JSON 404 naming the tenant
        response = requests.get(server.endpoint_url("nobody", entity) + "?start_time=0", timeout=5)  # type: ignore[arg-type]
        assert response.status_code == 404 and "'nobody'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("kind", "expected"), [("bad_page", "field 'ticket_events' is missing"), ("malformed_json", "not JSON")]
)
def test_broken_time_page_is_malformed_not_retried(server: SourceServer, kind: Any, expected: str) -> None:
    # Given the source answers the next request with a broken page
    server.inject(kind)
    before = len(server.request_log)
    # When events are exported, Then the whole page is refused naming the URL, after a single request
    with pytest.raises(MalformedPage) as raised:
        list(_time_client(server, "ticket_events").iter_pages(start_time=0))
    assert expected in str(raised.value) and server.endpoint_url(TENANT, "ticket_events") in str(raised.value)
    assert len(server.request_log) - before == 1
