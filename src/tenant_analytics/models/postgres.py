"""PostgreSQL compilation (Aurora tier and local): summary tables kept current from the changed rows only.

How it works (see docs/models.md for the full account):

* Change capture (``models/capture.py``): every input's changed rows land, as signed old and new images, in
  the input's own change table; the refresh reads them from its watermark up to the high-water mark.
* Watermarks. Each model keeps, per input, the last ``seq`` it consumed for all tenants (``tenant_id = ''``)
  and, after tenant-scoped refreshes, per tenant.
* Refresh of one model, in one REPEATABLE READ transaction whose snapshot holds exactly the changes up to the
  high-water mark: a model of additive aggregates and extremes (see ``delta.delta_plan``) adds its changed rows'
  signed contributions to the stored groups; any other model recomputes the affected groups (the grain
  expressions evaluated over the model's FROM/JOIN/WHERE with one input replaced by its changed images and every
  other input by its current rows plus its changed images) from their rows. Only rows that differ are written,
  which the summary table's own trigger logs for child models. A model whose query cannot be maintained this way
  (outer joins, subqueries, DISTINCT aggregates, ... see ``incremental_blockers``) is refreshed in full.
* Consistency of the watermark with concurrent writers: see ``capture.snapshot_at_high_water``.

The refresh runs as the connecting role, which must read every tenant's rows: the local superuser, or Aurora's
admin as a member of ``ta_all_tenants`` (see ``stores.roles``); the tables it writes are owned by
``ta_etl``, FORCE row-level security like the store's tables, and only SELECT is granted to ``ta_query``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import queue
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import psycopg
import sqlglot
from psycopg import sql
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from tenant_analytics.errors import InvalidInput, StoreUnavailable
from tenant_analytics.models.capture import (
    ALL_TENANTS,
    CAPTURE_CATALOG,
    STALE_READER_AFTER,
    Connection,
    bounded_name,
    change_table,
    ensure_capture,
    extract_changes,
    prune_consumed,
    qualified,
    refresh_lock,
    retire_change_log,
    snapshot_at_high_water,
    table_columns,
    truncated_inputs,
)
from tenant_analytics.models.delta import (
    ACTION,
    TID,
    DeltaPlan,
    contributions_query,
    delta_plan,
    plan_query,
    read_columns,
    summary_table,
    upsert_source,
)
from tenant_analytics.models.project import MODEL_SCHEMA, Model, ModelProject, input_name_of, input_table
from tenant_analytics.models.validate import incremental_blockers
from tenant_analytics.stores.roles import ETL_ROLE, QUERY_ROLE, ROLES_SQL, tenant_isolation

log = logging.getLogger(__name__)

_SCHEMA_LOCK = "tenant_analytics.schema"
_ATTEMPTS = 3
# Free space in each page of a summary table, so that updating a row in place (a receipt re-timing a message)
# stays on its page and leaves the indexes alone (a HOT update) when no indexed column changed.
_FILLFACTOR = 90
_TEMP_BUFFERS = "64MB"  # per refresh session, taken only as temporary tables fill

ConnectionFactory = Callable[[], Connection]

_CATALOG = f"""
CREATE SCHEMA IF NOT EXISTS {MODEL_SCHEMA} AUTHORIZATION {ETL_ROLE};
GRANT USAGE ON SCHEMA {MODEL_SCHEMA} TO {QUERY_ROLE};
CREATE TABLE IF NOT EXISTS {MODEL_SCHEMA}.model_state (
    model           text PRIMARY KEY,
    definition_hash text NOT NULL,
    needs_full      text,
    refreshed_at    timestamptz
);
CREATE TABLE IF NOT EXISTS {MODEL_SCHEMA}.watermarks (
    model     text   NOT NULL,
    input     text   NOT NULL,
    tenant_id text   NOT NULL,
    last_seq  bigint NOT NULL,
    PRIMARY KEY (model, input, tenant_id)
);
CREATE TABLE IF NOT EXISTS {MODEL_SCHEMA}.refresh_log (
    id           bigserial        PRIMARY KEY,
    model        text             NOT NULL,
    tenant_scope text[],
    mode         text             NOT NULL CHECK (mode IN ('incremental', 'full')),
    rows_changed bigint           NOT NULL,
    duration_s   double precision NOT NULL,
    warning      text,
    finished_at  timestamptz      NOT NULL DEFAULT clock_timestamp()
);
ALTER TABLE {MODEL_SCHEMA}.model_state OWNER TO {ETL_ROLE};
ALTER TABLE {MODEL_SCHEMA}.watermarks OWNER TO {ETL_ROLE};
ALTER TABLE {MODEL_SCHEMA}.refresh_log OWNER TO {ETL_ROLE};
"""


def contributions_table(model: Model) -> exp.Table:
    """The work table holding a delta refresh's per-group contributions, inside the refresh's transaction only."""
    return exp.table_(bounded_name(f"work:{model.name}:contributions"), db=MODEL_SCHEMA, quoted=True)


class RefreshRecord(BaseModel):
    """What one model refresh did: its mode, the summary rows it changed and how long it took."""

    model_config = ConfigDict(frozen=True)

    model: str
    tenant_scope: tuple[str, ...] | None
    mode: Literal["incremental", "full"]
    rows_changed: int
    duration_s: float
    warning: str | None = None


def definition_hash(model: Model) -> str:
    """Return a digest of what the summary table depends on: grain and compiled query."""
    text = "|".join([",".join(model.grain), model_query_postgres(model)])
    return hashlib.sha256(text.encode()).hexdigest()


def model_query_postgres(model: Model) -> str:
    """Return the model's SELECT in PostgreSQL SQL (a full recomputation of the model)."""
    return model.query.sql("postgres", comments=False)


