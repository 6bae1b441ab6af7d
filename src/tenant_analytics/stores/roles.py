"""The database roles every PostgreSQL store shares: the ETL role owns and writes, the query role only reads, and
the query function logs in as a member of the query role."""

from __future__ import annotations

from psycopg import sql

from tenant_analytics.constants import QUERY_LOGIN

ETL_ROLE = "ta_etl"
QUERY_ROLE = "ta_query"
# Members read and write every tenant's rows (a policy on each tenant table, below): the store's admin, which refreshes
# models and exports, is one. On Aurora the admin is no superuser and has no BYPASSRLS, so without it the forced
# row-level security would show it no row at all. Loads switch to the ETL role, which is no member.
ALL_TENANTS_ROLE = "ta_all_tenants"

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
  CREATE ROLE {ALL_TENANTS_ROLE} NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
-- The connecting admin acts as the ETL role (owner of the tables; loads SET ROLE to it) and reads every tenant. A
-- superuser has both already; an admin that is not (Aurora's, PostgreSQL 16) only administers the roles it created.
DO $$
DECLARE
  granted text;
BEGIN
  FOREACH granted IN ARRAY ARRAY['{ETL_ROLE}', '{ALL_TENANTS_ROLE}'] LOOP
    IF current_setting('server_version_num')::int >= 160000 THEN
      IF NOT (pg_has_role(current_user, granted, 'USAGE') AND pg_has_role(current_user, granted, 'SET')) THEN
        EXECUTE format('GRANT %I TO %I WITH INHERIT TRUE, SET TRUE', granted, current_user);
      END IF;
    ELSIF NOT pg_has_role(current_user, granted, 'USAGE') THEN
      EXECUTE format('GRANT %I TO %I', granted, current_user);
    END IF;
  END LOOP;
END $$;
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_iam')
     AND NOT pg_has_role('{QUERY_LOGIN}', 'rds_iam', 'MEMBER') THEN
    GRANT rds_iam TO {QUERY_LOGIN};
  END IF;
END $$;
"""


def all_tenants_policy(table: sql.Composable) -> list[sql.Composed]:
    """The policy letting members of the all-tenants role (the store's admin) read and write every row (idempotent)."""
    return [
        sql.SQL("DROP POLICY IF EXISTS all_tenants ON {}").format(table),
        sql.SQL("CREATE POLICY all_tenants ON {} TO {} USING (true) WITH CHECK (true)").format(
            table, sql.Identifier(ALL_TENANTS_ROLE)
        ),
    ]


def tenant_isolation(table: sql.Composable) -> list[sql.Composed]:
    """Row-level security on a tenant table: enabled and FORCEd, the policy ``tenant_id = app.tenant_id`` for
    reads and writes, every row for the all-tenants role, and SELECT for the query role (idempotent)."""
    return [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table),
        sql.SQL("DROP POLICY IF EXISTS tenant_isolation ON {}").format(table),
        sql.SQL(
            "CREATE POLICY tenant_isolation ON {} USING (tenant_id = current_setting('app.tenant_id', true)) "
            "WITH CHECK (tenant_id = current_setting('app.tenant_id', true))"
        ).format(table),
        *all_tenants_policy(table),
        sql.SQL("GRANT SELECT ON {} TO {}").format(table, sql.Identifier(QUERY_ROLE)),
    ]
