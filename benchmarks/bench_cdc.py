"""Change-stream aggregation rate: 10,000-record Kinesis batches into PostgreSQL bins on one core.

Each batch is fresh (new changes, new sequence numbers) Maxwell JSON for three tenants, ~60% inserts and ~40%
status updates of earlier rows, so every batch parses, deduplicates against the seen-changes table, upserts
bins and advances the shard checkpoint in one transaction, as the Lambda does. Uses $DATABASE_URL when set,
else an embedded PostgreSQL under .local/bench.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tenant_analytics.cdc import MemoryFailureSink, RealtimeStore, aggregate_batch, load_config
from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.model import StreamRecord
from tenant_analytics.local.postgres import admin_url, drop_database, ensure_database
from tenant_analytics.settings import database_url

BATCH = 10_000
WARMUP_BATCHES = 2
MEASURED_BATCHES = 12


def _batches(start: datetime) -> list[list[StreamRecord]]:
    total = BATCH * (WARMUP_BATCHES + MEASURED_BATCHES)
    docs = syn.ticket_changes(total, start=start, seconds=1800.0, tenants=tuple(f"tenant-{i:03d}" for i in range(50)))
    records = syn.stream_records([syn.encode(d) for d in docs], first_sequence=49_590_338_271_490_256_608_559_692_538)
    return [records[i : i + BATCH] for i in range(0, total, BATCH)]


def main() -> None:
    """Run the benchmark and print its figures."""
    with contextlib.suppress(AttributeError, OSError):  # one core for the client (not on every platform)
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    admin = admin_url(Path(".local/bench"), database_url())
    name = f"bench_cdc_{uuid.uuid4().hex[:8]}"
    store = RealtimeStore(ensure_database(admin, name), store_id="bench")
    try:
        store.ensure_schema()
        config = load_config()
        start = datetime(2026, 1, 5, 12, tzinfo=UTC)
        batches = _batches(start)
        sink = MemoryFailureSink()
        now = start + timedelta(hours=1)
        durations: list[float] = []
        cpu: list[float] = []
        counted = 0
        for i, batch in enumerate(batches):
            began, began_cpu = time.perf_counter(), time.process_time()
            outcome = aggregate_batch(batch, store, config, "shardId-000000000000", sink=sink, stream="bench", now=now)
            elapsed, elapsed_cpu = time.perf_counter() - began, time.process_time() - began_cpu
            if outcome.failed_sequence_numbers or outcome.rejected:
                sys.exit(f"batch {i} failed: {outcome.failure_reason}")
            if i >= WARMUP_BATCHES:
                durations.append(elapsed)
                cpu.append(elapsed_cpu)
                counted += outcome.counted
        records = BATCH * len(durations)
        rate = records / sum(durations)
        p99 = statistics.quantiles(durations, n=100, method="inclusive")[98] * 1000
        print(f"data: {len(durations)} batches x {BATCH} Maxwell records ({counted} counted changes), 50 tenants")
        print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, cpus={os.cpu_count()}")
        print(f"python {platform.python_version()}, client pinned to one core; server: {database_url() or 'embedded'}")
        print(f"batch ms: median {statistics.median(durations) * 1000:.1f}, max {max(durations) * 1000:.1f}")
        print(f"client CPU per batch ms: median {statistics.median(cpu) * 1000:.1f} (the rest is the database)")
        print(f"load average at end: {os.getloadavg()[0]:.2f}")
        print(f"BENCH cdc_records_per_s {rate:.0f} rec/s")
        print(f"BENCH cdc_batch_p99_ms {p99:.1f} ms")
    finally:
        store.close()
        drop_database(admin, name)


if __name__ == "__main__":
    main()
