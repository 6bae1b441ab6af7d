"""Redshift store: its SQL against golden files and the Redshift grammar, its Data API calls against the
recorded request/response contract (botocore's Stubber checks every parameter against the service model)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
import sqlglot
from botocore.stub import Stubber

from tenant_analytics.errors import InvalidInput, StoreMisconfigured, StoreNotReady, StoreUnavailable
from tenant_analytics.models import ModelProject
from tenant_analytics.models.redshift import compile_redshift_model
from tenant_analytics.query.contract import parse_query
from tenant_analytics.query.planner import plan_query
from tenant_analytics.settings import StoreConfig
from tenant_analytics.stores.base import CuratedFiles
from tenant_analytics.stores.messaging import REDSHIFT_SCHEMA_SQL
from tenant_analytics.stores.models import packaged_models
from tenant_analytics.stores.redshift import (
    MODEL_STATE_LOCK_SQL,
    MODEL_STATE_SQL,
    MODELS_SCHEMA_SQL,
    POLICY_PRESENT_SQL,
    QUERY_USER_SQL,
    ROLES_PRESENT_SQL,
    SCHEMA_SQL,
    SET_TENANT_SQL,
    SUPPORT_COLUMNS_SQL,
    RedshiftDataStore,
    added_column_statements,
    definition_hash,
    merge_statements,
    model_migration,
)
from tenant_analytics.transforms.tables import SUPPORT_TABLES, TICKETS

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "redshift_load_support.sql"
OUTPUT = "s3://tenant-analytics-curated/curated/support/run=r1/batch=b0000"
PREFIX = f"{OUTPUT}/tickets/tenant_id=acme/"
ALL_TABLES = {t.name: f"{OUTPUT}/{t.name}/tenant_id=acme/" for t in SUPPORT_TABLES}
ROLE = "arn:aws:iam::111111111111:role/redshift-copy"
CFG = StoreConfig(
    engine="redshift",
    tier="redshift",
    workgroup_name="tenant-analytics-prod",
    database="analytics",
    secret_arn="arn:aws:secretsmanager:eu-west-1:111111111111:secret:rs",
    copy_role_arn=ROLE,
)
TARGET = {"WorkgroupName": "tenant-analytics-prod", "Database": "analytics", "SecretArn": CFG.secret_arn}
QUERY_USER = "IAMR:tenant-analytics-query"


def test_load_sql_matches_the_golden_file_and_parses_as_redshift() -> None:
    # Given a load of every curated table; When its statements are built
    statements = list(SCHEMA_SQL) + merge_statements("acme", ALL_TABLES, ROLE)
    # Then they are the reviewed ones, and Redshift's grammar accepts each
    assert ";\n\n".join(statements) + ";\n" == GOLDEN.read_text()
    for statement in statements:
        sqlglot.parse_one(statement, read="redshift")


def test_only_tables_with_files_are_loaded_and_counts_still_come_back() -> None:
    # Given a load where only users changed (no ticket files)
    statements = merge_statements("acme", {"users": f"{OUTPUT}/users/tenant_id=acme/"}, ROLE)
    # Then nothing touches the tickets' stage, and the stats row still has every count
    assert not any("stage_tickets" in s for s in statements)
    assert statements[-1].startswith("SELECT 0 AS rows_in, 0 AS inserted, 0 AS updated")
    assert "AS rows_users" in statements[-1]


def test_an_unknown_table_is_rejected_by_name() -> None:
    with pytest.raises(InvalidInput, match=r"unknown curated table\(s\) \['tickets; drop'\]"):
        merge_statements("acme", {"tickets; drop": PREFIX}, ROLE)


@pytest.mark.parametrize(
    ("tenant", "prefix", "role", "field"),
    [
        ("acme'; DROP TABLE support.tickets; --", PREFIX, ROLE, "tenant_id"),
        ("acme", "s3://bucket/x' IAM_ROLE 'other/", ROLE, "uri_prefix"),
        ("acme", PREFIX, "arn:aws:iam::1:role/x' --", "copy_role_arn"),
    ],
)
def test_interpolated_values_are_validated(tenant: str, prefix: str, role: str, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        merge_statements(tenant, {"tickets": prefix}, role)
    assert err.value.field == field


def expect_tenant_session(
    stub: Stubber, session_id: str, tenant_id: str = "acme", *, user: tuple[str, bool] | None = (QUERY_USER, False)
) -> None:
    """The recorded calls that open a query's Data API session for ``tenant_id``, then, when ``user`` (name, is
    superuser) is given, the check of the session's database user that a store makes before its first query."""
    stub.add_response(
        "execute_statement",
        {"Id": f"{session_id}-open", "SessionId": session_id},
        {
            "Sql": SET_TENANT_SQL,
            "Parameters": [{"name": "tenant_id", "value": tenant_id}],
            "SessionKeepAliveSeconds": 60,
            **TARGET,
        },
    )
    stub.add_response(
        "describe_statement", {"Id": f"{session_id}-open", "Status": "FINISHED"}, {"Id": f"{session_id}-open"}
    )
    if user is None:
        return
    check = f"{session_id}-user"
    stub.add_response("execute_statement", {"Id": check}, {"Sql": QUERY_USER_SQL, "SessionId": session_id})
    stub.add_response("describe_statement", {"Id": check, "Status": "FINISHED", "HasResultSet": True}, {"Id": check})
    stub.add_response(
        "get_statement_result",
        {
            "ColumnMetadata": [{"name": "usename"}, {"name": "usesuper"}],
            "Records": [[{"stringValue": user[0]}, {"booleanValue": user[1]}]],
            "TotalNumRows": 1,
        },
        {"Id": check},
    )


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    return boto3.client("redshift-data", region_name="eu-west-1")