def _table(input_name: str) -> sql.Composable:
    table = input_table(input_name)
    return sql.Identifier(table.db, table.name)


def _summary(model: Model) -> sql.Composable:
    return sql.Identifier(MODEL_SCHEMA, model.name)


def _names(columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)


def _key_match(left: str, right: str, grain: Sequence[str]) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{}.{} = {}.{}").format(
            sql.Identifier(left), sql.Identifier(g), sql.Identifier(right), sql.Identifier(g)
        )
        for g in grain
    )


class PostgresModelEngine:
    """Creates the summary tables of a model project and refreshes them incrementally, in DAG order."""

    def __init__(
        self,
        conninfo: str | ConnectionFactory,
        *,
        workers: int = 2,
        stale_reader_after: timedelta | None = STALE_READER_AFTER,
    ) -> None:
        """``conninfo``: a libpq connection string or a factory of new connections; ``workers``: how many models
        may refresh at once (each on its own connection) when they do not depend on each other;
        ``stale_reader_after``: how long a model may go without a successful refresh before the change images it
        has not consumed are dropped and it is marked for a full refresh (None: never)."""
        if workers < 1:
            raise InvalidInput(f"workers must be at least 1, not {workers}", field="workers")
        if stale_reader_after is not None and stale_reader_after <= timedelta(0):
            raise InvalidInput(
                f"stale_reader_after must be positive or None, not {stale_reader_after}", field="stale_reader_after"
            )
        self._conninfo = conninfo
        self._workers = workers
        self._stale_reader_after = stale_reader_after

    def _connect(self) -> Connection:
        if callable(self._conninfo):
            conn = self._conninfo()
        else:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"model store is unreachable: {str(exc).strip()}") from exc
        # The refresh stages changes, sums and plans in temporary tables; past temp_buffers (8MB by default) they
        # spill to files. It can only be raised before the session's first temporary table.
        with contextlib.suppress(psycopg.errors.InvalidParameterValue):
            conn.execute(sql.SQL("SET temp_buffers = {}").format(sql.Literal(_TEMP_BUFFERS)))
        return conn

    # ----------------------------------------------------------------------------------------------- ensure

    def ensure(self, project: ModelProject) -> None:
        """Create (idempotently) the models schema, catalog tables, summary tables, indexes and change capture.

        A model whose definition changed is rebuilt empty and marked for a full refresh, and so are its
        descendants. Raises InvalidInput when a source table is missing.
        """
        with self._connect() as conn:
            with conn.transaction():
                conn.execute(ROLES_SQL)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_SCHEMA_LOCK,))
                cur.execute("SET LOCAL TimeZone = 'UTC'")
                cur.execute(_CATALOG)
                cur.execute(CAPTURE_CATALOG)
                retire_change_log(cur)
                lost: set[str] = set()  # inputs whose pending change images were dropped with their change table
                for source in sorted({s for m in project.models for s in m.sources}):
                    if ensure_capture(cur, source):
                        lost.add(source)
                rebuilt: set[str] = set()
                for model in project.models:
                    if self._ensure_summary(cur, model):
                        rebuilt.add(model.name)
                for parent in dict.fromkeys(p for m in project.models for p in m.refs):
                    ensure_capture(cur, parent)
                self._ensure_indexes(cur, project)
                for model in project.models:
                    lost_inputs = sorted(lost & set(model.inputs))
                    if lost_inputs:
                        cur.execute(
                            "UPDATE models.model_state SET needs_full = %s WHERE model = %s AND needs_full IS NULL",
                            (f"change capture of {', '.join(lost_inputs)} was rebuilt", model.name),
                        )
                for name in rebuilt:
                    for child in project.descendants(name):
                        cur.execute(
                            "UPDATE models.model_state SET needs_full = %s WHERE model = %s AND needs_full IS NULL",
                            (f"its input '{name}' was rebuilt", child.name),
                        )

    def _ensure_summary(self, cur: psycopg.Cursor[tuple[Any, ...]], model: Model) -> bool:
        digest = definition_hash(model)
        cur.execute("SELECT definition_hash FROM models.model_state WHERE model = %s", (model.name,))
        row = cur.fetchone()
        cur.execute("SELECT to_regclass(%s)", (f"{MODEL_SCHEMA}.{model.name}",))
        exists = (cur.fetchone() or (None,))[0] is not None
        if row is not None and row[0] == digest and exists:
            return False
        reason = "first refresh" if row is None else "its definition changed"
        table = _summary(model)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))
        # images of the old table's rows mean nothing to the rebuilt one (its readers are refreshed in full)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(change_table(model.name))))
        cur.execute(
            sql.SQL("CREATE TABLE {table} AS {query} WITH NO DATA").format(
                table=table,
                query=sql.SQL(model_query_postgres(model)),
            )
        )
        cur.execute(
            sql.SQL("ALTER TABLE {table} ADD PRIMARY KEY ({grain})").format(table=table, grain=_names(model.grain))
        )
        cur.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, sql.Identifier(ETL_ROLE)))
        for statement in tenant_isolation(table):
            cur.execute(statement)
        cur.execute(sql.SQL("ALTER TABLE {} SET (fillfactor = {})").format(table, sql.Literal(_FILLFACTOR)))
        cur.execute(
            "INSERT INTO models.model_state (model, definition_hash, needs_full) VALUES (%s, %s, %s) "
            "ON CONFLICT (model) DO UPDATE SET definition_hash = EXCLUDED.definition_hash, "
            "needs_full = EXCLUDED.needs_full",
            (model.name, digest, reason),
        )
        cur.execute("DELETE FROM models.watermarks WHERE model = %s", (model.name,))
        return True

    def _ensure_indexes(self, cur: psycopg.Cursor[tuple[Any, ...]], project: ModelProject) -> None:
        # Indexes on parent summary tables that the children's lookups probe; those the engine made earlier and
        # no child needs any more are dropped, since every index slows the parent's own refresh.
        def recomputes(model: Model) -> bool:
            types = table_columns(cur, MODEL_SCHEMA, model.name) or {}
            return may_recompute(_plan(project, model, tuple(types.items())))

        wanted = project_indexes(project, recomputes)
        for index in wanted:
            cur.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){where}").format(
                    name=sql.Identifier(index.name),
                    table=_table(index.parent),
                    columns=_names(index.columns),
                    where=sql.SQL(" WHERE ")
                    + sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in index.not_null)
                    if index.not_null
                    else sql.SQL(""),
                )
            )
        names = {index.name for index in wanted}
        for model in project.models:
            cur.execute(
                "SELECT c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(%s) AND NOT i.indisprimary AND starts_with(c.relname, %s)",
                (f"{MODEL_SCHEMA}.{model.name}", f"{model.name}__"),
            )
            for (name,) in cur.fetchall():
                if name not in names:
                    cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(MODEL_SCHEMA, name)))

    # ----------------------------------------------------------------------------------------------- refresh

    def refresh(
        self,
        project: ModelProject,
        models: Iterable[str] | None = None,
        full: bool = False,
        tenant_ids: Iterable[str] | None = None,
    ) -> list[RefreshRecord]:
        """Refresh ``models`` (default: all) in dependency order, each in one transaction.

        A model starts once the models it reads are refreshed; up to ``workers`` (see the constructor) independent
        models refresh at once, each on a connection of its own. ``tenant_ids`` limits the work to those tenants'
        changes (and, for a full refresh, to their rows); ``full`` recomputes instead of applying changes. Returns
        one record per model, in DAG order, also written to ``models.refresh_log``; a model refreshed in full for
        a reason other than ``full=True`` carries a warning. A model that fails stops only the models that read
        it, directly or not: every other model is refreshed, consumed change images are pruned, and then the first
        failure is raised.
        """
        wanted = {project.get(n).name for n in models} if models is not None else None
        scope = tuple(sorted(set(tenant_ids))) if tenant_ids is not None else None
        chosen = [m for m in project.models if wanted is None or m.name in wanted]
        if self._workers == 1 or len(chosen) == 1:
            done, failures = self._refresh_in_turn(project, chosen, full, scope)
        else:
            done, failures = self._refresh_concurrently(project, chosen, full, scope)
        # Also after a failure: the inputs of the models that refreshed are pruned, and a reader that has not
        # refreshed for too long stops holding its inputs' images (see prune_consumed).
        try:
            with self._connect() as conn:
                prune_consumed(conn, project, chosen, stale_after=self._stale_reader_after)
        except (psycopg.Error, StoreUnavailable):
            if not failures:
                raise
            log.warning("change images were not pruned after the failed refresh", exc_info=True)
        if failures:
            error = failures[0][1]
            failed = {name for name, _ in failures}
            skipped = [m.name for m in chosen if m.name not in done and m.name not in failed]
            log.error(
                "model refresh failed: %s; not refreshed, as they read a failed model: %s",
                ", ".join(f"{name} ({type(exc).__name__})" for name, exc in failures),
                ", ".join(skipped) or "none",
            )
            raise error
        return [done[m.name] for m in chosen]

    def _refresh_logged(
        self, conn: Connection, project: ModelProject, model: Model, full: bool, scope: tuple[str, ...] | None
    ) -> RefreshRecord:
        record = self._refresh_model(conn, project, model, full, scope)
        if record.warning:
            log.warning("model %s refreshed in full: %s", model.name, record.warning)
        return record

    def _refresh_in_turn(
        self, project: ModelProject, chosen: list[Model], full: bool, scope: tuple[str, ...] | None
    ) -> tuple[dict[str, RefreshRecord], list[tuple[str, Exception]]]:
        """Refresh the models one after another on one connection (a new one after a failure); return the records
        of those refreshed and the failures, in order. A model reading a failed or skipped one is skipped."""
        done: dict[str, RefreshRecord] = {}
        failures: list[tuple[str, Exception]] = []
        blocked: set[str] = set()
        conn: Connection | None = None
        try:
            for model in chosen:
                if blocked.intersection(model.refs):
                    blocked.add(model.name)
                    continue
                conn = conn or self._connect()
                try:
                    done[model.name] = self._refresh_logged(conn, project, model, full, scope)
                except Exception as exc:  # raised by refresh() once the other models have run
                    failures.append((model.name, exc))
                    blocked.add(model.name)
                    conn.close()  # it may be broken; the next model gets a new one
                    conn = None
        finally:
            if conn is not None:
                conn.close()
        return done, failures

    def _refresh_concurrently(
        self, project: ModelProject, chosen: list[Model], full: bool, scope: tuple[str, ...] | None
    ) -> tuple[dict[str, RefreshRecord], list[tuple[str, Exception]]]:
        """As ``_refresh_in_turn``, up to ``workers`` models at once, the longest remaining chain first."""
        names = {m.name for m in chosen}
        waiting = {m.name: {r for r in m.refs if r in names} for m in chosen}
        by_name = {m.name: m for m in chosen}
        done: dict[str, RefreshRecord] = {}
        failures: list[tuple[str, Exception]] = []
        idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        opened: list[Connection] = []
        ready: list[str] = []

        def run(model: Model) -> RefreshRecord:
            try:
                conn = idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
                opened.append(conn)
            try:
                record = self._refresh_logged(conn, project, model, full, scope)
            except BaseException:
                conn.close()  # it may be broken; the next model gets a new one
                raise
            idle.put(conn)
            return record

        try:
            opened.append(self._connect())  # the first worker's, once it has read the durations
            idle.put(opened[0])
            priority = critical_paths(chosen, self._last_durations(opened[0], full))
            with ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="model-refresh") as pool:
                running: dict[Future[RefreshRecord], str] = {}
                while waiting or ready or running:
                    for name in [n for n, parents in waiting.items() if not parents]:
                        del waiting[name]
                        ready.append(name)
                    # The ready model with the longest way to the end of the DAG first, so that the last models are
                    # not left to run alone while a worker sits idle.
                    ready.sort(key=lambda n: priority[n])
                    while ready and len(running) < self._workers:
                        name = ready.pop()
                        running[pool.submit(run, by_name[name])] = name
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        error = future.exception()
                        if isinstance(error, Exception):
                            failures.append((name, error))
                            for reader in project.descendants(name):
                                waiting.pop(reader.name, None)  # never ready: it reads the failed model
                            continue
                        if error is not None:
                            raise error
                        done[name] = future.result()
                        for parents in waiting.values():
                            parents.discard(name)
        finally:
            for conn in opened:
                conn.close()
        return done, failures

    def _last_durations(self, conn: Connection, full: bool) -> dict[str, float]:
        """Each model's duration in its latest refresh of the same mode (among the latest log entries)."""
        rows = conn.execute(
            "SELECT model, duration_s FROM (SELECT model, duration_s, mode FROM models.refresh_log "
            "ORDER BY id DESC LIMIT 1000) AS recent WHERE mode = %s",
            ("full" if full else "incremental",),
        ).fetchall()
        durations: dict[str, float] = {}
        for model, duration in rows:
            durations.setdefault(str(model), float(duration))
        return durations

    def _refresh_model(
        self,
        conn: Connection,
        project: ModelProject,
        model: Model,
        full: bool,
        scope: tuple[str, ...] | None,
    ) -> RefreshRecord:
        started = time.perf_counter()
        model_lock = refresh_lock(model.name)
        with conn.transaction():
            # Session-level: held across retries; a lock taken inside the transaction would fix its snapshot first.
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (model_lock,))
        try:
            for attempt in range(_ATTEMPTS):
                try:
                    return self._refresh_model_once(conn, project, model, full, scope, started)
                except psycopg.errors.SerializationFailure:
                    # a concurrent refresh changed a catalog row this one read (a parent marking it for a full
                    # refresh): run again on a new snapshot
                    if attempt == _ATTEMPTS - 1:
                        raise
            raise AssertionError("unreachable")
        finally:
            with contextlib.suppress(psycopg.Error), conn.transaction():
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (model_lock,))

    def _refresh_model_once(
        self,
        conn: Connection,
        project: ModelProject,
        model: Model,
        full: bool,
        scope: tuple[str, ...] | None,
        started: float,
    ) -> RefreshRecord:
        with snapshot_at_high_water(conn, model.inputs) as (cur, high):
            cur.execute("SELECT needs_full FROM models.model_state WHERE model = %s", (model.name,))
            state = cur.fetchone()
            if state is None:
                raise InvalidInput(f"model '{model.name}' has no summary table; run ensure() first")
            bases = _bases(cur, model)
            warning: str | None = None
            rebuild_reason: str | None = state[0]
            if rebuild_reason is None and any(b is None for b in bases.values()):
                rebuild_reason = "it has an input without a watermark"
            if rebuild_reason is None:
                truncated = truncated_inputs(cur, model, bases, high)
                if truncated:
                    rebuild_reason = f"input {', '.join(truncated)} was truncated"
            blockers = _blockers(model)
            if rebuild_reason is not None:
                warning = None if full else rebuild_reason  # a full refresh was asked for: nothing to warn about
                rows = self._full_all(cur, project, model)
                mode: Literal["incremental", "full"] = "full"
                scope_done: tuple[str, ...] | None = None
            elif full or blockers:
                if blockers and not full:
                    warning = f"it cannot be maintained incrementally: it uses {', '.join(blockers)}"
                rows = self._full_all(cur, project, model) if scope is None else self._full_scoped(cur, model, scope)
                mode, scope_done = "full", scope
            else:
                rows = self._incremental(cur, project, model, bases, high, scope)
                mode, scope_done = "incremental", scope
            _advance(cur, model, high, scope_done)
            duration = time.perf_counter() - started
            cur.execute(
                "INSERT INTO models.refresh_log (model, tenant_scope, mode, rows_changed, duration_s, warning) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (model.name, list(scope_done) if scope_done is not None else None, mode, rows, duration, warning),
            )
        return RefreshRecord(
            model=model.name,
            tenant_scope=scope_done,
            mode=mode,
            rows_changed=rows,
            duration_s=duration,
            warning=warning,
        )

    def _full_all(self, cur: psycopg.Cursor[tuple[Any, ...]], project: ModelProject, model: Model) -> int:
        table = _summary(model)
        cur.execute(sql.SQL("TRUNCATE {}").format(table))
        # A rebuild is not logged row by row (its children are marked for a full refresh instead), and secondary
        # indexes are built once after the load rather than maintained row by row.
        cur.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(table))
        cur.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
            "JOIN pg_class AS c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
            (f"{MODEL_SCHEMA}.{model.name}",),
        )
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(MODEL_SCHEMA, str(name))))
        cur.execute(
            sql.SQL("INSERT INTO {table} {query}").format(table=table, query=sql.SQL(model_query_postgres(model)))
        )
        rows = cur.rowcount
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(table))
        for child in project.children(model.name):
            cur.execute(
                "UPDATE models.model_state SET needs_full = %s WHERE model = %s AND needs_full IS NULL",
                (f"its input '{model.name}' was refreshed in full", child.name),
            )
        cur.execute(
            "UPDATE models.model_state SET needs_full = NULL, refreshed_at = now() WHERE model = %s", (model.name,)
        )
        return rows

    def _full_scoped(self, cur: psycopg.Cursor[tuple[Any, ...]], model: Model, scope: tuple[str, ...]) -> int:
        table = _summary(model)
        _scope_table(cur, scope)
        cur.execute(sql.SQL("DELETE FROM {} WHERE tenant_id IN (SELECT tenant_id FROM _scope)").format(table))
        deleted = cur.rowcount
        query = model.select().where(
            exp.In(this=model.grain_expressions[0].copy(), query=sqlglot.parse_one("SELECT tenant_id FROM _scope"))
        )
        cur.execute(
            sql.SQL("INSERT INTO {table} {query}").format(
                table=table, query=sql.SQL(query.sql("postgres", comments=False))
            )
        )
        cur.execute("UPDATE models.model_state SET refreshed_at = now() WHERE model = %s", (model.name,))
        return deleted + cur.rowcount

    def _incremental(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        project: ModelProject,
        model: Model,
        bases: dict[str, int | None],
        high: int,
        scope: tuple[str, ...] | None,
    ) -> int:
        if scope is not None:
            _scope_table(cur, scope)
        # The statements below start from a few keys or changed rows and probe the inputs' indexes; with the default
        # cost of a random page the planner prefers reading a whole large input instead, several times slower.
        cur.execute("SET LOCAL random_page_cost = 1.1")
        cur.execute("SET LOCAL work_mem = '64MB'")
        types = table_columns(cur, MODEL_SCHEMA, model.name) or {}
        plan = _plan(project, model, tuple(types.items()))
        deltas: dict[str, str] = {}
        for number, input_name in enumerate(model.inputs):
            # A delta needs only the columns the model reads, with their sign; a recomputation needs whole rows.
            columns = list(_read_columns(model, input_name)) if plan else None
            if extract_changes(cur, model, input_name, f"_delta_{number}", bases[input_name], high, scope, columns):
                deltas[input_name] = f"_delta_{number}"
        if not deltas:
            changed = 0
        elif plan is None:
            scoped = " WHERE k.tenant_id IN (SELECT tenant_id FROM _scope)" if scope is not None else ""
            keys = sql.SQL("SELECT k.* FROM ({keys}) AS k{scoped}").format(
                keys=sql.SQL(affected_keys_query(model, deltas)), scoped=sql.SQL(scoped)
            )
            changed = self._recompute(cur, model, keys)
        else:
            compiled = _delta_sql(project, model, tuple(types.items()), tuple(deltas.items()))
            changed = self._apply_deltas(cur, compiled, scoped=scope is not None)
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(qualified(contributions_table(model))))
        cur.execute("UPDATE models.model_state SET refreshed_at = now() WHERE model = %s", (model.name,))
        return changed

    def _apply_deltas(self, cur: psycopg.Cursor[tuple[Any, ...]], compiled: _DeltaSql, scoped: bool) -> int:
        model = compiled.model
        table = _summary(model)
        # A regular (unlogged) table, not a temporary one, so that the plan below may probe the summary table from
        # parallel workers; it lives only inside this transaction (dropped before commit, gone on rollback).
        contributions = qualified(contributions_table(model))
        # The changed images come from a temporary table without statistics, so the planner guesses few rows and
        # sorts them by the grain (text comparisons under the collation) where hashing is several times cheaper.
        cur.execute("SET LOCAL enable_sort = off")
        cur.execute(sql.SQL("CREATE UNLOGGED TABLE {} AS {}").format(contributions, sql.SQL(compiled.contributions)))
        cur.execute("RESET enable_sort")
        if scoped:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE tenant_id NOT IN (SELECT tenant_id FROM _scope)").format(contributions)
            )
        # Not analysed: whatever its size, the plan probes the summary table's primary key for each group.
        cur.execute(sql.SQL("CREATE TEMP TABLE _planned ON COMMIT DROP AS {}").format(sql.SQL(compiled.plan)))
        changed = 0
        # Stored groups are found by the ctid the plan read (this model's refreshes are serialised by its lock,
        # and the snapshot would reject a row changed since), new ones are plainly inserted.
        cur.execute(
            sql.SQL("DELETE FROM {table} AS t USING _planned AS p WHERE t.ctid = p.{tid} AND p.{action} = 'd'").format(
                table=table, tid=sql.Identifier(TID), action=sql.Identifier(ACTION)
            )
        )
        changed += cur.rowcount
        upserted = sql.SQL(compiled.upserted)  # the new values, derived columns included
        values = [c for c in model.columns if c not in model.grain]
        if values:
            cur.execute(
                sql.SQL(
                    "UPDATE {table} AS t SET ({columns}) = ROW({new}) FROM ({upserted}) AS u "
                    "WHERE t.ctid = u.{tid} AND ({stored}) IS DISTINCT FROM ({new})"
                ).format(
                    table=table,
                    upserted=upserted,
                    columns=_names(values),
                    new=sql.SQL(", ").join(sql.SQL("u.{}").format(sql.Identifier(c)) for c in values),
                    stored=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values),
                    tid=sql.Identifier(TID),
                )
            )
            changed += cur.rowcount
        cur.execute(
            sql.SQL(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM ({upserted}) AS u WHERE u.{tid} IS NULL"
            ).format(table=table, columns=_names(model.columns), upserted=upserted, tid=sql.Identifier(TID))
        )
        changed += cur.rowcount
        keys = sql.SQL("SELECT {grain} FROM _planned WHERE {action} = 'r'").format(
            grain=_names(model.grain), action=sql.Identifier(ACTION)
        )
        changed += self._recompute(cur, model, keys)
        return changed

    def _recompute(self, cur: psycopg.Cursor[tuple[Any, ...]], model: Model, keys: sql.Composable) -> int:
        """Recompute the groups that query ``keys`` lists from their rows; write only those that differ."""
        table = _summary(model)
        # In key order, so that the probes into the inputs' indexes and the writes walk each index once.
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE _sorted_keys ON COMMIT DROP AS SELECT * FROM ({keys}) AS k ORDER BY {grain}"
            ).format(keys=keys, grain=_names(model.grain))
        )
        if cur.rowcount == 0:
            return 0
        cur.execute("ANALYZE _sorted_keys")  # temporary tables get no statistics otherwise; the plans depend on them
        cur.execute(
            sql.SQL("CREATE TEMP TABLE _new ON COMMIT DROP AS {}").format(
                sql.SQL(recompute_query(model, "_sorted_keys"))
            )
        )
        cur.execute(
            sql.SQL(
                "DELETE FROM {table} AS t USING _sorted_keys AS k WHERE {match} "
                "AND NOT EXISTS (SELECT 1 FROM _new AS n WHERE {new_match})"
            ).format(table=table, match=_key_match("t", "k", model.grain), new_match=_key_match("n", "k", model.grain))
        )
        return cur.rowcount + _upsert(cur, model, sql.SQL("SELECT * FROM _new ORDER BY {}").format(_names(model.grain)))

    def refresh_log(self, limit: int = 100) -> list[RefreshRecord]:
        """Return the latest ``limit`` refresh records, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT model, tenant_scope, mode, rows_changed, duration_s, warning FROM models.refresh_log "
                "ORDER BY id DESC LIMIT %s",
                (limit,),
            ).fetchall()
        return [
            RefreshRecord(
                model=r[0],
                tenant_scope=tuple(r[1]) if r[1] is not None else None,
                mode=r[2],
                rows_changed=r[3],
                duration_s=r[4],
                warning=r[5],
            )
            for r in rows
        ]


def _upsert(cur: psycopg.Cursor[tuple[Any, ...]], model: Model, rows: sql.Composable) -> int:
    """Insert ``rows`` (the model's columns in order), updating stored groups that differ; return rows written."""
    values = [c for c in model.columns if c not in model.grain]
    if not values:
        cur.execute(
            sql.SQL("INSERT INTO {table} {rows} ON CONFLICT ({grain}) DO NOTHING").format(
                table=_summary(model), rows=rows, grain=_names(model.grain)
            )
        )
        return cur.rowcount
    cur.execute(
        sql.SQL(
            "INSERT INTO {table} AS t {rows} ON CONFLICT ({grain}) DO UPDATE SET ({columns}) = ROW({excluded}) "
            "WHERE ({stored}) IS DISTINCT FROM ({excluded})"
        ).format(
            table=_summary(model),
            rows=rows,
            grain=_names(model.grain),
            columns=_names(values),
            excluded=sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in values),
            stored=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values),
        )
    )
    return cur.rowcount


