"""Plain-Python reference computations of the support transforms, from raw source records only.

Shared by the Spark transform tests and the pipeline's end-to-end tests: the expected values are worked out here
independently of Spark and of the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

DONE = {"solved", "closed"}
UNSOLVED = {"new", "open", "pending", "hold"}
AGENT_ROLES = {"agent", "admin"}

Record = dict[str, Any]
# Raw records per dataset name, each record with its tenant (stored as the tenant_id=<id> folder, not a field).
Raw = dict[str, list[tuple[str, Record]]]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def utc(moment: datetime | None) -> datetime | None:
    """A timestamp collected from Spark (naive, in the driver's local time) as an aware UTC datetime."""
    return None if moment is None else moment.astimezone(UTC)


# ---------------------------------------------------------------------------------------------------------------
# Independent computation, from the raw records only
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    tenant: str
    id: int
    ticket_id: int
    at: datetime
    type: str
    author_id: int | None
    public: bool | None
    previous: str | None
    value: str | None


def reference_events(raw: Raw) -> list[Event]:
    """Distinct events with a parseable time, of tickets that exist."""
    tickets = {(t, r["id"]) for t, r in raw["tickets"]}
    seen: dict[tuple[str, int], Event] = {}
    for tenant, r in raw["events"]:
        at = parse(r["created_at"])
        if at is None or (tenant, r["ticket_id"]) not in tickets:
            continue
        seen[(tenant, r["id"])] = Event(
            tenant, r["id"], r["ticket_id"], at, r["event_type"], r.get("author_id"), r.get("public"),
            r.get("previous_value"), r.get("value"),
        )  # fmt: skip
    return list(seen.values())


def latest_users(raw: Raw) -> dict[tuple[str, int], Record]:
    latest: dict[tuple[str, int], Record] = {}
    for tenant, u in sorted(raw["users"], key=lambda tu: tu[1]["updated_at"]):
        latest[(tenant, u["id"])] = u
    return latest


def expected_denormalized(raw: Raw) -> dict[tuple[str, int], tuple[Any, ...]]:
    users = latest_users(raw)
    groups = {(t, g["id"]): g["name"] for t, g in raw["groups"]}
    orgs = {(t, o["id"]): o["name"] for t, o in raw["organizations"]}
    out = {}
    for tenant, t in raw["tickets"]:
        requester = users.get((tenant, t["requester_id"]), {})
        assignee = users.get((tenant, t["assignee_id"]), {})
        out[(tenant, t["id"])] = (
            t["status"],
            t["assignee_id"],
            requester.get("name"),
            requester.get("email"),
            requester.get("role"),
            assignee.get("name"),
            groups.get((tenant, t["group_id"])),
            orgs.get((tenant, t["organization_id"])),
        )
    return out


def expected_metrics(raw: Raw) -> dict[tuple[str, int], tuple[Any, ...]]:
    agents = {key for key, u in latest_users(raw).items() if u["role"] in AGENT_ROLES}
    events = reference_events(raw)
    out = {}
    for tenant, t in raw["tickets"]:
        created = parse(t["created_at"])
        assert created is not None
        mine = [e for e in events if (e.tenant, e.ticket_id) == (tenant, t["id"])]
        by_agent = [e for e in mine if (tenant, e.author_id) in agents]
        replies = [e for e in by_agent if e.type == "comment" and e.public is True]
        first_reply = min((e.at for e in replies if e.at > created), default=None)
        solved_at = max((e.at for e in mine if e.type == "status_change" and e.value == "solved"), default=None)
        resolution = None
        if t["status"] in DONE and solved_at is not None:
            resolution = int((solved_at - created).total_seconds())
        reopens = sum(1 for e in mine if e.type == "status_change" and e.previous in DONE and e.value in UNSOLVED)
        out[(tenant, t["id"])] = (
            created,
            t["status"],
            first_reply,
            None if first_reply is None else int((first_reply - created).total_seconds()),
            solved_at,
            resolution,
            reopens,
            len(replies),
            len({e.at for e in by_agent if e.type != "create"}),  # one update = one touch, however many events
        )
    return out


def expected_daily(raw: Raw, day_from: date | None, day_to: date | None) -> dict[tuple[str, date], tuple[int, ...]]:
    events = reference_events(raw)
    status_events = [e for e in events if e.type in ("create", "status_change") and e.value is not None]
    out: dict[tuple[str, date], tuple[int, ...]] = {}
    for tenant in sorted({t for t, _ in raw["tickets"]}):
        tickets = {r["id"]: parse(r["created_at"]) for t, r in raw["tickets"] if t == tenant}
        mine = [e for e in status_events if e.tenant == tenant]
        days = [c.date() for c in tickets.values() if c is not None] + [e.at.date() for e in mine]
        first, last = day_from or min(days), day_to or max(days)
        day = first
        while day <= last:
            end_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            backlog = 0
            for ticket_id, created in tickets.items():
                assert created is not None
                if created.date() > day:
                    continue
                history = sorted((e.at, e.id, e.value) for e in mine if e.ticket_id == ticket_id and e.at < end_of_day)
                status = history[-1][2] if history else "new"
                backlog += status not in DONE
            changes = [e for e in mine if e.type == "status_change" and e.at.date() == day]
            out[(tenant, day)] = (
                sum(1 for c in tickets.values() if c is not None and c.date() == day),
                sum(1 for e in changes if e.value == "solved"),
                sum(1 for e in changes if e.previous in DONE and e.value in UNSOLVED),
                backlog,
            )
            day += timedelta(days=1)
    return out
