"""The PostgreSQL model engine on the embedded PostgreSQL: incremental refreshes equal full recomputations."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenant_analytics.errors import InvalidInput, StoreUnavailable
from tenant_analytics.models import ModelProject, PostgresModelEngine, load_project, model_query_postgres

pytestmark = pytest.mark.xdist_group("models")

PROJECT = load_project()
T0 = datetime(2026, 1, 1, 22, 0, tzinfo=UTC)  # near midnight: changes cross hour and day buckets
TENANTS = ("acme", "globex")


def connect(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def summary(conn: psycopg.Connection[Any], model: str, tenants: tuple[str, ...] | None = None) -> list[tuple[Any, ...]]:
    rows = conn.execute(f"SELECT * FROM models.{model}").fetchall()
    return sorted((r for r in rows if tenants is None or r[0] in tenants), key=repr)


def recomputed(
    conn: psycopg.Connection[Any], project: ModelProject, model: str, tenants: tuple[str, ...] | None = None
) -> list[tuple[Any, ...]]:
    rows = conn.execute(model_query_postgres(project.get(model))).fetchall()
    return sorted((r for r in rows if tenants is None or r[0] in tenants), key=repr)


def assert_all_equal_full(
    conn: psycopg.Connection[Any], project: ModelProject = PROJECT, tenants: tuple[str, ...] | None = None
) -> None:
    for model in project.models:
        assert summary(conn, model.name, tenants) == recomputed(conn, project, model.name, tenants), model.name


# ---------------------------------------------------------------------------------------------- operations


def upsert_event(
    tenant: str, message: int, kind: str, minute: int, campaign: int, template: int, channel: str, error: str | None
) -> tuple[str, tuple[Any, ...]]:
    """An upsert of one event as (statement, parameters); campaign, template and channel go on sent events only."""
    sent = kind == "sent"
    return (
        "INSERT INTO messaging.events VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, message_id, "
        "event_type) DO UPDATE SET event_at = EXCLUDED.event_at, campaign_id = EXCLUDED.campaign_id, "
        "template_id = EXCLUDED.template_id, channel = EXCLUDED.channel, error_code = EXCLUDED.error_code",
        (
            tenant,
            f"m{message}",
            kind,
            T0 + timedelta(minutes=minute),
            campaign if sent else None,
            template if sent else None,
            channel if sent else None,
            error if kind == "failed" else None,
        ),
    )


tenants = st.sampled_from(TENANTS)
events = st.builds(
    upsert_event,
    tenants,
    st.integers(0, 5),
    st.sampled_from(["sent", "delivered", "read", "failed"]),
    st.integers(0, 150),
    st.integers(1, 3),
    st.integers(10, 11),
    st.sampled_from(["sms", "email"]),
    st.sampled_from([None, "E1", "E2"]),
)
event_deletes = st.builds(
    lambda t, m, k: (
        "DELETE FROM messaging.events WHERE tenant_id = %s AND message_id = %s AND event_type = %s",
        (t, f"m{m}", k),
    ),
    tenants,
    st.integers(0, 5),
    st.sampled_from(["sent", "delivered", "read", "failed"]),
)
campaigns = st.builds(
    lambda t, c, n: (
        "INSERT INTO messaging.campaigns (tenant_id, campaign_id, name) VALUES (%s, %s, %s) "
        "ON CONFLICT (tenant_id, campaign_id) DO UPDATE SET name = EXCLUDED.name",
        (t, c, n),
    ),
    tenants,
    st.integers(1, 3),
    st.sampled_from(["spring", "summer", "autumn"]),
)
campaign_deletes = st.builds(
    lambda t, c: ("DELETE FROM messaging.campaigns WHERE tenant_id = %s AND campaign_id = %s", (t, c)),
    tenants,
    st.integers(1, 3),
)
templates = st.builds(
    lambda t, i, c: (
        "INSERT INTO messaging.templates (tenant_id, template_id, name, category) VALUES (%s, %s, 'x', %s) "
        "ON CONFLICT (tenant_id, template_id) DO UPDATE SET category = EXCLUDED.category",
        (t, i, c),
    ),
    tenants,
    st.integers(10, 11),
    st.sampled_from(["promo", "otp", None]),
)
tickets = st.builds(
    lambda t, i, h, s, p, c, a: (
        "INSERT INTO support.tickets (tenant_id, ticket_id, created_at, updated_at, status, priority, channel, "
        "assignee_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET "
        "created_at = EXCLUDED.created_at, status = EXCLUDED.status, priority = EXCLUDED.priority, "
        "channel = EXCLUDED.channel, assignee_id = EXCLUDED.assignee_id",
        (t, i, T0 + timedelta(hours=h), T0, s, p, c, a),
    ),
    tenants,
    st.integers(1, 6),
    st.integers(0, 24 * 40),  # spans two months
    st.sampled_from(["new", "open", "solved"]),
    st.sampled_from(["low", "high", None]),
    st.sampled_from(["email", "web", None]),
    st.sampled_from([None, 7]),
)
ticket_deletes = st.builds(
    lambda t, i: ("DELETE FROM support.tickets WHERE tenant_id = %s AND ticket_id = %s", (t, i)),
    tenants,
    st.integers(1, 6),
)
operations = st.one_of(events, events, event_deletes, campaigns, campaign_deletes, templates, tickets, ticket_deletes)
scopes = st.one_of(st.none(), st.just(None), st.lists(tenants, min_size=1, max_size=1, unique=True).map(tuple))
batches = st.lists(st.tuples(st.lists(operations, min_size=1, max_size=8), scopes), min_size=1, max_size=3)


@pytest.fixture
def engine_db(models_db: str) -> str:
    PostgresModelEngine(models_db).ensure(PROJECT)
    return models_db


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_every_incremental_refresh_equals_a_full_recomputation(engine_db: str, batches: list[Any]) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        # Given empty sources and models brought up to date (the TRUNCATE is captured: the refresh is full)
        conn.execute("TRUNCATE support.tickets, messaging.events, messaging.campaigns, messaging.templates")
        engine.refresh(PROJECT)
        assert_all_equal_full(conn)
        for statements, scope in batches:
            # When random inserts, updates and deletes land and the models are refreshed (for some tenants or all)
            with conn.transaction():
                for statement, params in statements:
                    conn.execute(statement, params)
            records = engine.refresh(PROJECT, tenant_ids=scope)

            # Then every refresh was incremental and every model equals its full recomputation in the scope
            assert {r.mode for r in records} == {"incremental"}, records
            assert_all_equal_full(conn, tenants=scope)
        engine.refresh(PROJECT)
        assert_all_equal_full(conn)


def seed(conn: psycopg.Connection[Any]) -> None:
    for statement, params in [
        upsert_event("acme", 1, "sent", 0, 1, 10, "sms", None),
        upsert_event("acme", 1, "delivered", 1, 1, 10, "sms", None),
        upsert_event("acme", 2, "sent", 5, 1, 10, "sms", None),
        upsert_event("globex", 1, "sent", 0, 1, 10, "email", None),
    ]:
        conn.execute(statement, params)
    conn.execute(
        "INSERT INTO messaging.campaigns (tenant_id, campaign_id, name) "
        "VALUES ('acme', 1, 'spring'), ('globex', 1, 'g')"
    )
    conn.execute(
        "INSERT INTO messaging.templates (tenant_id, template_id, category) "
        "VALUES ('acme', 10, 'promo'), ('globex', 10, 'otp')"
    )


def test_a_nested_model_picks_up_its_parents_changes(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        # Given refreshed models over a few messages
        seed(conn)
        engine.refresh(PROJECT)
        before = conn.execute("SELECT sent, delivered FROM models.tenant_daily WHERE tenant_id = 'acme'").fetchall()

        # When a delivery receipt lands for the second message, before any other change
        conn.execute(*upsert_event("acme", 2, "delivered", 6, 0, 0, "", None))
        records = {r.model: r for r in engine.refresh(PROJECT)}

        # Then the change flows message_status -> hourly -> daily -> tenant, each step incremental
        after = conn.execute("SELECT sent, delivered FROM models.tenant_daily WHERE tenant_id = 'acme'").fetchall()
        assert before == [(2, 1)] and after == [(2, 2)]
        for name in ("message_status", "campaign_channel_hourly", "campaign_daily", "tenant_daily"):
            assert records[name].mode == "incremental" and records[name].rows_changed == 1, records[name]
        assert records["tickets_daily"].rows_changed == 0
        assert_all_equal_full(conn)


def test_renaming_a_campaign_recomputes_the_groups_that_join_it(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        seed(conn)
        for statement, params in [
            upsert_event("acme", 3, "sent", 7, 1, 10, "sms", None),
            upsert_event("acme", 3, "failed", 8, 0, 0, "", "blocked"),
        ]:
            conn.execute(statement, params)
        engine.refresh(PROJECT)
        # When master data changes (no event changes)
        conn.execute("UPDATE messaging.campaigns SET name = 'spring sale' WHERE tenant_id = 'acme'")
        records = {r.model: r for r in engine.refresh(PROJECT)}
        # Then the enriched groups carry the new name, incrementally, and models without the join are untouched
        names = conn.execute(
            "SELECT DISTINCT campaign_name FROM models.failure_reasons_daily WHERE tenant_id = 'acme'"
        ).fetchall()
        assert names == [("spring sale",)]
        assert records["failure_reasons_daily"].mode == "incremental"
        assert records["failure_reasons_daily"].rows_changed == 1
        assert records["campaign_channel_hourly"].rows_changed == 0
        assert records["message_status"].rows_changed == 0
        # And a rename to a name that sorts first replaces the old one (MAX(c.name) loses its old value)
        conn.execute("UPDATE messaging.campaigns SET name = 'autumn' WHERE tenant_id = 'acme'")
        engine.refresh(PROJECT)
        renamed = "SELECT DISTINCT campaign_name FROM models.failure_reasons_daily WHERE tenant_id = 'acme'"
        assert conn.execute(renamed).fetchall() == [("autumn",)]
        # And deleting the campaign removes its enriched groups (inner join)
        conn.execute("DELETE FROM messaging.campaigns WHERE tenant_id = 'acme'")
        engine.refresh(PROJECT)
        remaining = "SELECT count(*) FROM models.failure_reasons_daily WHERE tenant_id = 'acme'"
        assert conn.execute(remaining).fetchone() == (0,)
        assert_all_equal_full(conn)


def test_the_query_role_sees_only_its_tenants_rows(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        seed(conn)
        engine.refresh(PROJECT)
        assert {r[0] for r in conn.execute("SELECT tenant_id FROM models.message_status")} == {"acme", "globex"}
        # When ta_query reads a summary table with app.tenant_id set, or unset
        with conn.transaction():
            conn.execute("SET LOCAL ROLE ta_query")
            conn.execute("SELECT set_config('app.tenant_id', 'globex', true)")
            seen = {r[0] for r in conn.execute("SELECT tenant_id FROM models.tenant_daily")}
        with conn.transaction():
            conn.execute("SET LOCAL ROLE ta_query")
            unset = conn.execute("SELECT count(*) FROM models.message_status").fetchone()
        # Then only that tenant's rows, and none without a tenant
        assert seen == {"globex"}
        assert unset == (0,)
        # And the query role cannot read the change log or write a summary table
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SET LOCAL ROLE ta_query")
            conn.execute('SELECT count(*) FROM models."changes:messaging.events"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
            conn.execute("SET LOCAL ROLE ta_query")
            conn.execute("DELETE FROM models.tenant_daily")


def test_refreshes_are_logged_with_scope_mode_rows_and_duration(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        seed(conn)
        first = engine.refresh(PROJECT, models=["message_status"])
        conn.execute(*upsert_event("acme", 3, "sent", 9, 1, 10, "sms", None))
        conn.execute(*upsert_event("globex", 3, "sent", 9, 1, 10, "sms", None))
        # When one tenant's changes are applied
        second = engine.refresh(PROJECT, models=["message_status"], tenant_ids=["acme"])
        logged = conn.execute(
            "SELECT model, tenant_scope, mode, rows_changed, duration_s, warning FROM models.refresh_log ORDER BY id"
        ).fetchall()
        # Then the log holds one row per refresh, as returned
        assert [(r.model, r.mode, r.rows_changed, r.warning) for r in first] == [
            ("message_status", "full", 3, "first refresh")
        ]
        assert [(r.model, r.tenant_scope, r.mode, r.rows_changed) for r in second] == [
            ("message_status", ("acme",), "incremental", 1)
        ]
        assert [row[:4] for row in logged] == [
            ("message_status", None, "full", 3),
            ("message_status", ["acme"], "incremental", 1),
        ]
        assert all(row[4] > 0 for row in logged)
        assert engine.refresh_log(limit=1)[0].tenant_scope == ("acme",)
        # And globex's change is still pending until its own refresh
        assert summary(conn, "message_status", ("globex",)) != recomputed(conn, PROJECT, "message_status", ("globex",))
        assert engine.refresh(PROJECT, models=["message_status"])[0].rows_changed == 1
        assert summary(conn, "message_status") == recomputed(conn, PROJECT, "message_status")


def write_model(root: Path, name: str, text: str) -> None:
    path = root / "support" / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_model_that_cannot_be_maintained_incrementally_is_refreshed_in_full_with_a_warning(
    models_db: str, tmp_path: Path
) -> None:
    # Given a model with an outer join
    write_model(
        tmp_path,
        "assigned",
        "{{ config(grain=['tenant_id', 'ticket_id']) }}\n"
        "SELECT t.tenant_id, t.ticket_id, COUNT(o.ticket_id) AS same_requester\n"
        "FROM {{ source('support.tickets') }} AS t\n"
        "LEFT JOIN {{ source('support.tickets') }} AS o\n"
        "    ON o.tenant_id = t.tenant_id AND o.requester_id = t.requester_id\n"
        "GROUP BY t.tenant_id, t.ticket_id",
    )
    project = load_project(tmp_path)
    engine = PostgresModelEngine(models_db)
    engine.ensure(project)
    with connect(models_db) as conn:
        conn.execute(
            "INSERT INTO support.tickets (tenant_id, ticket_id, created_at, updated_at, requester_id) "
            "SELECT 'acme', g, now(), now(), g % 2 FROM generate_series(1, 5) AS g"
        )
        engine.refresh(project)
        conn.execute("DELETE FROM support.tickets WHERE ticket_id = 1")
        # When refreshed again
        [record] = engine.refresh(project)
        # Then in full, saying why, and still right
        assert record.mode == "full"
        assert record.warning is not None and "LEFT OUTER JOIN" in record.warning
        assert_all_equal_full(conn, project)


def test_ensure_is_idempotent_and_a_changed_definition_rebuilds_the_model_and_its_children(
    models_db: str, tmp_path: Path
) -> None:
    daily = (
        "{{ config(grain=['tenant_id', 'day']) }}\n"
        "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, COUNT(*) AS n\n"
        "FROM {{ source('support.tickets') }} AS t GROUP BY 1, 2"
    )
    write_model(tmp_path, "daily", daily)
    write_model(
        tmp_path,
        "monthly",
        "{{ config(grain=['tenant_id', 'month']) }}\n"
        "SELECT d.tenant_id, DATE_TRUNC('month', d.day) AS month, SUM(d.n) AS n\n"
        "FROM {{ ref('daily') }} AS d GROUP BY 1, 2",
    )
    engine = PostgresModelEngine(models_db)
    engine.ensure(load_project(tmp_path))
    with connect(models_db) as conn:
        conn.execute(
            "INSERT INTO support.tickets (tenant_id, ticket_id, created_at, updated_at, status) "
            "VALUES ('acme', 1, '2026-01-05', now(), 'open'), ('acme', 2, '2026-02-05', now(), 'solved')"
        )
        engine.refresh(load_project(tmp_path))
        # When ensure runs again unchanged, then after the parent's definition changed
        engine.ensure(load_project(tmp_path))
        unchanged = engine.refresh(load_project(tmp_path))
        write_model(
            tmp_path, "daily", daily.replace("COUNT(*) AS n", "SUM(CASE WHEN t.status = 'open' THEN 1 ELSE 0 END) AS n")
        )
        project = load_project(tmp_path)
        engine.ensure(project)
        changed = engine.refresh(project)
        # Then nothing was rebuilt the first time; the second time both are rebuilt in full, saying why
        assert [(r.mode, r.rows_changed) for r in unchanged] == [("incremental", 0), ("incremental", 0)]
        assert [(r.model, r.mode, r.warning) for r in changed] == [
            ("daily", "full", "its definition changed"),
            ("monthly", "full", "its input 'daily' was rebuilt"),
        ]
        assert conn.execute("SELECT month::date, n FROM models.monthly ORDER BY 1").fetchall()[0][1] == 1
        assert_all_equal_full(conn, project)


def test_a_group_left_by_changes_to_both_sides_of_a_join_is_removed(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        # Given globex's only failure group: one message of campaign 1 sent at 22:00 on day 1, failed
        seed(conn)
        conn.execute(*upsert_event("globex", 1, "failed", 1, 0, 0, "", "blocked"))
        engine.refresh(PROJECT)
        assert len(summary(conn, "failure_reasons_daily", ("globex",))) == 1

        # When, between two refreshes, the message's sending moves to day 2 and the campaign is deleted
        with conn.transaction():
            conn.execute(*upsert_event("globex", 1, "sent", 120, 1, 10, "email", None))
            conn.execute("DELETE FROM messaging.campaigns WHERE tenant_id = 'globex'")
        engine.refresh(PROJECT)

        # Then the day-1 group is gone: its key is found only by joining the message's old image with the
        # campaign's old image
        assert summary(conn, "failure_reasons_daily", ("globex",)) == []
        assert_all_equal_full(conn)


def test_a_load_by_the_etl_role_under_its_tenant_is_captured(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        seed(conn)
        engine.refresh(PROJECT)
        # When the loader writes as ta_etl with its tenant set, as the stores do
        with conn.transaction():
            conn.execute("SET LOCAL ROLE ta_etl")
            conn.execute("SELECT set_config('app.tenant_id', 'acme', true)")
            conn.execute(*upsert_event("acme", 4, "sent", 30, 1, 10, "sms", None))
        records = {r.model: r for r in engine.refresh(PROJECT)}
        # Then its change reaches the models incrementally
        assert records["message_status"].mode == "incremental" and records["message_status"].rows_changed == 1
        assert conn.execute("SELECT sent FROM models.tenant_daily WHERE tenant_id = 'acme'").fetchone() == (3,)
        assert_all_equal_full(conn)


def test_a_group_that_loses_all_its_rows_is_removed_from_a_level_without_a_row_count(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        # Given globex's one campaign day (campaign_daily stores sums only, no COUNT(*))
        seed(conn)
        engine.refresh(PROJECT)
        assert len(summary(conn, "campaign_daily", ("globex",))) == 1

        # When its only message's sent event is deleted
        conn.execute("DELETE FROM messaging.events WHERE tenant_id = 'globex'")
        records = {r.model: r for r in engine.refresh(PROJECT)}

        # Then the day is gone at every level, incrementally
        assert summary(conn, "campaign_daily", ("globex",)) == []
        assert summary(conn, "tenant_daily", ("globex",)) == []
        assert records["campaign_daily"].mode == "incremental" and records["campaign_daily"].rows_changed == 1
        assert_all_equal_full(conn)


def test_a_store_with_the_older_jsonb_change_log_is_upgraded_and_caught_up_in_full(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        # Given models refreshed, then a store whose capture still used the single jsonb change log
        seed(conn)
        engine.refresh(PROJECT)
        conn.execute("CREATE TABLE models.change_log (seq bigserial PRIMARY KEY, input text, image jsonb)")
        conn.execute(
            "CREATE FUNCTION models.capture_changes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$"
        )
        conn.execute(
            "CREATE OR REPLACE TRIGGER models_capture_insert AFTER INSERT ON messaging.events "
            "FOR EACH STATEMENT EXECUTE FUNCTION models.capture_changes()"
        )
        conn.execute(*upsert_event("acme", 2, "delivered", 7, 0, 0, "", None))  # logged nowhere the engine reads

        # When the schema is ensured again and the models refreshed
        engine.ensure(PROJECT)
        records = engine.refresh(PROJECT)

        # Then the old log is gone, every model caught up in full saying why, and every level is right
        assert conn.execute("SELECT to_regclass('models.change_log')").fetchone() == (None,)
        assert {(r.mode, r.warning) for r in records} == {("full", "change capture was upgraded to change tables")}
        assert conn.execute("SELECT delivered FROM models.tenant_daily WHERE tenant_id = 'acme'").fetchone() == (2,)
        assert_all_equal_full(conn)
        # And the next change is captured in the new change tables and applied incrementally
        conn.execute(*upsert_event("acme", 1, "delivered", 3, 0, 0, "", None))
        assert {r.mode for r in engine.refresh(PROJECT)} == {"incremental"}
        assert_all_equal_full(conn)


def fragile_project(tmp_path: Path) -> ModelProject:
    """A model that divides by zero once a failed event lands, a model reading it, and an independent one after
    both in DAG order."""
    header = "{{ config(grain=['tenant_id']) }}\nSELECT e.tenant_id, COUNT(*) AS events"
    source = " FROM {{ source('messaging.events') }} AS e GROUP BY e.tenant_id"
    files = {
        "fragile": header + ", SUM(10 / (CASE WHEN e.event_type = 'failed' THEN 0 ELSE 1 END)) AS tens" + source,
        "fragile_above": "{{ config(grain=['tenant_id']) }}\nSELECT f.tenant_id, SUM(f.events) AS events "
        "FROM {{ ref('fragile') }} AS f GROUP BY f.tenant_id",
        "later": header + source,
    }
    (tmp_path / "messaging").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "messaging" / f"{name}.sql").write_text(text)
    return load_project(tmp_path)


def refresh_then_land_a_failed_event(engine: PostgresModelEngine, project: ModelProject, url: str) -> None:
    """Ensure and refresh ``project`` over one sent message, then land the event that makes 'fragile' fail."""
    engine.ensure(project)
    with connect(url) as conn:
        conn.execute(*upsert_event("acme", 1, "sent", 0, 1, 10, "sms", None))
        engine.refresh(project)
        conn.execute(*upsert_event("acme", 1, "failed", 1, 1, 10, "sms", "E1"))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_model_stops_only_the_models_that_read_it_and_its_error_is_raised(
    models_db: str, tmp_path: Path, workers: int
) -> None:
    # Given a model that will fail, a model above it, and an independent one after both in DAG order
    project = fragile_project(tmp_path)
    assert [m.name for m in project.models].index("later") == 2
    engine = PostgresModelEngine(models_db, workers=workers)
    refresh_then_land_a_failed_event(engine, project, models_db)
    with connect(models_db) as conn:
        # When the models are refreshed (one at a time, or two at a time)
        with pytest.raises(psycopg.errors.DivisionByZero):
            engine.refresh(project)

        # Then the model reading the failed one did not run, the independent one did, and nothing was half-written
        runs = dict(conn.execute("SELECT model, count(*) FROM models.refresh_log GROUP BY model").fetchall())
        assert runs == {"fragile": 1, "fragile_above": 1, "later": 2}
        assert summary(conn, "later") == [("acme", 2)]
        assert summary(conn, "fragile_above") == [("acme", 1)]
        # And the images the failed model has not read are kept for it
        pending = conn.execute('SELECT count(*) FROM models."changes:messaging.events"').fetchone()
        assert pending == (1,)


def test_the_model_failure_is_raised_even_when_pruning_afterwards_cannot_connect(
    models_db: str, tmp_path: Path
) -> None:
    # Given a failing model, and a store that refuses the third connection (the one pruning would use)
    project = fragile_project(tmp_path)
    PostgresModelEngine(models_db).ensure(project)
    with connect(models_db) as conn:
        conn.execute(*upsert_event("acme", 1, "failed", 1, 1, 10, "sms", "E1"))
    opened: list[int] = []

    def factory() -> psycopg.Connection[Any]:
        opened.append(1)
        if len(opened) == 3:
            raise StoreUnavailable("model store is unreachable: refused by the test")
        return psycopg.connect(models_db, autocommit=True)

    # When the models are refreshed one at a time (the failed model's connection is replaced for the next)
    # Then the model's own error is raised, not the pruning's
    with pytest.raises(psycopg.errors.DivisionByZero):
        PostgresModelEngine(factory, workers=1).refresh(project)
    assert len(opened) == 3


def test_a_model_failing_for_longer_than_the_limit_stops_holding_back_images_and_catches_up_in_full(
    models_db: str, tmp_path: Path
) -> None:
    # Given a failing model whose last successful refresh was 25 hours ago, beside one that keeps refreshing
    project = fragile_project(tmp_path)
    engine = PostgresModelEngine(models_db, stale_reader_after=timedelta(hours=24))
    refresh_then_land_a_failed_event(engine, project, models_db)
    with connect(models_db) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            engine.refresh(project)
        conn.execute(*upsert_event("acme", 2, "sent", 2, 1, 10, "sms", None))
        with pytest.raises(psycopg.errors.DivisionByZero):
            PostgresModelEngine(models_db, stale_reader_after=None).refresh(project)
        images = 'SELECT count(*) FROM models."changes:messaging.events"'
        assert conn.execute(images).fetchone() == (2,)  # without a limit they are kept for the failing model
        conn.execute("UPDATE models.model_state SET refreshed_at = now() - interval '25 hours' WHERE model = 'fragile'")

        # When the models are refreshed again, still failing
        with pytest.raises(psycopg.errors.DivisionByZero):
            engine.refresh(project)

        # Then the failing model is marked for a full refresh saying why, and its unread images are gone
        reason = conn.execute("SELECT needs_full FROM models.model_state WHERE model = 'fragile'").fetchone()
        assert reason is not None and "no successful refresh for more than 1 day" in reason[0]
        assert conn.execute(images).fetchone() == (0,)
        # And once the bad event is gone, it and the model above it catch up in full and equal a recomputation
        conn.execute("DELETE FROM messaging.events WHERE event_type = 'failed'")
        records = {r.model: r for r in engine.refresh(project)}
        assert records["fragile"].mode == "full" and "changes it had not read were dropped" in str(
            records["fragile"].warning
        )
        assert records["fragile_above"].mode == "full" and records["later"].mode == "incremental"
        assert_all_equal_full(conn, project)
        assert summary(conn, "fragile") == [("acme", 2, 20)]


def test_a_model_marked_for_a_full_refresh_does_not_hold_back_the_images_of_its_inputs(
    models_db: str, tmp_path: Path
) -> None:
    # Given two readers of the events, one of them marked for a full refresh, and a change to the events
    project = fragile_project(tmp_path)
    engine = PostgresModelEngine(models_db)
    engine.ensure(project)
    with connect(models_db) as conn:
        conn.execute(*upsert_event("acme", 1, "sent", 0, 1, 10, "sms", None))
        engine.refresh(project)
        conn.execute("UPDATE models.model_state SET needs_full = 'marked by the test' WHERE model = 'fragile'")
        conn.execute(*upsert_event("acme", 2, "sent", 1, 1, 10, "sms", None))

        # When the other reader is refreshed
        engine.refresh(project, models=["later"])

        # Then the events' images are dropped, since the marked model will not read them
        assert conn.execute('SELECT count(*) FROM models."changes:messaging.events"').fetchone() == (0,)
        # And its full refresh still gets every level right
        assert {r.model: r.mode for r in engine.refresh(project)}["fragile"] == "full"
        assert_all_equal_full(conn, project)


def test_the_engine_refuses_fewer_than_one_worker_and_a_limit_that_is_not_positive() -> None:
    with pytest.raises(InvalidInput, match="workers must be at least 1, not 0"):
        PostgresModelEngine("postgresql://unused", workers=0)
    with pytest.raises(InvalidInput, match="stale_reader_after must be positive or None, not 0:00:00"):
        PostgresModelEngine("postgresql://unused", stale_reader_after=timedelta(0))


def test_change_images_every_reader_consumed_are_deleted_after_the_refresh(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn:
        # Given changes to events, which message_status reads, and so to message_status, which three models read
        seed(conn)
        engine.refresh(PROJECT)
        conn.execute(*upsert_event("acme", 2, "delivered", 7, 0, 0, "", None))
        conn.execute(*upsert_event("acme", 3, "sent", 9, 1, 10, "sms", None))

        # When all models are refreshed (the readers of message_status side by side)
        engine.refresh(PROJECT)

        # Then no change table keeps an image, and a refresh of message_status alone leaves its images to its readers
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'changes:%'")]
        left = {t: conn.execute(f'SELECT count(*) FROM models."{t}"').fetchone() for t in tables}
        assert tables and all(count == (0,) for count in left.values()), left
        conn.execute(*upsert_event("acme", 3, "delivered", 10, 0, 0, "", None))
        engine.refresh(PROJECT, models=["message_status"])
        pending = conn.execute('SELECT count(*) FROM models."changes:message_status"').fetchone()
        assert pending == (2,)  # the message's old and new images


def test_a_large_fully_consumed_change_table_is_truncated_unless_another_session_uses_it(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    changes = 'models."changes:messaging.events"'
    filenode = f"SELECT pg_relation_filenode('{changes}')"
    many_sends = (
        "INSERT INTO messaging.events SELECT 'acme', 'bulk-' || g || '-' || %s, 'sent', "
        "timestamptz '2026-01-01 22:00+00' + g * interval '1 second', 1, 10, 'sms', NULL "
        "FROM generate_series(1, 20000) AS g"
    )
    with connect(engine_db) as conn, connect(engine_db) as other:
        seed(conn)
        engine.refresh(PROJECT)

        # When a small change is consumed: its images are deleted (the table keeps its file)
        conn.execute(*upsert_event("acme", 2, "delivered", 7, 0, 0, "", None))
        small = conn.execute(filenode).fetchone()
        engine.refresh(PROJECT)
        assert conn.execute(f"SELECT count(*) FROM {changes}").fetchone() == (0,)
        assert conn.execute(filenode).fetchone() == small

        # When a large one is consumed and nobody else uses the table: it is truncated (a new, empty file)
        conn.execute(many_sends, ("a",))
        large = conn.execute(filenode).fetchone()
        engine.refresh(PROJECT)
        assert conn.execute(f"SELECT count(*) FROM {changes}").fetchone() == (0,)
        assert conn.execute(filenode).fetchone() != large

        # When another session holds the table (a long read) while the next large change is consumed
        conn.execute(many_sends, ("b",))
        kept = conn.execute(filenode).fetchone()
        with other.transaction():
            other.execute(f"SELECT count(*) FROM {changes}")
            engine.refresh(PROJECT)

        # Then the consumed images were deleted instead, without waiting for it
        assert conn.execute(f"SELECT count(*) FROM {changes}").fetchone() == (0,)
        assert conn.execute(filenode).fetchone() == kept
        assert_all_equal_full(conn)


# ----------------------------------------------------------------------------------------- writers in flight


class RefreshInThread:
    """``engine.refresh(...)`` on a thread of its own, so that the test can act while it runs or waits."""

    def __init__(self, engine: PostgresModelEngine, **kwargs: Any) -> None:
        self.records: list[Any] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(engine, kwargs), daemon=True)
        self._thread.start()

    def _run(self, engine: PostgresModelEngine, kwargs: dict[str, Any]) -> None:
        try:
            self.records = engine.refresh(PROJECT, **kwargs)
        except BaseException as exc:  # reported by finished()
            self.error = exc

    def running_after(self, seconds: float) -> bool:
        self._thread.join(timeout=seconds)
        return self._thread.is_alive()

    def finished(self, within: float = 120) -> list[Any]:
        self._thread.join(timeout=within)
        assert not self._thread.is_alive(), "the refresh did not finish"
        if self.error is not None:
            raise self.error
        return self.records


def test_a_refresh_waits_for_a_writer_of_its_input_and_misses_none_of_its_changes(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn, connect(engine_db) as writer:
        seed(conn)
        engine.refresh(PROJECT)
        # Given a load of events that has written and not committed yet
        writer.execute("BEGIN")
        writer.execute(*upsert_event("acme", 4, "sent", 20, 1, 10, "sms", None))

        # When message_status is refreshed meanwhile
        refresh = RefreshInThread(engine, models=["message_status"])

        # Then it waits for the load (its images must not fall below the mark it reads) and takes its change once in
        assert refresh.running_after(2), "the refresh did not wait for the load in flight"
        writer.execute("COMMIT")
        records = refresh.finished()
        assert [(r.model, r.mode, r.rows_changed) for r in records] == [("message_status", "incremental", 1)]
        assert conn.execute("SELECT status FROM models.message_status WHERE message_id = 'm4'").fetchall() == [
            ("sent",)
        ]
        engine.refresh(PROJECT)
        assert_all_equal_full(conn)


def test_a_refresh_does_not_wait_for_writers_of_tables_its_models_do_not_read(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn, connect(engine_db) as writer:
        seed(conn)
        engine.refresh(PROJECT)
        conn.execute(*upsert_event("acme", 2, "delivered", 7, 0, 0, "", None))
        # Given a load of tickets in flight (a long MERGE of another batch, say)
        writer.execute("BEGIN")
        writer.execute(
            "INSERT INTO support.tickets (tenant_id, ticket_id, created_at, updated_at, priority, channel) "
            "VALUES ('acme', 1, %s, %s, 'high', 'email')",
            (T0, T0),
        )
        try:
            # When the messaging models are refreshed
            messaging = [m.name for m in PROJECT.models if m.domain == "messaging"]
            refresh = RefreshInThread(engine, models=messaging)

            # Then they are refreshed while the load is still open
            assert not refresh.running_after(60), "the messaging refresh waited for a load into support.tickets"
            assert {r.model: r.rows_changed for r in refresh.finished()}["message_status"] == 1
        finally:
            writer.execute("COMMIT")
        engine.refresh(PROJECT)
        assert_all_equal_full(conn)


def test_a_refresh_waiting_for_one_input_holds_no_other_so_a_writer_of_both_goes_on(engine_db: str) -> None:
    engine = PostgresModelEngine(engine_db)
    with connect(engine_db) as conn, connect(engine_db) as writer:
        seed(conn)
        engine.refresh(PROJECT)
        # Given a transaction that has changed a template (an input of template_category_daily) and goes on
        writer.execute("BEGIN")
        writer.execute("SET LOCAL lock_timeout = '20s'")
        writer.execute("UPDATE messaging.templates SET category = 'news' WHERE tenant_id = 'acme'")

        # When template_category_daily, which also reads message_status, is refreshed meanwhile
        refresh = RefreshInThread(engine, models=["template_category_daily"])
        time.sleep(1.5)  # it is waiting for the templates' writer by now

        # Then the writer may still write message_status (captured for its readers; no row changes here): the
        # refresh, waiting for templates, does not hold message_status meanwhile, so neither waits for the other
        writer.execute("UPDATE models.message_status SET status = status WHERE false")
        writer.execute("COMMIT")
        records = refresh.finished()
        assert [(r.model, r.mode) for r in records] == [("template_category_daily", "incremental")]
        assert conn.execute(
            "SELECT DISTINCT category FROM models.template_category_daily WHERE tenant_id = 'acme'"
        ).fetchall() == [("news",)]
        assert_all_equal_full(conn)
