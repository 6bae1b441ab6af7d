"""Exactly-once bins under at-least-once delivery, checked against an independent count (Hypothesis, real PostgreSQL).

The machine publishes changes (Maxwell and Debezium, some KPL-aggregated, some republished, some malformed) to two
shards, and plays Lambda: batches of any size, redelivery from the lowest failed sequence number, rewinds, a
database that fails before commit, a crash after commit (the batch is redelivered), a failure queue that fails
part-way and bisected batches. After every step the bins equal the count of distinct changes in what has been
committed, computed by the test from the changes it generated (not from the aggregator's parsing or mapping).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.aggregator import aggregate_batch
from tenant_analytics.cdc.config import load_config
from tenant_analytics.cdc.model import Rejection, StreamRecord
from tenant_analytics.cdc.sink import MemoryFailureSink
from tenant_analytics.cdc.store import RealtimeStore, ShardBatch

pytestmark = pytest.mark.xdist_group("cdc")

CONFIG = load_config()
START = datetime(2026, 1, 5, 12, tzinfo=UTC)
NOW = START + timedelta(hours=1)
TENANTS = ("acme", "globex", "initech")
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
# Shard 0 crosses from 2 to 3 digits (text order would break); shard 1 uses real 56-digit sequence numbers.
SHARDS = {
    "shardId-000000000000": (95, 1),
    "shardId-000000000001": (49590338271490256608559692538361571095921575989136588898, 10**20),
}
BinKey = tuple[str, str, tuple[tuple[str, Any], ...], int]


class Crash(Exception):
    """The function died (timeout, out of memory) at a chosen point."""


class FaultyStore(RealtimeStore):
    """A store whose next batch fails before its commit or after it, once."""

    fault: str | None = None

    @contextmanager
    def batch(self, stream: str, shard_id: str) -> Iterator[ShardBatch]:
        fault, self.fault = self.fault, None
        with super().batch(stream, shard_id) as tx:
            yield tx
            if fault == "db_lost_before_commit":
                raise psycopg.OperationalError("server closed the connection unexpectedly")
            if fault == "crash_before_commit":
                raise Crash("died before commit")
        if fault == "crash_after_commit":
            raise Crash("died after commit, before returning")


class FlakySink(MemoryFailureSink):
    """A failure queue that, when told to, accepts only the first ``limit`` messages of the next send."""

    limit: int | None = None

    def send(self, rejections: Sequence[Rejection], *, stream: str, shard_id: str) -> int:
        limit, self.limit = self.limit, None
        accepted = rejections if limit is None else rejections[:limit]
        return super().send(accepted, stream=stream, shard_id=shard_id)


@dataclass
class Logical:
    """One change as the test knows it: its expected increments, computed here."""

    expected: list[BinKey]


@dataclass
class Entry:
    """One record on a shard: its data, and which logical changes or malformed payloads it carries."""

    sequence: int
    data: str
    changes: list[int] = field(default_factory=list)
    malformed: int = 0


def _bin(ts: float) -> int:
    return int(ts) - int(ts) % 10


class ExactlyOnce(RuleBasedStateMachine):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.store = FaultyStore(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE realtime.bins, realtime.seen_changes, realtime.shard_checkpoints")
        self.sink = FlakySink()
        self.logical: list[Logical] = []
        self.tickets: dict[int, dict[str, Any]] = {}
        self.logs: dict[str, list[Entry]] = {s: [] for s in SHARDS}
        self.pos = dict.fromkeys(SHARDS, 0)
        self.durable = dict.fromkeys(SHARDS, 0)
        self.counter = 0

    def teardown(self) -> None:
        self.store.close()

    # --- publishing -------------------------------------------------------------------------------------------

    def _append(self, shard: str, data: str, changes: list[int], malformed: int = 0) -> None:
        first, step = SHARDS[shard]
        log = self.logs[shard]
        log.append(Entry(first + step * len(log), data, changes, malformed))

    def _new_change(self, tenant: str, ts_offset: int, status: str, fmt: str, wrapped: bool) -> tuple[int, bytes]:
        self.counter += 1
        n = self.counter
        ts = START.timestamp() + ts_offset
        if self.tickets and n % 2 == 0:
            ticket_id = sorted(self.tickets)[n % len(self.tickets)]
            before = self.tickets[ticket_id]
            after = {**before, "status": status}
            old = before["status"]
            expected: list[BinKey] = []
            dims = (("channel", before["channel"]), ("priority", before["priority"]))
            if status != old and status == "solved":
                expected.append((before["account_id"], "tickets_solved", dims, _bin(ts)))
            if status != old and old in ("solved", "closed") and status in ("new", "open", "pending", "hold"):
                expected.append((before["account_id"], "tickets_reopened", dims, _bin(ts)))
            kind = "update"
            self.tickets[ticket_id] = after
        else:
            ticket_id = n
            before = None
            after = {"id": n, "account_id": tenant, "status": "new", "channel": ("web", "email")[n % 2]}
            after["priority"] = ("low", "high", "urgent")[n % 3]
            dims = (("channel", after["channel"]), ("priority", after["priority"]))
            expected = [(tenant, "tickets_created", dims, _bin(ts))]
            kind = "insert"
            self.tickets[ticket_id] = after
        if fmt == "maxwell":
            old_cols = {"status": before["status"]} if before is not None and status != before["status"] else {}
            doc = syn.maxwell_change(
                "tickets", kind, after, ts=ts, position=f"mysql-bin.000001:{n * 100}", xid=n, old=old_cols
            )
        else:
            op = "c" if kind == "insert" else "u"
            doc = syn.debezium_change(
                "tickets", op, before=before, after=after, ts_ms=int(ts * 1000), lsn=n * 64, wrapped=wrapped
            )
        self.logical.append(Logical(expected))
        return len(self.logical) - 1, json.dumps(doc).encode()

    @rule(
        shard=st.sampled_from(sorted(SHARDS)),
        tenant=st.sampled_from(TENANTS),
        ts_offset=st.integers(0, 1800),
        status=st.sampled_from(STATUSES),
        fmt=st.sampled_from(["maxwell", "debezium"]),
        wrapped=st.booleans(),
        copies=st.integers(1, 3),
    )
    def publish(
        self, shard: str, tenant: str, ts_offset: int, status: str, fmt: str, wrapped: bool, copies: int
    ) -> None:
        index, payload = self._new_change(tenant, ts_offset, status, fmt, wrapped)
        for _ in range(copies):  # the producer may publish the same change more than once
            self._append(shard, base64.b64encode(payload).decode(), [index])

    @rule(shard=st.sampled_from(sorted(SHARDS)), size=st.integers(2, 4), ts_offset=st.integers(0, 1800))
    def publish_kpl(self, shard: str, size: int, ts_offset: int) -> None:
        aggregator = RecordAggregator()
        indexes = []
        for i in range(size):
            index, payload = self._new_change(TENANTS[i % 3], ts_offset + i, STATUSES[i % 6], "maxwell", False)
            aggregator.add_user_record(f"pk-{index}", payload)
            indexes.append(index)
        _, _, data = aggregator.clear_and_get().get_contents()
        self._append(shard, base64.b64encode(data).decode(), indexes)

    @rule(data=st.data())
    @precondition(lambda self: any(self.logs.values()))
    def republish(self, data: st.DataObject) -> None:
        entries = [e for log in self.logs.values() for e in log if e.changes and not e.malformed]
        if not entries:
            return
        entry = data.draw(st.sampled_from(entries))
        shard = data.draw(st.sampled_from(sorted(SHARDS)))
        self._append(shard, entry.data, entry.changes)

    @rule(
        shard=st.sampled_from(sorted(SHARDS)),
        kind=st.sampled_from(["bad_base64", "bad_json", "injection", "no_tenant", "future", "unknown_table"]),
    )
    def publish_bad(self, shard: str, kind: str) -> None:
        self.counter += 1
        row = {"id": 10_000 + self.counter, "account_id": "acme", "status": "new", "channel": "web", "priority": "low"}
        ts = START.timestamp() + 60
        if kind == "bad_base64":
            self._append(shard, "%%not-base64%%", [], malformed=1)
            return
        if kind == "bad_json":
            self._append(shard, base64.b64encode(b'{"type": "insert", ').decode(), [], malformed=1)
            return
        if kind == "injection":
            row["account_id"] = "x'; DROP TABLE realtime.bins; --"
        elif kind == "no_tenant":
            del row["account_id"]
        elif kind == "future":
            ts = NOW.timestamp() + 3600
        table = "audit_log" if kind == "unknown_table" else "tickets"
        doc = syn.maxwell_change(table, "insert", row, ts=ts, position=f"mysql-bin.000009:{self.counter}")
        self._append(shard, syn.encode(doc), [], malformed=0 if kind == "unknown_table" else 1)

    # --- delivery (playing Lambda) --------------------------------------------------------------------------

    def _run(self, shard: str, batch: list[Entry]) -> Any:
        records = [StreamRecord(sequence_number=str(e.sequence), data=e.data) for e in batch]
        return aggregate_batch(records, self.store, CONFIG, shard, sink=self.sink, stream="changes", now=NOW)

    def _checkpointed_upto(self, shard: str, sequence: int) -> None:
        log = self.logs[shard]
        done = sum(1 for e in log if e.sequence <= sequence)
        self.durable[shard] = max(self.durable[shard], done)

    @rule(
        shard=st.sampled_from(sorted(SHARDS)),
        size=st.integers(1, 12),
        fault=st.sampled_from([None, None, "db_lost_before_commit", "crash_after_commit", "sink_partial"]),
        sink_limit=st.integers(0, 2),
    )
    def deliver(self, shard: str, size: int, fault: str | None, sink_limit: int) -> None:
        log, pos = self.logs[shard], self.pos[shard]
        batch = log[pos : pos + size]
        if not batch:
            return
        if fault == "sink_partial":
            self.sink.limit = sink_limit
        elif fault is not None:
            self.store.fault = fault
        already_done = sum(1 for i in range(pos, pos + len(batch)) if i < self.durable[shard])
        try:
            outcome = self._run(shard, batch)
        except Crash:
            # committed, then died: Lambda redelivers the same batch
            self._checkpointed_upto(shard, batch[-1].sequence)
            return
        finally:
            # a fault belongs to this delivery: a failure queue told to fail a batch without rejections does not
            # fail a later one (where a crash after commit would then have committed less than the whole batch)
            self.sink.limit = None
        if fault in (None, "sink_partial"):
            # records at or below the shard's checkpoint are skipped, not re-processed
            assert outcome.skipped_at_checkpoint == already_done
        failed = sorted(int(s) for s in outcome.failed_sequence_numbers)
        if failed:
            # everything from the lowest failed record on is reported, nothing below it
            assert [e.sequence for e in batch if e.sequence >= failed[0]] == failed
            self.pos[shard] = next(i for i, e in enumerate(log) if e.sequence == failed[0])
        else:
            self.pos[shard] = pos + len(batch)
        if outcome.checkpoint is not None:
            self._checkpointed_upto(shard, int(outcome.checkpoint))

    @rule(shard=st.sampled_from(sorted(SHARDS)), size=st.integers(2, 12))
    def deliver_bisected(self, shard: str, size: int) -> None:
        log, pos = self.logs[shard], self.pos[shard]
        batch = log[pos : pos + size]
        if len(batch) < 2:
            return
        # the function errors on the whole batch (rolled back), then Lambda retries each half
        self.store.fault = "crash_before_commit"
        with pytest.raises(Crash):
            self._run(shard, batch)
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            outcome = self._run(shard, half)
            assert not outcome.failed_sequence_numbers
            if outcome.checkpoint is not None:
                self._checkpointed_upto(shard, int(outcome.checkpoint))
        self.pos[shard] = pos + len(batch)

    @rule(shard=st.sampled_from(sorted(SHARDS)), back=st.integers(1, 20))
    def rewind(self, shard: str, back: int) -> None:
        # Lambda may hand out records it delivered before (e.g. after a timeout it never heard of)
        self.pos[shard] = max(0, self.pos[shard] - back)

    # --- checks -----------------------------------------------------------------------------------------------

    def _expected_bins(self) -> Counter[BinKey]:
        done = {i for shard, log in self.logs.items() for e in log[: self.durable[shard]] for i in e.changes}
        expected: Counter[BinKey] = Counter()
        for index in done:
            expected.update(self.logical[index].expected)
        return expected

    def _actual_bins(self) -> Counter[BinKey]:
        with psycopg.connect(self.store._conninfo, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tenant_id, metric, dimensions::text, extract(epoch FROM bin_start)::bigint, n"
                " FROM realtime.bins"
            ).fetchall()
        return Counter({(t, m, tuple(sorted(json.loads(d).items())), int(b)): int(n) for t, m, d, b, n in rows})

    @invariant()
    def bins_equal_the_deduplicated_count_of_committed_changes(self) -> None:
        assert self._actual_bins() == self._expected_bins()

    def drain_and_check_everything(self) -> None:
        for shard in SHARDS:
            self.pos[shard] = min(self.pos[shard], self.durable[shard])
            while self.pos[shard] < len(self.logs[shard]):
                self.deliver(shard, 50, None, 0)
        assert self.durable == {s: len(log) for s, log in self.logs.items()}
        self.bins_equal_the_deduplicated_count_of_committed_changes()
        everything: Counter[BinKey] = Counter()
        for logical in self.logical:
            everything.update(logical.expected)
        assert self._actual_bins() == everything
        reached = {(m["shard_id"], int(m["sequence_number"])) for m in self.sink.messages}
        malformed = {(s, e.sequence) for s, log in self.logs.items() for e in log if e.malformed}
        assert reached == malformed
        assert all(m["reason"] and m["code"] for m in self.sink.messages)


def test_bins_are_exactly_once_under_redelivery_crashes_duplicates_and_bisection(realtime_url: str) -> None:
    RealtimeStore(realtime_url).ensure_schema()

    class Machine(ExactlyOnce):
        def __init__(self) -> None:
            super().__init__(realtime_url)

        def teardown(self) -> None:
            try:
                self.drain_and_check_everything()
            finally:
                super().teardown()

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