def _bases(cur: psycopg.Cursor[tuple[Any, ...]], model: Model) -> dict[str, int | None]:
    cur.execute(
        "SELECT input, last_seq FROM models.watermarks WHERE model = %s AND tenant_id = %s", (model.name, ALL_TENANTS)
    )
    found = {str(r[0]): int(r[1]) for r in cur.fetchall()}
    return {name: found.get(name) for name in model.inputs}


def _scope_table(cur: psycopg.Cursor[tuple[Any, ...]], scope: tuple[str, ...]) -> None:
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _scope (tenant_id text PRIMARY KEY) ON COMMIT DROP")
    cur.execute("INSERT INTO _scope SELECT DISTINCT unnest(%s::text[]) ON CONFLICT DO NOTHING", (list(scope),))


def _advance(cur: psycopg.Cursor[tuple[Any, ...]], model: Model, high: int, scope: tuple[str, ...] | None) -> None:
    tenants = [ALL_TENANTS] if scope is None else list(scope)
    if scope is None:
        cur.execute("DELETE FROM models.watermarks WHERE model = %s AND tenant_id <> %s", (model.name, ALL_TENANTS))
    for input_name in model.inputs:
        cur.executemany(
            "INSERT INTO models.watermarks (model, input, tenant_id, last_seq) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (model, input, tenant_id) DO UPDATE SET last_seq = EXCLUDED.last_seq",
            [(model.name, input_name, tenant, high) for tenant in tenants],
        )


