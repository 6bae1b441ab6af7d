"""PostgreSQL store: Aurora PostgreSQL in AWS, the embedded PostgreSQL locally. Pooled tenants, RLS forced.

Tables are owned by the ETL role and the query role owns nothing; every tenant table has row-level security
FORCEd with the policy ``tenant_id = current_setting('app.tenant_id')``, which both roles set with SET LOCAL
inside each transaction. Statements never contain caller input: values are bound parameters.

As the operational store it receives Redshift-tier tenants' top-level metrics: directly from another PostgreSQL
store (:meth:`PostgresStore.export_models`, locally), or from the files a Redshift UNLOAD wrote to S3
(:meth:`PostgresStore.import_unloaded`), read by the store's :class:`S3FileImporter`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from tenant_analytics.constants import OPERATIONAL_SCHEMA
from tenant_analytics.errors import InvalidInput, StoreNotReady, StoreUnavailable, one_line
from tenant_analytics.models import PostgresModelEngine, RefreshRecord
from tenant_analytics.models.capture import STALE_READER_AFTER
from tenant_analytics.sources.messaging import MessagingBatch
from tenant_analytics.stores.base import Conninfo, CuratedFiles, MergeStats, conninfo_now
from tenant_analytics.stores.messaging import (
    MessagingMergeStats,
    ensure_messaging_schema,
    events_csv_chunks,
    merge_messaging,
)
from tenant_analytics.stores.models import packaged_models
from tenant_analytics.stores.operational_export import (
    ExportTable,
    S3FileImporter,
    UnloadedFiles,
    export_tenants,
    import_tenants,
    source_column_types,
)
from tenant_analytics.stores.roles import ETL_ROLE, QUERY_ROLE, ROLES_SQL, tenant_isolation
from tenant_analytics.transforms.tables import SUPPORT_TABLES, TABLES_BY_NAME, TICKETS, CuratedTable


def _table_ddl(table: CuratedTable) -> sql.Composed:
    """Create (or widen, when a column was added since) one curated table, with RLS forced and reads granted."""
    name = sql.SQL(table.qualified_name)
    columns = [sql.SQL("tenant_id text NOT NULL")] + [
        sql.SQL("{} {}{}").format(sql.Identifier(c.name), sql.SQL(c.type), sql.SQL(" NOT NULL" if c.not_null else ""))
        for c in table.columns
    ]
    key = sql.SQL(", ").join(sql.Identifier(k) for k in ("tenant_id", *table.key))
    statements = [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ({}, loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ({}))"
        ).format(name, sql.SQL(", ").join(columns), key),
        *(
            sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                name, sql.Identifier(c.name), sql.SQL(c.type)
            )
            for c in table.columns
            if c.name not in table.key
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (tenant_id, {})").format(
            sql.Identifier(f"{table.name}_tenant_{table.sort_column}"), name, sql.Identifier(table.sort_column)
        ),
        *tenant_isolation(name),
    ]
    return sql.SQL(";\n").join(statements)


_SCHEMA = sql.SQL(";\n").join(
    [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS support AUTHORIZATION {}").format(sql.Identifier(ETL_ROLE)),
        sql.SQL("GRANT USAGE ON SCHEMA support TO {}").format(sql.Identifier(QUERY_ROLE)),
        sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)),
        *(_table_ddl(t) for t in SUPPORT_TABLES),
    ]
)


class PostgresStore:
    """AnalyticsStore over one PostgreSQL database (an Aurora cluster or its local stand-in)."""

    dialect = "postgres"

    def __init__(
        self,
        store_id: str,
        conninfo: Conninfo,
        *,
        s3_import: S3FileImporter | None = None,
        stale_model_after: timedelta = STALE_READER_AFTER,
    ) -> None:
        """``stale_model_after``: see ``PostgresModelEngine``'s ``stale_reader_after``."""
        self.store_id = store_id
        self._conninfo = conninfo
        self._s3_import = s3_import  # how unloaded files get in; None: this store imports none
        # One connection per thread: a dashboard's queries run concurrently, each in its own transaction.
        self._local = threading.local()
        self._all: list[psycopg.Connection[tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self._models = PostgresModelEngine(
            conninfo if isinstance(conninfo, str) else self._new_model_connection,
            stale_reader_after=stale_model_after,
        )

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn: psycopg.Connection[tuple[Any, ...]] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect(autocommit=False)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _new_model_connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        return self._connect(autocommit=True)

    def _connect(self, *, autocommit: bool) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(conninfo_now(self._conninfo), autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"store '{self.store_id}' is unreachable: {str(exc).strip()}") from exc

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def ensure_schema(self) -> None:
        conn = self._connection()
        with conn.transaction():
            conn.execute(ROLES_SQL)
        if self._s3_import is not None:
            self._s3_import.prepare(conn)
        with conn.transaction():
            # one schema change at a time, even from concurrent loaders
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('tenant_analytics.schema'))")
            conn.execute(_SCHEMA)
        ensure_messaging_schema(conn)
        self._models.ensure(packaged_models())

    def refresh_models(self, tenant_ids: Sequence[str] | None = None, *, full: bool = False) -> list[RefreshRecord]:
        return self._models.refresh(packaged_models(), full=full, tenant_ids=tenant_ids)

    def land_messaging(self, tenant_id: str, batch: MessagingBatch) -> MessagingMergeStats:
        """Land one arrival batch of a tenant's messaging streams and master data (one transaction)."""
        return merge_messaging(
            self._connection(), tenant_id, events_csv_chunks(batch.events), batch.campaigns, batch.templates
        )

    def export_models(self, models: Sequence[str], tenant_ids: Sequence[str], target: PostgresStore) -> int:
        """Copy the tenants' rows of ``models`` into the operational schema of ``target``; return rows copied.

        Each tenant's rows there are replaced in one transaction (a re-run replaces, never duplicates).
        """
        project = packaged_models()
        copied = 0
        for name in models:
            model = project.get(name)
            table = ExportTable(table=f"models.{model.name}", columns=model.columns, key_columns=model.grain)
            done = export_tenants(
                table,
                list(tenant_ids),
                self._connection(),
                target._connection(),
                target_table=f"{OPERATIONAL_SCHEMA}.{model.name}",
            )
            copied += sum(d.rows_copied for d in done)
        return copied

    def import_unloaded(self, unloaded: Sequence[UnloadedFiles], tenant_ids: Sequence[str]) -> int:
        """Replace the tenants' rows of each unloaded model in the operational schema by the files' rows; return
        rows written.

        The operational table takes the column types of this store's own summary table of the model (every
        PostgreSQL store keeps the packaged models), so both tiers' tenants are read with the same types. Each
        tenant's rows are replaced in one transaction; a re-run replaces, never duplicates.
        """
        if self._s3_import is None:
            raise InvalidInput(f"store '{self.store_id}' has no S3 importer for unloaded files", field="stores")
        project = packaged_models()
        conn = self._connection()
        written = 0
        for files in unloaded:
            model = project.get(files.model)
            summary = ExportTable(table=f"models.{model.name}", columns=model.columns, key_columns=model.grain)
            target = ExportTable(
                table=f"{OPERATIONAL_SCHEMA}.{model.name}", columns=model.columns, key_columns=model.grain
            )
            done = import_tenants(
                target, tenant_ids, files.urls, conn, self._s3_import, source_column_types(conn, summary)
            )
            written += sum(d.rows_copied for d in done)
        return written

    def refresh_log(self, limit: int = 100) -> list[RefreshRecord]:
        """The latest model refreshes of this store, newest first."""
        return self._models.refresh_log(limit)

    def merge_curated(self, tenant_id: str, files: Mapping[str, CuratedFiles]) -> MergeStats:
        unknown = sorted(set(files) - set(TABLES_BY_NAME))
        if unknown:
            raise InvalidInput(f"unknown curated table(s) {unknown}; tables: {sorted(TABLES_BY_NAME)}", field="files")
        conn = self._connection()
        tables: dict[str, int] = {}
        tickets = (0, 0, 0)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
            cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            for table in SUPPORT_TABLES:
                if table.name in files:
                    rows_in, inserted, updated = _merge_table(cur, tenant_id, table, files[table.name])
                    tables[table.name] = rows_in
                    if table is TICKETS:
                        tickets = (rows_in, inserted, updated)
            cur.execute("SELECT count(*) FROM support.tickets WHERE tenant_id = %s", (tenant_id,))
            size = _scalar(cur.fetchone())
        rows_in, inserted, updated = tickets
        return MergeStats(rows_in=rows_in, inserted=inserted, updated=updated, size_rows=size, tables=tables)

    def query(self, tenant_id: str, statement: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a planned read as the query role, for ``tenant_id`` only, in a read-only transaction.

        A connection the server dropped while idle (a failover, an idle timeout while the function was frozen) is
        replaced and the read run again, once; any other failure to reach the store is StoreUnavailable. A store
        no writer has opened yet has no tables (the query path creates none): StoreNotReady.
        """
        conn = self._connection()
        try:
            try:
                return _read(conn, tenant_id, statement, params)
            except psycopg.OperationalError:
                if not conn.closed:
                    raise
            return _read(self._connection(), tenant_id, statement, params)  # nothing was written: safe to run again
        except psycopg.errors.UndefinedTable as exc:
            raise StoreNotReady(
                f"store '{self.store_id}' is not set up yet ({one_line(exc)}): its tables are created by the first "
                "load or model refresh into it"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"store '{self.store_id}' failed: {str(exc).strip()}") from exc


def _read(
    conn: psycopg.Connection[tuple[Any, ...]], tenant_id: str, statement: str, params: Sequence[Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(QUERY_ROLE)))
        cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        cur.execute("SET LOCAL transaction_read_only = on")
        cur.execute("SET LOCAL TimeZone = 'UTC'")  # time buckets are UTC days, whatever the server default
        cur.execute(statement.encode(), params)  # statement built by the planner from catalog identifiers
        columns = [d.name for d in cur.description or []]
        return columns, cur.fetchall()


def _merge_table(
    cur: psycopg.Cursor[Any], tenant_id: str, table: CuratedTable, files: CuratedFiles
) -> tuple[int, int, int]:
    """COPY one table's files into a staging table and merge them as the table's mode says.

    Returns (rows in the files, rows inserted, rows updated or replaced).
    """
    target = sql.SQL(table.qualified_name)
    stage = sql.Identifier(f"stage_{table.name}")
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in table.column_names)
    key = sql.SQL(", ").join(sql.Identifier(k) for k in table.key)
    cur.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} LIMIT 0").format(stage, cols, target))
    with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(stage, cols)) as copy:
        for chunk in files:
            copy.write(chunk)
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(stage))
    rows_in = _scalar(cur.fetchone())
    if table.merge == "replace_tenant":
        cur.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(target), (tenant_id,))
        replaced = cur.rowcount
        cur.execute(
            sql.SQL("INSERT INTO {} (tenant_id, {}) SELECT %s, {} FROM {}").format(target, cols, cols, stage),
            (tenant_id,),
        )
        return rows_in, max(0, cur.rowcount - replaced), min(replaced, cur.rowcount)
    # of several rows with one key in the files, the newest version (or any, without a version) is merged
    order = (
        key
        if table.version_column is None
        else sql.SQL("{}, {} DESC").format(key, sql.Identifier(table.version_column))
    )
    newest = sql.SQL("SELECT DISTINCT ON ({}) %s, {} FROM {} ORDER BY {}").format(key, cols, stage, order)
    action: sql.Composable
    if table.merge == "insert_only":
        action = sql.SQL("DO NOTHING")
    else:
        updates = sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in table.column_names if c not in table.key
        )
        action = sql.SQL("DO UPDATE SET {}, loaded_at = now()").format(updates)
        if table.merge == "newer" and table.version_column is not None:
            version = sql.Identifier(table.version_column)
            action = sql.SQL("{} WHERE {}.{} <= EXCLUDED.{}").format(action, target, version, version)
    cur.execute(
        sql.SQL("INSERT INTO {} (tenant_id, {}) {} ON CONFLICT (tenant_id, {}) {} RETURNING (xmax = 0)").format(
            target, cols, newest, key, action
        ),
        (tenant_id,),
    )
    flags = [bool(r[0]) for r in cur.fetchall()]
    inserted = sum(flags)
    return rows_in, inserted, len(flags) - inserted


def _scalar(row: tuple[Any, ...] | None) -> int:
    return int(row[0]) if row is not None else 0
