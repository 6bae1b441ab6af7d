"""The two database roles every PostgreSQL store shares: the ETL role owns and writes, the query role only reads."""

from __future__ import annotations

from psycopg import sql

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


def tenant_isolation(table: sql.Composable) -> list[sql.Composed]:
    """Row-level security on a tenant table: enabled and FORCEd, the policy ``tenant_id = app.tenant_id`` for
    reads and writes, and SELECT for the query role (idempotent)."""
    return [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table),
        sql.SQL("DROP POLICY IF EXISTS tenant_isolation ON {}").format(table),
        sql.SQL(
            "CREATE POLICY tenant_isolation ON {} USING (tenant_id = current_setting('app.tenant_id', true)) "
            "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
        ).format(table),
        sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(QUERY_ROLE)),
    ]