# ---------------------------------------------------------------------------------------- compiled statements
# A refresh of a few changed rows is dominated by building its SQL with sqlglot; the statements depend only on the
# project, the model, its summary table's column types and which inputs changed, so they are built once per
# process and kept (models are immutable values).


@dataclass(frozen=True)
class _DeltaSql:
    """The statements of one delta refresh: per-group contributions, the plan, the new values of upserted groups."""

    model: Model
    contributions: str
    plan: str
    upserted: str


@functools.lru_cache(maxsize=256)
def _plan(project: ModelProject, model: Model, types: tuple[tuple[str, str], ...]) -> DeltaPlan | None:
    return delta_plan(model, project.get, dict(types))


@functools.lru_cache(maxsize=1024)
def _delta_sql(
    project: ModelProject, model: Model, types: tuple[tuple[str, str], ...], deltas: tuple[tuple[str, str], ...]
) -> _DeltaSql:
    plan = _plan(project, model, types)
    if plan is None:
        raise AssertionError(f"model '{model.name}' is not maintained by deltas")
    return _DeltaSql(
        model=model,
        contributions=contributions_query(plan, dict(deltas)),
        plan=plan_query(plan, contributions_table(model).sql("postgres"), summary_table(model), dict(types)),
        upserted=upsert_source(plan, "_planned"),
    )