def test_query_binds_named_parameters_and_reads_typed_cells(client) -> None:  # type: ignore[no-untyped-def]
    # Given a planned query in the Redshift flavour
    plan = plan_query(
        parse_query(
            {
                "dataset": "tickets",
                "measures": ["tickets_created"],
                "dimensions": ["channel"],
                "filters": [{"dimension": "channel", "op": "eq", "values": ["email"]}],
            }
        ),
        "acme",
        dialect="redshift",
    )
    assert ":p1" in plan.sql and ":p2" in plan.sql and "%s" not in plan.sql
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        # the session is opened by naming the tenant (the views' RLS policy reads it), as a bound parameter
        expect_tenant_session(stub, "session-1")
        stub.add_response(
            "execute_statement",
            {"Id": "q1"},
            {
                "Sql": plan.sql,
                "SessionId": "session-1",
                "Parameters": [
                    {"name": "p1", "value": "acme"},
                    {"name": "p2", "value": "email"},
                    {"name": "p3", "value": "1001"},
                ],
            },
        )
        stub.add_response("describe_statement", {"Id": "q1", "Status": "STARTED"}, {"Id": "q1"})
        stub.add_response("describe_statement", {"Id": "q1", "Status": "FINISHED", "HasResultSet": True}, {"Id": "q1"})
        stub.add_response(
            "get_statement_result",
            {
                "ColumnMetadata": [{"name": "channel"}, {"name": "tickets_created"}],
                "Records": [[{"stringValue": "email"}, {"longValue": 7}]],
                "TotalNumRows": 1,
                "NextToken": "n",
            },
            {"Id": "q1"},
        )
        stub.add_response(
            "get_statement_result",
            {
                "ColumnMetadata": [{"name": "channel"}, {"name": "tickets_created"}],
                "Records": [[{"isNull": True}, {"longValue": 2}]],
                "TotalNumRows": 1,
            },
            {"Id": "q1", "NextToken": "n"},
        )
        # When the statement runs
        columns, rows = store.query("acme", plan.sql, plan.params)
        stub.assert_no_pending_responses()
    # Then every page is read and cells are typed
    assert columns == ["channel", "tickets_created"]
    assert rows == [("email", 7), (None, 2)]


