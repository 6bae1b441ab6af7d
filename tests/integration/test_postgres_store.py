"""PostgresStore on the embedded PostgreSQL: merges are idempotent, RLS holds even without the planner."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tenant_analytics.local.postgres import ensure_database
from tenant_analytics.stores.base import CuratedFiles
from tenant_analytics.stores.postgres import PostgresStore

files = CuratedFiles.from_bytes


def line(tid: int, updated: str, status: str) -> bytes:
    return f"{tid},2026-01-01T00:00:00Z,{updated},{status},high,email,5,,,\n".encode()


@pytest.fixture
def store(pg_admin: str, db_prefix: str) -> Iterator[PostgresStore]:
    s = PostgresStore("aurora-1", ensure_database(pg_admin, f"{db_prefix}_store"))
    s.ensure_schema()
    s.ensure_schema()  # idempotent
    yield s
    s.close()


def test_merge_is_idempotent_and_newer_versions_win(store: PostgresStore) -> None:
    # Given two versions of ticket 1 in one load and a later, older version of it
    first = store.merge_tickets(
        "acme",
        files(
            [
                line(1, "2026-01-01T01:00:00Z", "open"),
                line(1, "2026-01-01T02:00:00Z", "solved"),
                line(2, "2026-01-01T01:00:00Z", "new"),
            ]
        ),
    )
    replay = store.merge_tickets(
        "acme", files([line(1, "2026-01-01T02:00:00Z", "solved"), line(2, "2026-01-01T01:00:00Z", "new")])
    )
    stale = store.merge_tickets("acme", files([line(1, "2026-01-01T01:30:00Z", "pending")]))

    # Then the newest version is kept, replays change nothing, and nothing is duplicated
    assert (first.inserted, first.updated, first.size_rows) == (2, 0, 2)
    assert replay.size_rows == 2 and replay.inserted == 0
    assert stale.updated == 0
    _, rows = store.query("acme", "SELECT ticket_id, status FROM support.tickets ORDER BY ticket_id", [])
    assert rows == [(1, "solved"), (2, "new")]


def test_row_level_security_isolates_tenants_without_any_predicate(store: PostgresStore) -> None:
    store.merge_tickets("acme", files([line(1, "2026-01-01T01:00:00Z", "open")]))
    store.merge_tickets(
        "globex", files([line(1, "2026-01-01T01:00:00Z", "open"), line(2, "2026-01-01T01:00:00Z", "open")])
    )

    # When statements with no tenant predicate run as each tenant on the same pooled connection
    count = "SELECT count(*) FROM support.tickets"
    assert store.query("acme", count, [])[1] == [(1,)]
    assert store.query("globex", count, [])[1] == [(2,)]
    assert store.query("acme", "SELECT DISTINCT tenant_id FROM support.tickets", [])[1] == [("acme",)]


def test_the_tenant_setting_does_not_outlive_its_transaction(store: PostgresStore) -> None:
    store.merge_tickets("acme", files([line(1, "2026-01-01T01:00:00Z", "open")]))
    store.query("acme", "SELECT 1", [])
    conn = store._connection()
    # After the query's transaction, the same connection as the query role sees no tenant at all
    with conn.transaction():
        conn.execute("SET LOCAL ROLE ta_query")
        assert conn.execute("SELECT current_setting('app.tenant_id', true)").fetchone()[0] in (None, "")
        assert conn.execute("SELECT count(*) FROM support.tickets").fetchone() == (0,)


def test_the_query_role_cannot_write_or_bypass(store: PostgresStore) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        store.query("acme", "DELETE FROM support.tickets", [])
    store._connection().rollback()
    conn = store._connection()
    row = conn.execute("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = 'ta_query'").fetchone()
    assert row == (False, False)
    owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'tickets'").fetchone()
    assert owner == ("ta_etl",)
    forced = conn.execute("SELECT relforcerowsecurity FROM pg_class WHERE relname = 'tickets'").fetchone()
    assert forced == (True,)