@functools.lru_cache(maxsize=1024)
def _read_columns(model: Model, input_name: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(["tenant_id", *read_columns(model, input_name)]))


@functools.lru_cache(maxsize=256)
def _blockers(model: Model) -> tuple[str, ...]:
    return tuple(incremental_blockers(model.query))


# ------------------------------------------------------------------------------------------- query rewriting


def _input_tables(query: exp.Select) -> list[exp.Table]:
    """The model's input table references in FROM/JOIN order."""
    return [t for t in query.find_all(exp.Table) if t.db]


def affected_keys_query(model: Model, deltas: dict[str, str]) -> str:
    """Return SQL listing the distinct grain keys touched by the changed images in ``deltas``.

    ``deltas`` maps an input name to a table of its changed rows (old and new images). For every reference to a
    changed input, the model's FROM/JOIN/WHERE is evaluated with that reference reading the changed images and
    every other changed input reading its current rows plus its changed images, so a row of the model's
    join that appeared, disappeared or moved group is found whichever input changed. The union lists every group
    whose aggregate may differ (possibly a few more).
    """
    parts: list[exp.Select] = []
    positions = _input_tables(model.query)
    for position, table in enumerate(positions):
        if input_name_of(table) not in deltas:
            continue
        query = model.select()
        for index, reference in enumerate(_input_tables(query)):
            name = input_name_of(reference)
            alias = reference.alias or reference.name
            if index == position:
                reference.replace(exp.to_table(deltas[name]).as_(alias))
            elif name in deltas:
                current = exp.select("*").from_(input_table(name))
                changed = exp.select("*").from_(deltas[name])
                reference.replace(exp.union(current, changed, distinct=False).subquery(alias))
        query.set("expressions", [e.copy().as_(g) for e, g in zip(model.grain_expressions, model.grain, strict=True)])
        query.set("group", None)
        query.set("having", None)
        parts.append(query.distinct())
    union: exp.Query = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=True)
    return union.sql("postgres", comments=False)


