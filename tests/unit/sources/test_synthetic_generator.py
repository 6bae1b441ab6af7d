from __future__ import annotations

import itertools
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.synthetic import (
    CHANNELS,
    PRIORITIES,
    STATUSES,
    TenantSpec,
    TicketVersion,
    changed_since,
    default_tenants,
    generate_dataset,
    generate_tickets,
    latest_versions,
    parse_timestamp,
)

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
