"""Aggregate one shard's batch of change records into 10-second bins, exactly once.

Used by the aggregator Lambda and by local replay. For one batch:

1. every record is decoded (base64, KPL) and parsed (pure CPU, before touching the database);
2. in ONE transaction: the shard's checkpoint is locked; records at or below it are skipped (redelivery);
   rejected records above it are sent to the failure sink (if the sink fails part-way, records from the first
   undelivered one on are left for redelivery); changes are deduplicated by source identity against the
   seen-changes table; on-time increments are summed per bin and upserted in one statement; late changes go
   to the late-changes table; the checkpoint and the stream watermark advance; old identities are pruned;
3. the transaction commits. If the database is unreachable, nothing is committed and every record from the
   lowest unprocessed sequence number on is reported for redelivery.

Lateness is measured in event time, per shard: the watermark is the newest commit time seen on the shard
including this batch (a shard's records arrive in order, so a shard that fell behind, after an outage, catches up on
time instead of setting its changes aside), and replaying a captured stream behaves like the live stream did. A
change committed before ``watermark - allowed_lateness`` is late. Processing time is used only to refuse changes
committed more than ``max_future`` ahead of the clock (they would drag the watermark forward and make every real
change late), and to tell live shards from stopped ones. Seen identities are kept for ``allowed_lateness +
dedupe_margin`` behind the slowest live shard's watermark; a republished change older than that on its shard is late
anyway, so it can never reach a bin twice (a shard that committed nothing for that span, in processing time, no
longer holds identities back: a change republished to it while it catches up may count twice).
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenant_analytics.cdc.config import CdcConfig
from tenant_analytics.cdc.mapping import increment_keys
from tenant_analytics.cdc.model import (
    BIN_SECONDS,
    BatchOutcome,
    Change,
    Ignored,
    RejectCode,
    Rejection,
    SourceFormat,
    StreamRecord,
)
from tenant_analytics.cdc.records import Parsed, parse_record
from tenant_analytics.cdc.sink import FailureSink
from tenant_analytics.cdc.store import PendingChange, RealtimeStore
from tenant_analytics.errors import StoreUnavailable

DEFAULT_ALLOWED_LATENESS = timedelta(hours=1)
DEFAULT_MAX_FUTURE = timedelta(minutes=5)
DEFAULT_DEDUPE_MARGIN = timedelta(minutes=10)
# A bin's dimension values (canonical JSON) are part of its primary key, whose index entries hold ~2.7 kB at most.
MAX_DIMENSIONS_CHARS = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AggregatorOptions:
    """Tunables of the aggregation (defaults as documented in the module docstring)."""

    source_format: SourceFormat = SourceFormat.AUTO
    allowed_lateness: timedelta = DEFAULT_ALLOWED_LATENESS
    max_future: timedelta = DEFAULT_MAX_FUTURE
    dedupe_margin: timedelta = DEFAULT_DEDUPE_MARGIN
    # Whether a tenant id is registered; None accepts every well-formed id (tests of the binning alone).
    known_tenant: Callable[[str], bool] | None = None


def bin_start(at: datetime) -> datetime:
    """Return the start of the 10-second bin holding ``at`` (UTC)."""
    seconds = int((at - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=seconds - seconds % BIN_SECONDS)


def identity_key(source_identity: str) -> str:
    """Return the key stored for a source identity: a 128-bit BLAKE2b digest in hex (stored as a uuid)."""
    return hashlib.blake2b(source_identity.encode(), digest_size=16).hexdigest()


def aggregate_batch(
    records: Sequence[StreamRecord],
    store: RealtimeStore,
    config: CdcConfig,
    shard_id: str,
    *,
    sink: FailureSink,
    stream: str = "default",
    options: AggregatorOptions | None = None,
    now: datetime | None = None,
) -> BatchOutcome:
    """Aggregate one shard's batch into bins; return what happened and which records to redeliver.

    ``records`` are one shard's records (any order; they are processed by sequence number). ``now`` is the
    processing time (default: the clock), used only for the future-change check. Raises nothing for bad data
    or an unreachable database; other exceptions (bugs) propagate and the whole batch is redelivered.
    """
    with _gc_paused():
        return _aggregate(records, store, config, shard_id, sink, stream, options or AggregatorOptions(), now)


@contextmanager
def _gc_paused() -> Iterator[None]:
    # A batch allocates ~10^5 short-lived, acyclic objects (decoded JSON): reference counting frees them, and the
    # cyclic collector's passes over the heap they trigger would cost about a third of the batch's CPU time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _aggregate(
    records: Sequence[StreamRecord],
    store: RealtimeStore,
    config: CdcConfig,
    shard_id: str,
    sink: FailureSink,
    stream: str,
    opts: AggregatorOptions,
    now: datetime | None,
) -> BatchOutcome:
    clock = now or datetime.now(UTC)
    ordered = _by_sequence(records)
    not_after = clock + opts.max_future
    parsed = {seq: parse_record(r, seq, config, opts.source_format, not_after=not_after) for seq, r in ordered}
    keys: dict[int, tuple[tuple[str, str, int], ...]] = {}  # id(change) -> its increment keys, computed once
    parsed = {seq: [_storable(p, config, keys) for p in items] for seq, items in parsed.items()}
    if opts.known_tenant is not None:
        parsed = {seq: [_registered(p, opts.known_tenant) for p in items] for seq, items in parsed.items()}
    outcome = _Tally(stream=stream, shard_id=shard_id, records=len(ordered))
    last_seen: int | None = None
    try:
        with store.batch(stream, shard_id) as tx:
            last_seen = tx.last_sequence
            todo = [(s, r) for s, r in ordered if last_seen is None or s > last_seen]
            outcome.skipped_at_checkpoint = len(ordered) - len(todo)
            items = [p for s, _ in todo for p in parsed[s]]
            rejections = [p.result for p in items if isinstance(p.result, Rejection)]
            delivered = sink.send(rejections, stream=stream, shard_id=shard_id) if rejections else 0
            cut: int | None = None
            if delivered < len(rejections):
                cut = int(rejections[delivered].sequence_number)
                outcome.failure_reason = "failure queue unavailable"
                outcome.failed = [r.sequence_number for s, r in todo if s >= cut]
                todo = [(s, r) for s, r in todo if s < cut]
                items = [p for p in items if p.sequence < cut]
            outcome.rejected = tuple(rejections[:delivered])
            on_time, late, watermark = _plan(items, tx.watermark, opts, outcome, keys)
            checkpoint = todo[-1][0] if todo else None
            if checkpoint is not None:
                result = tx.apply(
                    on_time=on_time,
                    late=late,
                    checkpoint=checkpoint,
                    watermark=watermark,
                    keep_seen=opts.allowed_lateness + opts.dedupe_margin,
                )
                outcome.counted = result.counted
                outcome.increments = result.increments
                outcome.late = result.late_recorded
                outcome.duplicates += result.duplicates + len(late) - result.late_recorded
                outcome.checkpoint = str(checkpoint)
    except StoreUnavailable as exc:
        failed = [r for s, r in ordered if last_seen is None or s > last_seen]
        return outcome.failed_all(failed, exc.message)
    return outcome.freeze()


def _storable(parsed: Parsed, config: CdcConfig, keys: dict[int, tuple[tuple[str, str, int], ...]]) -> Parsed:
    """A change with a value PostgreSQL cannot store, or dimension values too long for the bins' key, is rejected
    alone here: written with the others it would fail the whole batch, on every delivery. ``keys`` gets each
    change's increment keys, for the plan."""
    change = parsed.result
    if not isinstance(change, Change):
        return parsed
    keys[id(change)] = increments = increment_keys(change, config)
    problem = _unstorable(change, increments)
    if problem is None:
        return parsed
    rejection = Rejection(
        sequence_number=parsed.sequence_number,
        sub_sequence_number=parsed.sub_sequence_number,
        code=RejectCode.UNSTORABLE_VALUE,
        reason=problem,
    )
    return Parsed(parsed.sequence, parsed.sequence_number, parsed.sub_sequence_number, rejection)


