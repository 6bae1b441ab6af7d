"""Support metrics in local Spark against an independent plain-Python computation from the raw records."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType
from support_reference import (
    Raw,
    Record,
    expected_daily,
    expected_denormalized,
    expected_metrics,
    iso,
    parse,
    utc,
)

from tenant_analytics.local.spark import local_spark
from tenant_analytics.transforms.support import RAW_TICKET_SCHEMA, normalize_tickets
from tenant_analytics.transforms.support_metrics import (
    RAW_GROUP_SCHEMA,
    RAW_ORGANIZATION_SCHEMA,
    RAW_TICKET_EVENT_SCHEMA,
    RAW_USER_SCHEMA,
    daily_ticket_counts,
    denormalize_tickets,
    ticket_metrics,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

# ---------------------------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------------------------

D = datetime(2026, 5, 1, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> str:
    return iso(D + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second))


def ticket(tid: int, created: str, status: str, requester: int | None, assignee: int | None, **refs: Any) -> Record:
    return {
        "id": tid,
        "created_at": created,
        "updated_at": at(9),
        "status": status,
        "priority": "normal",
        "via": {"channel": "email"},
        "requester_id": requester,
        "assignee_id": assignee,
        "group_id": refs.get("group_id"),
        "organization_id": refs.get("organization_id"),
        "subject": "fields the platform does not use are ignored",
    }


def event(eid: int, tid: int, when: str, kind: str, author: int | None, **more: Any) -> Record:
    return {"id": eid, "ticket_id": tid, "created_at": when, "event_type": kind, "author_id": author, **more}


def user(uid: int, name: str, role: str, updated: str = "2026-01-01T00:00:00Z") -> Record:
    email = f"{name.lower()}@example.com"
    return {"id": uid, "name": name, "email": email, "role": role, "organization_id": None,
            "created_at": "2025-01-01T00:00:00Z", "updated_at": updated, "locale": "en"}  # fmt: skip


def edge_cases() -> Raw:
    """Hand-made records, one edge case each (numbers in the comments are acme ticket ids)."""
    acme_users = [
        user(1, "Alice-old", "end-user", "2025-06-01T00:00:00Z"),  # an older version of Alice: not used
        user(1, "Alice", "end-user", "2026-02-01T00:00:00Z"),
        user(2, "Bob", "agent"),
        user(3, "Carol", "admin"),
        user(4, "Dave", "end-user"),
    ]
    # In beta, id 2 is an end user and id 1 an agent: roles must be looked up within the tenant.
    beta_users = [user(1, "Erin", "agent"), user(2, "Frank", "end-user")]
    acme_tickets = [
        ticket(1, at(1, 9), "solved", 1, 2, group_id=10, organization_id=100),
        ticket(2, at(1, 10), "closed", 4, 3, group_id=11, organization_id=100),
        ticket(3, at(2, 11), "pending", 1, None, organization_id=999),  # no assignee, unknown org, no group
        ticket(4, at(3, 8), "open", 4, 2),  # no events at all
        ticket(5, at(6, 23, 59, 59), "solved", 77, 2),  # unknown requester
    ]
    acme_events = [
        # 1: created and solved the same day; requester comment and internal note are not replies
        event(101, 1, at(1, 9), "create", 1, public=True, value="new"),
        event(102, 1, at(1, 9, 5), "comment", 1, public=True),
        event(103, 1, at(1, 9, 30), "comment", 2, public=False),
        event(104, 1, at(1, 10), "comment", 2, public=True),
        event(104, 1, at(1, 10), "comment", 2, public=True),  # delivered twice
        event(105, 1, at(1, 11), "assignee_change", 2, previous_value=None, value="2"),
        event(106, 1, at(1, 12), "status_change", 2, previous_value="new", value="solved"),
        event(106, 1, at(1, 12), "status_change", 2, previous_value="new", value="solved"),
        # 2: solved, reopened by the requester, re-solved, then closed
        event(201, 2, at(1, 10), "create", 4, value="open"),
        event(202, 2, at(2, 8), "comment", 3, public=True),
        event(203, 2, at(2, 9), "status_change", 3, previous_value="open", value="solved"),
        event(204, 2, at(4, 7), "status_change", 4, previous_value="solved", value="open"),
        event(205, 2, at(4, 8), "comment", 2, public=True),
        event(206, 2, at(5, 10), "status_change", 2, previous_value="open", value="solved"),
        event(207, 2, at(7), "status_change", 3, previous_value="solved", value="closed"),
        event(208, 2, at(5, 9), "priority_change", 2, previous_value="normal", value="high"),
        event(209, 2, at(5, 9), "comment", 2, public=False),  # same update as 208: no extra touch
        # 3: pending for days without any event
        event(301, 3, at(2, 11), "create", 1, value="new"),
        event(302, 3, at(2, 12), "status_change", 2, previous_value="new", value="pending"),
        event(303, 3, at(2, 13), "comment", 2, public=None),  # public unknown: not a reply
        # 5: agent comment at the creation instant is a reply but not a first reply; solved at midnight
        event(501, 5, at(6, 23, 59, 59), "create", 2, value="new"),
        event(502, 5, at(6, 23, 59, 59), "comment", 2, public=True),
        event(503, 5, at(7), "status_change", 2, previous_value="new", value="solved"),
        # a ticket that is not in the tickets data, and an event with an unparseable time
        event(901, 999, at(2), "status_change", 2, previous_value="new", value="solved"),
        event(902, 3, "yesterday", "status_change", 2, previous_value="pending", value="solved"),
    ]
    beta_tickets = [ticket(1, at(3, 9), "hold", 2, 1)]
    beta_events = [
        event(101, 1, at(3, 9), "create", 2, value="new"),
        event(102, 1, at(3, 9, 1), "comment", 2, public=True),  # end user in beta (an agent id in acme)
        event(103, 1, "2026-05-03T10:00:00.250Z", "comment", 1, public=True),
        event(104, 1, at(3, 11), "status_change", 1, previous_value="new", value="solved"),
        event(105, 1, at(4, 11), "status_change", 1, previous_value="solved", value="hold"),
    ]
    return {
        "tickets": [("acme", t) for t in acme_tickets] + [("beta", t) for t in beta_tickets],
        "events": [("acme", e) for e in acme_events] + [("beta", e) for e in beta_events],
        "users": [("acme", u) for u in acme_users] + [("beta", u) for u in beta_users],
        "groups": [("acme", {"id": 10, "name": "Billing"})],
        "organizations": [("acme", {"id": 100, "name": "Acme Corp", "created_at": at(1), "updated_at": at(1)})],
    }


def random_dataset(seed: int, tickets_per_tenant: int = 25, days: int = 10) -> Raw:
    """Two tenants of tickets with random event histories: status walks with reopens, comments, duplicates."""
    rng = random.Random(seed)
    raw: Raw = {"tickets": [], "events": [], "users": [], "groups": [], "organizations": []}
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for tenant in ("t-red", "t-blue"):
        roles = ["end-user"] * 8 + ["agent"] * 3 + ["admin"]
        rng.shuffle(roles)
        for uid, role in enumerate(roles, start=1):
            raw["users"].append((tenant, user(uid, f"{tenant}-u{uid}", role)))
        end_users = [uid for uid, role in enumerate(roles, start=1) if role == "end-user"]
        agents = [uid for uid, role in enumerate(roles, start=1) if role != "end-user"]
        raw["groups"] += [(tenant, {"id": g, "name": f"{tenant}-g{g}"}) for g in (1, 2, 3)]
        raw["organizations"] += [
            (tenant, {"id": o, "name": f"{tenant}-o{o}", "created_at": iso(start), "updated_at": iso(start)})
            for o in (1, 2)
        ]
        event_id = 0
        for tid in range(1, tickets_per_tenant + 1):
            # whole hours now and then, so that events land exactly on midnight
            created = start + timedelta(seconds=rng.randrange(days * 86400 // 3600) * 3600 + rng.choice([0, 1, 1799]))
            requester = rng.choice([*end_users, 99])
            status = rng.choice(["new", "open"])
            now = created
            history: list[Record] = []
            if rng.random() < 0.93:  # a few tickets have no events at all
                event_id += 1
                history.append(event(event_id, tid, iso(now), "create", requester, public=True, value=status))
            for _ in range(rng.randrange(0, 9)):
                now += timedelta(seconds=rng.randrange(0, 36 * 3600))
                kind = rng.choice(["comment", "comment", "status_change", "status_change", "assignee_change",
                                   "priority_change"])  # fmt: skip
                author = rng.choice([*agents, *agents, requester, 55])
                event_id += 1
                if kind == "status_change":
                    new = rng.choice([s for s in ("new", "open", "pending", "hold", "solved", "closed") if s != status])
                    history.append(event(event_id, tid, iso(now), kind, author, previous_value=status, value=new))
                    status = new
                elif kind == "comment":
                    public = rng.choice([True, True, False, None])
                    history.append(event(event_id, tid, iso(now), kind, author, public=public))
                else:
                    history.append(event(event_id, tid, iso(now), kind, author, previous_value="a", value="b"))
            history += [dict(e) for e in history if rng.random() < 0.15]  # re-delivered events
            raw["events"] += [(tenant, e) for e in history]
            raw["tickets"].append(
                (
                    tenant,
                    ticket(
                        tid, iso(created), status, requester, rng.choice([*agents, None]),
                        group_id=rng.choice([1, 2, 3, None, 7]), organization_id=rng.choice([1, 2, None, 8]),
                    ),
                )
            )  # fmt: skip
    rng.shuffle(raw["events"])
    return raw


# ---------------------------------------------------------------------------------------------------------------
# Spark side: land the raw records as JSON files and read them back with the schemas
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Landed:
    raw: Raw
    tickets: DataFrame
    events: DataFrame
    users: DataFrame
    groups: DataFrame
    organizations: DataFrame


SCHEMAS: dict[str, StructType] = {
    "tickets": RAW_TICKET_SCHEMA,
    "events": RAW_TICKET_EVENT_SCHEMA,
    "users": RAW_USER_SCHEMA,
    "groups": RAW_GROUP_SCHEMA,
    "organizations": RAW_ORGANIZATION_SCHEMA,
}


def land(spark: SparkSession, root: Path, raw: Raw) -> Landed:
    frames = {}
    for name, schema in SCHEMAS.items():
        for tenant in sorted({t for t, _ in raw["tickets"]}):
            folder = root / name / f"tenant_id={tenant}"
            folder.mkdir(parents=True)
            (folder / "page-0.jsonl").write_text("".join(json.dumps(r) + "\n" for t, r in raw[name] if t == tenant))
        frames[name] = spark.read.schema(schema).json(str(root / name))
    return Landed(
        raw, normalize_tickets(frames["tickets"]), frames["events"], frames["users"], frames["groups"],
        frames["organizations"],
    )  # fmt: skip


DayRange = tuple[date | None, date | None]


def day_ranges(raw: Raw) -> list[DayRange]:
    """Open-ended, one-sided (starting inside the data, ending inside it) and reaching past both ends."""
    days = sorted(datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).date() for _, r in raw["tickets"])
    first, last = days[0], days[-1]
    return [
        (None, None),
        (first + timedelta(days=3), None),
        (None, last - timedelta(days=2)),
        (first - timedelta(days=3), last + timedelta(days=7)),
    ]


@dataclass
class Computed:
    """The transforms' outputs for one data set, computed once for the module (Spark jobs dominate its time)."""

    landed: Landed
    denormalized: list[Row]
    metrics: list[Row]
    daily: dict[DayRange, list[Row]]


