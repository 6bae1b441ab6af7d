"""Replay a captured change stream (a file of JSON lines, or of base64 Kinesis record data) through the aggregator.

Line ``i`` (1-based) becomes the record with sequence number ``i`` of the shard ``replay:<file name>``, so replaying
the same file again is skipped by the shard checkpoint, and replaying it under another shard id is absorbed by
source-identity deduplication: either way the bins do not change.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tenant_analytics.cdc.aggregator import AggregatorOptions, aggregate_batch
from tenant_analytics.cdc.config import CdcConfig
from tenant_analytics.cdc.model import BatchOutcome, Rejection, SourceFormat, StreamRecord
from tenant_analytics.cdc.sink import FailureSink, MemoryFailureSink
from tenant_analytics.cdc.store import RealtimeStore

REPLAY_STREAM = "replay"


@dataclass
class ReplaySummary:
    """Totals of a replay, over all its batches."""

    records: int = 0
    changes: int = 0
    counted: int = 0
    increments: int = 0
    duplicates: int = 0
    late: int = 0
    skipped_at_checkpoint: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejection] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, outcome: BatchOutcome) -> None:
        self.records += outcome.records
        self.changes += outcome.changes
        self.counted += outcome.counted
        self.increments += outcome.increments
        self.duplicates += outcome.duplicates
        self.late += outcome.late
        self.skipped_at_checkpoint += outcome.skipped_at_checkpoint
        self.ignored.update(outcome.ignored)
        self.rejected.extend(outcome.rejected)
        self.failed.extend(outcome.failed_sequence_numbers)


def records_from_lines(lines: Iterable[str | bytes], *, kpl: bool = False) -> Iterator[StreamRecord]:
    """Turn captured lines into stream records: JSON lines are base64-encoded; with ``kpl`` each line already is
    the base64 data of one Kinesis record (possibly KPL-aggregated). Blank lines keep their sequence number."""
    for number, line in enumerate(lines, start=1):
        raw = line.encode() if isinstance(line, str) else line
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            continue
        data = raw.decode("ascii", errors="replace").strip() if kpl else base64.b64encode(raw).decode()
        yield StreamRecord(sequence_number=str(number), data=data, partition_key="replay")


def replay_file(
    path: Path,
    store: RealtimeStore,
    config: CdcConfig,
    *,
    source_format: SourceFormat = SourceFormat.AUTO,
    kpl: bool = False,
    sink: FailureSink | None = None,
    shard_id: str | None = None,
    batch_size: int = 1000,
    options: AggregatorOptions | None = None,
    now: datetime | None = None,
) -> ReplaySummary:
    """Replay ``path`` in batches of ``batch_size`` records; stops at the first batch with a transient failure.

    Rejected records go to ``sink`` (default: kept in memory and listed in the summary).
    """
    opts = options or AggregatorOptions()
    if source_format is not SourceFormat.AUTO:
        opts = AggregatorOptions(
            source_format=source_format,
            allowed_lateness=opts.allowed_lateness,
            max_future=opts.max_future,
            dedupe_margin=opts.dedupe_margin,
        )
    target = sink or MemoryFailureSink()
    shard = shard_id or f"replay:{path.name}"
    summary = ReplaySummary()
    batch: list[StreamRecord] = []
    with path.open("rb") as handle:
        for record in records_from_lines(handle, kpl=kpl):
            batch.append(record)
            if len(batch) >= batch_size:
                if not _run(batch, store, config, shard, target, opts, now, summary):
                    return summary
                batch = []
    if batch:
        _run(batch, store, config, shard, target, opts, now, summary)
    return summary


def _run(
    batch: list[StreamRecord],
    store: RealtimeStore,
    config: CdcConfig,
    shard: str,
    sink: FailureSink,
    opts: AggregatorOptions,
    now: datetime | None,
    summary: ReplaySummary,
) -> bool:
    outcome = aggregate_batch(batch, store, config, shard, sink=sink, stream=REPLAY_STREAM, options=opts, now=now)
    summary.add(outcome)
    return not outcome.failed_sequence_numbers
