"""Reproducible synthetic support tickets, shaped like a real ticketing API's incremental export.

Every ticket is a sequence of *versions*: the full ticket JSON as the source API would serve it between one
update and the next. The same ``(seed, tenant_id)`` always yields the same versions, byte for byte, on any
machine and Python build (the generator uses only ``random.Random`` seeded with a string).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tenant_analytics.errors import InvalidInput

STATUSES: Final = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES: Final = ("low", "normal", "high", "urgent")
CHANNELS: Final = ("email", "web", "chat", "api", "voice", "mobile")

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
_TAGS: Final = ("billing", "login", "mobile", "vip", "bug", "how_to", "shipping", "refund", "outage")
_PRODUCTS: Final = ("basic", "pro", "enterprise")
_CUSTOM_FIELD_PRODUCT: Final = 360001
_CUSTOM_FIELD_REGION: Final = 360002
_REGIONS: Final = ("emea", "amer", "apac")
_MAX_VERSIONS: Final = 12


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


def default_tenants() -> list[TenantSpec]:
    """Return the demo tenants, sizes roughly Zipf-distributed from 1200 tickets down to 30."""
    return [
        TenantSpec("acme", 1200),
        TenantSpec("globex", 600),
        TenantSpec("initech", 250),
        TenantSpec("umbrella", 90),
        TenantSpec("hooli", 30),
    ]


def format_timestamp(moment: datetime) -> str:
    """Return ``moment`` as the API writes timestamps: UTC, second precision, ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an API timestamp such as ``2024-03-01T09:15:00Z`` into an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def generate_tickets(spec: TenantSpec, seed: int, start: datetime, end: datetime) -> list[TicketVersion]:
    """Generate every version of ``spec.tickets`` tickets created in ``[start, end)``.

    Tickets are created at whole seconds in ``[start, end)``, more on weekdays, office hours and a few
    "incident" days; each is then updated along new → open → pending/hold → solved → closed, with priority,
    assignee and tag changes on the way. Every version has ``created_at <= updated_at < end``; updates that would
    fall at or after ``end`` are not generated, so a ticket's last version may be in any status.

    Returns the versions ordered by ``(valid_from, id)``; ticket ids are ``1..spec.tickets`` in creation order.
    """
    _check_window(start, end)
    if spec.tickets < 0:
        raise InvalidInput(f"tenant '{spec.tenant_id}' asks for {spec.tickets} tickets; the count must be >= 0")
    start_s = math.ceil(start.timestamp())
    end_s = math.ceil(end.timestamp())
    if spec.tickets and end_s <= start_s:
        raise InvalidInput(f"window [{start}, {end}) holds no whole second to create tickets in", field="end")
    rng = random.Random(f"tenant-analytics-synthetic:{seed}:{spec.tenant_id}")
    people = _People.draw(rng, spec.tickets)
    created = sorted(_draw_creation_times(rng, spec.tickets, start_s, end_s))
    versions: list[TicketVersion] = []
    for ticket_id, created_s in enumerate(created, start=1):
        versions.extend(_ticket_history(rng, spec.tenant_id, ticket_id, created_s, end_s, people))
    versions.sort(key=lambda version: (version.valid_from, version.ticket_id))
    return versions


def generate_dataset(
    seed: int, tenants: Sequence[TenantSpec], start: datetime, end: datetime
) -> dict[str, list[TicketVersion]]:
    """Generate :func:`generate_tickets` for each tenant; return tenant id -> versions.

    A tenant's data depends only on ``(seed, tenant_id)`` and the window, not on which other tenants are listed.
    """
    seen: set[str] = set()
    for spec in tenants:
        if spec.tenant_id in seen:
            raise InvalidInput(f"tenant '{spec.tenant_id}' is listed twice", field="tenants")
        seen.add(spec.tenant_id)
    return {spec.tenant_id: generate_tickets(spec, seed, start, end) for spec in tenants}


def latest_versions(versions: Iterable[TicketVersion], as_of: datetime) -> dict[int, dict[str, Any]]:
    """Return ticket id -> JSON of its latest version with ``updated_at <= as_of`` (inclusive bound).

    The bound is inclusive because that is what :class:`~tenant_analytics.sources.server.SourceServer` shows when
    its clock reads ``as_of``. Tickets with no version at or before ``as_of`` are absent. The dicts are copies.
    """
    latest: dict[int, TicketVersion] = {}
    for version in versions:
        if version.valid_from > as_of:
            continue
        current = latest.get(version.ticket_id)
        if current is None or version.valid_from > current.valid_from:
            latest[version.ticket_id] = version
    return {ticket_id: copy.deepcopy(version.ticket) for ticket_id, version in latest.items()}


