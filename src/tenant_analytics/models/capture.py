"""Change capture of the PostgreSQL engine: one change table per input, filled by statement-level triggers.

Every source table a model reads, and every summary table another model reads, gets ``models."changes:<input>"``
(``__seq``, ``__sign``, the input's columns) and a trigger function ``models."capture:<input>"()`` appending the old
(-1) and new (+1) images of the rows each statement changed, all under one value of ``models.change_seq``.
TRUNCATE of a source appends a marker to ``models.truncations``. The capture function holds its input's capture
lock shared until its transaction ends; a refresh reads the sequence's last value holding the locks of the model's
inputs exclusively, so every change of those inputs at or below the value it reads is committed and visible to its
snapshot, and none above it is (:func:`snapshot_at_high_water`). Writers of other tables never delay it. Images
every reader has consumed are deleted after the refreshes commit (:func:`prune_consumed`).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlglot import exp

from tenant_analytics.constants import STALE_MODEL_AFTER_HOURS
from tenant_analytics.errors import InvalidInput
from tenant_analytics.models.delta import SIGN
from tenant_analytics.models.project import MODEL_SCHEMA, Model, ModelProject, input_table
from tenant_analytics.models.sources import SOURCES
from tenant_analytics.stores.roles import ETL_ROLE, all_tenants_policy

Connection = psycopg.Connection[tuple[Any, ...]]

ALL_TENANTS = ""  # watermark row that applies to every tenant
SEQ = "__seq"  # change-table column: the capturing statement's value of models.change_seq
# Advisory locks of the capture: (class, hashtext(input)) per input, and the store-wide hashtext(class) that every
# capture also holds shared, which is what refreshes of releases before per-input locks wait on.
_CAPTURE_LOCK = "tenant_analytics.models.capture"
_TRUNCATE_FROM_BYTES = 1 << 20  # a change table this large is truncated rather than deleted from, when it can be
# A model without a successful refresh for this long stops holding back its inputs' change images (prune_consumed).
STALE_READER_AFTER = timedelta(hours=STALE_MODEL_AFTER_HOURS)

CAPTURE_CATALOG = f"""
-- one value per capturing statement: the images a statement logs share it, and its last value under the
-- exclusive capture lock is the high-water mark of committed changes
CREATE SEQUENCE IF NOT EXISTS {MODEL_SCHEMA}.change_seq;
ALTER SEQUENCE {MODEL_SCHEMA}.change_seq OWNER TO {ETL_ROLE};
CREATE TABLE IF NOT EXISTS {MODEL_SCHEMA}.truncations (
    seq   bigint PRIMARY KEY,
    input text   NOT NULL
);
ALTER TABLE {MODEL_SCHEMA}.truncations OWNER TO {ETL_ROLE};
"""

_TRIGGERS = (
    ("models_capture_insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("models_capture_update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("models_capture_delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
    ("models_capture_truncate", "TRUNCATE", ""),
)


def bounded_name(name: str) -> str:
    """``name`` as a PostgreSQL identifier (at most 63 bytes): long names keep a prefix and gain a digest."""
    if len(name.encode()) <= 63:
        return name
    return f"{name[:50]}~{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def change_table(input_name: str) -> exp.Table:
    """The table that logs ``input_name``'s changed rows: ``__seq``, ``__sign`` (+1 new, -1 old), the input's
    columns."""
    return exp.table_(bounded_name(f"changes:{input_name}"), db=MODEL_SCHEMA)


def qualified(table: exp.Table) -> sql.Identifier:
    """``schema.table`` of a sqlglot table as a psycopg identifier."""
    return sql.Identifier(table.db, table.name)


def table_columns(cur: psycopg.Cursor[tuple[Any, ...]], schema: str, table: str) -> dict[str, str] | None:
    """Column -> type (as format_type spells it) of ``schema.table``, in column order; None when it is missing."""
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class AS c "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = %s AND c.relname = %s ORDER BY a.attnum",
        (schema, table),
    )
    rows = cur.fetchall()
    if not rows:
        return None
    return {str(r[0]): str(r[1]) for r in rows if r[0] is not None}


def _change_table_policies(table: sql.Composable) -> list[sql.Composed]:
    # Readable only by the refresh (a superuser, or a member of the all-tenants role: Aurora's admin); the capture
    # function appends under any tenant setting. Nothing is granted to the query role.
    return [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(table),
        sql.SQL("DROP POLICY IF EXISTS capture ON {}").format(table),
        sql.SQL("CREATE POLICY capture ON {} FOR INSERT WITH CHECK (true)").format(table),
        *all_tenants_policy(table),
    ]


def _capture_function(
    input_name: str, function: sql.Identifier, changes: sql.Identifier, columns: list[str]
) -> sql.Composed:
    """The statement-level trigger function appending a statement's old and new row images to ``changes``."""
    listed = sql.SQL(", ").join(sql.Identifier(c) for c in columns)

    def images(alias: str) -> sql.Composed:
        return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c)) for c in columns)

    body = sql.SQL(
        """
DECLARE
    statement_seq bigint;
BEGIN
    -- held until commit: a refresh of a reader of this input takes its high-water mark only when no transaction
    -- capturing into the input is in flight (and a refresh of an earlier release, when no capture at all is)
    PERFORM pg_advisory_xact_lock_shared(hashtext({lock}), hashtext({input}));
    PERFORM pg_advisory_xact_lock_shared(hashtext({lock}));
    statement_seq := nextval('{schema}.change_seq');
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO {schema}.truncations (seq, input) VALUES (statement_seq, {input});
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO {changes} ({seq}, {sign}, {listed}) SELECT statement_seq, -1, {old} FROM old_rows AS o;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO {changes} ({seq}, {sign}, {listed}) SELECT statement_seq, 1, {new} FROM new_rows AS n;
    END IF;
    RETURN NULL;
END
"""
    ).format(
        lock=sql.Literal(_CAPTURE_LOCK),
        schema=sql.SQL(MODEL_SCHEMA),
        input=sql.Literal(input_name),
        changes=changes,
        seq=sql.Identifier(SEQ),
        sign=sql.Identifier(SIGN),
        listed=listed,
        old=images("o"),
        new=images("n"),
    )
    return sql.Composed(
        [
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                "SET search_path = pg_catalog, pg_temp AS $capture$"
            ).format(function=function),
            body,
            sql.SQL("$capture$"),
        ]
    )