def _unstorable(change: Change, increments: tuple[tuple[str, str, int], ...]) -> str | None:
    """Why the change's identity or dimension values cannot be stored, or None (the common case, checked cheaply)."""
    try:
        if not change.source_identity.isascii():
            change.source_identity.encode("utf-8")  # hashed as UTF-8
        for metric, dimensions, _ in increments:
            if len(dimensions) > MAX_DIMENSIONS_CHARS:
                return (
                    f"metric '{metric}': dimension values of {len(dimensions)} characters as JSON, at most "
                    f"{MAX_DIMENSIONS_CHARS} fit a bin's key"
                )
            if "\\u" in dimensions:  # canonical JSON escapes every non-ASCII character: look at the values
                if "\\u0000" in dimensions:
                    return f"metric '{metric}': a dimension value holds NUL (U+0000), which PostgreSQL text cannot"
                for value in json.loads(dimensions).values():
                    if value is not None:
                        value.encode("utf-8")
    except UnicodeEncodeError:
        return "a value holds an unpaired UTF-16 surrogate, which is not UTF-8 text"
    return None


def _registered(parsed: Parsed, known_tenant: Callable[[str], bool]) -> Parsed:
    """A change of a tenant the registry does not know is rejected: it would feed bins nobody can read."""
    change = parsed.result
    if not isinstance(change, Change) or known_tenant(change.tenant_id):
        return parsed
    rejection = Rejection(
        sequence_number=parsed.sequence_number,
        sub_sequence_number=parsed.sub_sequence_number,
        code=RejectCode.UNKNOWN_TENANT,
        reason=f"tenant '{change.tenant_id}' is not registered",
    )
    return Parsed(parsed.sequence, parsed.sequence_number, parsed.sub_sequence_number, rejection)


