"""Redshift store, through the Redshift Data API (no driver, no connection pool, IAM-authenticated).

Control statements and loads run as Data API batches (a batch is one transaction); reads run as single
statements with named parameters. Loads COPY the tenant's curated CSV files from S3 into a staging table
and MERGE the newest version of each ticket into the facts. The operational export UNLOADs models' rows of
given tenants to S3 (as the same IAM role as COPY) and reads back the UNLOAD manifest with an S3 client.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import ClientError
from sqlglot import exp

from tenant_analytics.errors import InvalidInput, StoreMisconfigured, StoreNotReady, StoreUnavailable
from tenant_analytics.models import ModelProject, RefreshRecord, refresh_statements_redshift
from tenant_analytics.models.project import MODEL_SCHEMA
from tenant_analytics.models.redshift import (
    MODEL_SCHEMA_SQL,
    POLICY_SQL,
    RLS_POLICY,
    compile_redshift_model,
    view_name,
)
from tenant_analytics.settings import StoreConfig
from tenant_analytics.stores.base import CuratedFiles, MergeStats
from tenant_analytics.stores.messaging import REDSHIFT_SCHEMA_SQL
from tenant_analytics.stores.models import packaged_models
from tenant_analytics.stores.operational_export import (
    ExportTable,
    UnloadedFiles,
    read_unload_manifest,
    unload_statement,
)
from tenant_analytics.stores.roles import ETL_ROLE, QUERY_ROLE
from tenant_analytics.tenants.models import TENANT_ID_RULE, is_tenant_id
from tenant_analytics.transforms.tables import SUPPORT_TABLES, TABLES_BY_NAME, TICKETS, CuratedTable

SESSION_KEEP_ALIVE_S = 60  # a thread's query session stays open this long after its last statement
SET_TENANT_SQL = "SELECT set_config('app.tenant_id', :tenant_id, FALSE)"
# What the Data API answers for a session that has expired (or never existed).
_SESSION_GONE = frozenset({"ResourceNotFoundException", "ValidationException"})
# Who runs the tenants' queries: Redshift ignores row-level security policies for superusers.
QUERY_USER_SQL = "SELECT usename, usesuper FROM pg_user WHERE usename = current_user"
# How Redshift reports a statement over a table that is not there (a store no writer has set up yet).
_NO_RELATION = re.compile(r'relation "[^"]+" does not exist')
_S3_PREFIX = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9_./=-]+/$")
_IAM_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")


# The roles the schemas' grants name: Redshift has no CREATE ROLE IF NOT EXISTS, so the ones present are read first.
ROLES_PRESENT_SQL = (
    exp.select("role_name")
    .from_("svv_roles")
    .where(exp.column("role_name").isin(exp.Literal.string(ETL_ROLE), exp.Literal.string(QUERY_ROLE)))
    .sql("redshift")
)
# The definition each materialized view was created from (see model_migration).
_MODEL_STATE = exp.table_("model_state", db=MODEL_SCHEMA)
MODELS_SCHEMA_SQL: tuple[str, ...] = (
    *MODEL_SCHEMA_SQL,
    f"CREATE TABLE IF NOT EXISTS {_MODEL_STATE.sql('redshift')} "
    "(model VARCHAR(128) NOT NULL, definition_hash CHAR(64) NOT NULL)",
)
MODEL_STATE_LOCK_SQL = f"LOCK {_MODEL_STATE.sql('redshift')}"
MODEL_STATE_SQL = exp.select("model", "definition_hash").from_(_MODEL_STATE.copy()).sql("redshift")
POLICY_PRESENT_SQL = (
    exp.select("polname")
    .from_("svv_rls_policy")
    .where(exp.column("polname").eq(exp.Literal.string(RLS_POLICY)))
    .sql("redshift")
)


def definition_hash(model_statements: Sequence[str]) -> str:
    """What identifies a model's Redshift definition: a hash of the DDL it compiles to."""
    return hashlib.sha256("\n".join(model_statements).encode()).hexdigest()


