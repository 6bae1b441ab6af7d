"""Reproducible synthetic support data, shaped like a real support API's exports.

A tenant has tickets, ticket events, users (agents, admins, end users), organizations and groups. Every ticket is
a sequence of *versions*: the full ticket JSON as the source API serves it between one update and the next. Each
version is produced by one update, and every update emits ticket events at the version's ``updated_at``:

* the creation emits ``create`` (value = initial status), the requester's public ``comment`` (the description),
  and ``priority_change`` / ``assignee_change`` from null when the ticket starts with a priority or an assignee;
* a later update emits, in this order, an optional ``comment``, then ``status_change``, ``assignee_change`` and
  ``priority_change`` for each field that changed. Every update emits at least one event, and all events of one
  update share its author: the assigned agent, the requester (replying, which moves a pending ticket back to open
  or reopens a solved one) or the system (``author_id`` -1, closing solved tickets).

Replaying a ticket's events therefore reproduces the status, assignee and priority of every version.

The same ``(seed, tenant_id)`` and window always yield the same data, byte for byte, on any machine and Python
build (only ``random.Random`` seeded with strings is used). :func:`iter_ticket_events` streams a tenant's events
in id order while holding only the tickets still open, so tens of millions of events need little memory;
:func:`generate_support_data` builds the whole dataset in memory for tests and the demo.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import random
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.synthetic_directory import RecordVersion, TenantDirectory
from tenant_analytics.sources.timestamps import format_timestamp, format_unix, parse_timestamp

__all__ = [
    "CHANNELS",
    "EVENT_TYPES",
    "PRIORITIES",
    "STATUSES",
    "SYSTEM_AUTHOR_ID",
    "RecordVersion",
    "SupportDataset",
    "TenantSpec",
    "TicketVersion",
    "changed_since",
    "default_tenants",
    "events_until",
    "format_timestamp",
    "generate_dataset",
    "generate_support_data",
    "generate_tickets",
    "iter_ticket_events",
    "latest_organizations",
    "latest_records",
    "latest_users",
    "latest_versions",
    "parse_timestamp",
    "zipf_tenants",
]

STATUSES: Final = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES: Final = ("low", "normal", "high", "urgent")
CHANNELS: Final = ("email", "web", "chat", "api", "voice", "mobile")
EVENT_TYPES: Final = ("create", "status_change", "comment", "assignee_change", "priority_change")
# Author of the updates automations make (closing solved tickets); no user has this id.
SYSTEM_AUTHOR_ID: Final = -1

_CHANNEL_WEIGHTS: Final = (0.38, 0.24, 0.16, 0.08, 0.09, 0.05)
_PRIORITY_WEIGHTS: Final = (0.22, 0.48, 0.2, 0.1)
_NO_PRIORITY_SHARE: Final = 0.25
# Relative ticket volume per weekday (Monday first) and per UTC hour: busy office hours, quiet weekends and nights.
_WEEKDAY_FACTOR: Final = (1.15, 1.1, 1.05, 1.0, 0.9, 0.45, 0.35)
_HOUR_FACTOR: Final = (
    0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.7, 1.1, 1.5, 1.6, 1.55,
    1.3, 1.45, 1.5, 1.4, 1.2, 0.95, 0.7, 0.55, 0.45, 0.35, 0.25, 0.2,
)  # fmt: skip
_INCIDENT_DAY_SHARE: Final = 0.06  # days on which an outage triples the volume
_SUBJECTS: Final = (
    "Cannot log in",
    "Refund request",
    "Invoice is wrong",
    "Feature question",
    "App crashes on start",
    "Password reset link expired",
    "Shipping delayed",
    "Change my plan",
    "Data export missing rows",
    "Two-factor code not received",
)
_AGENT_REPLIES: Final = (
    "Thanks for reaching out, we are looking into it.",
    "Could you send a screenshot of the error?",
    "This should be fixed now; please confirm on your side.",
    "I have applied the change to your account.",
)
_INTERNAL_NOTES: Final = (
    "Escalating to tier 2.",
    "Known issue, linked to the open incident.",
    "Waiting on engineering for a fix date.",
)
_REQUESTER_COMMENTS: Final = (
    "Here is the screenshot you asked for.",
    "Still not working for me.",
    "Any update on this?",
    "It happened again today.",
)
_TAGS: Final = ("billing", "login", "mobile", "vip", "bug", "how_to", "shipping", "refund", "outage")
_PRODUCTS: Final = ("basic", "pro", "enterprise")
_CUSTOM_FIELD_PRODUCT: Final = 360001
_CUSTOM_FIELD_REGION: Final = 360002
_REGIONS: Final = ("emea", "amer", "apac")
_MAX_VERSIONS: Final = 12
_EVENT_OF_FIELD: Final = (
    ("status", "status_change"),
    ("assignee_id", "assignee_change"),
    ("priority", "priority_change"),
)
_CHOICE_CHUNK: Final = 65_536

# An event before it is numbered: (created_s, ticket_id, seq, created_at, author_id, event_type, public, previous,
# value). The first three fields order events; seq is unique within a ticket, so later fields are never compared.
_RawEvent = tuple[int, int, int, str, int, str, bool, str | None, str | None]


@dataclass(frozen=True)
class TenantSpec:
    """A demo tenant: its id and how many tickets it creates over the generated window."""

    tenant_id: str
    tickets: int


@dataclass(frozen=True)
class TicketVersion:
    """One version of a ticket: the JSON the source API serves from ``valid_from`` until the next version.

    ``valid_from`` equals the ticket's ``updated_at``. ``ticket`` must be treated as read-only; helpers in this
    module hand out deep copies.
    """

    ticket: dict[str, Any] = field(hash=False)
    valid_from: datetime

    @property
    def ticket_id(self) -> int:
        """Return the ticket's ``id``."""
        ticket_id: int = self.ticket["id"]
        return ticket_id


