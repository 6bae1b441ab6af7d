"""The PostgreSQL store run by an admin like Aurora's: no superuser, no BYPASSRLS, only CREATEDB and CREATEROLE.

Locally the store's admin is a superuser, which row-level security never applies to; Aurora's master user is not
one. On a server of its own (the platform's roles are then created by that admin, as on a new cluster) the store is
set up, loaded and refreshed by such an admin, and every model must hold every tenant's rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.aggregator import aggregate_batch
from tenant_analytics.cdc.config import load_config
from tenant_analytics.cdc.sink import MemoryFailureSink
from tenant_analytics.cdc.store import RealtimeStore
from tenant_analytics.local.postgres import admin_url, with_database
from tenant_analytics.models import load_project, model_query_postgres
from tenant_analytics.stores.postgres import PostgresStore

pytestmark = pytest.mark.xdist_group("aurora-admin")

SEND = (
    "INSERT INTO messaging.events (tenant_id, message_id, event_type, event_at, campaign_id, template_id, channel) "
    "VALUES (%s, %s, 'sent', timestamptz '2026-01-05 12:00+00', 1, 1, 'sms')"
)


def load(url: str, tenant: str, message: str, row_tenant: str | None = None) -> None:
    """Write one sent event the way loads do: as the ETL role, under the tenant's setting."""
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL ROLE ta_etl")
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
        conn.execute(SEND, (row_tenant or tenant, message))


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return sorted(conn.execute(query).fetchall(), key=repr)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Superuser URL of a server of the module's own, with an admin like Aurora's master user (``cluster_admin``)."""
    superuser = admin_url(tmp_path_factory.mktemp("aurora-admin") / "server", None)
    with psycopg.connect(superuser, autocommit=True) as conn:
        conn.execute("CREATE ROLE cluster_admin LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB CREATEROLE")
    return str(superuser)


def database_of_the_admin(server: str, name: str) -> tuple[str, str]:
    """A new database owned by the admin: its URL as the admin and as the superuser."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER cluster_admin").format(sql.Identifier(name)))
    return make_conninfo(with_database(server, name), user="cluster_admin"), with_database(server, name)


def test_an_admin_that_is_no_superuser_sets_up_loads_and_refreshes_every_tenant(server: str) -> None:
    # Given an admin like Aurora's master user (the first to create the platform's roles), owning the database
    url, as_superuser = database_of_the_admin(server, "analytics")
    store = PostgresStore("aurora-1", url)
    try:
        # When it sets the store up (creating the platform's roles), two tenants' events land and it refreshes
        store.ensure_schema()
        load(url, "acme", "m1")
        load(url, "globex", "m1")
        first = {r.model: (r.mode, r.rows_changed) for r in store.refresh_models()}
        load(url, "acme", "m2")
        second = {r.model: (r.mode, r.rows_changed) for r in store.refresh_models()}
    finally:
        store.close()

    # Then the refreshes saw every tenant's rows: in full first, then the new one incrementally
    assert first["message_status"] == ("full", 2) and second["message_status"] == ("incremental", 1)
    assert rows(as_superuser, "SELECT tenant_id, message_id FROM models.message_status") == [
        ("acme", "m1"),
        ("acme", "m2"),
        ("globex", "m1"),
    ]
    # And every model equals its SELECT over all tenants
    for model in load_project().models:
        assert rows(as_superuser, f"SELECT * FROM models.{model.name}") == rows(
            as_superuser, model_query_postgres(model)
        ), model.name
    # And a load under one tenant still cannot write another tenant's row
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        load(url, "acme", "m3", row_tenant="globex")
    # And the query role still sees only the tenant it is set to
    with psycopg.connect(as_superuser) as conn:
        conn.execute("SET LOCAL ROLE ta_query")
        conn.execute("SELECT set_config('app.tenant_id', 'globex', true)")
        seen = conn.execute("SELECT tenant_id, message_id FROM models.message_status").fetchall()
    assert seen == [("globex", "m1")]


def test_an_admin_that_is_no_superuser_sets_up_the_realtime_bins_and_counts_changes(server: str) -> None:
    # Given the realtime store of a database the admin owns
    url, _ = database_of_the_admin(server, "realtime")
    store = RealtimeStore(url)
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    change = syn.maxwell_change(
        "tickets", "insert", {"id": 1, "account_id": "acme", "status": "new"}, ts=start.timestamp(), position="b.1:1"
    )
    try:
        # When it sets the store up and aggregates a batch, as the setup function and the aggregator do
        store.ensure_schema()
        outcome = aggregate_batch(
            syn.stream_records([syn.encode(change)]), store, load_config(), "shard-0", sink=MemoryFailureSink()
        )
    finally:
        store.close()

    # Then the change is counted in its bin
    assert outcome.counted == 1 and not outcome.failed_sequence_numbers
