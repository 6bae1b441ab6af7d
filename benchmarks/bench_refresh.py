"""Incremental model refresh on PostgreSQL versus a full recomputation and a native materialized view refresh.

Run: ``.venv/bin/python -m benchmarks refresh`` (defaults) or ``.venv/bin/python benchmarks/bench_refresh.py
[--rows N] [--growth N,N,...] [--change F] [--repeats N]``. Uses $DATABASE_URL when set, else an embedded
PostgreSQL under .local/bench.

Data: ``messaging.events`` generated server-side with generate_series (20 tenants, 50 campaigns run one after
another and 5 templates each; per message a sent event, a delivery receipt for 9 in 10, a read receipt for 4
in 10, a failure for 1 in
20; sending times spread over 30 days in message order). The change is what an hourly load brings: the newest
messages' receipts arrive late (their timestamps are updated) and new messages are sent, half and half.

* Headline, at ``--rows`` events with a change of ``--change`` of them (made and refreshed ``--repeats`` times,
  the median refresh reported): the messaging models (message status, campaign x channel x hour, campaign x day,
  tenant x day, failure reasons, template categories) refreshed by the engine incrementally, by the engine in
  full, and as native PostgreSQL materialized views (``REFRESH MATERIALIZED VIEW`` in dependency order).
* Growth: at each size of ``--growth`` the same number of changed rows (``--change`` of the smallest size);
  incremental time should stay flat while a full recomputation grows with the table.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlglot import exp

from tenant_analytics.local.postgres import admin_url, drop_database, ensure_database
from tenant_analytics.models import ModelProject, PostgresModelEngine, load_project
from tenant_analytics.models.project import MODEL_SCHEMA
from tenant_analytics.settings import database_url

TENANTS = 20
CAMPAIGNS = 50
TEMPLATES = 5
EVENTS_PER_MESSAGE = 1 + 0.9 + 0.4 + 0.05
NATIVE_SCHEMA = "native"

LANDED = """
CREATE SCHEMA IF NOT EXISTS messaging;
CREATE TABLE messaging.events (
    tenant_id text NOT NULL, message_id text NOT NULL, event_type text NOT NULL, event_at timestamptz NOT NULL,
    campaign_id bigint, template_id bigint, channel text, error_code text,
    PRIMARY KEY (tenant_id, message_id, event_type)
);
CREATE TABLE messaging.campaigns (
    tenant_id text NOT NULL, campaign_id bigint NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE TABLE messaging.templates (
    tenant_id text NOT NULL, template_id bigint NOT NULL, name text, category text,
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, template_id)
);
"""

# Message g (1..messages) belongs to tenant g mod 20 and is sent at start + g * spacing; every tenant runs its
# campaigns one after another (each on one channel) over the 30 days.
LOAD = """
INSERT INTO messaging.campaigns (tenant_id, campaign_id, name)
SELECT 'tenant-' || lpad(t::text, 3, '0'), c, 'campaign ' || c
FROM generate_series(0, %(tenants)s - 1) AS t, generate_series(1, %(campaigns)s) AS c;
INSERT INTO messaging.templates (tenant_id, template_id, name, category)
SELECT 'tenant-' || lpad(t::text, 3, '0'), c, 'template ' || c, (ARRAY['promo', 'otp', 'news', 'alert', 'survey'])[c]
FROM generate_series(0, %(tenants)s - 1) AS t, generate_series(1, %(templates)s) AS c;
INSERT INTO messaging.events
SELECT 'tenant-' || lpad((g %% %(tenants)s)::text, 3, '0'), 'm' || g, kind,
       timestamptz '2026-01-01 00:00+00' + g * %(spacing)s * interval '1 second'
           + CASE kind WHEN 'sent' THEN interval '0' ELSE (g %% 97) * interval '1 second' END
           + CASE kind WHEN 'read' THEN interval '5 minutes' ELSE interval '0' END,
       CASE kind WHEN 'sent' THEN 1 + g * %(campaigns)s / (%(messages)s + 1) END,
       CASE kind WHEN 'sent' THEN 1 + g %% %(templates)s END,
       CASE kind WHEN 'sent'
           THEN (ARRAY['sms', 'email', 'push', 'whatsapp'])[1 + g * %(campaigns)s / (%(messages)s + 1) %% 4] END,
       CASE kind WHEN 'failed' THEN 'E' || (g %% 7) END
FROM generate_series(1, %(messages)s) AS g
CROSS JOIN LATERAL (VALUES ('sent', true), ('delivered', g %% 10 <> 0), ('read', g %% 10 < 4),
                           ('failed', g %% 20 = 0)) AS k(kind, present)
