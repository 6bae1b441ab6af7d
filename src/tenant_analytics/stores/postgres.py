"""PostgreSQL store: Aurora PostgreSQL in AWS, the embedded PostgreSQL locally. Pooled tenants, RLS forced.

Tables are owned by the ETL role and the query role owns nothing; every tenant table has row-level security
FORCEd with the policy ``tenant_id = current_setting('app.tenant_id')``, which both roles set with SET LOCAL
inside each transaction. Statements never contain caller input: values are bound parameters.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from tenant_analytics.errors import StoreUnavailable
from tenant_analytics.stores.base import CuratedFiles, MergeStats
from tenant_analytics.transforms.columns import TICKET_FACT_COLUMNS

ETL_ROLE = "ta_etl"
QUERY_ROLE = "ta_query"

# The two roles every PostgreSQL store shares (idempotent, safe from concurrent sessions).
ROLES_SQL = f"""
DO $$
BEGIN
  CREATE ROLE {ETL_ROLE} NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
  CREATE ROLE {QUERY_ROLE} NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
"""

_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS support AUTHORIZATION {ETL_ROLE};
GRANT USAGE ON SCHEMA support TO {QUERY_ROLE};
SET LOCAL ROLE {ETL_ROLE};
CREATE TABLE IF NOT EXISTS support.tickets (
    tenant_id       text        NOT NULL,
    ticket_id       bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    status          text,
    priority        text,
    channel         text,
    requester_id    bigint,
    assignee_id     bigint,
    group_id        bigint,
    organization_id bigint,
    loaded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX IF NOT EXISTS tickets_tenant_created ON support.tickets (tenant_id, created_at);
ALTER TABLE support.tickets ENABLE ROW LEVEL SECURITY;
ALTER TABLE support.tickets FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON support.tickets;
CREATE POLICY tenant_isolation ON support.tickets
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT ON support.tickets TO {QUERY_ROLE};
"""


class PostgresStore:
    """AnalyticsStore over one PostgreSQL database (an Aurora cluster or its local stand-in)."""

    dialect = "postgres"

    def __init__(self, store_id: str, conninfo: str) -> None:
        self.store_id = store_id
        self._conninfo = conninfo
        # One connection per thread: a dashboard's queries run concurrently, each in its own transaction.
        self._local = threading.local()
        self._all: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn: psycopg.Connection[tuple[Any, ...]] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self._conninfo, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"store '{self.store_id}' is unreachable: {str(exc).strip()}") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def ensure_schema(self) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute(ROLES_SQL)
        with conn.transaction():
            # one schema change at a time, even from concurrent loaders
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tenant_analytics.schema'))")
            conn.execute(_SCHEMA)

    def merge_tickets(self, tenant_id: str, files: CuratedFiles) -> MergeStats:
        conn = self._connection()
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in TICKET_FACT_COLUMNS)
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in TICKET_FACT_COLUMNS[1:]
        )
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE stage_tickets ON COMMIT DROP AS SELECT {cols} FROM support.tickets LIMIT 0"
                ).format(cols=cols)
            )
            with cur.copy(sql.SQL("COPY stage_tickets ({cols}) FROM STDIN WITH (FORMAT csv)").format(cols=cols)) as cp:
                for chunk in files:
                    cp.write(chunk)
            cur.execute("SELECT count(*) FROM stage_tickets")
            rows_in = _scalar(cur.fetchone())
            cur.execute(
                sql.SQL(
                    "INSERT INTO support.tickets (tenant_id, {cols}) "
                    "SELECT DISTINCT ON (ticket_id) %s, {cols} FROM stage_tickets ORDER BY ticket_id, updated_at DESC "
                    "ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET {updates}, loaded_at = now() "
                    "WHERE support.tickets.updated_at <= EXCLUDED.updated_at "
                    "RETURNING (xmax = 0)"
                ).format(cols=cols, updates=updates),
                (tenant_id,),
            )
            flags = [bool(r[0]) for r in cur.fetchall()]
            cur.execute("SELECT count(*) FROM support.tickets WHERE tenant_id = %s", (tenant_id,))
            size = _scalar(cur.fetchone())
        inserted = sum(flags)
        return MergeStats(rows_in=rows_in, inserted=inserted, updated=len(flags) - inserted, size_rows=size)

    def query(self, tenant_id: str, statement: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(QUERY_ROLE)))
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            cur.execute("SET LOCAL transaction_read_only = on")
            cur.execute("SET LOCAL TimeZone = 'UTC'")  # time buckets are UTC days, whatever the server default
            cur.execute(statement.encode(), params)  # statement built by the planner from catalog identifiers
            columns = [d.name for d in cur.description or []]
            rows = cur.fetchall()
        return columns, rows


def _scalar(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row is not None else 0