def retire_change_log(cur: psycopg.Cursor[tuple[Any, ...]]) -> None:
    """Drop the single jsonb change log of earlier versions; its pending images are replaced by full refreshes."""
    cur.execute("SELECT to_regclass('models.change_log') IS NOT NULL")
    row = cur.fetchone()
    if row is None or not row[0]:
        return
    cur.execute("DROP FUNCTION IF EXISTS models.capture_changes() CASCADE")  # and the triggers that call it
    cur.execute("DROP TABLE models.change_log")
    cur.execute(
        "UPDATE models.model_state SET needs_full = 'change capture was upgraded to change tables' "
        "WHERE needs_full IS NULL"
    )


def _try_input_lock(conn: Connection, input_name: str) -> bool:
    with conn.transaction():
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (_CAPTURE_LOCK, input_name)
        ).fetchone()
    return bool(row and row[0])


def _wait_input_lock(conn: Connection, input_name: str) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(%s))", (_CAPTURE_LOCK, input_name))


def _release_input_locks(conn: Connection, inputs: Iterable[str]) -> None:
    for input_name in inputs:
        with contextlib.suppress(psycopg.Error), conn.transaction():
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (_CAPTURE_LOCK, input_name))


def lock_inputs(conn: Connection, inputs: Iterable[str]) -> list[str]:
    """Take the capture locks of ``inputs`` exclusively (session-level); return the inputs, all locked.

    Waits for the transactions capturing into any of them to end, but never while holding another: a writer that
    captured into one input and goes on to another would otherwise wait for this session while it waits for the
    writer. So the locks free now are taken, and on the first that is not, they are released and that one is
    waited for alone, then the others are tried again.
    """
    wanted = sorted(set(inputs))
    waited: str | None = None
    while True:
        held = [waited] if waited is not None else []
        blocked: str | None = None
        try:
            for input_name in wanted:
                if input_name == waited:
                    continue
                if not _try_input_lock(conn, input_name):
                    blocked = input_name
                    break
                held.append(input_name)
        except BaseException:
            _release_input_locks(conn, held)
            raise
        if blocked is None:
            return held
        _release_input_locks(conn, held)
        _wait_input_lock(conn, blocked)
        waited = blocked