def compute(landed: Landed) -> Computed:
    ranges = day_ranges(landed.raw)
    # All ranges in one job, rows labelled by range.
    per_range = [
        daily_ticket_counts(landed.tickets, landed.events, day_from, day_to).withColumn("range", F.lit(n))
        for n, (day_from, day_to) in enumerate(ranges)
    ]
    daily = reduce(DataFrame.unionByName, per_range).collect()
    return Computed(
        landed,
        denormalize_tickets(landed.tickets, landed.users, landed.groups, landed.organizations).collect(),
        ticket_metrics(landed.tickets, landed.events, landed.users).collect(),
        {day_range: [r for r in daily if r.range == n] for n, day_range in enumerate(ranges)},
    )


@pytest.fixture(scope="module")
def spark() -> SparkSession:
    session: SparkSession = local_spark()
    return session


@pytest.fixture(scope="module")
def edge(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return land(spark, tmp_path_factory.mktemp("edge"), edge_cases())


@pytest.fixture(scope="module")
def edge_computed(edge: Landed) -> Computed:
    return compute(edge)


@pytest.fixture(scope="module")
def random_computed(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Computed:
    return compute(land(spark, tmp_path_factory.mktemp("random"), random_dataset(seed=20260501)))


@pytest.fixture(params=["edge_computed", "random_computed"])
def computed(request: pytest.FixtureRequest) -> Computed:
    result: Computed = request.getfixturevalue(request.param)
    return result


def metrics_by_ticket(rows: list[Row]) -> dict[tuple[str, int], tuple[Any, ...]]:
    return {
        (r.tenant_id, r.ticket_id): (
            utc(r.created_at), r.current_status, utc(r.first_reply_at), r.first_reply_seconds, utc(r.solved_at),
            r.full_resolution_seconds, r.reopens, r.replies, r.agent_touches,
        )
        for r in rows
    }  # fmt: skip


def daily_by_day(rows: list[Row]) -> dict[tuple[str, date], tuple[int, ...]]:
    return {(r.tenant_id, r.day): (r.created, r.solved, r.reopened, r.backlog) for r in rows}


# ---------------------------------------------------------------------------------------------------------------
# Tests (Given: the data set of `computed`; When: the transforms ran on it in `compute`)
# ---------------------------------------------------------------------------------------------------------------


def test_denormalized_tickets_equal_a_python_lookup(computed: Computed) -> None:
    # Given tickets with known, unknown and missing references, denormalized
    rows, raw = computed.denormalized, computed.landed.raw

    # Then there is one row per ticket with the names looked up within its tenant
    got = {
        (r.tenant_id, r.ticket_id): (
            r.status, r.assignee_id, r.requester_name, r.requester_email, r.requester_role, r.assignee_name,
            r.group_name, r.organization_name,
        )
        for r in rows
    }  # fmt: skip
    assert len(rows) == len(raw["tickets"])
    assert got == expected_denormalized(raw)


def test_ticket_metrics_equal_a_python_replay(computed: Computed) -> None:
    # Given tickets and their (partly duplicated) events, with metrics computed
    rows, raw = computed.metrics, computed.landed.raw

    # Then every ticket's metrics equal the plain-Python computation
    assert len(rows) == len(raw["tickets"])
    assert metrics_by_ticket(rows) == expected_metrics(raw)


def test_daily_counts_equal_a_python_replay(computed: Computed) -> None:
    # Given daily counts for open-ended, one-sided and wider-than-the-data day ranges
    raw = computed.landed.raw
    assert len(computed.daily) == 4

    # Then every tenant has every day of each range, with counts equal to a day-by-day replay
    for (day_from, day_to), rows in computed.daily.items():
        got = daily_by_day(rows)
        assert len(rows) == len(got)
        assert got == expected_daily(raw, day_from, day_to), f"range {day_from} .. {day_to}"


def test_output_columns_have_the_documented_types(edge: Landed) -> None:
    # Given the edge-case data
    # When each transform is planned
    denormalized = denormalize_tickets(edge.tickets, edge.users, edge.groups, edge.organizations)
    metrics = ticket_metrics(edge.tickets, edge.events, edge.users)
    daily = daily_ticket_counts(edge.tickets, edge.events)

    # Then the columns have the documented names, order and types
    assert denormalized.dtypes[-6:] == [
        ("requester_name", "string"), ("requester_email", "string"), ("requester_role", "string"),
        ("assignee_name", "string"), ("group_name", "string"), ("organization_name", "string"),
    ]  # fmt: skip
    assert metrics.dtypes == [
        ("tenant_id", "string"), ("ticket_id", "bigint"), ("created_at", "timestamp"), ("current_status", "string"),
        ("first_reply_at", "timestamp"), ("first_reply_seconds", "bigint"), ("solved_at", "timestamp"),
        ("full_resolution_seconds", "bigint"), ("reopens", "bigint"), ("replies", "bigint"),
        ("agent_touches", "bigint"),
    ]  # fmt: skip
    assert daily.dtypes == [
        ("tenant_id", "string"), ("day", "date"), ("created", "bigint"), ("solved", "bigint"),
        ("reopened", "bigint"), ("backlog", "bigint"),
    ]  # fmt: skip


def test_edge_cases_have_the_values_worked_out_by_hand(edge_computed: Computed) -> None:
    # Given the hand-made edge cases, with metrics and daily counts computed
    metrics = metrics_by_ticket(edge_computed.metrics)
    daily = daily_by_day(edge_computed.daily[(None, None)])

    # Then the values are the ones worked out by hand
    # (created, status, first_reply_at, first_reply_s, solved_at, resolution_s, reopens, replies, touches)
    t1 = parse(at(1, 9))
    assert metrics[("acme", 1)] == (t1, "solved", parse(at(1, 10)), 3600, parse(at(1, 12)), 3 * 3600, 0, 1, 4)
    t2_solved = parse(at(5, 10))
    assert metrics[("acme", 2)] == (
        parse(at(1, 10)), "closed", parse(at(2, 8)), 22 * 3600, t2_solved, 4 * 86400, 1, 2, 6,
    )  # fmt: skip
    assert metrics[("acme", 3)][2:] == (None, None, None, None, 0, 0, 2)
    assert metrics[("acme", 4)][2:] == (None, None, None, None, 0, 0, 0)
    assert metrics[("acme", 5)][2:] == (None, None, parse(at(7)), 1, 0, 1, 2)
    beta_reply = datetime(2026, 5, 3, 10, 0, 0, 250000, tzinfo=UTC)
    assert metrics[("beta", 1)][2:] == (beta_reply, 3600, parse(at(3, 11)), None, 1, 1, 3)
    # acme days: 1 (t1 created+solved, t2 created), 2 (t2 solved, t3 created), 3 (t4), 4 (t2 reopened),
    # 5 (t2 solved), 6 (t5 created), 7 (t2 closed, t5 solved at midnight)
    assert [daily[("acme", date(2026, 5, d))] for d in range(1, 8)] == [
        (2, 1, 0, 1), (1, 1, 0, 1), (1, 0, 0, 2), (0, 0, 1, 3), (0, 1, 0, 2), (1, 0, 0, 3), (0, 1, 0, 2),
    ]  # fmt: skip
    assert ("acme", date(2026, 5, 8)) not in daily
    assert [daily[("beta", date(2026, 5, d))] for d in (3, 4)] == [(1, 1, 0, 0), (0, 0, 1, 1)]
    # from 2026-04-28 to 2026-05-13: zeros before the first day, the last backlog carried past the last day
    wide = daily_by_day(edge_computed.daily[(date(2026, 4, 28), date(2026, 5, 13))])
    assert len(wide) == 2 * 16
    assert wide[("beta", date(2026, 4, 28))] == (0, 0, 0, 0)
    assert wide[("beta", date(2026, 5, 13))] == (0, 0, 0, 1)
    assert wide[("acme", date(2026, 5, 13))] == (0, 0, 0, 2)


def test_a_reversed_day_range_is_refused(edge: Landed) -> None:
    # Given a range whose start is after its end
    # When daily counts are asked for it, Then the error names both days
    with pytest.raises(ValueError, match="2026-05-05 is after day_to 2026-05-01"):
        daily_ticket_counts(edge.tickets, edge.events, date(2026, 5, 5), date(2026, 5, 1))
