"""The local change stream: records go onto a Kinesis stream (moto) and are delivered to the real aggregator
handler the way Lambda's event source mapping does (batches per shard, partial failures redelivered)."""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tenant_analytics import constants as c
from tenant_analytics.cdc.model import RejectCode, Rejection
from tenant_analytics.cdc.sink import SqsFailureSink
from tenant_analytics.errors import InvalidInput
from tenant_analytics.local.aws import REGION, invoke_handler

MAX_REDELIVERIES = 3
PARTITION_KEY = "replay"
# Kinesis limits: a record's data and partition key together; a PutRecords request's records and their bytes
MAX_RECORD_BYTES = 1024 * 1024
MAX_PUT_RECORDS = 500
MAX_PUT_BYTES = 5 * 1024 * 1024
_PREVIEW_BYTES = 16 * 1024  # as much of an oversized record as its failure-queue message shows


@dataclass
class StreamReplay:
    """What a replay did: records put, batches delivered, records given up on, failure-queue reasons."""

    stream: str
    records: int = 0
    batches: int = 0
    redelivered: int = 0
    given_up: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # failure-queue messages by rejection code


@dataclass(frozen=True)
class Line:
    """One record of a capture file: its line number (1-based) and the record's data."""

    number: int
    data: bytes


def read_capture(path: Path, *, kpl: bool) -> list[Line]:
    """The file's non-blank lines as records (base64-decoded with ``kpl``). Raise InvalidInput naming the file and
    line of the first line that is not base64, before anything is put on a stream."""
    out = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if not kpl:
            out.append(Line(number, raw))
            continue
        try:
            out.append(Line(number, base64.b64decode(line, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(
                f"{path}:{number}: with --kpl each line must be the base64 data of one Kinesis record: {exc}",
                field="file",
            ) from exc
    return out


def record_bytes(data: bytes, partition_key: str = PARTITION_KEY) -> int:
    """The size Kinesis counts for a record: its data and its partition key."""
    return len(data) + len(partition_key.encode())


def put_batches(data: Sequence[bytes], partition_key: str = PARTITION_KEY) -> list[list[bytes]]:
    """Split records, in order, into PutRecords requests of at most 500 records and 5 MiB (data and partition
    keys). Every record must fit one Kinesis record (1 MiB); raise ValueError otherwise."""
    batches: list[list[bytes]] = []
    size = 0
    for record in data:
        n = record_bytes(record, partition_key)
        if n > MAX_RECORD_BYTES:
            raise ValueError(f"a record of {n} bytes does not fit a Kinesis record ({MAX_RECORD_BYTES} bytes)")
        if not batches or len(batches[-1]) == MAX_PUT_RECORDS or size + n > MAX_PUT_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(record)
        size += n
    return batches


def _oversized(path: Path, line: Line) -> Rejection:
    """The failure-queue entry of a record Kinesis would refuse: it never gets a sequence number."""
    return Rejection(
        sequence_number="",
        sub_sequence_number=None,
        code=RejectCode.OVERSIZED,
        reason=(
            f"{path}:{line.number}: record is {record_bytes(line.data)} bytes with its partition key; a Kinesis"
            f" record holds at most {MAX_RECORD_BYTES}, so it was not put on the stream"
        ),
        data_preview=base64.b64encode(line.data[:_PREVIEW_BYTES]).decode(),
        data_size=len(line.data),
    )


def replay_to_stream(path: Path, *, kpl: bool = False, batch_size: int = 1000) -> StreamReplay:
    """Put the file's records on a new local stream and deliver them to the aggregator until the shard is drained.

    Without ``kpl`` each line is one change (JSON); with it, each line is the base64 data of one Kinesis record
    as a producer wrote it (KPL-aggregated or not). Every replay uses a stream of its own, because a stream's
    sequence numbers only grow; replaying the same changes again is absorbed by their source identity.

    A record larger than a Kinesis record may be goes to the failure queue (code ``oversized``, its file and
    line in the reason) instead of onto the stream, and the others are replayed. Raise InvalidInput, before
    creating anything, for a ``kpl`` line that is not base64.
    """
    lines = read_capture(path, kpl=kpl)
    fitting = [line.data for line in lines if record_bytes(line.data) <= MAX_RECORD_BYTES]
    oversized = [_oversized(path, line) for line in lines if record_bytes(line.data) > MAX_RECORD_BYTES]
    kinesis = boto3.client("kinesis", region_name=REGION)
    name = f"{c.CHANGE_STREAM}-{time.time_ns()}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    shard_id = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    result = StreamReplay(stream=name, records=len(oversized))
    if oversized:
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.get_queue_url(QueueName=c.CDC_FAILURE_QUEUE)["QueueUrl"]
        if SqsFailureSink(queue_url, sqs).send(oversized, stream=name, shard_id=shard_id) < len(oversized):
            raise RuntimeError(f"the failure queue {c.CDC_FAILURE_QUEUE} did not take every oversized record")
    for batch in put_batches(fitting):
        kinesis.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": PARTITION_KEY} for d in batch])
        result.records += len(batch)
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    attempts = 0
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=batch_size)
        records = page["Records"]
        if not records:
            break
        failed = deliver_batch(arn, shard_id, records)
        result.batches += 1
        if failed is None:
            attempts = 0
            iterator = page.get("NextShardIterator")
            continue
        # Like the event source mapping: retry from the lowest failed sequence number, then give up on it.
        attempts += 1
        if attempts > MAX_REDELIVERIES:
            result.given_up += sum(1 for r in records if int(r["SequenceNumber"]) >= int(failed))
            attempts = 0
            iterator = page.get("NextShardIterator")
            continue
        result.redelivered += 1
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=failed
        )["ShardIterator"]
    result.rejected = _drain_failure_queue()
    return result


def deliver_batch(arn: str, shard_id: str, records: list[dict[str, Any]]) -> str | None:
    """Invoke the aggregator with one batch; return the lowest failed sequence number, if any."""
    event = {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::123456789012:role/{c.function_name('aggregator')}",
                "awsRegion": REGION,
                "eventSourceARN": arn,
            }
            for r in records
        ]
    }
    body, errored = invoke_handler(c.LAMBDA_HANDLERS["aggregator"], c.function_name("aggregator"), event)
    if errored:  # the whole batch failed: retry it from its first record
        return str(records[0]["SequenceNumber"])
    failures = json.loads(body).get("batchItemFailures") or []
    if not failures:
        return None
    return str(min((f["itemIdentifier"] for f in failures), key=int))


def _drain_failure_queue() -> Counter[str]:
    """Read (and delete) the failure queue's messages; count their reasons."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=c.CDC_FAILURE_QUEUE)["QueueUrl"]
    reasons: Counter[str] = Counter()
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return reasons
        for message in messages:
            body = json.loads(message["Body"])
            reasons[str(body.get("code") or "unknown")] += 1
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
