from __future__ import annotations

import inspect
import itertools
import json
import re
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.synthetic import (
    CHANNELS,
    EVENT_TYPES,
    PRIORITIES,
    STATUSES,
    SYSTEM_AUTHOR_ID,
    SupportDataset,
    TenantSpec,
    TicketVersion,
    changed_since,
    default_tenants,
    events_until,
    generate_dataset,
    generate_support_data,
    generate_tickets,
    iter_ticket_events,
    latest_organizations,
    latest_records,
    latest_users,
    latest_versions,
    parse_timestamp,
    zipf_tenants,
)
from tenant_analytics.sources.ticket_replay import replay_tickets

START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
END = START + timedelta(days=14)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Statuses a ticket may move to from each status in one update.
NEXT_STATUSES = {
    "new": {"open"},
    "open": {"open", "pending", "hold", "solved"},
    "pending": {"open", "solved"},
    "hold": {"open", "solved"},
    "solved": {"open", "closed"},
    "closed": set(),
}


def _by_ticket(versions: list[TicketVersion]) -> dict[int, list[TicketVersion]]:
    grouped: dict[int, list[TicketVersion]] = defaultdict(list)
    for version in versions:
        grouped[version.ticket_id].append(version)
    return grouped


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[TicketVersion]]:
    return generate_dataset(11, default_tenants(), START, END)


def test_same_seed_gives_identical_versions() -> None:
    # Given two runs with the same seed, tenant and window
    spec = TenantSpec("umbrella", 90)
    # When both generate
    first = generate_tickets(spec, 5, START, END)
    second = generate_tickets(spec, 5, START, END)
    # Then every version, JSON and timestamp alike, is identical
    assert [json.dumps(v.ticket, sort_keys=True) for v in first] == [
        json.dumps(v.ticket, sort_keys=True) for v in second
    ]
    assert first == second


def test_different_seed_or_tenant_gives_different_versions() -> None:
    # Given one tenant spec
    spec = TenantSpec("umbrella", 90)
    # When generated with two seeds, and under another tenant id with the first seed
    base = generate_tickets(spec, 5, START, END)
    other_seed = generate_tickets(spec, 6, START, END)
    other_tenant = generate_tickets(TenantSpec("umbrella-2", 90), 5, START, END)
    # Then the creation times differ
    created = [v.ticket["created_at"] for v in base]
    assert created != [v.ticket["created_at"] for v in other_seed]
    assert created != [v.ticket["created_at"] for v in other_tenant]


def test_tenant_data_does_not_depend_on_the_other_tenants_listed() -> None:
    # Given a dataset of all demo tenants and one of a single tenant
    everyone = generate_dataset(3, default_tenants(), START, END)
    alone = generate_dataset(3, [TenantSpec("hooli", 30)], START, END)
    # Then the shared tenant's versions are the same
    assert alone["hooli"] == everyone["hooli"]


def test_default_tenants_have_clearly_different_sizes() -> None:
    # Given the demo tenants
    tenants = default_tenants()
    # Then there are at least five, with unique ids, each at least twice the size of the next
    assert len(tenants) >= 5
    assert len({spec.tenant_id for spec in tenants}) == len(tenants)
    sizes = sorted((spec.tickets for spec in tenants), reverse=True)
    assert all(bigger >= 2 * smaller for bigger, smaller in itertools.pairwise(sizes))


def test_each_tenant_has_exactly_its_ticket_count_with_ids_in_creation_order(
    dataset: dict[str, list[TicketVersion]],
) -> None:
    # Given the generated dataset
    for spec in default_tenants():
        # When the tickets of a tenant are grouped
        tickets = _by_ticket(dataset[spec.tenant_id])
        # Then there are spec.tickets of them, ids 1..N, and ids ascend with created_at
        assert sorted(tickets) == list(range(1, spec.tickets + 1))
        created = [tickets[ticket_id][0].ticket["created_at"] for ticket_id in sorted(tickets)]
        assert created == sorted(created)


