"""Fixtures of the model-engine tests: a fresh database with the landed tables the models read."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tenant_analytics.local.postgres import ensure_database

# The landed tables with the stores' columns and keys (test_models_sources holds both to models.SOURCES), owned by
# the ETL role with RLS forced; updated_at defaults to now() so that tests may leave it out.
LANDED_TABLES = """
DO $$ BEGIN CREATE ROLE ta_etl NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE ta_query NOLOGIN NOBYPASSRLS;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
CREATE SCHEMA IF NOT EXISTS support AUTHORIZATION ta_etl;
CREATE SCHEMA IF NOT EXISTS messaging AUTHORIZATION ta_etl;
CREATE TABLE support.tickets (
    tenant_id text NOT NULL, ticket_id bigint NOT NULL, created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL, status text, priority text, channel text, requester_id bigint,
    assignee_id bigint, group_id bigint, organization_id bigint, requester_name text, assignee_name text,
    group_name text, organization_name text, loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX tickets_tenant_created ON support.tickets (tenant_id, created_at);
CREATE TABLE messaging.events (
    tenant_id text NOT NULL, message_id text NOT NULL, event_type text NOT NULL, event_at timestamptz NOT NULL,
    campaign_id bigint, template_id bigint, channel text, error_code text,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id, event_type)
);
CREATE TABLE messaging.campaigns (
    tenant_id text NOT NULL, campaign_id bigint NOT NULL, name text, updated_at timestamptz NOT NULL DEFAULT now(),
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, campaign_id)
);
CREATE TABLE messaging.templates (
    tenant_id text NOT NULL, template_id bigint NOT NULL, name text, category text,
    updated_at timestamptz NOT NULL DEFAULT now(), loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, template_id)
);
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['support.tickets', 'messaging.events', 'messaging.campaigns', 'messaging.templates'] LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO ta_etl', t);
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = current_setting(''app.tenant_id'', true)) '
                   'WITH CHECK (tenant_id = current_setting(''app.tenant_id'', true))', t);
  END LOOP;
END $$;
"""


@pytest.fixture
def models_db(pg_admin: str, db_prefix: str) -> Iterator[str]:
    """URL of a fresh database holding empty landed tables."""
    url = ensure_database(pg_admin, db_prefix + "_models")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LANDED_TABLES)
    yield url