@dataclass(frozen=True)
class SupportDataset:
    """Everything one tenant's source serves: ticket versions, ticket events, user and organization versions, groups.

    Versions are ordered by ``(valid_from, id)``; events by ``id`` (which is also time order).
    """

    tenant_id: str
    tickets: list[TicketVersion] = field(hash=False)
    ticket_events: list[dict[str, Any]] = field(hash=False)
    users: list[RecordVersion] = field(hash=False)
    organizations: list[RecordVersion] = field(hash=False)
    groups: list[dict[str, Any]] = field(hash=False)


def default_tenants() -> list[TenantSpec]:
    """Return the demo tenants, sizes roughly Zipf-distributed from 1200 tickets down to 30."""
    return [
        TenantSpec("acme", 1200),
        TenantSpec("globex", 600),
        TenantSpec("initech", 250),
        TenantSpec("umbrella", 90),
        TenantSpec("hooli", 30),
    ]


def zipf_tenants(
    count: int, total_tickets: int, seed: int, prefix: str = "t", *, exponent: float = 1.0
) -> list[TenantSpec]:
    """Return ``count`` tenants sharing ``total_tickets`` with Zipf sizes: the k-th largest gets a share ~ 1/k^s.

    Sizes are apportioned exactly (they sum to ``total_tickets``, largest remainders first) and every tenant gets
    at least one ticket when there are enough. Tenant ids are ``<prefix><n>`` zero-padded, listed in id order; the
    ``seed`` decides which id gets which rank, so the largest tenant is not always the first.
    """
    if count < 1:
        raise InvalidInput(f"count must be at least 1, got {count}", field="count")
    if total_tickets < 0:
        raise InvalidInput(f"total_tickets must be >= 0, got {total_tickets}", field="total_tickets")
    if exponent <= 0:
        raise InvalidInput(f"exponent must be positive, got {exponent}", field="exponent")
    weights = [rank**-exponent for rank in range(1, count + 1)]
    floor_total = max(0, total_tickets - count) if total_tickets >= count else total_tickets
    base = 1 if total_tickets >= count else 0
    shares = [floor_total * weight / sum(weights) for weight in weights]
    sizes = [base + math.floor(share) for share in shares]
    by_remainder = sorted(range(count), key=lambda rank: (-(shares[rank] - math.floor(shares[rank])), rank))
    for rank in by_remainder[: total_tickets - sum(sizes)]:
        sizes[rank] += 1
    ranks = list(range(count))
    random.Random(f"tenant-analytics-synthetic:zipf:{seed}:{prefix}").shuffle(ranks)
    width = len(str(count))
    return [TenantSpec(f"{prefix}{number:0{width}d}", sizes[ranks[number - 1]]) for number in range(1, count + 1)]


