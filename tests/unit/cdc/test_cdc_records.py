"""Kinesis records to changes: base64, KPL de-aggregation (aws-kinesis-agg), size limit, future changes, events."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_kinesis_agg.aggregator import RecordAggregator

from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.config import load_config
from tenant_analytics.cdc.events import batch_from_event
from tenant_analytics.cdc.model import Change, Ignored, RejectCode, Rejection, SourceFormat, StreamRecord
from tenant_analytics.cdc.records import MAX_RECORD_BYTES, Parsed, parse_record
from tenant_analytics.errors import InvalidInput

CONFIG = load_config()
TS = 1_767_614_400
NOW = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)


def ticket(i: int, tenant: Any = "acme") -> dict[str, Any]:
    row = {"id": i, "account_id": tenant, "status": "new", "channel": "web", "priority": "low"}
    return syn.maxwell_change("tickets", "insert", row, ts=TS + i, position=f"b:{i}")


def parse(data: str, seq: str = "100") -> list[Parsed]:
    record = StreamRecord(sequence_number=seq, data=data)
    return parse_record(record, int(seq), CONFIG, SourceFormat.AUTO, not_after=NOW + timedelta(minutes=5))


def kpl(payloads: list[bytes]) -> str:
    aggregator = RecordAggregator()
    for i, payload in enumerate(payloads):
        assert aggregator.add_user_record(f"pk-{i}", payload) is None
    _, _, data = aggregator.clear_and_get().get_contents()
    return base64.b64encode(data).decode()


def test_kpl_aggregated_record_is_deaggregated_into_its_user_records() -> None:
    # Given three changes packed into one record by the KPL aggregation format
    payloads = [json.dumps(ticket(i)).encode() for i in (1, 2, 3)]

    # When the record is parsed
    parsed = parse(kpl(payloads))

    # Then three changes come out, in order, with their sub-sequence numbers and the record's sequence number
    assert [p.sub_sequence_number for p in parsed] == [0, 1, 2]
    assert {p.sequence_number for p in parsed} == {"100"}
    changes = [p.result for p in parsed]
    assert all(isinstance(c, Change) for c in changes)
    assert [c.after["id"] for c in changes if isinstance(c, Change) and c.after] == [1, 2, 3]


def test_a_bad_user_record_inside_a_kpl_record_is_rejected_alone() -> None:
    # Given an aggregated record holding a good change, garbage and a hostile tenant
    payloads = [json.dumps(ticket(1)).encode(), b"{not json", json.dumps(ticket(2, "x'; DROP TABLE t; --")).encode()]

    # When it is parsed
    results = [p.result for p in parse(kpl(payloads))]

    # Then only the bad ones are rejections, each with its reason
    assert isinstance(results[0], Change)
    assert isinstance(results[1], Rejection) and results[1].code is RejectCode.BAD_JSON
    assert isinstance(results[2], Rejection) and results[2].code is RejectCode.INVALID_TENANT
    assert results[2].sub_sequence_number == 2 and "does not match" in results[2].reason


def test_corrupt_kpl_record_is_rejected() -> None:
    # Given a KPL record whose body no longer matches its MD5 digest
    raw = bytearray(base64.b64decode(kpl([b'{"a":1}', b'{"b":2}'])))
    raw[8] ^= 0xFF

    # When parsed, Then one rejection for the whole record
    parsed = parse(base64.b64encode(bytes(raw)).decode())
    assert len(parsed) == 1
    assert isinstance(parsed[0].result, Rejection) and parsed[0].result.code is RejectCode.BAD_KPL


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("not base64 at all!", RejectCode.BAD_BASE64),
        ("QUJ", RejectCode.BAD_BASE64),
        (base64.b64encode(b"\xff\xfe garbage").decode(), RejectCode.BAD_JSON),
        (base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode(), RejectCode.BAD_JSON),
        (base64.b64encode(b'{"some": "thing"}').decode(), RejectCode.UNKNOWN_FORMAT),
        (base64.b64encode(b"x" * (MAX_RECORD_BYTES + 1)).decode(), RejectCode.OVERSIZED),
        ("A" * (4 * MAX_RECORD_BYTES), RejectCode.OVERSIZED),
    ],
    ids=["not-base64", "bad-padding", "not-utf8", "deep-nesting", "unknown-format", "oversized", "oversized-b64"],
)
def test_malformed_records_become_rejections_with_reasons(data: str, code: RejectCode) -> None:
    # When a malformed record is parsed
    parsed = parse(data)

    # Then it is one rejection carrying the code, a reason and the record's position
    assert len(parsed) == 1
    rejection = parsed[0].result
    assert isinstance(rejection, Rejection)
    assert rejection.code is code and rejection.reason and rejection.sequence_number == "100"
    assert len(rejection.data_preview) <= 32 * 1024


def test_change_dated_beyond_the_allowed_clock_skew_is_rejected() -> None:
    # Given a change committed 10 minutes after "now" (5 minutes of skew allowed)
    future = syn.maxwell_change("tickets", "insert", ticket(1)["data"], ts=NOW.timestamp() + 600, position="b:1")
    near = syn.maxwell_change("tickets", "insert", ticket(1)["data"], ts=NOW.timestamp() + 240, position="b:1")

    # When parsed
    far_result, near_result = parse(syn.encode(future))[0].result, parse(syn.encode(near))[0].result

    # Then the far one is rejected as a future change, the near one accepted
    assert isinstance(far_result, Rejection) and far_result.code is RejectCode.FUTURE_CHANGE
    assert isinstance(near_result, Change)


def test_unknown_table_is_ignored() -> None:
    doc = syn.maxwell_change("audit", "insert", {"id": 1}, ts=TS, position="b:1")

    assert parse(syn.encode(doc))[0].result == Ignored("unknown_table")


def test_rejection_message_carries_reason_and_position() -> None:
    rejection = parse("%%%")[0].result
    assert isinstance(rejection, Rejection)

    message = rejection.to_message(stream="arn:stream", shard_id="shardId-000000000001")

    assert message["code"] == "bad_base64" and message["sequence_number"] == "100"
    assert message["shard_id"] == "shardId-000000000001" and "base64" in message["reason"]


def test_kinesis_event_gives_shard_stream_and_records() -> None:
    # Given a Lambda Kinesis event of two records of one shard
    event = {
        "Records": [
            {
                "eventID": f"shardId-000000000003:{seq}",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/changes",
                "kinesis": {"sequenceNumber": seq, "data": "e30=", "partitionKey": "p", "kinesisSchemaVersion": "1.0"},
            }
            for seq in (
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692538361571095921575989136588899",
            )
        ]
    }

    # When it is read
    batch = batch_from_event(event)

    # Then the shard id comes from eventID and the sequence numbers keep every digit
    assert batch.shard_id == "shardId-000000000003"
    assert batch.stream.endswith("stream/changes")
    assert [r.sequence for r in batch.records] == [
        49590338271490256608559692538361571095921575989136588898,
        49590338271490256608559692538361571095921575989136588899,
    ]


def test_kinesis_event_mixing_shards_is_refused() -> None:
    records = [{"eventID": f"shardId-00000000000{i}:1", "kinesis": {"sequenceNumber": "1", "data": ""}} for i in (1, 2)]

    with pytest.raises(InvalidInput):
        batch_from_event({"Records": records})