@contextlib.contextmanager
def snapshot_at_high_water(
    conn: Connection, inputs: Sequence[str]
) -> Iterator[tuple[psycopg.Cursor[tuple[Any, ...]], int]]:
    """Open a REPEATABLE READ transaction whose snapshot holds exactly the changes of ``inputs`` up to the high-water
    mark.

    The inputs' capture locks are taken exclusively before the transaction (:func:`lock_inputs`): that waits for
    the transactions capturing into them to end and keeps new ones from logging, so the snapshot, taken by the first
    query, sees every change of those inputs at or below the sequence value it reads and none above (a capture
    waiting for the locks draws its value after they are released). Every read of the refresh (change images,
    inputs' current rows, the summary table) then describes the same moment, which applying deltas relies on.
    Writers of other tables are not waited for: their images are no business of this snapshot.
    """
    held = lock_inputs(conn, inputs)
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SET LOCAL TimeZone = 'UTC'")  # day and hour buckets are UTC
            cur.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM models.change_seq")
            row = cur.fetchone()
            for input_name in held:
                cur.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))", (_CAPTURE_LOCK, input_name))
            held = []
            yield cur, int(row[0]) if row is not None else 0
    finally:
        _release_input_locks(conn, held)


def extract_changes(
    cur: psycopg.Cursor[tuple[Any, ...]],
    model: Model,
    input_name: str,
    delta: str,
    base: int | None,
    high: int,
    scope: tuple[str, ...] | None,
    columns: Sequence[str] | None,
) -> bool:
    """Copy the input's change images the model has not consumed into temp table ``delta``; False if none.

    ``columns`` lists the columns to extract, followed by the sign; None extracts whole rows (the input's columns
    in order) without their sign.
    """
    selected: sql.Composable
    if columns is None:
        table = input_table(input_name)
        found = table_columns(cur, table.db, table.name) or {}
        selected = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(c)) for c in found)
    else:
        selected = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(c)) for c in [*columns, SIGN])
    scope_filter = sql.SQL("AND c.tenant_id IN (SELECT tenant_id FROM _scope)" if scope is not None else "")
    # Tenants refreshed on their own since the all-tenant watermark have consumed more: a per-row lookup in a
    # small map (no join, whose plan a change table's ever-stale statistics would make a nested loop).
    cur.execute(
        "SELECT jsonb_object_agg(tenant_id, last_seq) FROM models.watermarks "
        "WHERE model = %s AND input = %s AND tenant_id <> %s",
        (model.name, input_name, ALL_TENANTS),
    )
    row = cur.fetchone()
    marks = row[0] if row is not None else None
    tenant_filter = sql.SQL(
        "AND c.{seq} > COALESCE((%(marks)s::jsonb ->> c.tenant_id)::bigint, 0)" if marks else ""
    ).format(seq=sql.Identifier(SEQ))
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE {delta} ON COMMIT DROP AS SELECT {selected} FROM {changes} AS c "
            "WHERE c.{seq} > %(base)s AND c.{seq} <= %(high)s {tenant_filter} {scope_filter}"
        ).format(
            delta=sql.Identifier(delta),
            selected=selected,
            changes=qualified(change_table(input_name)),
            seq=sql.Identifier(SEQ),
            tenant_filter=tenant_filter,
            scope_filter=scope_filter,
        ),
        {"base": base, "high": high, "marks": Jsonb(marks) if marks else None},
    )
    if cur.rowcount > 0:
        return True
    cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(delta)))
    return False


def truncated_inputs(
    cur: psycopg.Cursor[tuple[Any, ...]], model: Model, bases: dict[str, int | None], high: int
) -> list[str]:
    """The inputs (of ``bases``: input -> the model's watermark) truncated after the watermark, up to ``high``."""
    truncated = []
    for name, base in bases.items():
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM models.truncations WHERE input = %s AND seq > %s AND seq <= %s)",
            (name, base or 0, high),
        )
        row = cur.fetchone()
        if row is not None and row[0]:
            truncated.append(name)
    return truncated