WHERE present;
"""

# Late receipts for the newest messages (updates) and newly sent messages (inserts), half each.
CHANGE_RECEIPTS = """
UPDATE messaging.events SET event_at = event_at + interval '2 seconds'
WHERE event_type = 'delivered' AND (tenant_id, message_id) IN (
    SELECT 'tenant-' || lpad((g %% %(tenants)s)::text, 3, '0'), 'm' || g
    FROM generate_series(%(messages)s - %(updates)s * 10 / 9, %(messages)s) AS g  -- the newest loaded messages
    LIMIT %(updates)s * 10 / 9 + 1)
"""
CHANGE_SENDS = """
INSERT INTO messaging.events
SELECT 'tenant-' || lpad((g %% %(tenants)s)::text, 3, '0'), 'm' || g, 'sent',
       timestamptz '2026-01-01 00:00+00' + g * %(spacing)s * interval '1 second',
       %(campaigns)s, 1 + g %% %(templates)s, (ARRAY['sms', 'email', 'push', 'whatsapp'])[1 + %(campaigns)s %% 4], NULL
FROM generate_series(%(next)s, %(next)s + %(inserts)s - 1) AS g
"""


@dataclass
class Run:
    """Timings at one table size."""

    events: int
    changed: int
    load_s: float
    incremental_s: float
    full_s: float
    native_s: float | None
    small_changed: int = 0
    small_incremental_s: float = 0.0


def messaging_project() -> ModelProject:
    """The packaged messaging models (the support models read another source)."""
    project = load_project()
    return ModelProject(project.directory, tuple(m for m in project.models if m.domain == "messaging"))


def native_statements(project: ModelProject) -> list[str]:
    """CREATE MATERIALIZED VIEW of every model, refs pointing at the native views instead of summary tables."""
    statements = [f"CREATE SCHEMA {NATIVE_SCHEMA}"]
    for model in project.models:
        query = model.select()
        for table in list(query.find_all(exp.Table)):
            if table.db == MODEL_SCHEMA:
                table.set("db", exp.to_identifier(NATIVE_SCHEMA))
        statements.append(
            f"CREATE MATERIALIZED VIEW {NATIVE_SCHEMA}.{model.name} AS {query.sql('postgres', comments=False)}"
        )
    return statements


def _execute(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any] | None = None) -> None:
    conn.execute(statement.encode(), params)


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run_size(admin: str, events: int, changed: int, native: bool, small_change: int = 0, repeats: int = 1) -> Run:
    """Load ``events`` events, bring the models up to date, change ``changed`` rows, time the refreshes.

    The change and its incremental refresh are repeated ``repeats`` times; the median refresh time is reported.

    With ``small_change``, a second change of that many rows follows and its incremental refresh is timed too
    (the growth series at this size, without loading the table again).
    """
    project = messaging_project()
    name = f"bench_refresh_{uuid.uuid4().hex[:8]}"
    url = ensure_database(admin, name)
    messages = int(events / EVENTS_PER_MESSAGE)
    params = {
        "tenants": TENANTS,
        "campaigns": CAMPAIGNS,
        "templates": TEMPLATES,
        "messages": messages,
        "spacing": max(1, 30 * 86400 // messages),
        "updates": changed // 2,
        "inserts": changed - changed // 2,
        "next": messages + 1,
    }
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            started = time.perf_counter()
            _execute(conn, LANDED)
            for statement in LOAD.split(";")[:-1]:
                _execute(conn, statement, params)
            conn.execute("VACUUM ANALYZE")
            loaded = conn.execute("SELECT count(*) FROM messaging.events").fetchone()
            load_s = time.perf_counter() - started
            engine = PostgresModelEngine(url)
            engine.ensure(project)  # change capture starts after the initial load, as on a store taking over data
            engine.refresh(project)
            if native:
                for statement in native_statements(project):
                    _execute(conn, statement)
            conn.execute("VACUUM ANALYZE")
            # The same change `repeats` times over (the newest receipts re-timed again, further messages sent): one
            # refresh varies by about 10% from run to run on a small machine, so the median is reported.
            times: list[float] = []
            for repeat in range(repeats):
                round_params = dict(params, next=params["next"] + repeat * params["inserts"])
                with conn.transaction():
                    changed = sum(
                        conn.execute(q.encode(), round_params).rowcount for q in (CHANGE_RECEIPTS, CHANGE_SENDS)
                    )
                started = time.perf_counter()
                records = engine.refresh(project)
                times.append(time.perf_counter() - started)
                print(
                    f"  incremental {times[-1]:.2f} s by model: "
                    + ", ".join(f"{r.model} {r.duration_s:.2f} s ({r.rows_changed:,} rows)" for r in records),
                    flush=True,
                )
            incremental_s = statistics.median(times)
            full_s = timed(lambda: engine.refresh(project, full=True))
            native_s = None
            if native:

                def refresh_native() -> None:
                    for model in project.models:
                        _execute(conn, f"REFRESH MATERIALIZED VIEW {NATIVE_SCHEMA}.{model.name}")

                native_s = timed(refresh_native)
            small_changed, small_incremental_s = 0, 0.0
            if small_change:
                more = dict(params, next=messages + 1 + repeats * params["inserts"], updates=small_change // 2)
                more["inserts"] = small_change - small_change // 2
                with conn.transaction():
                    small_changed = sum(
                        conn.execute(q.encode(), more).rowcount for q in (CHANGE_RECEIPTS, CHANGE_SENDS)
                    )
                small_incremental_s = timed(lambda: engine.refresh(project))
                print(f"  then {small_changed:,} changed: incremental {small_incremental_s:.2f} s", flush=True)
        print(
            f"  {loaded[0] if loaded else 0:>11,} events, {changed:,} changed: load {load_s:.1f} s, "
            f"incremental {incremental_s:.2f} s (median of {len(times)}), full {full_s:.2f} s"
            + (f", native REFRESH MATERIALIZED VIEW {native_s:.2f} s" if native_s is not None else ""),
            flush=True,
        )
        return Run(
            loaded[0] if loaded else 0,
            changed,
            load_s,
            incremental_s,
            full_s,
            native_s,
            small_changed,
            small_incremental_s,
        )
    finally:
        drop_database(admin, name)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000, help="events of the headline comparison")
    parser.add_argument("--growth", default="1000000,3000000,10000000", help="comma-separated table sizes")
    parser.add_argument("--change", type=float, default=0.01, help="changed fraction of the table")
    parser.add_argument("--repeats", type=int, default=3, help="incremental refreshes of the headline (median)")
    # Called without arguments by `make bench` (python -m benchmarks), whose own arguments are not ours.
    return parser.parse_args(list(argv) if argv is not None else [])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> str:
    # Other work on the machine slows every figure: say how busy it was.
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("tenant_analytics.models").setLevel(logging.ERROR)  # first refreshes are full, as expected
    sizes = sorted(int(s) for s in args.growth.split(",") if s.strip())
    admin = admin_url(Path(".local/bench"), database_url())
    with psycopg.connect(admin, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    print(f"machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.platform()}; {_load()}")
    print(
        f"postgresql {version[0] if version else '?'}; models: {', '.join(m.name for m in messaging_project().models)}"
    )

    growth_change = int(sizes[0] * args.change)
    print(
        f"headline: {args.rows:,} events, {args.change:.1%} changed; "
        f"growth: {growth_change:,} changed rows at each size"
    )
    headline = run_size(
        admin, args.rows, int(args.rows * args.change), native=True, small_change=growth_change, repeats=args.repeats
    )
    growth = [
        (headline.full_s, headline.small_incremental_s)
        if size == args.rows
        else (lambda run: (run.full_s, run.incremental_s))(run_size(admin, size, growth_change, False))
        for size in sizes
    ]
    print(
        "growth (events: incremental s, full s): "
        + ", ".join(f"{size:,}: {inc:.2f}, {full:.2f}" for size, (full, inc) in zip(sizes, growth, strict=True))
    )
    print(f"at the end: {_load()}")
    native_s = headline.native_s or 0.0
    print(f"BENCH refresh_full_over_incremental {headline.full_s / headline.incremental_s:.1f} x")
    print(f"BENCH refresh_native_over_incremental {native_s / headline.incremental_s:.1f} x")
    print(
        f"BENCH refresh_incremental_growth_{_short(sizes[0])}_to_{_short(sizes[-1])} "
        f"{growth[-1][1] / growth[0][1]:.2f} x"
    )
    print(f"BENCH refresh_full_growth_{_short(sizes[0])}_to_{_short(sizes[-1])} {growth[-1][0] / growth[0][0]:.2f} x")
    return 0


def _short(size: int) -> str:
    return f"{size // 1_000_000}m" if size >= 1_000_000 and size % 1_000_000 == 0 else f"{size // 1000}k"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