def model_migration(project: ModelProject, created: Mapping[str, str], policy_exists: bool) -> list[str]:
    """The statements that bring the materialized views to ``project``, given the ``created`` definition hash of each
    view there now (``models.model_state``) and whether the tenant policy exists.

    A view whose definition changed is dropped and created again, and so is every view built on it, directly or not
    (dropping a view CASCADEs to them); a view of a model no longer in the project is dropped. Each model's row of
    ``model_state`` is written with its view, so a store whose views were made by hand is rebuilt once. An
    up-to-date store gets no statement.
    """
    statements: list[str] = []
    if not policy_exists:
        statements.append(POLICY_SQL)
    names = {m.name for m in project.models}
    for gone in sorted(set(created) - names):
        view = exp.table_(gone, db=MODEL_SCHEMA).sql("redshift")
        statements += [f"DROP MATERIALIZED VIEW IF EXISTS {view} CASCADE", _forget(gone)]
    rebuilt: set[str] = set()
    for model in project.models:  # parents first
        ddl = compile_redshift_model(model)
        digest = definition_hash(ddl)
        if created.get(model.name) == digest and not rebuilt & set(model.refs):
            continue
        rebuilt.add(model.name)
        recorded = exp.insert(
            exp.values([(exp.Literal.string(model.name), exp.Literal.string(digest))]), _MODEL_STATE.copy()
        )
        statements += [
            f"DROP MATERIALIZED VIEW IF EXISTS {view_name(model)} CASCADE",
            *ddl,
            _forget(model.name),
            recorded.sql("redshift"),
        ]
    return statements


def _forget(model: str) -> str:
    return exp.delete(_MODEL_STATE.copy(), where=exp.column("model").eq(exp.Literal.string(model))).sql("redshift")


def table_ddl(table: CuratedTable) -> str:
    """CREATE TABLE of one curated table: distributed by tenant, sorted by tenant and the table's sort column."""
    columns = ["tenant_id VARCHAR(63) NOT NULL"] + [
        f"{c.name} {c.redshift_type}{' NOT NULL' if c.not_null else ''}" for c in table.columns
    ]
    return (
        f"CREATE TABLE IF NOT EXISTS {table.qualified_name} (\n    "
        + ",\n    ".join([*columns, "loaded_at TIMESTAMPTZ DEFAULT SYSDATE"])
        + f",\n    PRIMARY KEY (tenant_id, {', '.join(table.key)})\n) DISTKEY (tenant_id) "
        f"SORTKEY (tenant_id, {table.sort_column})"
    )


SCHEMA_SQL: tuple[str, ...] = ("CREATE SCHEMA IF NOT EXISTS support", *(table_ddl(t) for t in SUPPORT_TABLES))

# The support tables' columns as Redshift has them (CREATE TABLE IF NOT EXISTS leaves an existing table alone).
SUPPORT_COLUMNS_SQL = "SELECT table_name, column_name FROM svv_columns WHERE table_schema = 'support'"


def added_column_statements(existing: set[tuple[str, str]]) -> list[str]:
    """ALTER TABLE ... ADD COLUMN for every column of a support table that ``existing`` (table, column) lacks.

    A table created before a column joined its spec keeps working: the column is added as nullable (Redshift
    adds a NOT NULL column only with a default), as the PostgreSQL store does. Key columns were there from the
    start (a key cannot change without rebuilding the table).
    """
    statements = []
    for table in SUPPORT_TABLES:
        if not any(t == table.name for t, _ in existing):
            continue  # not created yet: its CREATE TABLE has every column
        for column in table.columns:
            if column.name not in table.key and (table.name, column.name) not in existing:
                statements.append(f"ALTER TABLE {table.qualified_name} ADD COLUMN {column.name} {column.redshift_type}")
    return statements


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="redshift")