def refresh_lock(model_name: str) -> str:
    """The advisory lock a refresh of ``model_name`` holds (two refreshes of one model never overlap)."""
    return f"tenant_analytics.models.refresh:{model_name}"


def prune_consumed(
    conn: Connection, project: ModelProject, models: Iterable[Model], *, stale_after: timedelta | None = None
) -> None:
    """Delete the change images of the models' inputs that every reader of the input has consumed for all tenants.

    Run after the refreshes have committed, so that siblings refreshed side by side see each other's watermarks.
    A reader whose next refresh is a full one needs no images, so it does not hold them back; a reader without a
    successful refresh for longer than ``stale_after`` (one that keeps failing) is marked for a full refresh first,
    so that the images it has not consumed are dropped instead of piling up. Either applies only while the reader
    is not refreshing (its refresh lock is taken until this transaction ends). When every image is consumed and
    nobody else is using the change table, it is truncated (no dead rows left for vacuum); otherwise the consumed
    images are deleted. Another refresh may prune the same rows concurrently: that conflict only postpones the
    cleanup, so it is not allowed to fail the refresh.
    """
    for input_name in dict.fromkeys(i for m in models for i in m.inputs):
        readers = [m.name for m in project.models if input_name in m.inputs]
        changes = qualified(change_table(input_name))
        with contextlib.suppress(psycopg.errors.SerializationFailure), conn.transaction(), conn.cursor() as cur:
            holding = [r for r in readers if r not in _readers_needing_full(cur, readers, stale_after)]
            consumed: int | None = None  # None: no reader holds any image back
            if holding:
                cur.execute(
                    "SELECT count(*), min(last_seq) FROM models.watermarks WHERE input = %s AND tenant_id = %s "
                    "AND model = ANY(%s)",
                    (input_name, ALL_TENANTS, holding),
                )
                row = cur.fetchone()
                if row is None or row[0] != len(holding):
                    continue
                consumed = int(row[1])
            if not _truncate_if_consumed(conn, cur, changes, consumed):
                if consumed is None:
                    cur.execute(sql.SQL("DELETE FROM {}").format(changes))
                else:
                    cur.execute(
                        sql.SQL("DELETE FROM {} WHERE {} <= %s").format(changes, sql.Identifier(SEQ)), (consumed,)
                    )
            cur.execute(
                "DELETE FROM models.truncations WHERE input = %s AND (%s::bigint IS NULL OR seq <= %s)",
                (input_name, consumed, consumed),
            )


def _readers_needing_full(
    cur: psycopg.Cursor[tuple[Any, ...]], readers: list[str], stale_after: timedelta | None
) -> set[str]:
    """The readers, not refreshing now, whose next refresh is a full one: marked so before, or now for having gone
    without a successful refresh for longer than ``stale_after``. Their refresh locks are held until commit, so
    none of them starts a refresh (and reads a watermark) before the images this transaction deletes are gone."""
    found: set[str] = set()
    for reader in readers:
        cur.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (refresh_lock(reader),))
        locked = cur.fetchone()
        if locked is None or not locked[0]:
            continue  # refreshing now: its watermark counts
        if stale_after is not None:
            cur.execute(
                "UPDATE models.model_state SET needs_full = %s "
                "WHERE model = %s AND needs_full IS NULL AND refreshed_at < now() - %s",
                (
                    f"it had no successful refresh for more than {stale_after}, so the changes it had not read "
                    "were dropped",
                    reader,
                    stale_after,
                ),
            )
        cur.execute("SELECT needs_full IS NOT NULL FROM models.model_state WHERE model = %s", (reader,))
        marked = cur.fetchone()
        if marked is not None and marked[0]:
            found.add(reader)
    return found


class _StillPending(Exception):
    """Rolls the truncation's savepoint back (and releases its lock): the change table holds unconsumed images."""


