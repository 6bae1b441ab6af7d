"""The aggregator on a real PostgreSQL: bins, checkpoints, dedupe, lateness, failures, the SQS failure path, RLS."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from tenant_analytics.aws import clients
from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.aggregator import AggregatorOptions, aggregate_batch
from tenant_analytics.cdc.config import load_config
from tenant_analytics.cdc.model import BatchOutcome, StreamRecord
from tenant_analytics.cdc.sink import MemoryFailureSink, SqsFailureSink
from tenant_analytics.cdc.store import RealtimeStore, read_bins
from tenant_analytics.errors import InvalidInput

pytestmark = pytest.mark.xdist_group("cdc")

CONFIG = load_config()
START = datetime(2026, 1, 5, 12, tzinfo=UTC)
NOW = START + timedelta(minutes=30)
SHARD = "shardId-000000000000"


def ticket(i: int, *, tenant: str = "acme", channel: str = "web", offset: float = 0.0) -> dict[str, Any]:
    row = {"id": i, "account_id": tenant, "status": "new", "channel": channel, "priority": "low"}
    return syn.maxwell_change("tickets", "insert", row, ts=START.timestamp() + offset, position=f"b.1:{i}")


def records(docs: list[Any], first: int = 1) -> list[StreamRecord]:
    return syn.stream_records([syn.encode(d) for d in docs], first_sequence=first)


def run(store: RealtimeStore, recs: list[StreamRecord], **kw: Any) -> BatchOutcome:
    sink = kw.pop("sink", None) or MemoryFailureSink()
    return aggregate_batch(recs, store, CONFIG, kw.pop("shard", SHARD), sink=sink, now=kw.pop("now", NOW), **kw)


def total(store: RealtimeStore, tenant: str = "acme", metric: str = "tickets_created") -> int:
    return sum(b.n for b in read_bins(store, tenant, metric, START - timedelta(days=1)))


def test_changes_become_ten_second_bins_read_back_per_dimension(realtime_store: RealtimeStore) -> None:
    # Given four ticket inserts: three in the first 10 s (two by web, one by email), one at 12 s
    docs = [ticket(1, offset=1), ticket(2, offset=9.9), ticket(3, channel="email", offset=5), ticket(4, offset=12)]

    # When one batch is aggregated
    outcome = run(realtime_store, records(docs))

    # Then the bins hold the counts per 10-second bin and channel, and the checkpoint is the last record
    assert outcome.counted == 4 and outcome.checkpoint == "4" and not outcome.failed_sequence_numbers
    by_channel = read_bins(realtime_store, "acme", "tickets_created", START, "channel")
    assert [(b.bin_start, b.dimension_value, b.n) for b in by_channel] == [
        (START, "email", 1),
        (START, "web", 2),
        (START + timedelta(seconds=10), "web", 1),
    ]
    overall = read_bins(realtime_store, "acme", "tickets_created", START)
    assert [(b.bin_start, b.n) for b in overall] == [(START, 3), (START + timedelta(seconds=10), 1)]


def test_redelivered_records_at_or_below_the_checkpoint_change_nothing(realtime_store: RealtimeStore) -> None:
    # Given a processed batch with sequence numbers 95..99
    first = records([ticket(i) for i in range(5)], first=95)
    run(realtime_store, first)

    # When the batch is redelivered together with new records 100..101 (text order would put them below 99)
    second = run(realtime_store, first + records([ticket(10), ticket(11)], first=100))

    # Then only the new records are processed and the checkpoint is numeric
    assert second.skipped_at_checkpoint == 5 and second.counted == 2 and second.checkpoint == "101"
    assert total(realtime_store) == 7


def test_a_change_published_twice_counts_once_even_on_another_shard(realtime_store: RealtimeStore) -> None:
    # Given a change published twice in one batch, and again later on another shard
    doc = ticket(1)
    outcome = run(realtime_store, records([doc, dict(doc), ticket(2)]))

    # When the copy arrives on the other shard
    other = run(realtime_store, records([doc], first=7), shard="shardId-000000000001")

    # Then it was counted once
    assert outcome.counted == 2 and outcome.duplicates == 1
    assert other.counted == 0 and other.duplicates == 1
    assert total(realtime_store) == 2


def test_late_changes_within_the_allowed_lateness_update_their_bin_later_ones_are_set_aside(
    realtime_store: RealtimeStore,
) -> None:
    # Given the stream has seen a change at START + 2 h
    run(realtime_store, records([ticket(1, offset=7200)]), now=START + timedelta(hours=2))

    # When a change 50 minutes older and one 3 hours older arrive (allowed lateness: 1 hour)
    outcome = run(
        realtime_store,
        records([ticket(2, offset=7200 - 3000), ticket(3, offset=7200 - 10800)], first=2),
        now=START + timedelta(hours=2),
    )

    # Then the first updates its bin, the second goes to the late-changes table and is counted as late
    assert outcome.counted == 1 and outcome.late == 1
    bins = read_bins(realtime_store, "acme", "tickets_created", START - timedelta(hours=3))
    assert [(b.bin_start, b.n) for b in bins] == [
        (START + timedelta(seconds=4200), 1),
        (START + timedelta(seconds=7200), 1),
    ]
    with psycopg.connect(realtime_store._conninfo) as conn:
        late = conn.execute("SELECT tenant_id, source_table, op, increments FROM realtime.late_changes").fetchall()
    assert late == [
        (
            "acme",
            "tickets",
            "insert",
            [["tickets_created", {"channel": "web", "priority": "low"}, "2026-01-05T11:00:00+00:00"]],
        )
    ]

    # And a republished late change is not counted as late twice
    again = run(realtime_store, records([ticket(3, offset=7200 - 10800)], first=9), now=START + timedelta(hours=2))
    assert again.late == 0 and again.duplicates == 1


def test_future_changes_and_malformed_records_go_to_the_failure_queue_not_to_retries(
    realtime_store: RealtimeStore,
) -> None:
    # Given a batch mixing good changes, a far-future change, garbage, an injection-laden tenant and an unknown table
    hostile = ticket(3, tenant="x'; DROP TABLE realtime.bins; --")
    future = ticket(4, offset=(NOW - START).total_seconds() + 3600)
    unknown = syn.maxwell_change("audit_log", "insert", {"id": 1}, ts=START.timestamp(), position="b:9")
    recs = records([ticket(1), future, hostile, unknown, ticket(2)])
    recs.insert(2, StreamRecord(sequence_number="3", data="@@@"))
    recs = [StreamRecord(sequence_number=str(i + 1), data=r.data) for i, r in enumerate(recs)]
    sink = MemoryFailureSink()

    # When the batch is aggregated
    outcome = run(realtime_store, recs, sink=sink)

    # Then good changes count, bad ones reach the queue with reasons, the unknown table is only counted as ignored,
    # no record is reported for retry and the checkpoint passes them all
    assert outcome.counted == 2 and total(realtime_store) == 2
    assert [(m["sequence_number"], m["code"]) for m in sink.messages] == [
        ("2", "future_change"),
        ("3", "bad_base64"),
        ("4", "invalid_tenant"),
    ]
    assert all(m["reason"] and m["shard_id"] == SHARD for m in sink.messages)
    assert outcome.ignored == {"unknown_table": 1}
    assert not outcome.failed_sequence_numbers and outcome.checkpoint == "6"
    with psycopg.connect(realtime_store._conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM realtime.bins").fetchone() == (1,)


@pytest.mark.parametrize(
    ("channel", "reason"),
    [
        ("we\u0000b", "holds NUL (U+0000)"),
        ("\ud800x", "unpaired UTF-16 surrogate"),
        ("x" * 3000, "at most 1024 fit a bin's key"),
    ],
    ids=["nul", "lone-surrogate", "too-long"],
)
def test_a_value_postgresql_cannot_store_rejects_its_change_alone(
    realtime_store: RealtimeStore, channel: str, reason: str
) -> None:
    # Given a batch in which one change's dimension value cannot be stored in a bin's key
    sink = MemoryFailureSink()
    recs = records([ticket(1), ticket(2, channel=channel), ticket(3)])

    # When it is aggregated, and delivered again
    outcome = run(realtime_store, recs, sink=sink)
    again = run(realtime_store, recs, sink=MemoryFailureSink())

    # Then the others count, that one goes to the failure queue with the reason, and nothing is retried
    assert (outcome.counted, total(realtime_store)) == (2, 2)
    assert [(m["sequence_number"], m["code"]) for m in sink.messages] == [("2", "unstorable_value")]
    assert reason in sink.messages[0]["reason"]
    assert not outcome.failed_sequence_numbers and outcome.checkpoint == "3"
    assert again.counted == 0 and total(realtime_store) == 2


def test_rejected_records_reach_the_sqs_failure_queue(realtime_store: RealtimeStore) -> None:
    with mock_aws():
        clients.reset()
        # Given the on-failure queue
        url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="cdc-failures")["QueueUrl"]
        sink = SqsFailureSink(url)
        recs = records([ticket(1)] + [{"not": "a change"}] * 12)

        # When a batch with twelve bad records is aggregated
        outcome = run(realtime_store, recs, sink=sink)

        # Then all twelve are messages on the queue (two SendMessageBatch calls) with reason and position
        sqs = clients.client("sqs")
        bodies = []
        for _ in range(5):
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
        clients.reset()
    assert outcome.counted == 1 and len(outcome.rejected) == 12
    assert sorted(int(b["sequence_number"]) for b in bodies) == list(range(2, 14))
    assert {b["code"] for b in bodies} == {"unknown_format"}


def test_failure_queue_down_part_way_leaves_the_rest_for_redelivery(realtime_store: RealtimeStore) -> None:
    # Given a queue that takes one message, then fails
    class HalfSink(MemoryFailureSink):
        def send(self, rejections: Any, *, stream: str, shard_id: str) -> int:
            return super().send(rejections[:1], stream=stream, shard_id=shard_id)

    recs = records([ticket(1), {"bad": 1}, ticket(2), {"bad": 2}, ticket(3)])

    # When the batch is aggregated
    outcome = run(realtime_store, recs, sink=HalfSink())

    # Then records before the undelivered rejection are committed, the rest reported from it on
    assert outcome.failed_sequence_numbers == ("4", "5")
    assert outcome.checkpoint == "3" and total(realtime_store) == 2

    # And redelivery from the lowest failed record completes the batch exactly once
    sink = MemoryFailureSink()
    retry = run(realtime_store, recs[3:], sink=sink)
    assert not retry.failed_sequence_numbers and total(realtime_store) == 3
    assert [m["sequence_number"] for m in sink.messages] == ["4"]


def test_unreachable_database_reports_every_record_for_redelivery() -> None:
    # Given a store whose server does not answer
    store = RealtimeStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    recs = records([ticket(1), {"bad": 1}, ticket(2)], first=40)

    # When a batch is aggregated
    outcome = run(store, recs)

    # Then every record is a batch item failure, with the reason
    assert outcome.failed_sequence_numbers == ("40", "41", "42")
    assert outcome.failure_reason and "unreachable" in outcome.failure_reason


def test_database_lost_mid_batch_commits_nothing(realtime_store: RealtimeStore, realtime_url: str) -> None:
    # Given a processed batch, then the server kills the aggregator's session during the next one
    run(realtime_store, records([ticket(1)]))

    class Killer(MemoryFailureSink):
        def send(self, rejections: Any, *, stream: str, shard_id: str) -> int:
            with psycopg.connect(realtime_url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            return super().send(rejections, stream=stream, shard_id=shard_id)

    # When the batch runs
    outcome = run(realtime_store, records([ticket(2), {"bad": 1}, ticket(3)], first=2), sink=Killer())

    # Then everything above the checkpoint is reported and nothing was counted; the next attempt reconnects
    assert outcome.failed_sequence_numbers == ("2", "3", "4")
    assert total(realtime_store) == 1
    assert not run(realtime_store, records([ticket(2), {"bad": 1}, ticket(3)], first=2)).failed_sequence_numbers
    assert total(realtime_store) == 3


def test_a_shard_that_fell_behind_catches_up_on_time_and_still_deduplicates(realtime_store: RealtimeStore) -> None:
    # Given one shard at START + 3 h while another, after an outage, is still at START (its records arrive in order)
    other = "shardId-000000000001"
    run(realtime_store, records([ticket(1, offset=3 * 3600)]), now=NOW + timedelta(hours=3))
    run(realtime_store, records([ticket(2)], first=1), shard=other, now=NOW + timedelta(hours=3))

    # When the shard behind goes on with its next changes, ten minutes later in commit time
    caught_up = run(
        realtime_store, records([ticket(3, offset=600), ticket(4, offset=660)], first=2), shard=other, now=NOW
    )

    # Then they count in their bins, not set aside as late: lateness is measured against the shard's own progress
    assert caught_up.counted == 2 and caught_up.late == 0
    assert total(realtime_store) == 4
    # And the identities of the shard behind were kept while the other moved on: a republished change counts once
    again = run(realtime_store, records([ticket(2)], first=4), shard=other, now=NOW)
    assert again.counted == 0 and again.duplicates == 1 and total(realtime_store) == 4


def test_a_shard_that_stopped_does_not_hold_back_the_pruning_of_identities(realtime_store: RealtimeStore) -> None:
    # Given two shards at START, one of which then stops (closed by a reshard): no batch for two hours
    opts = AggregatorOptions(allowed_lateness=timedelta(hours=1), dedupe_margin=timedelta(minutes=10))
    closed = "shardId-000000000001"
    run(realtime_store, records([ticket(1)]), options=opts)
    run(realtime_store, records([ticket(2)], first=1), shard=closed, options=opts)
    with psycopg.connect(realtime_store._conninfo) as conn:
        conn.execute(
            "UPDATE realtime.shard_checkpoints SET updated_at = now() - interval '2 hours' WHERE shard_id = %s",
            (closed,),
        )

    # When the live shard moves three hours on
    run(realtime_store, records([ticket(3, offset=3 * 3600)], first=2), options=opts, now=NOW + timedelta(hours=3))

    # Then the identities older than the live shard needs are pruned: the table stays bounded
    with psycopg.connect(realtime_store._conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM realtime.seen_changes").fetchone() == (1,)


def test_seen_identities_are_pruned_past_the_lateness_and_margin(realtime_store: RealtimeStore) -> None:
    # Given changes at START and, later, a change three hours on
    opts = AggregatorOptions(allowed_lateness=timedelta(hours=1), dedupe_margin=timedelta(minutes=10))
    run(realtime_store, records([ticket(1), ticket(2)]), options=opts)
    later = START + timedelta(hours=3)

    # When the stream moves on
    run(realtime_store, records([ticket(3, offset=3 * 3600)], first=3), options=opts, now=later)

    # Then the old identities are gone (the table stays bounded) and a republished old change is only late
    with psycopg.connect(realtime_store._conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM realtime.seen_changes").fetchone() == (1,)
    again = run(realtime_store, records([ticket(1)], first=4), options=opts, now=later)
    assert again.counted == 0 and again.late == 1 and total(realtime_store) == 3


def test_bins_are_isolated_per_tenant_for_the_query_role(realtime_store: RealtimeStore, realtime_url: str) -> None:
    # Given bins of two tenants
    run(realtime_store, records([ticket(1, tenant="acme"), ticket(2, tenant="globex"), ticket(3, tenant="globex")]))

    # When each tenant reads, Then it sees only its own
    assert total(realtime_store, "acme") == 1 and total(realtime_store, "globex") == 2
    # And the query role without a tenant sees nothing and cannot write
    with psycopg.connect(realtime_url) as conn:
        conn.execute("SET ROLE ta_query")
        assert conn.execute("SELECT count(*) FROM realtime.bins").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO realtime.bins VALUES ('acme', 'm', now(), '{}', 1)")
    # And the ETL role without the writer flag sees only the tenant it set
    with psycopg.connect(realtime_url) as conn:
        conn.execute("SET ROLE ta_etl")
        conn.execute("SELECT set_config('app.tenant_id', 'globex', false)")
        assert conn.execute("SELECT sum(n) FROM realtime.bins").fetchone() == (2,)


def test_read_bins_refuses_unknown_metric_dimension_and_tenant(realtime_store: RealtimeStore) -> None:
    with pytest.raises(InvalidInput, match="unknown realtime metric"):
        read_bins(realtime_store, "acme", "tickets_deleted", START)
    with pytest.raises(InvalidInput, match="cannot be split"):
        read_bins(realtime_store, "acme", "messages_sent", START, "priority")
    with pytest.raises(InvalidInput):
        read_bins(realtime_store, "acme' OR '1'='1", "tickets_created", START)


def test_read_bins_accepts_a_url_and_a_time_window(realtime_store: RealtimeStore, realtime_url: str) -> None:
    run(realtime_store, records([ticket(1, offset=0), ticket(2, offset=15), ticket(3, offset=25)]))

    bins = read_bins(
        realtime_url, "acme", "tickets_created", START + timedelta(seconds=10), until=START + timedelta(seconds=20)
    )

    assert [(b.bin_start, b.n) for b in bins] == [(START + timedelta(seconds=10), 1)]


def test_schema_creation_is_idempotent(realtime_store: RealtimeStore) -> None:
    run(realtime_store, records([ticket(1)]))

    realtime_store.ensure_schema()
    realtime_store.ensure_schema(if_missing=True)

    assert total(realtime_store) == 1


def test_reading_bins_of_a_store_not_set_up_says_so(
    realtime_store: RealtimeStore, pg_admin: str, db_prefix: str
) -> None:
    # Given a database the deployment's setup and the aggregator have not reached (the roles exist in the cluster)
    from tenant_analytics.errors import StoreNotReady
    from tenant_analytics.local.postgres import ensure_database

    bare = RealtimeStore(ensure_database(pg_admin, f"{db_prefix}_bare"), store_id="aurora-2")
    try:
        # When a tenant's bins are read, then it is a store not ready (503), not a raw database error
        with pytest.raises(StoreNotReady, match="store 'aurora-2' has no realtime bins yet"):
            read_bins(bare, "acme", "tickets_created", START)
    finally:
        bare.close()