def _table_statements(table: CuratedTable, tenant: str, uri_prefix: str, role: str) -> list[str]:
    """Stage one table's files and merge them into the table as its mode says (tenant: a quoted literal)."""
    name = table.qualified_name
    stage = f"stage_{table.name}"
    newest = f"newest_{table.name}"
    cols = ", ".join(table.column_names)
    on = " AND ".join(f"{name}.{k} = n.{k}" for k in table.key)
    statements = [
        f"CREATE TEMP TABLE {stage} ({', '.join(f'{c.name} {c.redshift_type}' for c in table.columns)})",
        (
            f"COPY {stage} ({cols}) FROM {_literal(uri_prefix)} IAM_ROLE {_literal(role)} "
            "FORMAT AS CSV TIMEFORMAT 'auto' EMPTYASNULL"
        ),
    ]
    if table.merge == "replace_tenant":
        return [
            *statements,
            f"DELETE FROM {name} WHERE tenant_id = {tenant}",  # noqa: S608 - validated, quoted
            f"INSERT INTO {name} (tenant_id, {cols}, loaded_at) "  # noqa: S608 - validated, quoted
            f"SELECT {tenant}, {cols}, SYSDATE FROM {stage}",
        ]
    order = f"{table.version_column} DESC" if table.version_column else ", ".join(table.key)
    keep = "s.rn = 1"
    if table.merge == "newer" and table.version_column:
        keep += f" AND (t.{table.key[0]} IS NULL OR t.{table.version_column} <= s.{table.version_column})"
    if table.merge == "insert_only":
        keep += f" AND t.{table.key[0]} IS NULL"
    joined = " AND ".join(f"t.{k} = s.{k}" for k in table.key)
    statements.append(
        f"CREATE TEMP TABLE {newest} AS SELECT {', '.join('s.' + c for c in table.column_names)} FROM ("  # noqa: S608
        f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {', '.join(table.key)} ORDER BY {order}) AS rn "
        f"FROM {stage}) AS s LEFT JOIN {name} AS t ON t.tenant_id = {tenant} AND {joined} WHERE {keep}"
    )
    if table is TICKETS:
        statements.append(
            "CREATE TEMP TABLE merge_stats AS SELECT "  # noqa: S608 - validated, quoted
            f"(SELECT COUNT(*) FROM {stage}) AS rows_in, "
            f"(SELECT COUNT(*) FROM {newest} AS n WHERE NOT EXISTS (SELECT 1 FROM {name} AS t "
            f"WHERE t.tenant_id = {tenant} AND t.ticket_id = n.ticket_id)) AS inserted, "
            f"(SELECT COUNT(*) FROM {newest}) AS touched"
        )
    values = ", ".join("n." + c for c in table.column_names)
    insert = f"INSERT (tenant_id, {cols}, loaded_at) VALUES ({tenant}, {values}, SYSDATE)"  # noqa: S608
    if table.merge == "insert_only":
        statements.append(
            f"INSERT INTO {name} (tenant_id, {cols}, loaded_at) "  # noqa: S608 - validated, quoted
            f"SELECT {tenant}, {cols}, SYSDATE FROM {newest}"
        )
        return statements
    updates = ", ".join(f"{c} = n.{c}" for c in table.column_names if c not in table.key)
    statements.append(
        f"MERGE INTO {name} USING {newest} AS n ON {name}.tenant_id = {tenant} AND {on} "
        f"WHEN MATCHED THEN UPDATE SET {updates}, loaded_at = SYSDATE WHEN NOT MATCHED THEN {insert}"
    )
    return statements


def merge_statements(tenant_id: str, prefixes: Mapping[str, str], iam_role_arn: str) -> list[str]:
    """The load batch (one transaction) of one tenant: every curated table that has files, then the stats row.

    ``prefixes`` maps curated table names to the S3 prefix of the tenant's files. A Data API batch takes no
    parameters, so every value is validated against a strict pattern and then quoted by sqlglot; every
    identifier comes from transforms.tables.
    """
    if not is_tenant_id(tenant_id):
        raise InvalidInput(f"tenant id {tenant_id!r} is not allowed: {TENANT_ID_RULE}", field="tenant_id")
    if not _IAM_ROLE.match(iam_role_arn):
        raise InvalidInput(f"'{iam_role_arn}' is not an IAM role ARN", field="copy_role_arn")
    unknown = sorted(set(prefixes) - set(TABLES_BY_NAME))
    if unknown:
        raise InvalidInput(f"unknown curated table(s) {unknown}; tables: {sorted(TABLES_BY_NAME)}", field="files")
    for uri_prefix in prefixes.values():
        if not _S3_PREFIX.match(uri_prefix):
            raise InvalidInput(f"'{uri_prefix}' is not an s3://bucket/prefix/ of curated files", field="uri_prefix")
    tenant = _literal(tenant_id)
    statements: list[str] = []
    for table in SUPPORT_TABLES:
        if table.name in prefixes:
            statements += _table_statements(table, tenant, prefixes[table.name], iam_role_arn)
    size = f"(SELECT COUNT(*) FROM support.tickets WHERE tenant_id = {tenant}) AS size_rows"  # noqa: S608
    rows = ", ".join(f"(SELECT COUNT(*) FROM stage_{t}) AS rows_{t}" for t in TABLES_BY_NAME if t in prefixes)  # noqa: S608
    if TICKETS.name in prefixes:
        statements.append(f"SELECT rows_in, inserted, touched - inserted AS updated, {size}, {rows} FROM merge_stats")  # noqa: S608
    else:
        statements.append(f"SELECT 0 AS rows_in, 0 AS inserted, 0 AS updated, {size}, {rows}")
    return statements


