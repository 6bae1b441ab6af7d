"""Change-stream freshness: from a change's commit time to its bin being readable through GET /v1/realtime.

A producer thread commits ticket inserts (Debezium JSON, millisecond timestamps) onto the local Kinesis stream
at a steady rate; the consumer polls the shard once a second, as the event source mapping's one-second batching
window does, runs the real aggregator handler, then reads the tenant's bins through the local API. A change is
fresh when the API's count includes it. Runs on the embedded PostgreSQL and moto, in one process.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import threading
import time
from pathlib import Path

import boto3

from tenant_analytics import constants as c
from tenant_analytics.cdc.synthetic import debezium_change
from tenant_analytics.local.api import LocalApiGateway
from tenant_analytics.local.aws import REGION
from tenant_analytics.local.platform import local_platform
from tenant_analytics.local.stream import deliver_batch

DURATION_S = 30.0
CHANGES_PER_S = 50
BATCHING_WINDOW_S = 1.0
TENANT = "fresh"


def main() -> None:
    """Run the benchmark and print its figures."""
    home = Path(".local/bench-freshness")
    shutil.rmtree(home, ignore_errors=True)
    with local_platform(home, persist=False) as p:
        p.add_tenant(TENANT, "http://127.0.0.1:1/fresh")
        kinesis = boto3.client("kinesis", region_name=REGION)
        name = f"{c.CHANGE_STREAM}-freshness"
        kinesis.create_stream(StreamName=name, ShardCount=1)
        arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
        shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        committed: list[float] = []
        stop = threading.Event()

        def produce() -> None:
            i = 0
            while not stop.is_set():
                now = time.time()
                i += 1
                doc = debezium_change(
                    "tickets",
                    "c",
                    before=None,
                    ts_ms=int(now * 1000),
                    file="bin.1",
                    pos=i,
                    after={"id": i, "account_id": TENANT, "status": "new", "channel": "web", "priority": "low"},
                )
                kinesis.put_record(StreamName=name, Data=json.dumps(doc).encode(), PartitionKey="p")
                committed.append(now)
                time.sleep(1 / CHANGES_PER_S)

        producer = threading.Thread(target=produce, daemon=True)
        iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
        gateway = LocalApiGateway()
        token = p.token(TENANT)
        lags: list[float] = []
        readable = 0
        started = time.time()
        producer.start()
        while time.time() - started < DURATION_S:
            time.sleep(BATCHING_WINDOW_S)
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            iterator = page["NextShardIterator"]
            if page["Records"] and deliver_batch(arn, shard, page["Records"]) is not None:
                raise SystemExit("the aggregator reported failed records")
            answer = gateway.handle(
                "GET",
                "/v1/realtime",
                {"Authorization": f"Bearer {token}"},
                None,
                {"metric": ["tickets_created"], "last": ["15m"]},
            )
            seen_at = time.time()
            count = sum(int(b["n"]) for b in answer.json()["bins"])
            lags += [seen_at - t for t in committed[readable:count]]
            readable = count
        stop.set()
        producer.join()
    p95 = statistics.quantiles(lags, n=100, method="inclusive")[94]
    print(
        f"data: {len(lags)} changes at ~{CHANGES_PER_S}/s over {DURATION_S:.0f} s, batching window "
        f"{BATCHING_WINDOW_S:.0f} s, 10-second bins"
    )
    print(f"machine: {platform.platform()}, cpus={os.cpu_count()}, python {platform.python_version()}")
    print(f"freshness s: median {statistics.median(lags):.2f}, max {max(lags):.2f}")
    print(f"BENCH cdc_freshness_p95_s {p95:.2f} s")


if __name__ == "__main__":
    main()