def _truncate_if_consumed(
    conn: Connection, cur: psycopg.Cursor[tuple[Any, ...]], changes: sql.Identifier, consumed: int | None
) -> bool:
    # TRUNCATE is safe only with the table to ourselves (no capture writing, no refresh reading: NOWAIT, else
    # delete instead) and nothing in it beyond what every reader consumed, which the lock keeps true until commit.
    # It replaces the table's file, which costs more than deleting a few rows: only worth it for a large table.
    cur.execute("SELECT pg_relation_size(%s::regclass)", (changes.as_string(cur),))
    size = cur.fetchone()
    if size is None or size[0] < _TRUNCATE_FROM_BYTES:
        return False
    try:
        with conn.transaction():
            cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE NOWAIT").format(changes))
            if consumed is not None:
                cur.execute(
                    sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} > %s)").format(changes, sql.Identifier(SEQ)),
                    (consumed,),
                )
                pending = cur.fetchone()
                if pending is None or pending[0]:
                    raise _StillPending
            cur.execute(sql.SQL("TRUNCATE {}").format(changes))
    except (_StillPending, psycopg.errors.LockNotAvailable):
        return False
    return True


def ensure_capture(cur: psycopg.Cursor[tuple[Any, ...]], input_name: str) -> bool:
    """Create or update the input's change table, its capture function and triggers.

    Returns True when an existing change table had to be rebuilt (a column changed type or vanished), which
    drops the images not consumed yet: the input's readers then need a full refresh. Replacing the triggers waits
    for the input's writers in flight, so no transaction still running an earlier capture function outlives this
    one's commit.
    """
    table = input_table(input_name)
    columns = table_columns(cur, table.db, table.name)
    if columns is None:
        raise InvalidInput(f"input table {table.db}.{table.name} does not exist; create the store schema first")
    changes = change_table(input_name)
    logged = table_columns(cur, MODEL_SCHEMA, changes.name)
    rebuilt = False
    if logged is not None and any(columns.get(c) != t for c, t in logged.items() if c not in (SEQ, SIGN)):
        cur.execute(sql.SQL("DROP TABLE {}").format(qualified(changes)))
        logged, rebuilt = None, True
    if logged is None:
        cur.execute(
            sql.SQL("CREATE TABLE {changes} ({seq} bigint NOT NULL, {sign} smallint NOT NULL, {columns})").format(
                changes=qualified(changes),
                seq=sql.Identifier(SEQ),
                sign=sql.Identifier(SIGN),
                columns=sql.SQL(", ").join(
                    # types as format_type() spells them, read from the catalog
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
                    for c, t in columns.items()
                ),
            )
        )
        # BRIN: __seq grows with the insertion order, so a few bytes per range of pages find an unconsumed
        # tail at almost no cost to the capture (the table itself holds little beyond that tail once pruned).
        cur.execute(
            sql.SQL("CREATE INDEX {} ON {} USING brin ({})").format(
                sql.Identifier(bounded_name(f"{changes.name}:seq")), qualified(changes), sql.Identifier(SEQ)
            )
        )
        cur.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(qualified(changes), sql.Identifier(ETL_ROLE)))
        for statement in _change_table_policies(qualified(changes)):
            cur.execute(statement)
    else:
        for column, kind in columns.items():
            if column not in logged:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                        qualified(changes), sql.Identifier(column), sql.SQL(kind)
                    )
                )
    function = sql.Identifier(MODEL_SCHEMA, bounded_name(f"capture:{input_name}"))
    cur.execute(_capture_function(input_name, function, qualified(changes), list(columns)))
    cur.execute(sql.SQL("ALTER FUNCTION {}() OWNER TO {}").format(function, sql.Identifier(ETL_ROLE)))
    for name, event, referencing in _TRIGGERS:
        if event == "TRUNCATE" and input_name not in SOURCES:
            continue  # a summary table is truncated only by a full refresh, which marks its children itself
        cur.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER {name} AFTER {event} ON {table} {referencing} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            ).format(
                name=sql.Identifier(name),
                event=sql.SQL(event),
                table=qualified(input_table(input_name)),
                referencing=sql.SQL(referencing),
                function=function,
            )
        )
    return rebuilt
