"""Query routing: every answer a rollup gives equals the base table's answer on the same data."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenant_analytics.local.postgres import ensure_database
from tenant_analytics.query.catalog import CATALOG
from tenant_analytics.query.contract import parse_query
from tenant_analytics.query.planner import plan_query
from tenant_analytics.sources.messaging import MessagingTenantSpec, generate_messaging_data
from tenant_analytics.sources.synthetic import TenantSpec, generate_dataset, latest_versions
from tenant_analytics.stores.base import CuratedFiles
from tenant_analytics.stores.postgres import PostgresStore

pytestmark = [pytest.mark.xdist_group("models")]

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 15, tzinfo=UTC)
MSG_START = datetime(2026, 3, 10, tzinfo=UTC)
MSG_END = datetime(2026, 3, 12, tzinfo=UTC)


def ticket_lines(tenant_id: str, count: int) -> list[bytes]:
    """Curated ticket rows (CSV of the tickets table) for the tenant's latest ticket versions; every seventh
    ticket has no channel and no priority, which rollups key as 'unknown' and 'none'."""
    versions = generate_dataset(9, [TenantSpec(tenant_id, count)], START, END)[tenant_id]
    lines = []
    for i, (ticket_id, t) in enumerate(sorted(latest_versions(versions, END).items())):
        channel, priority = ("", "") if i % 7 == 0 else (t["via"]["channel"], t["priority"] or "")
        assignee = "" if t["assignee_id"] is None else t["assignee_id"]
        cells = [ticket_id, t["created_at"], t["updated_at"], t["status"], priority, channel, t["requester_id"] or ""]
        lines.append((",".join(str(c) for c in [*cells, assignee, "", "", "", "", "", ""]) + "\n").encode())
    return lines


@pytest.fixture(scope="module")
def store(pg_admin: str) -> Iterator[PostgresStore]:
    database = "routing_" + uuid.uuid4().hex[:12]  # unique across xdist workers and runs
    s = PostgresStore("aurora-1", ensure_database(pg_admin, database))
    s.ensure_schema()
    for tenant_id, count in (("acme", 300), ("globex", 120)):
        s.merge_curated(tenant_id, {"tickets": CuratedFiles.from_bytes(ticket_lines(tenant_id, count))})
        data = generate_messaging_data(MessagingTenantSpec(tenant_id, count * 4), 4, MSG_START, MSG_END)
        for batch in data.batches:
            s.land_messaging(tenant_id, batch)
    s.refresh_models()
    yield s
    s.close()
    from tenant_analytics.local.postgres import drop_database

    drop_database(pg_admin, database)


def run(store: PostgresStore, document: dict[str, Any], *, use_rollups: bool) -> tuple[str, list[tuple[Any, ...]]]:
    plan = plan_query(parse_query(document), "acme", use_rollups=use_rollups)
    _, rows = store.query("acme", plan.sql, plan.params)
    return plan.answered_by, sorted(rows, key=repr)


def same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    if len(a) != len(b):
        return False
    for left, right in zip(a, b, strict=True):
        for x, y in zip(left, right, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if (x is None) != (y is None) or (x is not None and not math.isclose(x, y, rel_tol=1e-12)):
                    return False
            elif x != y:
                return False
    return True


DAY_ALIGNED = [START + timedelta(days=d) for d in range(0, 15, 3)]


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Any]:
    ds = CATALOG[draw(st.sampled_from(["tickets", "messages"]))]
    rollup_dims = sorted({d for r in ds.rollups for d in r.dimensions})
    measures = draw(st.lists(st.sampled_from(sorted(ds.measures)), min_size=1, max_size=3, unique=True))
    dims = draw(st.lists(st.sampled_from(sorted(ds.dimensions)), max_size=2, unique=True))
    doc: dict[str, Any] = {"dataset": ds.name, "measures": measures, "dimensions": dims, "limit": 10000}
    td = next(iter(ds.time_dimensions.values()))
    if draw(st.booleans()):
        time: dict[str, Any] = {"dimension": td.name}
        granularity = draw(st.sampled_from([None, *td.granularities]))
        if granularity:
            time["granularity"] = granularity
        if draw(st.booleans()):
            lo, hi = sorted(draw(st.lists(st.sampled_from(DAY_ALIGNED), min_size=2, max_size=2, unique=True)))
            if draw(st.booleans()):  # sometimes off the rollups' grain: the base table must answer
                lo += timedelta(hours=draw(st.integers(1, 23)))
            time["from"], time["to"] = lo.isoformat(), hi.isoformat()
        doc["time"] = time
    if rollup_dims and draw(st.booleans()):
        dim = draw(st.sampled_from(rollup_dims))
        values = {"channel": ["email", "web", "sms", "unknown", "push"], "priority": ["high", "none", "low"]}
        values["campaign_id"] = [1, 2, 3]
        op = draw(st.sampled_from(["eq", "ne", "in", "not_in"]))
        picked = draw(st.lists(st.sampled_from(values[dim]), min_size=1, max_size=2, unique=True))
        doc["filters"] = [{"dimension": dim, "op": op, "values": picked if op in ("in", "not_in") else picked[:1]}]
    return doc


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=queries())
def test_every_rollup_answer_equals_the_base_tables(store: PostgresStore, document: dict[str, Any]) -> None:
    # When a generated query is answered as routed and from the base table
    routed_by, routed = run(store, document, use_rollups=True)
    base_by, base = run(store, document, use_rollups=False)
    # Then the rows are the same, whichever table answered
    assert base_by in ("tickets", "message_status")
    assert same(routed, base), (document, routed_by)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"dataset": "tickets", "measures": ["tickets_created"]}, "tickets_monthly"),
        (
            {
                "dataset": "tickets",
                "measures": ["tickets_created", "solve_rate"],
                "dimensions": ["channel"],
                "time": {"dimension": "created_at", "granularity": "week"},
            },
            "tickets_daily",
        ),
        ({"dataset": "tickets", "measures": ["requesters"]}, "tickets"),  # not additive
        ({"dataset": "tickets", "measures": ["tickets_created"], "dimensions": ["status"]}, "tickets"),
        (
            {
                "dataset": "tickets",
                "measures": ["tickets_created"],
                "time": {"dimension": "created_at", "granularity": "hour"},
            },
            "tickets",
        ),
        (
            {
                "dataset": "tickets",
                "measures": ["tickets_created"],
                "time": {"dimension": "created_at", "from": "2026-03-01T12:00:00Z"},
            },
            "tickets",
        ),
        ({"dataset": "messages", "measures": ["delivery_rate", "delivered_within_60s"]}, "tenant_daily"),
        ({"dataset": "messages", "measures": ["messages_sent"], "dimensions": ["campaign_id"]}, "campaign_daily"),
        (
            {
                "dataset": "messages",
                "measures": ["messages_read"],
                "dimensions": ["channel"],
                "time": {"dimension": "sent_at", "granularity": "hour"},
            },
            "campaign_channel_hourly",
        ),
    ],
)
def test_the_smallest_table_that_answers_exactly_is_chosen(
    store: PostgresStore, document: dict[str, Any], expected: str
) -> None:
    routed_by, routed = run(store, {**document, "limit": 10000}, use_rollups=True)
    _, base = run(store, {**document, "limit": 10000}, use_rollups=False)
    assert routed_by == expected
    assert routed and same(routed, base)