@dataclass
class _Tally:
    stream: str
    shard_id: str
    records: int
    changes: int = 0
    skipped_at_checkpoint: int = 0
    counted: int = 0
    increments: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: tuple[Rejection, ...] = ()
    failed: list[str] | None = None
    failure_reason: str | None = None
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        self.ignored: Counter[str] = Counter()

    def freeze(self) -> BatchOutcome:
        return BatchOutcome(
            stream=self.stream,
            shard_id=self.shard_id,
            records=self.records,
            changes=self.changes,
            skipped_at_checkpoint=self.skipped_at_checkpoint,
            counted=self.counted,
            increments=self.increments,
            duplicates=self.duplicates,
            late=self.late,
            ignored=dict(self.ignored),
            rejected=self.rejected,
            failed_sequence_numbers=tuple(self.failed or ()),
            failure_reason=self.failure_reason,
            checkpoint=self.checkpoint,
        )

    def failed_all(self, records: Sequence[StreamRecord], reason: str) -> BatchOutcome:
        return BatchOutcome(
            stream=self.stream,
            shard_id=self.shard_id,
            records=self.records,
            failed_sequence_numbers=tuple(r.sequence_number for r in records),
            failure_reason=reason,
        )


def _by_sequence(records: Sequence[StreamRecord]) -> list[tuple[int, StreamRecord]]:
    unique: dict[int, StreamRecord] = {}
    for record in records:
        unique.setdefault(record.sequence, record)
    return [(s, unique[s]) for s in sorted(unique)]


def _plan(
    items: Sequence[Parsed],
    previous_watermark: datetime | None,
    opts: AggregatorOptions,
    tally: _Tally,
    keys: dict[int, tuple[tuple[str, str, int], ...]],
) -> tuple[list[PendingChange], list[PendingChange], datetime | None]:
    """Split the batch's changes into on-time and late pending writes, deduplicated within the batch."""
    changes: list[tuple[int, Change]] = []
    for item in items:
        result = item.result
        if isinstance(result, Change):
            changes.append((item.sequence, result))
        elif isinstance(result, Ignored):
            tally.ignored[result.reason] += 1
    tally.changes = len(changes)
    watermark = previous_watermark
    for _, change in changes:
        if watermark is None or change.committed_at > watermark:
            watermark = change.committed_at
    if watermark is None:
        return [], [], None
    late_before = watermark - opts.allowed_lateness
    on_time: list[PendingChange] = []
    late: list[PendingChange] = []
    seen: set[str] = set()
    for sequence, change in changes:
        increments = keys[id(change)]  # every change went through _storable
        if not increments:
            tally.ignored["snapshot" if change.snapshot else "no_metric"] += 1
            continue
        key = identity_key(change.source_identity)
        if key in seen:
            tally.duplicates += 1
            continue
        seen.add(key)
        pending = PendingChange(
            identity=key,
            committed_at=change.committed_at,
            tenant_id=change.tenant_id,
            source_table=change.source_table,
            op=change.op,
            sequence=sequence,
            increments=increments,
        )
        (late if change.committed_at < late_before else on_time).append(pending)
    return on_time, late, watermark