def _truncated_column(expression: exp.Expression) -> exp.Column | None:
    """The column of a ``DATE_TRUNC(unit, column)`` expression, else None."""
    if isinstance(expression, exp.TimestampTrunc | exp.DateTrunc) and isinstance(expression.this, exp.Column):
        return expression.this
    return None


def _key_condition(expression: exp.Expression, key: exp.Column) -> exp.Condition:
    condition: exp.Condition = exp.EQ(this=key.copy(), expression=expression.copy())
    column = _truncated_column(expression)
    if column is not None:
        # A range on the truncated column lets an index on it find the group's rows.
        unit = expression.text("unit").lower() or "day"
        step = exp.Interval(this=exp.Literal.string("1"), unit=exp.var(unit))
        upper: exp.Expr = exp.Add(this=key.copy(), expression=step)
        zone = expression.args.get("zone")
        if zone is not None:
            # A bucket in a time zone ends one unit later in local time: a day may last 23 or 25 hours.
            local = exp.Add(this=exp.AtTimeZone(this=key.copy(), zone=zone.copy()), expression=step)
            upper = exp.AtTimeZone(this=exp.Paren(this=local), zone=zone.copy())
        condition = exp.and_(
            condition, exp.GTE(this=column.copy(), expression=key.copy()), exp.LT(this=column.copy(), expression=upper)
        )
    return condition