def changed_since(versions: Iterable[TicketVersion], after: datetime, as_of: datetime) -> dict[int, dict[str, Any]]:
    """Return the :func:`latest_versions` at ``as_of`` whose ``updated_at`` is strictly later than ``after``.

    This is what a client resuming from a cursor taken at ``after`` must receive when the source reads ``as_of``.
    """
    return {
        ticket_id: ticket
        for ticket_id, ticket in latest_versions(versions, as_of).items()
        if parse_timestamp(ticket["updated_at"]) > after
    }


def _check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must be timezone-aware datetimes (UTC)", field="start")
    if end <= start:
        raise InvalidInput(f"end {end.isoformat()} must be later than start {start.isoformat()}", field="end")


@dataclass(frozen=True)
class _People:
    """The id pools a tenant's tickets draw from."""

    requesters: int
    organizations: int
    agents: tuple[int, ...]
    groups: tuple[int, ...]
    requester_org: dict[int, int | None] = field(hash=False)

    @classmethod
    def draw(cls, rng: random.Random, tickets: int) -> _People:
        requesters = max(5, int(tickets * 0.6))
        organizations = max(2, tickets // 25)
        agents = tuple(range(900_001, 900_001 + max(2, tickets // 80 + 2)))
        groups = tuple(range(50_001, 50_001 + min(6, max(1, tickets // 150 + 1))))
        # Roughly one requester in five belongs to no organization.
        requester_org: dict[int, int | None] = {
            requester: None if rng.random() < 0.2 else 70_001 + rng.randrange(organizations)
            for requester in range(100_001, 100_001 + requesters)
        }
        return cls(requesters, organizations, agents, groups, requester_org)

    def requester(self, rng: random.Random) -> int:
        # Squaring skews towards low ids: a few requesters write many tickets.
        return 100_001 + int(self.requesters * rng.random() ** 2)


def _draw_creation_times(rng: random.Random, count: int, start_s: int, end_s: int) -> list[int]:
    """Draw ``count`` whole-second instants in ``[start_s, end_s)`` following the daily and hourly pattern."""
    if count == 0:
        return []
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
    chosen = rng.choices(buckets, weights=weights, k=count)
    return [rng.randrange(low, high) for low, high in chosen]


def _ticket_history(
    rng: random.Random, tenant_id: str, ticket_id: int, created_s: int, end_s: int, people: _People
) -> list[TicketVersion]:
    """Return the versions of one ticket: its creation, then updates strictly before ``end_s``."""
    requester = people.requester(rng)
    channel = rng.choices(CHANNELS, weights=_CHANNEL_WEIGHTS)[0]
    priority = None if rng.random() < _NO_PRIORITY_SHARE else rng.choices(PRIORITIES, weights=_PRIORITY_WEIGHTS)[0]
    subject = rng.choice(_SUBJECTS)
    ticket: dict[str, Any] = {
        "url": f"https://{tenant_id}.support.example.com/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": None,
        "created_at": format_timestamp(datetime.fromtimestamp(created_s, UTC)),
        "updated_at": format_timestamp(datetime.fromtimestamp(created_s, UTC)),
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
        "group_id": rng.choice(people.groups),
        "organization_id": people.requester_org[requester],
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
        ticket["assignee_id"] = rng.choice(people.agents)
    versions = [_version(ticket)]
    moment = created_s
    while ticket["status"] != "closed" and len(versions) < _MAX_VERSIONS:
        status, mean_gap = _next_step(rng, ticket["status"])
        moment += max(1, int(rng.expovariate(1.0 / mean_gap)))
        if moment >= end_s:
            break
        ticket = dict(ticket)  # nested values are replaced, never mutated, so versions may share them
        ticket["updated_at"] = format_timestamp(datetime.fromtimestamp(moment, UTC))
        ticket["status"] = status
        _touch(rng, ticket, people)
        versions.append(_version(ticket))
    return versions


def _next_step(rng: random.Random, status: str) -> tuple[str, float]:
    """Return the status after the next update and the mean seconds until it happens."""
    roll = rng.random()
    if status == "new":
        return "open", 2 * 3600
    if status == "open":
        if roll < 0.2:
            return "open", 3 * 3600  # an update without a status change: comment, reassignment, tag
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


def _touch(rng: random.Random, ticket: dict[str, Any], people: _People) -> None:
    """Apply the side changes of an update: assignment, reassignment, escalation, tags."""
    if ticket["assignee_id"] is None or rng.random() < 0.08:
        ticket["assignee_id"] = rng.choice(people.agents)
    if rng.random() < 0.1:
        current = ticket["priority"]
        ticket["priority"] = "normal" if current is None else PRIORITIES[min(3, PRIORITIES.index(current) + 1)]
    if rng.random() < 0.15:
        ticket["tags"] = sorted({*ticket["tags"], rng.choice(_TAGS)})
    if ticket["status"] == "closed" and rng.random() < 0.4:
        ticket["satisfaction_rating"] = {"score": rng.choice(("good", "good", "bad")), "id": None}


def _version(ticket: dict[str, Any]) -> TicketVersion:
    return TicketVersion(ticket=ticket, valid_from=parse_timestamp(ticket["updated_at"]))
