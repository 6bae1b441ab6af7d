"""PostgresStore on the embedded PostgreSQL: merges are idempotent, RLS holds even without the planner."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tenant_analytics.constants import QUERY_LOGIN
from tenant_analytics.errors import StoreNotReady, StoreUnavailable
from tenant_analytics.local.postgres import ensure_database, query_login_url
from tenant_analytics.stores.base import CuratedFiles
from tenant_analytics.stores.postgres import PostgresStore

files = CuratedFiles.from_bytes


def line(tid: int, updated: str, status: str) -> bytes:
    return f"{tid},2026-01-01T00:00:00Z,{updated},{status},high,email,5,,,,,,,\n".encode()


@pytest.fixture
def store_url(pg_admin: str, db_prefix: str) -> str:
    return ensure_database(pg_admin, f"{db_prefix}_store")


@pytest.fixture
def store(store_url: str) -> Iterator[PostgresStore]:
    s = PostgresStore("aurora-1", store_url)
    s.ensure_schema()
    s.ensure_schema()  # idempotent
    yield s
    s.close()


def test_merge_is_idempotent_and_newer_versions_win(store: PostgresStore) -> None:
    # Given two versions of ticket 1 in one load and a later, older version of it
    first = store.merge_curated(
        "acme",
        {
            "tickets": files(
                [
                    line(1, "2026-01-01T01:00:00Z", "open"),
                    line(1, "2026-01-01T02:00:00Z", "solved"),
                    line(2, "2026-01-01T01:00:00Z", "new"),
                ]
            )
        },
    )
    replay = store.merge_curated(
        "acme", {"tickets": files([line(1, "2026-01-01T02:00:00Z", "solved"), line(2, "2026-01-01T01:00:00Z", "new")])}
    )
    stale = store.merge_curated("acme", {"tickets": files([line(1, "2026-01-01T01:30:00Z", "pending")])})

    # Then the newest version is kept, replays change nothing, and nothing is duplicated
    assert (first.inserted, first.updated, first.size_rows) == (2, 0, 2)
    assert replay.size_rows == 2 and replay.inserted == 0
    assert stale.updated == 0
    _, rows = store.query("acme", "SELECT ticket_id, status FROM support.tickets ORDER BY ticket_id", [])
    assert rows == [(1, "solved"), (2, "new")]


def test_row_level_security_isolates_tenants_without_any_predicate(store: PostgresStore) -> None:
    store.merge_curated("acme", {"tickets": files([line(1, "2026-01-01T01:00:00Z", "open")])})
    store.merge_curated(
        "globex", {"tickets": files([line(1, "2026-01-01T01:00:00Z", "open"), line(2, "2026-01-01T01:00:00Z", "open")])}
    )

    # When statements with no tenant predicate run as each tenant on the same pooled connection
    count = "SELECT count(*) FROM support.tickets"
    assert store.query("acme", count, [])[1] == [(1,)]
    assert store.query("globex", count, [])[1] == [(2,)]
    assert store.query("acme", "SELECT DISTINCT tenant_id FROM support.tickets", [])[1] == [("acme",)]


def test_the_tenant_setting_does_not_outlive_its_transaction(store: PostgresStore) -> None:
    store.merge_curated("acme", {"tickets": files([line(1, "2026-01-01T01:00:00Z", "open")])})
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


def test_the_query_login_reads_a_tenant_at_a_time_and_does_nothing_else(store: PostgresStore, store_url: str) -> None:
    # Given two tenants' rows, written by the store's admin
    store.merge_curated("acme", {"tickets": files([line(1, "2026-01-01T01:00:00Z", "open")])})
    store.merge_curated("globex", {"tickets": files([line(7, "2026-01-01T01:00:00Z", "new")])})
    # When the query function's login (on Aurora: an IAM token; a new connection string per connection) opens it
    made: list[str] = []

    def login_conninfo() -> str:
        made.append(QUERY_LOGIN)
        return make_conninfo(store_url, user=QUERY_LOGIN)

    login = PostgresStore("aurora-1", login_conninfo)
    try:
        # Then tenant queries answer as before, one tenant each
        assert login.query("acme", "SELECT ticket_id FROM support.tickets", [])[1] == [(1,)]
        assert login.query("globex", "SELECT ticket_id FROM support.tickets", [])[1] == [(7,)]
        # and by itself, without the tenant setting, it sees nothing, writes nothing and changes no schema
        conn = login._connection()
        assert conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False,
            False,
        )
        assert conn.execute("SELECT count(*) FROM support.tickets").fetchone() == (0,)
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM support.tickets")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            login.merge_curated("acme", {"tickets": files([line(2, "2026-01-01T01:00:00Z", "open")])})
        login._connection().rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            login.ensure_schema()
        # and a connection made after the first closed asks for a new connection string
        login.close()
        login.query("acme", "SELECT 1", [])
        assert len(made) == 2
    finally:
        login.close()
    assert store.query("acme", "SELECT count(*) FROM support.tickets", [])[1] == [(1,)]


def test_on_aurora_the_query_login_may_sign_in_with_iam_tokens(store_url: str, pg_admin: str) -> None:
    # Given a server with Aurora's rds_iam role (kept: other stores of this test server may grant it concurrently)
    with (
        psycopg.connect(pg_admin, autocommit=True) as admin,
        contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation),
    ):
        admin.execute("CREATE ROLE rds_iam NOLOGIN")
    # When a store's schema is ensured, twice
    store = PostgresStore("aurora-1", store_url)
    try:
        store.ensure_schema()
        store.ensure_schema()
        # Then the query login is a member of rds_iam (IAM tokens only), and of no role but it and the query role
        conn = store._connection()
        granted = conn.execute(
            "SELECT array_agg(r.rolname ORDER BY r.rolname) FROM pg_auth_members AS m "
            "JOIN pg_roles AS r ON r.oid = m.roleid WHERE m.member = %s::regrole",
            (QUERY_LOGIN,),
        ).fetchone()
        assert granted == (["rds_iam", "ta_query"],)
    finally:
        store.close()


def test_a_read_on_a_connection_the_server_dropped_runs_again_on_a_new_one(store: PostgresStore, pg_admin: str) -> None:
    # Given a store whose idle connection the server has since closed (a failover, an idle timeout)
    store.merge_curated("acme", {"tickets": files([line(1, "2026-01-01T01:00:00Z", "open")])})
    dropped = store._connection().info.backend_pid
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (dropped,)).fetchone() == (True,)

    # When a tenant's query comes, then it is answered, on a new connection
    assert store.query("acme", "SELECT count(*) FROM support.tickets", [])[1] == [(1,)]
    assert store._connection().info.backend_pid != dropped


def test_a_read_the_store_fails_midway_is_a_retryable_store_error(store: PostgresStore) -> None:
    # Given a live connection whose statements time out (a store too busy to answer in time)
    store._connection().execute("SET statement_timeout = '50ms'")
    kept = store._connection().info.backend_pid

    # When a query runs past it, then the caller gets a store error it may retry, naming the store and the cause
    with pytest.raises(
        StoreUnavailable, match=r"store 'aurora-1' failed: canceling statement due to statement timeout"
    ):
        store.query("acme", "SELECT pg_sleep(1)", [])
    # and the read was not run again on the same live connection
    assert store._connection().info.backend_pid == kept


def test_a_query_on_a_store_no_writer_has_set_up_says_so(store: PostgresStore, pg_admin: str, db_prefix: str) -> None:
    # Given a second database in the same cluster (the roles exist) that no load or refresh has opened yet
    fresh = PostgresStore("aurora-2", ensure_database(pg_admin, f"{db_prefix}_fresh"))
    try:
        # When a tenant's query comes, then it is refused as a store that is not ready, naming it and what is missing
        with pytest.raises(
            StoreNotReady, match=r"store 'aurora-2' is not set up yet \(relation \"models.tenant_daily\""
        ):
            fresh.query("acme", "SELECT count(*) FROM models.tenant_daily", [])
        # and the API answers 503 with its own code, so a client may retry once the first load has run
        with pytest.raises(StoreNotReady) as refused:
            fresh.query("acme", "SELECT count(*) FROM support.tickets", [])
        assert (refused.value.http_status, refused.value.to_dict()["error"]["code"]) == (503, "store_not_ready")
    finally:
        fresh.close()


def test_locally_tenant_queries_log_in_as_the_query_login_where_the_server_lets_it(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The embedded server lets the query login in without a password: local queries use it, as on AWS
    login = query_login_url(store_url)
    assert login is not None and conninfo_to_dict(login)["user"] == QUERY_LOGIN
    with psycopg.connect(login) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (QUERY_LOGIN,)

    # A server that asks the login for a password (it has none) is reported, so queries run as the writers' user
    real_connect = psycopg.connect

    def password_required(conninfo: str, **kwargs: Any) -> Any:
        if conninfo_to_dict(conninfo).get("user") == QUERY_LOGIN:
            raise psycopg.OperationalError(f'password authentication failed for user "{QUERY_LOGIN}"')
        return real_connect(conninfo, **kwargs)

    monkeypatch.setattr(psycopg, "connect", password_required)
    assert query_login_url(store_url) is None


def test_each_curated_table_merges_by_its_mode_in_one_transaction(store: PostgresStore) -> None:
    # Given a first load of events (immutable), metrics (recomputed) and daily counts (replaced as a whole)
    event = "10,1,2026-01-01T00:00:00Z,create,5,false,,new\n"
    store.merge_curated(
        "acme",
        {
            "ticket_events": files([event.encode(), event.encode()]),
            "ticket_metrics": files([b"10,2026-01-01T00:00:00Z,open,,,,,0,0,1\n"]),
            "daily_ticket_counts": files([b"2026-01-01,1,0,0,1\n", b"2026-01-02,0,0,0,1\n"]),
        },
    )

    # When the next load repeats the event with other values, recomputes the metrics and has one day only
    stats = store.merge_curated(
        "acme",
        {
            "ticket_events": files([b"10,1,2026-01-01T00:00:00Z,create,5,false,,open\n"]),
            "ticket_metrics": files([b"10,2026-01-01T00:00:00Z,solved,,,,,0,0,2\n"]),
            "daily_ticket_counts": files([b"2026-01-01,1,1,0,0\n"]),
        },
    )

    # Then the stored event is unchanged, the metrics are replaced, and the days are exactly the last load's
    def rows(statement: str) -> list[tuple]:
        return store.query("acme", statement, [])[1]

    assert rows("SELECT ticket_id, event_id, value FROM support.ticket_events") == [(10, 1, "new")]
    assert rows("SELECT current_status, agent_touches FROM support.ticket_metrics") == [("solved", 2)]
    assert rows("SELECT day::text, solved, backlog FROM support.daily_ticket_counts") == [("2026-01-01", 1, 0)]
    assert stats.tables == {"ticket_events": 1, "ticket_metrics": 1, "daily_ticket_counts": 1}


def test_every_curated_table_has_forced_row_level_security(store: PostgresStore) -> None:
    from tenant_analytics.transforms.tables import SUPPORT_TABLES

    conn = store._connection()
    for table in SUPPORT_TABLES:
        forced = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class WHERE oid = %s::regclass", (table.qualified_name,)
        ).fetchone()
        assert forced == (True,), table.name


def test_an_unknown_table_is_refused_before_anything_is_written(store: PostgresStore) -> None:
    from tenant_analytics.errors import InvalidInput

    with pytest.raises(InvalidInput, match=r"unknown curated table\(s\) \['secrets'\]"):
        store.merge_curated("acme", {"tickets": files([line(1, "2026-01-01T01:00:00Z", "open")]), "secrets": files([])})
    assert store.query("acme", "SELECT count(*) FROM support.tickets", [])[1] == [(0,)]
