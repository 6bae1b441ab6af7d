"""The database roles every PostgreSQL store shares: the ETL role owns and writes, the query role only reads, and
the query function logs in as a member of the query role."""

from __future__ import annotations

from psycopg import sql

from tenant_analytics.constants import QUERY_LOGIN

ETL_ROLE = "ta_etl"
QUERY_ROLE = "ta_query"

# The roles every PostgreSQL store shares (idempotent, safe from concurrent sessions). The query login has no
# password: on Aurora it signs in with an IAM token (rds_iam), and it can do no more than the query role.
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
DO $$
BEGIN
  CREATE ROLE {QUERY_LOGIN} LOGIN NOBYPASSRLS IN ROLE {QUERY_ROLE};
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam')
     AND NOT pg_has_role('{QUERY_LOGIN}', 'rds_iam', 'MEMBER') THEN
    GRANT rds_iam TO {QUERY_LOGIN};
  END IF;
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