def recompute_query(model: Model, keys_table: str) -> str:
    """Return the model's SELECT restricted to the groups listed in ``keys_table`` (columns named as the grain).

    The keys are joined rather than tested with EXISTS so that the planner starts from the few keys and probes
    the inputs' indexes; each input row matches at most one key (the grain expressions are compared for
    equality), so the join does not repeat rows.
    """
    alias = "__keys"
    conditions = [
        _key_condition(expression, exp.column(name, table=alias))
        for expression, name in zip(model.grain_expressions, model.grain, strict=True)
    ]
    query = model.select().join(exp.to_table(keys_table).as_(alias), on=exp.and_(*conditions), join_type="inner")
    return query.sql("postgres", comments=False)


def critical_paths(models: Sequence[Model], durations: dict[str, float]) -> dict[str, float]:
    """Return, per model, the estimated time from its start to the end of the longest chain of its descendants
    among ``models``: its own duration (from ``durations``, else the mean of the known ones, else 1) plus the
    longest such time of its children."""
    known = [durations[m.name] for m in models if m.name in durations]
    default = sum(known) / len(known) if known else 1.0
    paths: dict[str, float] = {}
    for model in reversed(models):  # DAG order reversed: every child before its parents
        children = [paths[m.name] for m in models if model.name in m.refs]
        paths[model.name] = durations.get(model.name, default) + max(children, default=0.0)
    return paths


