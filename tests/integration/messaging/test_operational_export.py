"""Operational export between two embedded databases: exactly the given tenants, replaced on every run, RLS forced."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tenant_analytics.errors import InvalidInput, StoreUnavailable
from tenant_analytics.stores.operational_export import ExportTable, TenantExport, export_tenants

pytestmark = pytest.mark.xdist_group("messaging")

TABLE = ExportTable(
    table="models.tenant_daily_messaging",
    columns=("tenant_id", "day", "sent", "delivered", "delivery_rate", "top_error"),
    key_columns=("tenant_id", "day"),
)
SELECT_ALL = (
    "SELECT tenant_id, day, sent, delivered, delivery_rate, top_error FROM models.tenant_daily_messaging "
    "ORDER BY tenant_id, day"
)


def _summary(source: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    source.execute("CREATE SCHEMA IF NOT EXISTS models")
    source.execute(
        "CREATE TABLE IF NOT EXISTS models.tenant_daily_messaging (tenant_id text NOT NULL, day date NOT NULL, "
        "sent bigint, delivered bigint, delivery_rate numeric(6,4), top_error text, ignored text, "
        "PRIMARY KEY (tenant_id, day))"
    )
    source.execute("TRUNCATE models.tenant_daily_messaging")
    with source.cursor() as cur:
        cur.executemany(
            "INSERT INTO models.tenant_daily_messaging (tenant_id, day, sent, delivered, delivery_rate, top_error, "
            "ignored) VALUES (%s, %s, %s, %s, %s, %s, 'x')",
            rows,
        )


def _source_rows(source: psycopg.Connection[Any], tenants: tuple[str, ...]) -> list[tuple[Any, ...]]:
    return [row for row in source.execute(SELECT_ALL).fetchall() if row[0] in tenants]


def _rows(tenant: str, days: int, sent: int) -> list[tuple[Any, ...]]:
    return [
        (tenant, date(2026, 1, day), sent + day, sent, Decimal(sent) / (sent + day), None if day % 2 else "blocked")
        for day in range(1, days + 1)
    ]


def test_export_copies_exactly_the_given_tenants_and_a_second_run_replaces(
    source_conn: psycopg.Connection[Any], target_conn: psycopg.Connection[Any]
) -> None:
    # Given a summary table of three tenants on the source and nothing on the target
    _summary(source_conn, _rows("ta", 3, 10) + _rows("tb", 2, 20) + _rows("tc", 4, 30))

    # When tenants a and b are exported
    first = export_tenants(TABLE, ["ta", "tb"], source_conn, target_conn)

    # Then the target holds exactly their rows, values unchanged
    assert first == [TenantExport("ta", 0, 3), TenantExport("tb", 0, 2)]
    assert target_conn.execute(SELECT_ALL).fetchall() == _source_rows(source_conn, ("ta", "tb"))
    assert len(_source_rows(source_conn, ("ta", "tb"))) == 5

    # When the source changes (a loses a day and changes another, b gains one) and the export runs again
    changed = [(*_rows("ta", 1, 99)[0][:2], 1, 1, Decimal("1.0000"), "it's quoted")]
    _summary(source_conn, changed + _rows("tb", 3, 20) + _rows("tc", 4, 30))
    second = export_tenants(TABLE, ["ta", "tb"], source_conn, target_conn)

    # Then each tenant's rows are replaced, not duplicated, and c is still absent
    assert second == [TenantExport("ta", 3, 1), TenantExport("tb", 2, 3)]
    assert target_conn.execute(SELECT_ALL).fetchall() == _source_rows(source_conn, ("ta", "tb"))
    assert target_conn.execute(SELECT_ALL).fetchall()[0] == changed[0]


def test_the_created_target_table_is_protected_like_every_tenant_table(
    source_conn: psycopg.Connection[Any], target_conn: psycopg.Connection[Any]
) -> None:
    # Given an export of two tenants
    _summary(source_conn, _rows("ta", 2, 10) + _rows("tb", 2, 20))
    export_tenants(TABLE, ["ta", "tb"], source_conn, target_conn)

    # When the query role reads the target with app.tenant_id = 'ta'
    with target_conn.transaction():
        target_conn.execute("SET LOCAL ROLE ta_query")
        target_conn.execute("SELECT set_config('app.tenant_id', 'ta', true)")
        seen = target_conn.execute("SELECT DISTINCT tenant_id FROM models.tenant_daily_messaging").fetchall()

    # Then only a's rows are visible; the table has the key as primary key, RLS forced, owner the ETL role
    assert seen == [("ta",)]
    described = target_conn.execute(
        "SELECT pg_get_userbyid(c.relowner), c.relrowsecurity AND c.relforcerowsecurity, "
        "pg_get_constraintdef(k.oid) FROM pg_class AS c JOIN pg_constraint AS k ON k.conrelid = c.oid "
        "AND k.contype = 'p' WHERE c.oid = 'models.tenant_daily_messaging'::regclass"
    ).fetchone()
    assert described == ("ta_etl", True, "PRIMARY KEY (tenant_id, day)")


def test_an_existing_target_without_forced_rls_is_refused(
    source_conn: psycopg.Connection[Any], target_conn: psycopg.Connection[Any]
) -> None:
    # Given an unprotected table of the same name on the target
    _summary(source_conn, _rows("ta", 1, 10))
    _summary(target_conn, [])

    # When the export runs, then it refuses and copies nothing
    with pytest.raises(StoreUnavailable, match="row-level security"):
        export_tenants(TABLE, ["ta"], source_conn, target_conn)
    assert target_conn.execute(SELECT_ALL).fetchall() == []


@pytest.mark.parametrize(
    ("tenants", "message"),
    [(["ta", "b' OR '1'='1"], "not allowed"), ("ab", "not one string")],
)
def test_bad_tenant_ids_are_refused_before_any_sql(
    source_conn: psycopg.Connection[Any], target_conn: psycopg.Connection[Any], tenants: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        export_tenants(TABLE, tenants, source_conn, target_conn)
    assert target_conn.execute("SELECT to_regclass('models.tenant_daily_messaging')").fetchone() == (None,)


def test_a_missing_source_table_or_column_is_named(
    source_conn: psycopg.Connection[Any], target_conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        export_tenants(TABLE, ["ta"], source_conn, target_conn)
    _summary(source_conn, [])
    wider = TABLE.model_copy(update={"columns": (*TABLE.columns, "missing_col")})
    with pytest.raises(InvalidInput, match="missing_col"):
        export_tenants(wider, ["ta"], source_conn, target_conn)