def test_load_runs_one_batch_and_reports_its_counts(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        sqls = merge_statements("acme", {"tickets": PREFIX}, ROLE)
        stub.add_response("batch_execute_statement", {"Id": "b1"}, {"Sqls": sqls, **TARGET})
        stub.add_response(
            "describe_statement",
            {"Id": "b1", "Status": "FINISHED", "SubStatements": [{"Id": f"b1:{i}"} for i in range(1, 8)]},
            {"Id": "b1"},
        )
        stub.add_response(
            "get_statement_result",
            {
                "ColumnMetadata": [
                    {"name": n} for n in ("rows_in", "inserted", "updated", "size_rows", "rows_tickets")
                ],
                "TotalNumRows": 1,
                "Records": [[{"longValue": v} for v in (12, 5, 4, 40, 12)]],
            },
            {"Id": "b1:7"},
        )
        stats = store.merge_curated("acme", {"tickets": CuratedFiles(uri_prefix=PREFIX, open_chunks=lambda: iter(()))})
    assert (stats.rows_in, stats.inserted, stats.updated, stats.size_rows) == (12, 5, 4, 40)
    assert stats.tables == {"tickets": 12}


def test_a_failed_statement_is_a_store_error_with_redshifts_message(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        expect_tenant_session(stub, "session-2")
        stub.add_response("execute_statement", {"Id": "q2"}, {"Sql": "SELECT 1", "SessionId": "session-2"})
        stub.add_response(
            "describe_statement", {"Id": "q2", "Status": "FAILED", "Error": "permission denied"}, {"Id": "q2"}
        )
        with pytest.raises(StoreUnavailable, match="statement failed: permission denied"):
            store.query("acme", "SELECT 1", [])


def test_tenant_queries_are_refused_while_the_store_user_is_a_superuser(client) -> None:  # type: ignore[no-untyped-def]
    # Given a store whose credentials log in as a superuser (Redshift ignores RLS policies for superusers)
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        for attempt in ("session-3", "session-4"):
            expect_tenant_session(stub, attempt, user=("admin", True))
        # When a tenant's query comes, and again
        for _ in range(2):
            with pytest.raises(StoreMisconfigured) as refused:
                store.query("acme", "SELECT 1", [])
            # Then it is refused before the tenant's statement runs (the stub would reject an unrecorded call),
            # saying who and what to do, every time
            assert "superuser 'admin'" in refused.value.message and "role ta_query" in refused.value.message
            assert refused.value.http_status == 500
        stub.assert_no_pending_responses()


def expect_tenant_switch(stub: Stubber, session_id: str, tenant_id: str, *, error: str | None = None) -> None:
    """The recorded calls that set ``tenant_id`` in an open session before its next statement (failing with
    ``error`` when given)."""
    switch = f"{session_id}-{tenant_id}"
    stub.add_response(
        "execute_statement",
        {"Id": switch},
        {"Sql": SET_TENANT_SQL, "Parameters": [{"name": "tenant_id", "value": tenant_id}], "SessionId": session_id},
    )
    done = {"Status": "FAILED", "Error": error} if error is not None else {"Status": "FINISHED"}
    stub.add_response("describe_statement", {"Id": switch, **done}, {"Id": switch})


def expect_statement(stub: Stubber, statement_id: str, session_id: str, value: int) -> None:
    """The recorded calls of ``SELECT 1`` run in ``session_id``, answering ``value``."""
    stub.add_response("execute_statement", {"Id": statement_id}, {"Sql": "SELECT 1", "SessionId": session_id})
    stub.add_response("describe_statement", {"Id": statement_id, "Status": "FINISHED"}, {"Id": statement_id})
    stub.add_response(
        "get_statement_result", {"Records": [[{"longValue": value}]], "TotalNumRows": 1}, {"Id": statement_id}
    )


def test_a_thread_keeps_its_session_and_names_the_tenant_before_every_statement(client) -> None:  # type: ignore[no-untyped-def]
    # Given a store (the Data API caps how many sessions may be open at once)
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        # the first query opens the session and checks its user, once
        expect_tenant_session(stub, "session-5")
        expect_statement(stub, "q1", "session-5", 1)
        # the next ones, of any tenant, set their tenant in that session first
        expect_tenant_switch(stub, "session-5", "globex")
        expect_statement(stub, "q2", "session-5", 2)
        expect_tenant_switch(stub, "session-5", "acme")
        expect_statement(stub, "q3", "session-5", 3)
        # When three queries of two tenants run
        answers = [store.query(t, "SELECT 1", []) for t in ("acme", "globex", "acme")]
        stub.assert_no_pending_responses()
    # Then each is answered in the one session
    assert answers == [([], [(1,)]), ([], [(2,)]), ([], [(3,)])]


def test_an_expired_session_is_replaced(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        expect_tenant_session(stub, "session-6")
        expect_statement(stub, "q1", "session-6", 1)
        # Given the session expired after its last statement
        stub.add_client_error(
            "execute_statement",
            service_error_code="ResourceNotFoundException",
            service_message="Session session-6 does not exist",
            expected_params={
                "Sql": SET_TENANT_SQL,
                "Parameters": [{"name": "tenant_id", "value": "acme"}],
                "SessionId": "session-6",
            },
        )
        # Then the next query opens a new one (its user already checked) and runs there
        expect_tenant_session(stub, "session-7", user=None)
        expect_statement(stub, "q2", "session-7", 2)
        assert store.query("acme", "SELECT 1", []) == ([], [(1,)])
        assert store.query("acme", "SELECT 1", []) == ([], [(2,)])
        stub.assert_no_pending_responses()


def test_a_failed_statement_leaves_its_session_behind(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        expect_tenant_session(stub, "session-8")
        stub.add_response("execute_statement", {"Id": "q1"}, {"Sql": "SELECT 1", "SessionId": "session-8"})
        stub.add_response("describe_statement", {"Id": "q1", "Status": "ABORTED", "Error": "cancelled"}, {"Id": "q1"})
        # Given a statement that did not finish in its session
        with pytest.raises(StoreUnavailable, match="statement aborted"):
            store.query("acme", "SELECT 1", [])
        # Then the next query does not use that session (it may still be busy)
        expect_tenant_session(stub, "session-9", user=None)
        expect_statement(stub, "q2", "session-9", 2)
        assert store.query("acme", "SELECT 1", []) == ([], [(2,)])
        stub.assert_no_pending_responses()


def test_a_session_whose_tenant_could_not_be_set_is_left_behind(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        expect_tenant_session(stub, "session-10")
        expect_statement(stub, "q1", "session-10", 1)
        # Given a kept session in which setting the next query's tenant fails
        expect_tenant_switch(stub, "session-10", "globex", error="internal")
        assert store.query("acme", "SELECT 1", []) == ([], [(1,)])
        # Then that query fails before its statement runs (the stub would reject an unrecorded call)
        with pytest.raises(StoreUnavailable, match="statement failed: internal"):
            store.query("globex", "SELECT 1", [])
        # and the next query opens a new session rather than trust the one whose tenant setting is unknown
        expect_tenant_session(stub, "session-11", "globex", user=None)
        expect_statement(stub, "q2", "session-11", 2)
        assert store.query("globex", "SELECT 1", []) == ([], [(2,)])
        stub.assert_no_pending_responses()


def test_a_query_on_a_store_no_writer_has_set_up_says_so(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        expect_tenant_session(stub, "session-12")
        stub.add_response("execute_statement", {"Id": "q1"}, {"Sql": "SELECT 1", "SessionId": "session-12"})
        error = 'ERROR: relation "models.tenant_daily" does not exist'
        stub.add_response("describe_statement", {"Id": "q1", "Status": "FAILED", "Error": error}, {"Id": "q1"})
        with pytest.raises(
            StoreNotReady, match=r'relation "models.tenant_daily" does not exist: the store is not set up'
        ) as refused:
            store.query("acme", "SELECT 1", [])
    assert (refused.value.http_status, refused.value.code) == (503, "store_not_ready")


def test_data_api_limits_are_retryable_store_errors(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        stub.add_client_error(
            "execute_statement",
            service_error_code="ActiveSessionsExceededException",
            service_message="The maximum number of active sessions has been reached",
        )
        with pytest.raises(StoreUnavailable, match="ActiveSessionsExceededException") as refused:
            store.query("acme", "SELECT 1", [])
    assert refused.value.http_status == 503 and "store 'redshift-1'" in refused.value.message


def test_the_user_check_parses_as_redshift() -> None:
    parsed = sqlglot.parse_one(QUERY_USER_SQL, read="redshift")
    assert {t.name for t in parsed.find_all(sqlglot.exp.Table)} == {"pg_user"}


def _support_columns(*, without: frozenset[str] = frozenset()) -> list[list[dict[str, str]]]:
    """svv_columns rows of the support tables as created, less the tickets' columns in ``without``."""
    rows = [("tickets", "tenant_id"), ("tickets", "loaded_at")]
    for table in SUPPORT_TABLES:
        rows.extend((table.name, c.name) for c in table.columns if not (table is TICKETS and c.name in without))
    return [[{"stringValue": t}, {"stringValue": c}] for t, c in rows]


def _expect_select(stub: Stubber, statement_id: str, sql: str, rows: list[list[dict[str, str]]]) -> None:
    """The recorded calls of one of the store's own reads, answering ``rows``."""
    stub.add_response("execute_statement", {"Id": statement_id}, {"Sql": sql, **TARGET})
    stub.add_response(
        "describe_statement", {"Id": statement_id, "Status": "FINISHED", "HasResultSet": True}, {"Id": statement_id}
    )
    stub.add_response("get_statement_result", {"Records": rows, "TotalNumRows": len(rows)}, {"Id": statement_id})


def _expect_batch(stub: Stubber, statement_id: str, sqls: list[str]) -> None:
    stub.add_response("batch_execute_statement", {"Id": statement_id}, {"Sqls": sqls, **TARGET})
    stub.add_response("describe_statement", {"Id": statement_id, "Status": "FINISHED"}, {"Id": statement_id})


def _created(project: ModelProject) -> list[list[dict[str, str]]]:
    """model_state rows of a store whose views match ``project``."""
    return [
        [{"stringValue": m.name}, {"stringValue": definition_hash(compile_redshift_model(m))}] for m in project.models
    ]


def test_an_existing_table_gains_the_columns_added_to_its_spec_since_it_was_created(client) -> None:  # type: ignore[no-untyped-def]
    # Given a store with its roles and up-to-date views, whose tickets table was created before the denormalised
    # names joined its spec
    added = frozenset({"requester_name", "assignee_name", "group_name", "organization_name"})
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    with Stubber(client) as stub:
        _expect_select(stub, "r1", ROLES_PRESENT_SQL, [[{"stringValue": "ta_etl"}], [{"stringValue": "ta_query"}]])
        _expect_batch(stub, "s1", list(SCHEMA_SQL))
        _expect_select(stub, "c1", SUPPORT_COLUMNS_SQL, _support_columns(without=added))
        # Then the missing columns are added (nullable, in spec order) before the messaging tables and the views
        expected = [
            f"ALTER TABLE support.tickets ADD COLUMN {c.name} VARCHAR(256)" for c in TICKETS.columns if c.name in added
        ]
        _expect_batch(stub, "s2", [*expected, *REDSHIFT_SCHEMA_SQL, *MODELS_SCHEMA_SQL])
        # and the views, already as the packaged models define them, are left alone (no further call)
        _expect_select(stub, "m1", MODEL_STATE_SQL, _created(packaged_models()))
        _expect_select(stub, "p1", POLICY_PRESENT_SQL, [[{"stringValue": "models_tenant_isolation"}]])

        # When the schema is ensured
        store.ensure_schema()
        stub.assert_no_pending_responses()
    for statement in expected:
        sqlglot.parse_one(statement, read="redshift")


def test_a_new_store_gets_its_roles_tables_policy_and_every_view_in_one_locked_transaction(client) -> None:  # type: ignore[no-untyped-def]
    store = RedshiftDataStore("redshift-1", CFG, client, sleep=lambda _: None)
    project = packaged_models()
    with Stubber(client) as stub:
        # Given a workgroup with nothing of the platform's yet
        _expect_select(stub, "r1", ROLES_PRESENT_SQL, [])
        _expect_batch(stub, "s1", ["CREATE ROLE ta_etl", "CREATE ROLE ta_query", *SCHEMA_SQL])
        _expect_select(stub, "c1", SUPPORT_COLUMNS_SQL, [])
        _expect_batch(stub, "s2", [*REDSHIFT_SCHEMA_SQL, *MODELS_SCHEMA_SQL])
        _expect_select(stub, "m1", MODEL_STATE_SQL, [])
        _expect_select(stub, "p1", POLICY_PRESENT_SQL, [])
        # Then the policy and every model's view, parents first, are created behind the state table's lock
        migration = model_migration(project, {}, policy_exists=False)
        _expect_batch(stub, "v1", [MODEL_STATE_LOCK_SQL, *migration])
        store.ensure_schema()
        stub.assert_no_pending_responses()
    assert migration[0].startswith("CREATE RLS POLICY models_tenant_isolation")
    created = [s.split()[3] for s in migration if s.startswith("CREATE MATERIALIZED VIEW")]
    assert created == [f"models.{m.name}" for m in project.models]
    for statement in [MODEL_STATE_LOCK_SQL, *migration, *MODELS_SCHEMA_SQL, ROLES_PRESENT_SQL, POLICY_PRESENT_SQL]:
        if not statement.startswith(("CREATE RLS POLICY", "ATTACH RLS", "ALTER MATERIALIZED", "LOCK")):
            sqlglot.parse_one(statement, read="redshift")


def test_a_changed_model_is_rebuilt_with_every_view_built_on_it_and_nothing_else() -> None:
    project = packaged_models()
    created = {row[0]["stringValue"]: row[1]["stringValue"] for row in _created(project)}
    parent = next(m for m in project.models if any(m.name in child.refs for child in project.models))
    descendants, frontier = set(), {parent.name}
    while frontier:
        frontier = {m.name for m in project.models if set(m.refs) & frontier} - descendants
        descendants |= frontier
    # Given a store whose view of one parent model was made from another definition, and a view of a model since
    # removed from the project
    created[parent.name] = "0" * 64
    created["retired_model"] = "1" * 64
    migration = model_migration(project, created, policy_exists=True)
    # Then the removed view is dropped and forgotten, and the parent and its descendants are rebuilt, in DAG order
    assert migration[:2] == [
        "DROP MATERIALIZED VIEW IF EXISTS models.retired_model CASCADE",
        "DELETE FROM models.model_state WHERE model = 'retired_model'",
    ]
    rebuilt = [s.split()[3] for s in migration if s.startswith("CREATE MATERIALIZED VIEW")]
    assert rebuilt == [f"models.{m.name}" for m in project.models if m.name in descendants | {parent.name}]
    assert descendants and not any("CREATE RLS POLICY" in s for s in migration)
    # and each rebuilt view records its new definition: once it ran, the next migration has nothing to do
    assert sum(s.startswith("INSERT INTO models.model_state") for s in migration) == len(rebuilt)
    up_to_date = {row[0]["stringValue"]: row[1]["stringValue"] for row in _created(project)}
    assert model_migration(project, up_to_date, policy_exists=True) == []


def test_an_up_to_date_or_new_table_gets_no_alter() -> None:
    every = {(t.name, c.name) for t in SUPPORT_TABLES for c in t.columns}
    assert added_column_statements(every) == []
    # a table not there yet is created whole by its CREATE TABLE
    assert added_column_statements({(t, c) for t, c in every if t != "tickets"}) == []
    # a key column is never added (the key cannot change without rebuilding the table)
    assert added_column_statements({(t, c) for t, c in every if (t, c) != ("tickets", "ticket_id")}) == []