@dataclass(frozen=True)
class ParentIndex:
    """An index on a parent summary table that serves a child's lookups, partial when the child reads only rows
    where some columns are not NULL."""

    parent: str
    columns: tuple[str, ...]
    not_null: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The index name: the engine's prefix ``<parent>__`` (see ``_ensure_indexes``), columns, predicate."""
        suffix = f"__where_{'_'.join(self.not_null)}" if self.not_null else ""
        return bounded_name(f"{self.parent}__{'_'.join(self.columns)}{suffix}")

    def covers(self, other: ParentIndex) -> bool:
        """Whether this index serves every lookup ``other`` would: same table and predicate, ``other`` a prefix."""
        return (
            self.parent == other.parent
            and self.not_null == other.not_null
            and self.columns[: len(other.columns)] == other.columns
        )


def may_recompute(plan: DeltaPlan | None) -> bool:
    """Whether a model recomputes groups from its parents' rows in the normal course of its refreshes: it is not
    maintained by deltas, or a MIN/MAX may lose its extreme, or it has no COUNT(*) to tell a group emptied."""
    return plan is None or plan.has_extremes or plan.count_column is None


def _not_null_columns(model: Model, alias: str, single: bool) -> tuple[str, ...]:
    """Columns of the input aliased ``alias`` that the model's WHERE requires to be NOT NULL (``x IS NOT NULL``)."""
    where = model.query.args.get("where")
    if where is None:
        return ()
    found: list[str] = []
    for part in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        # sqlglot reads `x IS NOT NULL` as a negated IS; NOT (x IS NULL) says the same
        negated = isinstance(part, exp.Is) and part.args.get("negate")
        inner = part if negated else part.this if isinstance(part, exp.Not) else None
        if isinstance(inner, exp.Is) and isinstance(inner.expression, exp.Null) and isinstance(inner.this, exp.Column):
            column = inner.this
            if column.table == alias or (not column.table and single):
                found.append(column.name)
    return tuple(sorted(set(found)))


def parent_indexes(model: Model, recomputes: bool) -> list[ParentIndex]:
    """Return the indexes that serve ``model``'s lookups into its parent summaries.

    When the model may recompute groups (``recomputes``, see ``may_recompute``), an index finds a group's parent
    rows: ``tenant_id``, the parent columns the grain uses as they are, then the first column it truncates to a time
    bucket (a range). When it joins another input, an index on ``tenant_id`` and the parent's join columns serves a
    change on the other side. Each is partial on the parent columns the model's WHERE requires to be NOT NULL.
    """
    found: list[ParentIndex] = []
    tables = _input_tables(model.query)
    for table in tables:
        parent = input_name_of(table)
        if parent not in model.refs:
            continue
        alias = table.alias or table.name

        def mine(column: exp.Column, alias: str = alias) -> bool:
            return column.table == alias or (not column.table and len(tables) == 1)

        equal: list[str] = []
        ranged: list[str] = []
        for expression in model.grain_expressions:
            if isinstance(expression, exp.Column) and mine(expression):
                equal.append(expression.name)
            elif _truncated_column(expression) is not None and mine(expression.this):
                ranged.append(expression.this.name)
        join_columns: list[str] = []
        for join in model.query.args.get("joins") or []:
            on = join.args.get("on")
            for column in on.find_all(exp.Column) if on is not None else []:
                if mine(column):
                    join_columns.append(column.name)
        wanted = [tuple(dict.fromkeys(["tenant_id", *equal, *ranged[:1]]))] if recomputes else []
        if join_columns:
            wanted.append(tuple(dict.fromkeys(["tenant_id", *join_columns])))
        not_null = _not_null_columns(model, alias, len(tables) == 1)
        for columns in wanted:
            index = ParentIndex(parent, columns, not_null)
            if len(columns) > 1 and index not in found:
                found.append(index)
    return _without_prefixes(found)


def project_indexes(project: ModelProject, recomputes: Callable[[Model], bool]) -> list[ParentIndex]:
    """Return the parent indexes of every model (``recomputes`` tells which may recompute groups), leaving out any
    that another one on the same table covers."""
    return _without_prefixes([index for model in project.models for index in parent_indexes(model, recomputes(model))])


def _without_prefixes(indexes: list[ParentIndex]) -> list[ParentIndex]:
    kept: list[ParentIndex] = []
    for index in indexes:
        covered = any(other.covers(index) and other != index for other in indexes)
        if not covered and index not in kept:
            kept.append(index)
    return kept
