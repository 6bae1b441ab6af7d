"""Query routing: a dashboard's queries answered from the smallest rollup against the same queries forced onto
the base table, for one tenant with millions of tickets on the embedded PostgreSQL, in process (no cache).

The tickets are generated server-side (generate_series) and the models are refreshed in full once; each
dashboard query then runs ``--repeat`` times routed (the planner's choice) and ``--repeat`` times on the base
table (``use_rollups=False``). Every routed answer is checked against the base table's before timing.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from benchmarks._postgres import benchmark_store
from tenant_analytics.query.contract import parse_query
from tenant_analytics.query.planner import plan_query
from tenant_analytics.stores.postgres import PostgresStore

TENANT = "bench"
DASHBOARD: list[dict[str, Any]] = [
    {"dataset": "tickets", "measures": ["tickets_created"]},
    {
        "dataset": "tickets",
        "measures": ["tickets_created", "tickets_solved"],
        "time": {
            "dimension": "created_at",
            "granularity": "day",
            "from": "2026-03-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
        },
    },
    {"dataset": "tickets", "measures": ["tickets_created", "solve_rate"], "dimensions": ["channel"]},
    {
        "dataset": "tickets",
        "measures": ["tickets_unresolved"],
        "dimensions": ["priority"],
        "filters": [{"dimension": "channel", "op": "in", "values": ["email", "web"]}],
    },
    {
        "dataset": "tickets",
        "measures": ["tickets_created"],
        "time": {"dimension": "created_at", "granularity": "month"},
    },
    {
        "dataset": "tickets",
        "measures": ["tickets_assigned"],
        "dimensions": ["channel"],
        "time": {"dimension": "created_at", "granularity": "week"},
    },
]

# One year of tickets: channel, priority and status cycle with different periods, a third unassigned.
_LOAD_SQL = """
INSERT INTO support.tickets (tenant_id, ticket_id, created_at, updated_at, status, priority, channel, assignee_id)
SELECT %s, i,
       timestamptz '2026-01-01 00:00:00+00' + (i %% 525600) * interval '1 minute',
       timestamptz '2026-01-01 00:00:00+00' + (i %% 525600) * interval '1 minute' + interval '2 hours',
       (ARRAY['new','open','pending','solved','closed'])[1 + i %% 5],
       (ARRAY['low','normal','high','urgent'])[1 + i %% 4],
       (ARRAY['email','web','chat','api','voice','sms'])[1 + i %% 6],
       CASE WHEN i %% 3 = 0 THEN NULL ELSE i %% 500 END
FROM generate_series(1, %s) AS i
"""


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _load(url: str, tickets: int) -> float:
    """Insert the tickets as the database owner, without change capture (a bulk backfill), then analyze."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # skip capture triggers: a full refresh follows
        conn.execute(_LOAD_SQL, (TENANT, tickets))
        conn.execute("ANALYZE support.tickets")
    return time.perf_counter() - started


def _time(
    store: PostgresStore, document: dict[str, Any], *, use_rollups: bool, repeat: int
) -> tuple[str, list[float], Any]:
    plan = plan_query(parse_query({**document, "limit": 10000}), TENANT, use_rollups=use_rollups)
    timings, rows = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        _, rows = store.query(TENANT, plan.sql, plan.params)
        timings.append((time.perf_counter() - started) * 1000)
    return plan.answered_by, timings, sorted(rows or [], key=repr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=5_000_000, help="tickets of the tenant (default 5,000,000)")
    parser.add_argument("--repeat", type=int, default=7, help="runs of each query per plan")
    return parser.parse_args(list(argv) if argv is not None else [])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with benchmark_store("bench_routing") as (store, url):
        load_s = _load(url, args.tickets)
        started = time.perf_counter()
        store.refresh_models([TENANT], full=True)
        refresh_s = time.perf_counter() - started
        print(
            f"data: {args.tickets:,} tickets of one tenant (loaded in {load_s:.1f} s; models refreshed in full "
            f"in {refresh_s:.1f} s); machine: {platform.machine()} cores={os.cpu_count()} "
            f"python={platform.python_version()}"
        )
        routed_all: list[float] = []
        raw_all: list[float] = []
        for document in DASHBOARD:
            by, routed, routed_rows = _time(store, document, use_rollups=True, repeat=args.repeat)
            base, raw, raw_rows = _time(store, document, use_rollups=False, repeat=args.repeat)
            if routed_rows != raw_rows:
                print(f"routed answer differs from the base table's for {document}", file=sys.stderr)
                return 1
            routed_all += routed
            raw_all += raw
            print(
                f"  {by:<16} p50 {_p(routed, 50):8.2f} ms  p95 {_p(routed, 95):8.2f} ms   |  {base} "
                f"p50 {_p(raw, 50):8.1f} ms  p95 {_p(raw, 95):8.1f} ms   {document['measures']}"
            )
        routed_p95, raw_p95 = _p(routed_all, 95), _p(raw_all, 95)
        print(
            f"dashboard: routed p50 {_p(routed_all, 50):.2f} ms p95 {routed_p95:.2f} ms; "
            f"base table p50 {_p(raw_all, 50):.1f} ms p95 {raw_p95:.1f} ms"
        )
        print(f"BENCH query_routed_p95_ms {routed_p95:.2f} ms")
        print(f"BENCH query_raw_over_routed_p95 {raw_p95 / routed_p95:.1f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
