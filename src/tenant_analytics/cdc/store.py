"""The realtime tables in PostgreSQL (Aurora): 10-second bins, per-shard checkpoints, seen changes, late changes.

Conventions of stores/postgres.py: schema and tables owned by the ETL role, RLS FORCEd on tenant tables with the
policy ``tenant_id = current_setting('app.tenant_id', true)``, SELECT granted to the query role, which reads with
the tenant set by SET LOCAL. The aggregator writes many tenants in one transaction (one shard's batch), so the
bins and late tables carry a second policy that lets the ETL role, and only when it has set
``app.cdc_writer = on`` for the transaction, write every tenant's rows. Statements bind every value.

One batch is one transaction: the shard's checkpoint row is locked first, then seen identities, bins, late
changes, the new checkpoint and the pruning of old identities are written, then the transaction commits.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from tenant_analytics.cdc.config import CdcConfig, load_config
from tenant_analytics.cdc.model import BinRow
from tenant_analytics.errors import InvalidInput, StoreNotReady, StoreUnavailable
from tenant_analytics.stores.base import Conninfo, conninfo_now
from tenant_analytics.stores.roles import ETL_ROLE, QUERY_ROLE, ROLES_SQL
from tenant_analytics.tenants.models import is_tenant_id

SCHEMA = "realtime"


_TENANT_POLICIES = """
ALTER TABLE realtime.{table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE realtime.{table} FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON realtime.{table};
CREATE POLICY tenant_isolation ON realtime.{table}
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
DROP POLICY IF EXISTS cdc_writer ON realtime.{table};
CREATE POLICY cdc_writer ON realtime.{table} TO {etl}
    USING (current_setting('app.cdc_writer', true) = 'on')
    WITH CHECK (current_setting('app.cdc_writer', true) = 'on');
"""

_SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA} AUTHORIZATION {ETL_ROLE};
GRANT USAGE ON SCHEMA {SCHEMA} TO {QUERY_ROLE};
SET LOCAL ROLE {ETL_ROLE};
CREATE TABLE IF NOT EXISTS realtime.bins (
    tenant_id   text        NOT NULL,
    metric      text        NOT NULL,
    bin_start   timestamptz NOT NULL,
    dimensions  jsonb       NOT NULL,
    n           bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, metric, bin_start, dimensions)
);
CREATE TABLE IF NOT EXISTS realtime.shard_checkpoints (
    stream        text        NOT NULL,
    shard_id      text        NOT NULL,
    last_sequence numeric,
    watermark     timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, shard_id)
);
CREATE TABLE IF NOT EXISTS realtime.seen_changes (
    identity     uuid        PRIMARY KEY,
    committed_at timestamptz NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS seen_changes_committed_at ON realtime.seen_changes (committed_at);
CREATE TABLE IF NOT EXISTS realtime.late_changes (
    identity        uuid        PRIMARY KEY,
    tenant_id       text        NOT NULL,
    source_table    text        NOT NULL,
    op              text        NOT NULL,
    committed_at    timestamptz NOT NULL,
    watermark       timestamptz NOT NULL,
    increments      jsonb       NOT NULL,
    stream          text        NOT NULL,
    shard_id        text        NOT NULL,
    sequence_number numeric NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS late_changes_tenant ON realtime.late_changes (tenant_id, committed_at);
{_TENANT_POLICIES.format(table="bins", etl=ETL_ROLE)}
{_TENANT_POLICIES.format(table="late_changes", etl=ETL_ROLE)}
GRANT SELECT ON realtime.bins TO {QUERY_ROLE};
"""

_LOCK_CHECKPOINT = """
INSERT INTO realtime.shard_checkpoints AS c (stream, shard_id) VALUES (%s, %s)
ON CONFLICT (stream, shard_id) DO UPDATE SET updated_at = c.updated_at
RETURNING c.last_sequence, c.watermark
"""

# Large arrays travel as one comma-separated text each: far cheaper to send than 10,000 bound array elements.
_INSERT_SEEN = """
INSERT INTO realtime.seen_changes (identity, committed_at)
SELECT i, to_timestamp(e)
FROM unnest(string_to_array(%s, ',')::uuid[], string_to_array(%s, ',')::float8[]) AS u(i, e)
ON CONFLICT (identity) DO NOTHING
RETURNING replace(identity::text, '-', '')
"""

_UPSERT_BINS = """
INSERT INTO realtime.bins AS b (tenant_id, metric, bin_start, dimensions, n)
SELECT t, m, to_timestamp(s), d, k FROM json_to_recordset(%s::json) AS u(t text, m text, s bigint, d jsonb, k bigint)
ON CONFLICT (tenant_id, metric, bin_start, dimensions) DO UPDATE SET n = b.n + EXCLUDED.n, updated_at = now()
"""

_INSERT_LATE = """
INSERT INTO realtime.late_changes
    (identity, tenant_id, source_table, op, committed_at, watermark, increments, stream, shard_id, sequence_number)
SELECT i, t, st, o, ts, %s, inc::jsonb, %s, %s, sq
FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::numeric[])
    AS u(i, t, st, o, ts, inc, sq)
ON CONFLICT (identity) DO NOTHING
RETURNING identity
"""

_SAVE_CHECKPOINT = """
UPDATE realtime.shard_checkpoints
SET last_sequence = greatest(last_sequence, %s::numeric), watermark = greatest(watermark, %s), updated_at = now()
WHERE stream = %s AND shard_id = %s
"""

# Identities committed before the slowest live shard's watermark less the lateness and margin: no live shard can
# take such a change on time any more. A shard is live when it committed a batch within that span (processing time);
# one that stopped (closed by a reshard, or failing that long) no longer holds the table's growth back.
_PRUNE_SEEN = """
DELETE FROM realtime.seen_changes WHERE committed_at < (
    SELECT min(watermark) FROM realtime.shard_checkpoints
    WHERE stream = %(stream)s AND watermark IS NOT NULL AND updated_at > now() - %(keep)s
) - %(keep)s
"""

# Failures worth retrying: the server is unreachable, went away, or chose this transaction as a victim.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.errors.TransactionRollback)


@dataclass(slots=True)
class PendingChange:
    """A deduplicated change ready to be written: identity, time, increments (metric, dims JSON, bin epoch s)."""

    identity: str  # 32 hex digits
    committed_at: datetime
    tenant_id: str
    source_table: str
    op: str
    sequence: int
    increments: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch's write did."""

    counted: int
    increments: int
    duplicates: int
    late_recorded: int
    bins_touched: int


class ShardBatch:
    """One shard's batch inside its transaction, with the checkpoint row locked."""

    def __init__(
        self,
        cur: psycopg.Cursor[tuple[Any, ...]],
        stream: str,
        shard_id: str,
        last_sequence: int | None,
        watermark: datetime | None,
    ) -> None:
        self._cur = cur
        self.stream = stream
        self.shard_id = shard_id
        self.last_sequence = last_sequence
        self.watermark = watermark

    def apply(
        self,
        *,
        on_time: Sequence[PendingChange],
        late: Sequence[PendingChange],
        checkpoint: int | None,
        watermark: datetime | None,
        keep_seen: timedelta | None,
    ) -> ApplyResult:
        """Write a batch: count changes not seen before into bins, record late ones, advance the checkpoint."""
        cur = self._cur
        counted = increments = 0
        bins: Counter[tuple[str, str, int, str]] = Counter()
        if on_time:
            cur.execute(
                _INSERT_SEEN,
                (",".join(c.identity for c in on_time), ",".join(repr(c.committed_at.timestamp()) for c in on_time)),
            )
            new = {row[0] for row in cur.fetchall()}
            for change in on_time:
                if change.identity in new:
                    counted += 1
                    increments += len(change.increments)
                    for metric, dims, bin_start in change.increments:
                        bins[(change.tenant_id, metric, bin_start, dims)] += 1
        if bins:
            # sorted: concurrent shards touching the same bins take row locks in one order (no deadlock)
            # tenant ids and metric names are validated identifiers, dims canonical JSON already: no re-encoding
            rows = ",".join(
                f'{{"t":"{t}","m":"{m}","s":{b},"d":{d},"k":{bins[(t, m, b, d)]}}}' for t, m, b, d in sorted(bins)
            )
            cur.execute(_UPSERT_BINS, (f"[{rows}]",))
        late_recorded = 0
        if late and watermark is not None:
            cur.execute(
                _INSERT_LATE,
                (
                    watermark,
                    self.stream,
                    self.shard_id,
                    [c.identity for c in late],
                    [c.tenant_id for c in late],
                    [c.source_table for c in late],
                    [str(c.op) for c in late],
                    [c.committed_at for c in late],
                    [json.dumps([[m, json.loads(d), _iso(b)] for m, d, b in c.increments]) for c in late],
                    [str(c.sequence) for c in late],
                ),
            )
            late_recorded = len(cur.fetchall())
        if checkpoint is not None:
            cur.execute(_SAVE_CHECKPOINT, (str(checkpoint), watermark, self.stream, self.shard_id))
        if keep_seen is not None:
            cur.execute(_PRUNE_SEEN, {"stream": self.stream, "keep": keep_seen})
        return ApplyResult(
            counted=counted,
            increments=increments,
            duplicates=len(on_time) - counted,
            late_recorded=late_recorded,
            bins_touched=len(bins),
        )


class RealtimeStore:
    """The realtime tables in one PostgreSQL database; keeps one connection, reconnecting after a failure."""

    def __init__(self, conninfo: Conninfo, *, store_id: str = "realtime", connect_timeout: int = 10) -> None:
        self.store_id = store_id
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None

    def connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """Return the open connection (autocommit; work happens in explicit transactions), connecting if needed."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(
                    conninfo_now(self._conninfo), autocommit=True, connect_timeout=self._connect_timeout
                )
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"store '{self.store_id}' is unreachable: {str(exc).strip()}") from exc
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def ensure_schema(self, *, if_missing: bool = False) -> None:
        """Create roles, schema, tables and policies (idempotent, safe to run concurrently).

        With ``if_missing`` nothing is done when the tables exist (cold starts do not take DDL locks).
        """
        with self._guard():
            conn = self.connection()
            if if_missing:
                row = conn.execute("SELECT to_regclass('realtime.late_changes') IS NOT NULL").fetchone()
                if row is not None and row[0]:
                    return
            with conn.transaction():
                conn.execute(ROLES_SQL)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('tenant_analytics.schema'))")
                conn.execute(_SCHEMA.encode())

    @contextmanager
    def batch(self, stream: str, shard_id: str) -> Iterator[ShardBatch]:
        """Open one batch's transaction with the shard's checkpoint locked; commit when the block ends.

        Raises StoreUnavailable (nothing committed) when the database cannot be reached or the transaction is
        rolled back by the server.
        """
        with self._guard():
            conn = self.connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(ETL_ROLE)))
                cur.execute("SELECT set_config('app.cdc_writer', 'on', true)")
                cur.execute(_LOCK_CHECKPOINT, (stream, shard_id))
                row = cur.fetchone()
                last = int(row[0]) if row is not None and row[0] is not None else None
                watermark = row[1] if row is not None else None
                yield ShardBatch(cur, stream, shard_id, last, watermark)

    def read_bins(
        self,
        tenant_id: str,
        metric: str,
        since: datetime,
        dimension: str | None = None,
        *,
        until: datetime | None = None,
        config: CdcConfig | None = None,
    ) -> list[BinRow]:
        """See :func:`read_bins`."""
        cfg = config or load_config()
        dims = cfg.metric_dimensions()
        if metric not in dims:
            raise InvalidInput(f"unknown realtime metric '{metric}' (known: {sorted(dims)})", field="metric")
        if dimension is not None and dimension not in dims[metric]:
            raise InvalidInput(
                f"metric '{metric}' cannot be split by '{dimension}' (dimensions: {list(dims[metric])})",
                field="dimension",
            )
        if not is_tenant_id(tenant_id):
            raise InvalidInput(f"tenant id '{tenant_id[:80]}' is not valid", field="tenant_id")
        split = sql.SQL("dimensions ->> %(dimension)s") if dimension is not None else sql.SQL("NULL::text")
        query = sql.SQL(
            "SELECT bin_start, {split} AS value, sum(n)::bigint FROM realtime.bins "
            "WHERE tenant_id = %(tenant)s AND metric = %(metric)s AND bin_start >= %(since)s "
            "AND (%(until)s::timestamptz IS NULL OR bin_start < %(until)s) "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).format(split=split)
        params = {"tenant": tenant_id, "metric": metric, "since": since, "until": until, "dimension": dimension}
        with self._guard():
            conn = self.connection()
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(QUERY_ROLE)))
                cur.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
                cur.execute("SET LOCAL transaction_read_only = on")
                try:
                    cur.execute(query, params)
                except psycopg.errors.UndefinedTable as exc:
                    raise StoreNotReady(
                        f"store '{self.store_id}' has no realtime bins yet: they are created by the deployment's "
                        "setup or the aggregator's first batch"
                    ) from exc
                rows = cur.fetchall()
        return [BinRow(bin_start=r[0], n=int(r[2]), dimension_value=r[1]) for r in rows]

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except TRANSIENT_ERRORS as exc:
            # a dead connection is replaced on next use; a rolled-back one is still usable but reset anyway
            self.close()
            raise StoreUnavailable(f"store '{self.store_id}' failed: {str(exc).strip()}") from exc


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def read_bins(
    store: RealtimeStore | str,
    tenant_id: str,
    metric: str,
    since: datetime,
    dimension: str | None = None,
    *,
    until: datetime | None = None,
    config: CdcConfig | None = None,
) -> list[BinRow]:
    """Return the tenant's bins of ``metric`` from ``since`` (and before ``until``), summed per bin start.

    Reads as the query role with the tenant set (RLS applies). With ``dimension``, one row per bin and value of
    that dimension; without, one row per bin over all dimension values. ``store`` is a RealtimeStore or a
    PostgreSQL URL. Raises InvalidInput for an unknown metric or dimension, StoreUnavailable when unreachable.
    """
    if isinstance(store, str):
        owned = RealtimeStore(store)
        try:
            return owned.read_bins(tenant_id, metric, since, dimension, until=until, config=config)
        finally:
            owned.close()
    return store.read_bins(tenant_id, metric, since, dimension, until=until, config=config)
