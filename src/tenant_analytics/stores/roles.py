"""The two database roles every PostgreSQL store shares: the ETL role owns and writes, the query role only reads."""

from __future__ import annotations

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
