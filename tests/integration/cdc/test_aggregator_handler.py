"""The aggregator Lambda handler: a Kinesis event in, Powertools' partial batch response out (moto SQS, real DB)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws
from registry_tables import create_tenants_table

from tenant_analytics.aws import clients
from tenant_analytics.cdc import runtime
from tenant_analytics.settings import get_settings

pytestmark = pytest.mark.xdist_group("cdc")

EVENTS = Path(__file__).resolve().parents[2] / "events" / "cdc"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/tenant-analytics-changes"
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588898


@dataclass
class FakeContext:
    function_name: str = "tenant-analytics-aggregator"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:tenant-analytics-aggregator"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name: str = "/aws/lambda/tenant-analytics-aggregator"
    log_stream_name: str = "2026/01/05/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def kinesis_event(payloads: list[bytes], first: int = FIRST_SEQUENCE) -> dict[str, Any]:
    records = []
    for i, payload in enumerate(payloads):
        seq = str(first + i * 10**20)
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": f"pk-{i}",
                    "sequenceNumber": seq,
                    "data": base64.b64encode(payload).decode(),
                    "approximateArrivalTimestamp": 1767614400.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/aggregator",
                "awsRegion": "us-east-1",
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, realtime_url: str) -> Iterator[str]:
    """moto with the on-failure queue; the handler's settings point at it and at the test database."""
    with mock_aws():
        clients.reset()
        url = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="cdc-on-failure")["QueueUrl"]
        monkeypatch.setenv(
            "STORES", json.dumps({"aurora-1": {"engine": "postgres", "tier": "aurora", "dsn": realtime_url}})
        )
        monkeypatch.setenv("CDC_STORE_ID", "aurora-1")
        monkeypatch.setenv("CDC_FAILURE_QUEUE_URL", url)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        get_settings.cache_clear()
        runtime.reset()
        register_tenants_of(EVENTS / "maxwell_changes.jsonl", EVENTS / "debezium_changes.jsonl")
        yield url
        runtime.reset()
        get_settings.cache_clear()
        clients.reset()


def register_tenants_of(*files: Path) -> None:
    """Create the tenants table and register every account the captured changes name."""
    from tenant_analytics.pipeline import runtime as pipeline_runtime

    create_tenants_table(boto3.client("dynamodb", region_name="us-east-1"), get_settings().tenants_table)
    accounts = set()
    for path in files:
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            if not isinstance(doc, dict):
                continue  # a tombstone
            doc = doc.get("payload") or doc
            for row in (doc.get("data"), doc.get("after"), doc.get("before")):
                if isinstance(row, dict) and isinstance(row.get("account_id"), str):
                    accounts.add(row["account_id"])
    registry = pipeline_runtime.registry()
    for account in sorted(accounts):
        registry.add(account, f"https://source.test/{account}")


def queue_messages(url: str) -> list[dict[str, Any]]:
    sqs = clients.client("sqs")
    out: list[dict[str, Any]] = []
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        out += [json.loads(m["Body"]) for m in got.get("Messages", [])]
    return out


def total_bins(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(sum(n), 0)::int FROM realtime.bins").fetchone()
    return int(row[0]) if row else 0


def test_handler_aggregates_a_kinesis_event_and_sends_malformed_records_to_the_queue(
    aws: str, realtime_url: str
) -> None:
    from lambdas.aggregator.handler import lambda_handler

    # Given a Kinesis event with the captured Maxwell changes, a hostile record and garbage
    lines = (EVENTS / "maxwell_changes.jsonl").read_bytes().splitlines()[:60]
    hostile = json.loads(lines[10])
    hostile["data"]["account_id"] = "x'; DROP TABLE realtime.bins; --"
    stranger = json.loads(lines[11])
    stranger["data"]["account_id"] = "stranger"  # well-formed, but not registered
    event = kinesis_event([*lines, json.dumps(hostile).encode(), json.dumps(stranger).encode(), b"\x00\x01 not json"])

    # When the handler runs
    response = lambda_handler(event, FakeContext())

    # Then no record is retried, bad records are on the queue with reasons, and the bins are filled
    assert response == {"batchItemFailures": []}
    messages = queue_messages(aws)
    assert sorted(m["code"] for m in messages) == ["bad_json", "invalid_tenant", "unknown_tenant"]
    assert all(m["stream"] == STREAM_ARN and m["shard_id"] == "shardId-000000000000" for m in messages)
    counted = total_bins(realtime_url)
    assert counted > 0

    # And the same event redelivered changes nothing
    assert lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert total_bins(realtime_url) == counted
    assert queue_messages(aws) == []


def test_handler_reports_every_record_when_the_database_is_unreachable(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.aggregator.handler import lambda_handler

    # Given the realtime store points at a server that does not answer
    dead = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    monkeypatch.setenv("STORES", json.dumps({"aurora-1": {"engine": "postgres", "tier": "aurora", "dsn": dead}}))
    get_settings.cache_clear()
    runtime.reset()
    lines = (EVENTS / "debezium_changes.jsonl").read_bytes().splitlines()[:3]
    event = kinesis_event(lines)

    # When the handler runs
    response = lambda_handler(event, FakeContext())

    # Then every record is a batch item failure (Lambda retries from the lowest), nothing raised
    expected = [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in event["Records"]]
    assert response == {"batchItemFailures": expected}


def test_a_tenant_is_counted_as_soon_as_it_is_registered(aws: str) -> None:
    from tenant_analytics.pipeline import runtime as pipeline_runtime

    # Given a container that just found 'newco' unregistered (its change went to the failure queue)
    now = [1000.0]
    known = runtime.KnownTenants(clock=lambda: now[0])
    assert known("newco") is False
    # When newco is registered, then within about a batch's time the container knows it (a yes is then kept)
    pipeline_runtime.registry().add("newco", "https://source.test/newco")
    now[0] += 2
    assert known("newco") is True