def generate_tickets(spec: TenantSpec, seed: int, start: datetime, end: datetime) -> list[TicketVersion]:
    """Generate every version of ``spec.tickets`` tickets created in ``[start, end)``.

    Tickets are created at whole seconds in ``[start, end)``, more on weekdays, office hours and a few
    "incident" days; each is then updated along new → open → pending/hold → solved → closed (a requester's reply
    may reopen a solved ticket), with priority, assignee and tag changes on the way. Every version has
    ``created_at <= updated_at < end``; updates that would fall at or after ``end`` are not generated, so a
    ticket's last version may be in any status.

    Returns the versions ordered by ``(valid_from, id)``; ticket ids are ``1..spec.tickets`` in creation order.
    """
    start_s, end_s = _window(spec, start, end)
    directory = TenantDirectory.draw(seed, spec.tenant_id, spec.tickets, start_s, end_s)
    versions = [
        version for _, history, _ in _iter_histories(spec, seed, start_s, end_s, directory) for version in history
    ]
    versions.sort(key=lambda version: (version.valid_from, version.ticket_id))
    return versions


def iter_ticket_events(spec: TenantSpec, seed: int, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """Return a generator of the tenant's ticket events in ``id`` order, which is ``(created_at, ticket)`` order.

    Agrees with :func:`generate_tickets` for the same arguments. Events are produced as tickets are generated and
    only the events of tickets created but not yet finished are held, so memory does not grow with the count.
    """
    start_s, end_s = _window(spec, start, end)
    directory = TenantDirectory.draw(seed, spec.tenant_id, spec.tickets, start_s, end_s)
    return _numbered_events(_iter_histories(spec, seed, start_s, end_s, directory))


def generate_support_data(
    seed: int, tenants: Sequence[TenantSpec], start: datetime, end: datetime
) -> dict[str, SupportDataset]:
    """Generate each tenant's :class:`SupportDataset` in memory; return tenant id -> dataset.

    A tenant's data depends only on ``(seed, tenant_id)``, its ticket count and the window.
    """
    _check_unique(tenants)
    datasets: dict[str, SupportDataset] = {}
    for spec in tenants:
        start_s, end_s = _window(spec, start, end)
        directory = TenantDirectory.draw(seed, spec.tenant_id, spec.tickets, start_s, end_s)
        versions: list[TicketVersion] = []
        events = list(_numbered_events(_iter_histories(spec, seed, start_s, end_s, directory), versions.extend))
        versions.sort(key=lambda version: (version.valid_from, version.ticket_id))
        datasets[spec.tenant_id] = SupportDataset(
            tenant_id=spec.tenant_id,
            tickets=versions,
            ticket_events=events,
            users=sorted(directory.iter_user_versions(), key=_version_order),
            organizations=sorted(directory.iter_organization_versions(), key=_version_order),
            groups=directory.groups_json(),
        )
    return datasets


def generate_dataset(
    seed: int, tenants: Sequence[TenantSpec], start: datetime, end: datetime
) -> dict[str, list[TicketVersion]]:
    """Generate :func:`generate_tickets` for each tenant; return tenant id -> versions.

    The ticket projection of :func:`generate_support_data`. A tenant's data depends only on ``(seed,
    tenant_id)`` and the window, not on which other tenants are listed.
    """
    _check_unique(tenants)
    return {spec.tenant_id: generate_tickets(spec, seed, start, end) for spec in tenants}


def latest_versions(versions: Iterable[TicketVersion], as_of: datetime) -> dict[int, dict[str, Any]]:
    """Return ticket id -> JSON of its latest version with ``updated_at <= as_of`` (inclusive bound).

    The bound is inclusive because that is what :class:`~tenant_analytics.sources.server.SourceServer` shows when
    its clock reads ``as_of``. Tickets with no version at or before ``as_of`` are absent. The dicts are copies.
    """
    return _latest(((version.ticket_id, version.valid_from, version.ticket) for version in versions), as_of, None)


def changed_since(versions: Iterable[TicketVersion], after: datetime, as_of: datetime) -> dict[int, dict[str, Any]]:
    """Return the :func:`latest_versions` at ``as_of`` whose ``updated_at`` is strictly later than ``after``.

    This is what a client resuming from a cursor taken at ``after`` must receive when the source reads ``as_of``.
    """
    return {
        ticket_id: ticket
        for ticket_id, ticket in latest_versions(versions, as_of).items()
        if parse_timestamp(ticket["updated_at"]) > after
    }


def latest_records(
    versions: Iterable[RecordVersion], as_of: datetime, *, since: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Return id -> JSON of each record's latest version with ``updated_at <= as_of``, as copies.

    With ``since``, keep only records whose latest version has ``updated_at >= since``: what a time-based export
    from ``start_time = since`` returns (after removing duplicates) when the source's clock reads ``as_of``.
    """
    return _latest(((version.record_id, version.valid_from, version.record) for version in versions), as_of, since)


def latest_users(
    users: Iterable[RecordVersion], as_of: datetime, *, since: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Return user id -> latest user JSON at ``as_of`` (see :func:`latest_records`)."""
    return latest_records(users, as_of, since=since)


def latest_organizations(
    organizations: Iterable[RecordVersion], as_of: datetime, *, since: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """Return organization id -> latest organization JSON at ``as_of`` (see :func:`latest_records`)."""
    return latest_records(organizations, as_of, since=since)


def events_until(
    events: Iterable[dict[str, Any]], as_of: datetime, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """Return the events with ``since <= created_at <= as_of`` (both inclusive; no lower bound without ``since``).

    Inclusive at ``as_of`` because the source serves an event from its ``created_at`` on. Order is kept.
    """
    return [
        event
        for event in events
        if parse_timestamp(event["created_at"]) <= as_of
        and (since is None or parse_timestamp(event["created_at"]) >= since)
    ]


def _latest(
    items: Iterable[tuple[int, datetime, dict[str, Any]]], as_of: datetime, since: datetime | None
) -> dict[int, dict[str, Any]]:
    latest: dict[int, tuple[datetime, dict[str, Any]]] = {}
    for record_id, valid_from, record in items:
        if valid_from > as_of:
            continue
        current = latest.get(record_id)
        if current is None or valid_from > current[0]:
            latest[record_id] = (valid_from, record)
    return {
        record_id: copy.deepcopy(record)
        for record_id, (valid_from, record) in latest.items()
        if since is None or valid_from >= since
    }


def _version_order(version: RecordVersion) -> tuple[datetime, int]:
    return version.valid_from, version.record_id


def _check_unique(tenants: Sequence[TenantSpec]) -> None:
    seen: set[str] = set()
    for spec in tenants:
        if spec.tenant_id in seen:
            raise InvalidInput(f"tenant '{spec.tenant_id}' is listed twice", field="tenants")
        seen.add(spec.tenant_id)


def _window(spec: TenantSpec, start: datetime, end: datetime) -> tuple[int, int]:
    """Check the window and the spec; return the window as whole unix seconds ``[start_s, end_s)``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must be timezone-aware datetimes (UTC)", field="start")
    if end <= start:
        raise InvalidInput(f"end {end.isoformat()} must be later than start {start.isoformat()}", field="end")
    if spec.tickets < 0:
        raise InvalidInput(f"tenant '{spec.tenant_id}' asks for {spec.tickets} tickets; the count must be >= 0")
    start_s = math.ceil(start.timestamp())
    end_s = math.ceil(end.timestamp())
    if spec.tickets and end_s <= start_s:
        raise InvalidInput(f"window [{start}, {end}) holds no whole second to create tickets in", field="end")
    return start_s, end_s


def _iter_histories(
    spec: TenantSpec, seed: int, start_s: int, end_s: int, directory: TenantDirectory
) -> Iterator[tuple[int, list[TicketVersion], list[_RawEvent]]]:
    """Yield ``(created_s, versions, events)`` of each ticket, in creation order (= id order)."""
    times_rng = random.Random(f"tenant-analytics-synthetic:{seed}:{spec.tenant_id}:created")
    rng = random.Random(f"tenant-analytics-synthetic:{seed}:{spec.tenant_id}")
    created = _iter_creation_times(times_rng, spec.tickets, start_s, end_s)
    for ticket_id, created_s in enumerate(created, start=1):
        versions, events = _ticket_history(rng, spec.tenant_id, ticket_id, created_s, end_s, directory)
        yield created_s, versions, events


def _numbered_events(
    histories: Iterable[tuple[int, list[TicketVersion], list[_RawEvent]]],
    on_versions: Callable[[list[TicketVersion]], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Merge the tickets' events into time order and number them from 1.

    Tickets arrive in creation order and no event precedes its ticket's creation, so every event earlier than the
    latest creation seen is final and can be emitted.
    """
    pending: list[_RawEvent] = []
    next_id = 1
    for created_s, versions, events in histories:
        if on_versions is not None:
            on_versions(versions)
        while pending and pending[0][0] < created_s:
            yield _event_json(heapq.heappop(pending), next_id)
            next_id += 1
        for event in events:
            heapq.heappush(pending, event)
    while pending:
        yield _event_json(heapq.heappop(pending), next_id)
        next_id += 1


def _event_json(event: _RawEvent, event_id: int) -> dict[str, Any]:
    _, ticket_id, _, created_at, author_id, event_type, public, previous, value = event
    return {
        "id": event_id,
        "ticket_id": ticket_id,
        "created_at": created_at,
        "event_type": event_type,
        "author_id": author_id,
        "public": public,
        "previous_value": previous,
        "value": value,
    }


def _iter_creation_times(rng: random.Random, count: int, start_s: int, end_s: int) -> Iterator[int]:
    """Yield ``count`` whole-second instants in ``[start_s, end_s)``, ascending, following the daily pattern.

    Counts per hour are drawn first (memory per hour, not per ticket), then the instants inside each hour.
    """
    if count == 0:
        return
    day_factor: dict[int, float] = {}
    buckets: list[tuple[int, int]] = []
    weights: list[float] = []
    hour_start = start_s - start_s % 3600
    while hour_start < end_s:
        low, high = max(hour_start, start_s), min(hour_start + 3600, end_s)
        moment = datetime.fromtimestamp(hour_start, UTC)
        day = hour_start // 86_400
        if day not in day_factor:
            incident = 3.0 if rng.random() < _INCIDENT_DAY_SHARE else 1.0
            day_factor[day] = _WEEKDAY_FACTOR[moment.weekday()] * rng.lognormvariate(0.0, 0.3) * incident
        buckets.append((low, high))
        weights.append(day_factor[day] * _HOUR_FACTOR[moment.hour] * (high - low))
        hour_start += 3600
    cumulative = list(itertools.accumulate(weights))
    counts = array("q", bytes(8 * len(buckets)))
    remaining = count
    while remaining:
        chunk = min(remaining, _CHOICE_CHUNK)
        for index in rng.choices(range(len(buckets)), cum_weights=cumulative, k=chunk):
            counts[index] += 1
        remaining -= chunk
    for (low, high), drawn in zip(buckets, counts, strict=True):
        if drawn:
            yield from sorted(rng.randrange(low, high) for _ in range(drawn))


def _ticket_history(
    rng: random.Random, tenant_id: str, ticket_id: int, created_s: int, end_s: int, directory: TenantDirectory
) -> tuple[list[TicketVersion], list[_RawEvent]]:
    """Return the versions of one ticket (its creation, then updates strictly before ``end_s``) and their events."""
    requester = directory.requester(rng, created_s)
    channel = rng.choices(CHANNELS, weights=_CHANNEL_WEIGHTS)[0]
    priority = None if rng.random() < _NO_PRIORITY_SHARE else rng.choices(PRIORITIES, weights=_PRIORITY_WEIGHTS)[0]
    subject = rng.choice(_SUBJECTS)
    created_at = format_unix(created_s)
    ticket: dict[str, Any] = {
        "url": f"https://{tenant_id}.support.example.com/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": None,
        "created_at": created_at,
        "updated_at": created_at,
        "type": rng.choice(("question", "incident", "problem", "task")),
        "subject": subject,
        "raw_subject": subject,
        "description": f"{subject}. Please help.",
        "status": "open" if channel == "api" and rng.random() < 0.5 else "new",
        "priority": priority,
        "via": {"channel": channel, "source": {"from": {}, "to": {}, "rel": None}},
        "requester_id": requester,
        "submitter_id": requester,
        "assignee_id": None,
        "group_id": rng.choice(directory.group_ids),
        "organization_id": directory.organization_of(requester),
        "collaborator_ids": [],
        "tags": sorted(rng.sample(_TAGS, k=rng.randint(0, 2))),
        "custom_fields": [
            {"id": _CUSTOM_FIELD_PRODUCT, "value": rng.choice(_PRODUCTS)},
            {"id": _CUSTOM_FIELD_REGION, "value": rng.choice(_REGIONS)},
        ],
        "satisfaction_rating": None,
        "has_incidents": False,
        "is_public": True,
    }
    if ticket["status"] == "open":
        ticket["assignee_id"] = rng.choice(directory.agent_ids)
    events: list[_RawEvent] = []

    def emit(
        moment: int, author: int, kind: str, previous: object = None, value: object = None, public: bool = False
    ) -> None:
        as_text = (None if previous is None else str(previous)), (None if value is None else str(value))
        events.append((moment, ticket_id, len(events), ticket["updated_at"], author, kind, public, *as_text))

    emit(created_s, requester, "create", value=ticket["status"])
    emit(created_s, requester, "comment", value=ticket["description"], public=True)
    if priority is not None:
        emit(created_s, requester, "priority_change", value=priority)
    if ticket["assignee_id"] is not None:
        emit(created_s, requester, "assignee_change", value=ticket["assignee_id"])
    versions = [_version(ticket, created_s)]
    moment = created_s
    while ticket["status"] != "closed" and len(versions) < _MAX_VERSIONS:
        status = ticket["status"]
        following, mean_gap = _next_step(rng, status)
        moment += max(1, int(rng.expovariate(1.0 / mean_gap)))
        if moment >= end_s:
            break
        before = ticket
        ticket = dict(ticket)  # nested values are replaced, never mutated, so versions may share them
        ticket["updated_at"] = format_unix(moment)
        ticket["status"] = following
        actor = _actor(rng, status, following)
        if actor == "agent":
            _touch(rng, ticket, directory)
            author = int(ticket["assignee_id"])
            public = _agent_comment(rng, status, following)
            if public is not None:
                note = rng.choice(_AGENT_REPLIES if public else _INTERNAL_NOTES)
                emit(moment, author, "comment", value=note, public=public)
        elif actor == "requester":
            author = requester
            emit(moment, author, "comment", value=rng.choice(_REQUESTER_COMMENTS), public=True)
        else:
            author = SYSTEM_AUTHOR_ID
            if rng.random() < 0.4:
                ticket["satisfaction_rating"] = {"score": rng.choice(("good", "good", "bad")), "id": None}
        for key, kind in _EVENT_OF_FIELD:
            if ticket[key] != before[key]:
                emit(moment, author, kind, previous=before[key], value=ticket[key])
        versions.append(_version(ticket, moment))
    return versions, events


def _next_step(rng: random.Random, status: str) -> tuple[str, float]:
    """Return the status after the next update and the mean seconds until it happens."""
    roll = rng.random()
    if status == "new":
        return "open", 2 * 3600
    if status == "open":
        if roll < 0.2:
            return "open", 3 * 3600  # an update without a status change: a comment, maybe a reassignment
        if roll < 0.55:
            return "pending", 5 * 3600
        if roll < 0.6:
            return "hold", 8 * 3600
        return "solved", 20 * 3600
    if status in ("pending", "hold"):
        return ("open", 18 * 3600) if roll < 0.6 else ("solved", 30 * 3600)
    if status == "solved":
        return ("open", 24 * 3600) if roll < 0.08 else ("closed", 4 * 86_400)
    raise AssertionError(f"no step after status {status!r}")


def _actor(rng: random.Random, status: str, following: str) -> str:
    """Return who makes an update: the requester replies to pending or solved tickets, automations close."""
    if following == "closed":
        return "system"
    if following == "open" and status in ("pending", "solved"):
        return "requester"
    if status == following == "open" and rng.random() < 0.25:
        return "requester"
    return "agent"


def _agent_comment(rng: random.Random, status: str, following: str) -> bool | None:
    """Return whether an agent's update carries a public reply (True), an internal note (False) or no comment."""
    roll = rng.random()
    if following == "pending":
        return True
    if following == "hold" or status == "hold":
        return False
    if following == "solved":
        return True if roll < 0.85 else None
    if status == "new":
        return True if roll < 0.6 else (False if roll < 0.75 else None)
    return roll < 0.65


def _touch(rng: random.Random, ticket: dict[str, Any], directory: TenantDirectory) -> None:
    """Apply the side changes of an agent's update: assignment, reassignment, escalation, tags."""
    if ticket["assignee_id"] is None or rng.random() < 0.08:
        ticket["assignee_id"] = rng.choice(directory.agent_ids)
    if rng.random() < 0.1:
        current = ticket["priority"]
        ticket["priority"] = "normal" if current is None else PRIORITIES[min(3, PRIORITIES.index(current) + 1)]
    if rng.random() < 0.15:
        ticket["tags"] = sorted({*ticket["tags"], rng.choice(_TAGS)})


def _version(ticket: dict[str, Any], moment: int) -> TicketVersion:
    return TicketVersion(ticket=ticket, valid_from=datetime.fromtimestamp(moment, UTC))
