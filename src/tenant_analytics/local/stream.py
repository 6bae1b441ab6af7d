"""The local change stream: records go onto a Kinesis stream (moto) and are delivered to the real aggregator
handler the way Lambda's event source mapping does (batches per shard, partial failures redelivered)."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tenant_analytics import constants as c
from tenant_analytics.local.aws import REGION, invoke_handler

MAX_REDELIVERIES = 3


@dataclass
class StreamReplay:
    """What a replay did: records put, batches delivered, records given up on, failure-queue reasons."""

    stream: str
    records: int = 0
    batches: int = 0
    redelivered: int = 0
    given_up: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # failure-queue messages by rejection code


def _lines(path: Path, kpl: bool) -> list[bytes]:
    out = []
    for raw in path.read_bytes().splitlines():
        if raw.strip():
            out.append(base64.b64decode(raw.strip()) if kpl else raw)
    return out


def replay_to_stream(path: Path, *, kpl: bool = False, batch_size: int = 1000) -> StreamReplay:
    """Put the file's records on a new local stream and deliver them to the aggregator until the shard is drained.

    Without ``kpl`` each line is one change (JSON); with it, each line is the base64 data of one Kinesis record
    as a producer wrote it (KPL-aggregated or not). Every replay uses a stream of its own, because a stream's
    sequence numbers only grow; replaying the same changes again is absorbed by their source identity.
    """
    kinesis = boto3.client("kinesis", region_name=REGION)
    name = f"{c.CHANGE_STREAM}-{time.time_ns()}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    result = StreamReplay(stream=name)
    data = _lines(path, kpl)
    for start in range(0, len(data), 500):  # PutRecords takes at most 500 records
        chunk = data[start : start + 500]
        kinesis.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": "replay"} for d in chunk])
        result.records += len(chunk)
    shard_id = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
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
