"""The engine on model shapes the shipped models do not have: any table alias, time-zone buckets.

Each test compares the summary tables after incremental refreshes with the models' own SELECTs run directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlglot

from tenant_analytics.models import ModelProject, PostgresModelEngine, load_project, model_query_postgres
from tenant_analytics.models.redshift import redshift_time_bucket

pytestmark = pytest.mark.xdist_group("models")

EVENTS = "{{ source('messaging.events') }}"
# The aliases of the SQL the engine generates around a model's own expressions (delta.py, postgres.py).
ENGINE_ALIASES = ("p", "a", "t", "u", "k", "n")


def connect(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def write_project(root: Path, files: dict[str, str]) -> ModelProject:
    for name, text in files.items():
        path = root / "messaging" / f"{name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return load_project(root)


def mismatches(conn: psycopg.Connection[Any], project: ModelProject) -> dict[str, Any]:
    """The models whose summary table differs from their SELECT run directly, with both row sets."""
    found = {}
    for model in project.models:
        stored = sorted(conn.execute(f"SELECT * FROM models.{model.name}").fetchall(), key=repr)
        full = sorted(conn.execute(model_query_postgres(model)).fetchall(), key=repr)
        if stored != full:
            found[model.name] = (stored, full)
    return found


def send(conn: psycopg.Connection[Any], message: str, at: str, channel: str = "sms") -> None:
    conn.execute(
        "INSERT INTO messaging.events VALUES ('acme', %s, 'sent', %s, 1, 10, %s, NULL)", (message, at, channel)
    )


def test_a_model_may_use_any_alias_the_engine_uses_in_the_sql_it_generates(models_db: str, tmp_path: Path) -> None:
    # Given, for each alias the engine's own SQL uses, a model recomputing its groups (an expression over a grouped
    # column and an aggregate) and one kept by deltas (with a MAX), both reading the events under that alias
    files = {}
    for x in ENGINE_ALIASES:
        files[f"by_kind_{x}"] = (
            "{{ config(grain=['tenant_id', 'medium', 'channel']) }}\n"
            f"SELECT {x}.tenant_id, {x}.channel AS medium, {x}.event_type AS channel, COUNT(*) AS events,\n"
            f"    CASE WHEN {x}.channel = 'sms' THEN COUNT(*) * 2 ELSE COUNT(*) END AS cost\n"
            f"FROM {EVENTS} AS {x} WHERE {x}.channel IS NOT NULL GROUP BY 1, 2, 3"
        )
        files[f"latest_{x}"] = (
            "{{ config(grain=['tenant_id', 'channel']) }}\n"
            f"SELECT {x}.tenant_id, COALESCE({x}.channel, 'none') AS channel, COUNT(*) AS events,\n"
            f"    MAX({x}.event_at) AS last_at, SUM({x}.campaign_id) AS campaigns\n"
            f"FROM {EVENTS} AS {x} WHERE {x}.campaign_id IS NOT NULL GROUP BY 1, 2"
        )
    project = write_project(tmp_path, files)
    engine = PostgresModelEngine(models_db)
    engine.ensure(project)
    with connect(models_db) as conn:
        send(conn, "m1", "2026-01-01T10:00:00Z")
        send(conn, "m2", "2026-01-01T11:00:00Z", channel="email")
        engine.refresh(project)

        # When events are added, moved to another channel and deleted, and the models refreshed incrementally
        send(conn, "m3", "2026-01-01T12:00:00Z")
        conn.execute("UPDATE messaging.events SET channel = 'sms' WHERE message_id = 'm2'")
        conn.execute("DELETE FROM messaging.events WHERE message_id = 'm1'")
        records = engine.refresh(project)

        # Then every model equals its SELECT run directly, whatever its alias
        assert {r.mode for r in records} == {"incremental"}, records
        assert mismatches(conn, project) == {}


def test_a_day_bucket_in_a_time_zone_recomputes_a_25_hour_day_whole(models_db: str, tmp_path: Path) -> None:
    # Given days in Paris time, whose day of 2025-10-26 lasts 25 hours (summer time ends), with three sends on it,
    # the last one at 23:30 local time (22:30 UTC, more than 24 hours after the day began at 22:00 UTC the day before)
    project = write_project(
        tmp_path,
        {
            "paris_daily": "{{ config(grain=['tenant_id', 'day']) }}\n"
            "SELECT e.tenant_id, DATE_TRUNC('day', e.event_at, 'Europe/Paris') AS day,\n"
            "    COUNT(*) AS events, MIN(e.event_at) AS first_at\n"
            f"FROM {EVENTS} AS e GROUP BY 1, 2"
        },
    )
    engine = PostgresModelEngine(models_db)
    engine.ensure(project)
    with connect(models_db) as conn:
        for message, at in [("a", "2025-10-26T22:30:00Z"), ("b", "2025-10-26T10:00:00Z"), ("c", "2025-10-26T12:00Z")]:
            send(conn, message, at)
        engine.refresh(project)

        # When the day's earliest send is deleted, so that its MIN is recomputed from the day's rows
        conn.execute("DELETE FROM messaging.events WHERE message_id = 'b'")
        [record] = engine.refresh(project)

        # Then the day still counts the send of its 25th hour
        assert record.mode == "incremental"
        assert mismatches(conn, project) == {}
        assert conn.execute("SELECT events FROM models.paris_daily").fetchall() == [(2,)]


def test_the_redshift_spelling_of_a_bucket_in_a_time_zone_is_the_bucket_postgresql_computes(models_db: str) -> None:
    # Given instants every 10 minutes around the daylight-saving changes of 2026 (the repeated hour included)
    instants = (
        "SELECT g FROM generate_series(timestamptz '2026-03-27 00:00Z', timestamptz '2026-04-07 00:00Z', "
        "interval '10 minutes') AS g UNION ALL SELECT g FROM generate_series(timestamptz '2026-10-23 00:00Z', "
        "timestamptz '2026-11-03 00:00Z', interval '10 minutes') AS g"
    )
    with connect(models_db) as conn:
        for zone in ("Europe/Paris", "America/New_York", "Australia/Lord_Howe"):  # one-hour and half-hour shifts
            for unit in ("hour", "day", "week", "month"):
                # When a bucket is computed by PostgreSQL's three-argument DATE_TRUNC and as the Redshift view
                # spells it (AT TIME ZONE and timestamp arithmetic mean the same on both), both on PostgreSQL
                bucket = sqlglot.parse_one(f"DATE_TRUNC('{unit}', g, '{zone}')", read="postgres")
                spelled = redshift_time_bucket(bucket.copy()).sql("postgres")
                counted = conn.execute(
                    f"SELECT count(*), count(*) FILTER (WHERE {bucket.sql('postgres')} IS DISTINCT FROM {spelled}) "
                    f"FROM ({instants}) AS i"
                ).fetchone()

                # Then every instant falls in the same bucket
                assert counted is not None and counted[0] > 3000 and counted[1] == 0, (zone, unit, spelled, counted)