def _cell(field: dict[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    for key in ("longValue", "doubleValue", "booleanValue", "stringValue"):
        if key in field:
            return field[key]
    return None


def new_run_id() -> str:
    """Return a fresh, sortable name for one export run: UTC time to the second, then 8 random hex digits."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _param(name: str, value: Any) -> dict[str, str]:
    if isinstance(value, datetime | date):
        return {"name": name, "value": value.isoformat()}
    if isinstance(value, bool):
        return {"name": name, "value": "true" if value else "false"}
    return {"name": name, "value": str(value)}


class RedshiftDataStore:
    """AnalyticsStore over a Redshift Serverless workgroup, spoken to through the Data API."""

    dialect = "redshift"

    def __init__(
        self,
        store_id: str,
        cfg: StoreConfig,
        client: Any,
        *,
        s3: Any | None = None,
        poll_seconds: float = 0.25,
        timeout_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        run_id: Callable[[], str] = new_run_id,
    ) -> None:
        if not cfg.workgroup_name:
            raise InvalidInput(f"redshift store '{store_id}' needs 'workgroup_name'", field="stores")
        self.store_id = store_id
        self._cfg = cfg
        self._client = client
        self._s3 = s3  # reads UNLOAD manifests
        self._run_id = run_id
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._sleep = sleep
        self._query_user_checked = False  # see _refuse_superuser
        self._local = threading.local()  # each thread's query session (see query)

    def _target(self) -> dict[str, str]:
        target = {"WorkgroupName": self._cfg.workgroup_name or "", "Database": self._cfg.database}
        if self._cfg.secret_arn:
            target["SecretArn"] = self._cfg.secret_arn
        return target

    def _wait(self, statement_id: str) -> dict[str, Any]:
        waited = 0.0
        while True:
            desc: dict[str, Any] = self._client.describe_statement(Id=statement_id)
            status = desc["Status"]
            if status == "FINISHED":
                return desc
            if status in ("FAILED", "ABORTED"):
                raise StoreUnavailable(f"store '{self.store_id}': statement {status.lower()}: {desc.get('Error', '')}")
            if waited >= self._timeout:
                self._client.cancel_statement(Id=statement_id)
                raise StoreUnavailable(f"store '{self.store_id}': statement still {status} after {self._timeout:.0f} s")
            self._sleep(self._poll)
            waited += self._poll

    def _rows(self, statement_id: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        columns: list[str] = []
        rows: list[tuple[Any, ...]] = []
        kwargs: dict[str, str] = {"Id": statement_id}
        while True:
            page = self._client.get_statement_result(**kwargs)
            columns = columns or [c["name"] for c in page.get("ColumnMetadata", [])]
            rows.extend(tuple(_cell(f) for f in record) for record in page.get("Records", []))
            if not page.get("NextToken"):
                return columns, rows
            kwargs["NextToken"] = page["NextToken"]

    def ensure_schema(self) -> None:
        """Create the roles that are missing, the support tables (adding the columns an existing table lacks), the
        messaging tables, then bring the models' materialized views to the packaged models (``model_migration``)."""
        present = {str(row[0]) for row in self._select(ROLES_PRESENT_SQL)}
        missing = [f"CREATE ROLE {role}" for role in (ETL_ROLE, QUERY_ROLE) if role not in present]
        started = self._client.batch_execute_statement(Sqls=[*missing, *SCHEMA_SQL], **self._target())
        self._wait(started["Id"])
        rows = self._select(SUPPORT_COLUMNS_SQL)
        statements = [
            *added_column_statements({(str(r[0]), str(r[1])) for r in rows}),
            *REDSHIFT_SCHEMA_SQL,
            *MODELS_SCHEMA_SQL,
        ]
        started = self._client.batch_execute_statement(Sqls=statements, **self._target())
        self._wait(started["Id"])
        created = {str(r[0]): str(r[1]).strip() for r in self._select(MODEL_STATE_SQL)}
        migration = model_migration(packaged_models(), created, policy_exists=bool(self._select(POLICY_PRESENT_SQL)))
        if migration:
            # One transaction, behind the state table's lock: writers opening the store at once (the pipeline's
            # batches) run their migrations one after the other, never interleaved.
            started = self._client.batch_execute_statement(Sqls=[MODEL_STATE_LOCK_SQL, *migration], **self._target())
            self._wait(started["Id"])

    def _select(self, statement: str) -> list[tuple[Any, ...]]:
        """The rows of a statement of the platform's own (no parameters), run as the store's writer."""
        started = self._client.execute_statement(Sql=statement, **self._target())
        self._wait(started["Id"])
        return self._rows(started["Id"])[1]

    def merge_curated(self, tenant_id: str, files: Mapping[str, CuratedFiles]) -> MergeStats:
        prefixes: dict[str, str] = {}
        for name, table_files in files.items():
            if table_files.uri_prefix is None:
                raise InvalidInput(f"a Redshift load reads its files from S3: table '{name}' needs a uri_prefix")
            prefixes[name] = table_files.uri_prefix
        if not self._cfg.copy_role_arn:
            raise InvalidInput(f"redshift store '{self.store_id}' needs 'copy_role_arn' to COPY", field="stores")
        sqls = merge_statements(tenant_id, prefixes, self._cfg.copy_role_arn)
        started = self._client.batch_execute_statement(Sqls=sqls, **self._target())
        desc = self._wait(started["Id"])
        last = desc["SubStatements"][-1]["Id"]
        columns, rows = self._rows(last)
        values = dict(zip(columns, (int(v) for v in rows[0]), strict=True))
        return MergeStats(
            rows_in=values["rows_in"],
            inserted=values["inserted"],
            updated=values["updated"],
            size_rows=values["size_rows"],
            tables={name: values[f"rows_{name}"] for name in prefixes},
        )

    def refresh_models(self, tenant_ids: Sequence[str] | None = None, *, full: bool = False) -> list[RefreshRecord]:
        """REFRESH every materialized view in dependency order, one Data API batch.

        Redshift refreshes a whole view (every tenant) and incrementally whenever it can, which the build-time
        validator guarantees for the packaged models; it does not report rows changed (recorded as 0).
        """
        project = packaged_models()
        started_at = time.monotonic()
        started = self._client.batch_execute_statement(Sqls=refresh_statements_redshift(project), **self._target())
        self._wait(started["Id"])
        duration = time.monotonic() - started_at
        scope = tuple(sorted(tenant_ids)) if tenant_ids is not None else None
        return [
            RefreshRecord(model=m.name, tenant_scope=scope, mode="incremental", rows_changed=0, duration_s=duration)
            for m in project.models
        ]

    def unload_models(self, models: Sequence[str], tenant_ids: Sequence[str], s3_prefix: str) -> list[UnloadedFiles]:
        """UNLOAD the tenants' rows of each model's view as CSV with a manifest, and return the files written.

        Each model goes to a prefix of its own run, ``<s3_prefix><model>/run=<id>/``, so a retried or concurrent
        export never reads another run's half-written files. Runs as ``copy_role_arn`` (it must be allowed to
        write under ``s3_prefix``); the manifest is read with the store's S3 client. Returns one
        :class:`UnloadedFiles` per model, in the order given.
        """
        if not self._cfg.copy_role_arn:
            raise InvalidInput(f"redshift store '{self.store_id}' needs 'copy_role_arn' to UNLOAD", field="stores")
        if self._s3 is None:
            raise InvalidInput(f"redshift store '{self.store_id}' has no S3 client to read UNLOAD manifests")
        project = packaged_models()
        run = self._run_id()
        unloaded: list[UnloadedFiles] = []
        for name in models:
            model = project.get(name)
            table = ExportTable(table=f"models.{model.name}", columns=model.columns, key_columns=model.grain)
            prefix = f"{s3_prefix}{model.name}/run={run}/"
            statement = unload_statement(table, tenant_ids, prefix, self._cfg.copy_role_arn)
            started = self._client.execute_statement(Sql=statement, **self._target())
            desc = self._wait(started["Id"])
            rows = desc.get("ResultRows")  # rows unloaded; -1 when the Data API does not know
            known = rows if isinstance(rows, int) and rows >= 0 else None
            urls = read_unload_manifest(self._s3, prefix, rows_unloaded=known)
            unloaded.append(UnloadedFiles(model=model.name, prefix=prefix, urls=tuple(urls)))
        return unloaded

    def _refuse_superuser(self, session_id: str) -> None:
        """Raise :class:`StoreMisconfigured` unless the session's database user is listed and is not a superuser.

        Redshift ignores the RLS policies attached to superusers, so the views' tenant policy would not hold for
        one; the user of a store's credentials does not change, so the first query of each store instance checks.
        """
        started = self._client.execute_statement(Sql=QUERY_USER_SQL, SessionId=session_id)
        self._wait(started["Id"])
        _, rows = self._rows(started["Id"])
        if not rows:
            raise StoreMisconfigured(f"store '{self.store_id}': the query session's user is not in pg_user")
        user, superuser = rows[0]
        if superuser:
            raise StoreMisconfigured(
                f"store '{self.store_id}': tenant queries would run as superuser '{user}', to whom row-level "
                f"security does not apply; give the query function a database user that is a member of role "
                f"{QUERY_ROLE} and not a superuser (docs/deployment.md, 'Models on Redshift')"
            )
        self._query_user_checked = True

    def query(self, tenant_id: str, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a planned read in this thread's Data API session, with ``app.tenant_id`` set to the tenant first.

        The models' views carry an RLS policy on that setting for the query role, so every statement is preceded
        by setting it (a bound parameter) in the same session; the planner's tenant predicate holds on top. The
        session is kept for the thread's next queries (the Data API limits how many may be open at once) and
        replaced when it has expired or a statement in it failed.
        """
        try:
            try:
                session_id = self._session_for(tenant_id)
                parameters = [_param(f"p{i}", v) for i, v in enumerate(params, start=1)]
                kwargs: dict[str, Any] = {"Sql": sql, "SessionId": session_id}
                if parameters:
                    kwargs["Parameters"] = parameters
                started = self._client.execute_statement(**kwargs)
                self._wait(started["Id"])
            except (ClientError, StoreUnavailable):
                self._local.session_id = None  # it may still be running, or be gone: start afresh next time
                raise
            return self._rows(started["Id"])
        except ClientError as exc:  # throttled, too many sessions or statements, the service failing
            raise StoreUnavailable(f"store '{self.store_id}': {exc}") from exc
        except StoreUnavailable as exc:
            if _NO_RELATION.search(exc.message):
                raise StoreNotReady(
                    f"{exc.message}: the store is not set up yet; its tables are created by the first load or model "
                    "refresh into it"
                ) from exc
            raise

    def _session_for(self, tenant_id: str) -> str:
        """Set ``app.tenant_id`` in this thread's session, opening one when there is none or it has expired."""
        session_id: str | None = getattr(self._local, "session_id", None)
        if session_id is not None:
            try:
                started = self._client.execute_statement(
                    Sql=SET_TENANT_SQL, Parameters=[_param("tenant_id", tenant_id)], SessionId=session_id
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _SESSION_GONE:
                    raise
                self._local.session_id = None  # expired: opened anew below
            else:
                self._wait(started["Id"])
                return session_id
        opened = self._client.execute_statement(
            Sql=SET_TENANT_SQL,
            Parameters=[_param("tenant_id", tenant_id)],
            SessionKeepAliveSeconds=SESSION_KEEP_ALIVE_S,
            **self._target(),
        )
        self._wait(opened["Id"])
        if not self._query_user_checked:
            self._refuse_superuser(opened["SessionId"])
        self._local.session_id = opened["SessionId"]
        return str(opened["SessionId"])