def test_every_version_lies_in_the_window(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given every version of every tenant
    for versions in dataset.values():
        for version in versions:
            ticket = version.ticket
            # Then timestamps are UTC with Z at second precision, created_at >= start, updated_at < end
            assert TIMESTAMP.match(ticket["created_at"]) and TIMESTAMP.match(ticket["updated_at"])
            assert START <= parse_timestamp(ticket["created_at"]) <= version.valid_from < END
            assert version.valid_from == parse_timestamp(ticket["updated_at"])


def test_window_with_fractional_bounds_keeps_whole_seconds_inside() -> None:
    # Given a window whose bounds are not whole seconds
    start = START + timedelta(microseconds=500_000)
    end = start + timedelta(hours=3, microseconds=250_000)
    # When tickets are generated
    versions = generate_tickets(TenantSpec("hooli", 30), 1, start, end)
    # Then every timestamp still lies in [start, end)
    assert versions
    assert all(start <= parse_timestamp(v.ticket["created_at"]) and v.valid_from < end for v in versions)


def test_versions_of_a_ticket_move_forward_and_keep_created_at(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given the versions of each ticket, in the order returned
    for versions in dataset.values():
        for history in _by_ticket(versions).values():
            first = history[0].ticket
            # Then the first version is the creation, in status new or open
            assert first["updated_at"] == first["created_at"]
            assert first["status"] in ("new", "open")
            for before, after in itertools.pairwise(history):
                # And each update is strictly later, keeps created_at and follows the lifecycle
                assert after.valid_from > before.valid_from
                assert after.ticket["created_at"] == first["created_at"]
                assert after.ticket["status"] in NEXT_STATUSES[before.ticket["status"]]


def test_versions_are_returned_in_update_order(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given each tenant's versions
    for versions in dataset.values():
        # Then they are sorted by (valid_from, id)
        keys = [(v.valid_from, v.ticket_id) for v in versions]
        assert keys == sorted(keys)


def test_tickets_are_updated_over_time(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given the largest tenant
    histories = _by_ticket(dataset["acme"])
    # Then most tickets have several versions and all lifecycle statuses occur
    assert sum(len(history) > 1 for history in histories.values()) > 0.9 * len(histories)
    assert {v.ticket["status"] for v in dataset["acme"]} == set(STATUSES)


def test_ticket_json_has_the_fields_consumers_use_and_extras(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given every version of the largest tenant
    versions = dataset["acme"]
    for version in versions:
        ticket = version.ticket
        # Then the used fields have the documented types and values
        assert isinstance(ticket["id"], int) and isinstance(ticket["requester_id"], int)
        assert ticket["status"] in STATUSES
        assert ticket["priority"] is None or ticket["priority"] in PRIORITIES
        assert ticket["via"]["channel"] in CHANNELS
        assert ticket["assignee_id"] is None or isinstance(ticket["assignee_id"], int)
        assert ticket["organization_id"] is None or isinstance(ticket["organization_id"], int)
        assert isinstance(ticket["group_id"], int)
        # And extra fields a real API serves are present
        assert {"subject", "tags", "url", "custom_fields"} <= ticket.keys()
        json.dumps(ticket)
    # And nullable fields are null sometimes, not always
    assert any(v.ticket["priority"] is None for v in versions)
    assert any(v.ticket["organization_id"] is None for v in versions)
    assert any(v.ticket["assignee_id"] is None for v in versions)
    assert {v.ticket["via"]["channel"] for v in versions} == set(CHANNELS)


def test_some_days_are_busier_than_others(dataset: dict[str, list[TicketVersion]]) -> None:
    # Given the creation days of the largest tenant over two weeks
    created_per_day = Counter(history[0].ticket["created_at"][:10] for history in _by_ticket(dataset["acme"]).values())
    # Then every day has tickets, and the busiest day has at least twice the quietest
    assert len(created_per_day) == 14
    assert max(created_per_day.values()) >= 2 * min(created_per_day.values())


def test_latest_versions_bound_is_inclusive() -> None:
    # Given a ticket's versions
    versions = generate_tickets(TenantSpec("hooli", 30), 2, START, END)
    history = next(h for h in _by_ticket(versions).values() if len(h) > 1)
    second = history[1]
    # When asking as of exactly the second version's updated_at, and one second earlier
    at = latest_versions(versions, second.valid_from)
    before = latest_versions(versions, second.valid_from - timedelta(seconds=1))
    # Then the version at as_of is included, the earlier view shows the previous version
    assert at[second.ticket_id] == second.ticket
    assert before[second.ticket_id] == history[0].ticket
    # And tickets created after as_of are absent
    assert all(parse_timestamp(t["created_at"]) <= second.valid_from for t in at.values())


def test_latest_versions_returns_copies() -> None:
    # Given the latest versions of a tenant
    versions = generate_tickets(TenantSpec("hooli", 30), 2, START, END)
    latest = latest_versions(versions, END)
    # When a caller mutates one
    latest[1]["via"]["channel"] = "mutated"
    # Then the generated versions are untouched
    assert all(v.ticket["via"]["channel"] != "mutated" for v in versions)


def test_changed_since_keeps_only_tickets_updated_after_the_mark() -> None:
    # Given a tenant's versions and a mark in the middle of the window
    versions = generate_tickets(TenantSpec("umbrella", 90), 4, START, END)
    mark = START + timedelta(days=7)
    # When computing the changes between the mark and the end
    changed = changed_since(versions, mark, END)
    # Then exactly the tickets with a version after the mark appear, each as its latest version
    expected_ids = {v.ticket_id for v in versions if v.valid_from > mark}
    assert set(changed) == expected_ids
    assert changed == {k: v for k, v in latest_versions(versions, END).items() if k in expected_ids}


@pytest.mark.parametrize(
    ("start", "end"),
    [(START.replace(tzinfo=None), END), (END, START), (START, START)],
)
def test_invalid_window_is_rejected(start: datetime, end: datetime) -> None:
    # Given a naive, reversed or empty window
    # When generating, Then the window is rejected
    with pytest.raises(InvalidInput):
        generate_tickets(TenantSpec("hooli", 30), 1, start, end)


def test_duplicate_tenants_are_rejected() -> None:
    # Given a tenant listed twice
    tenants = [TenantSpec("hooli", 30), TenantSpec("hooli", 10)]
    # When generating, Then the error names the tenant
    with pytest.raises(InvalidInput, match="'hooli'"):
        generate_dataset(1, tenants, START, END)


# --- the whole support dataset: users, organizations, groups and ticket events -------------------------------


@pytest.fixture(scope="module")
def support() -> dict[str, SupportDataset]:
    return generate_support_data(11, [TenantSpec("acme", 1200), TenantSpec("hooli", 30)], START, END)


def _agent_ids(dataset: SupportDataset) -> set[int]:
    return {user["id"] for user in latest_users(dataset.users, END).values() if user["role"] in ("agent", "admin")}


def test_support_data_is_reproducible_and_its_tickets_are_generate_dataset(
    support: dict[str, SupportDataset],
) -> None:
    # Given the support data of two tenants, and the same call again for one of them
    again = generate_support_data(11, [TenantSpec("hooli", 30)], START, END)["hooli"]
    # Then every entity is identical, byte for byte
    assert json.dumps(again.ticket_events) == json.dumps(support["hooli"].ticket_events)
    assert again == support["hooli"]
    # And the ticket versions are exactly those of generate_dataset
    assert support["acme"].tickets == generate_dataset(11, [TenantSpec("acme", 1200)], START, END)["acme"]


def test_streamed_events_equal_the_in_memory_events(support: dict[str, SupportDataset]) -> None:
    # Given the generator of one tenant's events
    events = iter_ticket_events(TenantSpec("acme", 1200), 11, START, END)
    # Then it is a lazy generator, not a list
    assert inspect.isgenerator(events)
    # When it is drained, Then it yields the in-memory events in the same order
    assert list(events) == support["acme"].ticket_events


def test_event_ids_are_unique_and_increase_with_time(support: dict[str, SupportDataset]) -> None:
    # Given one tenant's events
    events = support["acme"].ticket_events
    # Then ids are 1..N in order and created_at never decreases along them
    assert [event["id"] for event in events] == list(range(1, len(events) + 1))
    times = [event["created_at"] for event in events]
    assert times == sorted(times)
    assert {event["event_type"] for event in events} == set(EVENT_TYPES)
    assert all(TIMESTAMP.match(event["created_at"]) for event in events)


def test_replaying_events_reproduces_every_version_of_every_ticket(support: dict[str, SupportDataset]) -> None:
    # Given the tickets and events of a tenant, events grouped per ticket
    dataset = support["acme"]
    agents = _agent_ids(dataset)
    events_of: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in dataset.ticket_events:
        events_of[event["ticket_id"]].append(event)
    for ticket_id, history in _by_ticket(dataset.tickets).items():
        update_times = {event["created_at"] for event in events_of[ticket_id]}
        # Then the ticket's events happen exactly at the instants of its versions
        assert update_times == {version.ticket["updated_at"] for version in history}
        for version in history:
            ticket = version.ticket
            update = [e for e in events_of[ticket_id] if e["created_at"] == ticket["updated_at"]]
            # And all events of one update have one author; only the first version has a create event
            assert len({event["author_id"] for event in update}) == 1
            if version is history[0]:
                assert update[0]["event_type"] == "create" and update[0]["value"] == ticket["status"]
            else:
                assert "create" not in {event["event_type"] for event in update}
            # And replaying the events up to the version gives its status, assignee and priority
            state = replay_tickets(events_until(events_of[ticket_id], version.valid_from), agents)[ticket_id]
            assert (state.status, state.assignee_id, state.priority) == (
                ticket["status"],
                ticket["assignee_id"],
                ticket["priority"],
            )


def test_status_changes_carry_the_previous_status_and_follow_the_lifecycle(
    support: dict[str, SupportDataset],
) -> None:
    # Given each ticket's events in order
    last_status: dict[int, str] = {}
    reopened = 0
    for event in support["acme"].ticket_events:
        if event["event_type"] == "create":
            last_status[event["ticket_id"]] = event["value"]
        elif event["event_type"] == "status_change":
            # Then each status change starts from the status the ticket was in and is an allowed move
            assert event["previous_value"] == last_status[event["ticket_id"]]
            assert event["value"] in NEXT_STATUSES[event["previous_value"]]
            reopened += (event["previous_value"], event["value"]) == ("solved", "open")
            last_status[event["ticket_id"]] = event["value"]
    # And some solved tickets are reopened
    assert reopened > 0


def test_comments_are_authored_by_agents_or_requesters_and_public_means_a_reply(
    support: dict[str, SupportDataset],
) -> None:
    # Given the latest tickets and the agents of a tenant
    dataset = support["acme"]
    agents = _agent_ids(dataset)
    requester = {ticket_id: t["requester_id"] for ticket_id, t in latest_versions(dataset.tickets, END).items()}
    comments = [event for event in dataset.ticket_events if event["event_type"] == "comment"]
    for comment in comments:
        # Then internal notes are by agents, and public comments by agents or by the ticket's requester
        if not comment["public"]:
            assert comment["author_id"] in agents
        else:
            assert comment["author_id"] in agents or comment["author_id"] == requester[comment["ticket_id"]]
    # And all three kinds occur
    kinds = {(c["public"], c["author_id"] in agents) for c in comments}
    assert kinds == {(True, True), (False, True), (True, False)}
    # And non-comment events are never public
    assert not any(e["public"] for e in dataset.ticket_events if e["event_type"] != "comment")


def test_first_reply_exists_exactly_for_tickets_with_a_reply_and_follows_creation(
    support: dict[str, SupportDataset],
) -> None:
    # Given the replayed tickets of a tenant
    dataset = support["acme"]
    replayed = replay_tickets(dataset.ticket_events, _agent_ids(dataset))
    pending_ids = {e["ticket_id"] for e in dataset.ticket_events if e["value"] == "pending"}
    for ticket in replayed.values():
        # Then a first reply time exists exactly when there is a reply, and it is after creation
        assert (ticket.first_reply_at is not None) == (ticket.replies > 0)
        if ticket.first_reply_seconds is not None:
            assert ticket.first_reply_seconds > 0
        # And a ticket that went pending was replied to (an agent asks the requester something)
        if ticket.ticket_id in pending_ids:
            assert ticket.replies > 0
    # And some tickets have no reply yet, some several
    assert any(t.replies == 0 for t in replayed.values()) and any(t.replies > 1 for t in replayed.values())


def test_tickets_refer_to_existing_users_organizations_and_groups(support: dict[str, SupportDataset]) -> None:
    # Given a tenant's entities
    dataset = support["acme"]
    users = latest_users(dataset.users, END)
    organizations = latest_organizations(dataset.organizations, END)
    groups = {group["id"] for group in dataset.groups}
    for version in dataset.tickets:
        ticket = version.ticket
        requester = users[ticket["requester_id"]]
        # Then the requester is an end user who existed when the ticket was created, in the ticket's organization
        assert requester["role"] == "end-user"
        assert requester["created_at"] <= ticket["created_at"]
        assert ticket["organization_id"] == requester["organization_id"]
        assert ticket["organization_id"] is None or ticket["organization_id"] in organizations
        assert ticket["assignee_id"] is None or users[ticket["assignee_id"]]["role"] in ("agent", "admin")
        assert ticket["group_id"] in groups
    # And event authors are users or the system
    assert {e["author_id"] for e in dataset.ticket_events} <= users.keys() | {SYSTEM_AUTHOR_ID}
    assert {u["role"] for u in users.values()} == {"end-user", "agent", "admin"}


def test_users_and_organizations_have_versions_inside_the_window(support: dict[str, SupportDataset]) -> None:
    # Given a tenant's user and organization versions
    dataset = support["acme"]
    for versions in (dataset.users, dataset.organizations):
        keys = [(v.valid_from, v.record_id) for v in versions]
        # Then they are ordered, their updated_at is valid_from, and some records change during the window
        assert keys == sorted(keys)
        assert all(v.valid_from == parse_timestamp(v.record["updated_at"]) < END for v in versions)
        changed = latest_records(versions, END, since=START)
        assert 0 < len(changed) < len(latest_records(versions, END))
    for organization in latest_organizations(dataset.organizations, END).values():
        assert organization["domain_names"] and isinstance(organization["name"], str)


def test_latest_records_and_events_until_bounds_are_inclusive(support: dict[str, SupportDataset]) -> None:
    # Given a user version changed during the window
    dataset = support["hooli"]
    version = next(v for v in dataset.users if v.record["updated_at"] != v.record["created_at"])
    # Then it is the latest at its own instant, not one second before, and `since` includes it
    assert latest_users(dataset.users, version.valid_from)[version.record_id] == version.record
    assert latest_users(dataset.users, version.valid_from - timedelta(seconds=1))[version.record_id] != version.record
    assert version.record_id in latest_users(dataset.users, END, since=version.valid_from)
    # And events_until includes events at both bounds
    event = dataset.ticket_events[len(dataset.ticket_events) // 2]
    moment = parse_timestamp(event["created_at"])
    assert event in events_until(dataset.ticket_events, moment, since=moment)
    assert event not in events_until(dataset.ticket_events, moment - timedelta(seconds=1))


@pytest.mark.parametrize(("count", "total"), [(50, 100_000), (8, 1000), (3, 2)])
def test_zipf_tenants_share_the_total_with_zipf_sizes(count: int, total: int) -> None:
    # Given a Zipf draw of tenants
    specs = zipf_tenants(count, total, seed=4, prefix="z")
    sizes = sorted((spec.tickets for spec in specs), reverse=True)
    # Then there are count unique ids with the prefix, and the sizes add up to the total
    assert len({spec.tenant_id for spec in specs}) == count
    assert all(spec.tenant_id.startswith("z") for spec in specs)
    assert sum(sizes) == total
    if total >= 10 * count:
        # And the k-th largest is about 1/k of the largest (within rounding and the one-ticket floor)
        for rank, size in enumerate(sizes[:10], start=1):
            assert size == pytest.approx(sizes[0] / rank, rel=0.05, abs=2)
        assert all(size >= 1 for size in sizes)


def test_zipf_tenants_are_reproducible_and_the_seed_decides_who_is_large() -> None:
    # Given the same draw twice and one with another seed
    first, again, other = zipf_tenants(20, 5000, 1), zipf_tenants(20, 5000, 1), zipf_tenants(20, 5000, 2)
    # Then the same seed gives the same specs; another seed gives the same sizes to other tenants
    assert first == again
    assert sorted(s.tickets for s in first) == sorted(s.tickets for s in other)
    assert first != other


def test_event_generator_streams_without_materialising() -> None:
    # Given a generator over a large tenant (about ten events per ticket)
    spec = TenantSpec("big", 200_000)
    events = iter_ticket_events(spec, 1, START, START + timedelta(days=60))
    # When only its first events are taken
    tracemalloc.start()
    try:
        first = list(itertools.islice(events, 2000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then they come at once, in id order, without the memory two million events would take
    assert [event["id"] for event in first] == list(range(1, 2001))
    assert peak < 30_000_000


def test_generated_event_count_scales_with_tickets() -> None:
    # Given a streamed tenant of 2000 tickets
    count = sum(1 for _ in iter_ticket_events(TenantSpec("mid", 2000), 2, START, END))
    # Then there are several events per ticket, so ten million events need about a million tickets
    assert 6 * 2000 < count < 16 * 2000


def test_replay_counts_reopens_resolution_replies_and_touches() -> None:
    # Given a hand-written ticket: created, replied and solved by an agent, reopened by the requester, solved again
    agent, requester = 900_001, 1_000_001

    def event(event_id: int, at: str, kind: str, author: int, **fields: Any) -> dict[str, Any]:
        return {"id": event_id, "ticket_id": 1, "created_at": f"2024-03-04T{at}Z", "event_type": kind,
                "author_id": author, "public": False, "previous_value": None, "value": None, **fields}  # fmt: skip

    events = [
        event(1, "09:00:00", "create", requester, value="new"),
        event(2, "09:00:00", "comment", requester, public=True, value="Help"),
        event(3, "09:30:00", "comment", agent, public=False, value="Looking"),
        event(4, "09:30:00", "status_change", agent, previous_value="new", value="open"),
        event(5, "10:00:00", "comment", agent, public=True, value="Fixed"),
        event(6, "10:00:00", "status_change", agent, previous_value="open", value="solved"),
        event(7, "11:00:00", "comment", requester, public=True, value="Not fixed"),
        event(8, "11:00:00", "status_change", requester, previous_value="solved", value="open"),
        event(9, "12:00:00", "comment", agent, public=True, value="Now fixed"),
        event(10, "12:00:00", "status_change", agent, previous_value="open", value="solved"),
    ]
    # When it is replayed
    ticket = replay_tickets(events, {agent})[1]
    # Then the first reply is the first public agent comment, resolution runs to the last solve
    assert ticket.first_reply_seconds == 3600 and ticket.full_resolution_seconds == 3 * 3600
    # And one reopen, two replies, three agent touches (updates, not events) are counted
    assert (ticket.reopens, ticket.replies, ticket.agent_touches, ticket.status) == (1, 2, 3, "solved")
    # And while reopened, the ticket has no resolution time
    assert replay_tickets(events[:8], {agent})[1].full_resolution_seconds is None
