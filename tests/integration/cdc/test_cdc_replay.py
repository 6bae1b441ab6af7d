"""A captured stream replayed twice gives the bins of one replay; the counts match the captured file."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aws_kinesis_agg.aggregator import RecordAggregator

from tenant_analytics.cdc.config import load_config
from tenant_analytics.cdc.model import SourceFormat
from tenant_analytics.cdc.replay import replay_file
from tenant_analytics.cdc.store import RealtimeStore

pytestmark = pytest.mark.xdist_group("cdc")

EVENTS = Path(__file__).resolve().parents[2] / "events" / "cdc"
MAXWELL = EVENTS / "maxwell_changes.jsonl"
DEBEZIUM = EVENTS / "debezium_changes.jsonl"
CONFIG = load_config()


def bins(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT tenant_id, metric, dimensions::text, bin_start, n FROM realtime.bins ORDER BY 1, 2, 3, 4"
        ).fetchall()


def totals(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT metric, sum(n)::int FROM realtime.bins GROUP BY 1").fetchall())


def maxwell_inserts_by_table(path: Path) -> dict[str, int]:
    # Independent count: distinct (position, id) of live inserts per table in the captured file
    seen: dict[str, set[tuple[str, int]]] = {}
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        if doc.get("type") == "insert":
            seen.setdefault(doc["table"], set()).add((doc["position"], doc["data"]["id"]))
    return {table: len(keys) for table, keys in seen.items()}


def debezium_creates_by_table(path: Path) -> dict[str, int]:
    seen: dict[str, set[tuple[str, int]]] = {}
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        payload = doc.get("payload", doc) if doc is not None else None
        if payload and payload["op"] == "c":
            src = payload["source"]
            seen.setdefault(src["table"], set()).add((f"{src['file']}:{src['pos']}", payload["after"]["id"]))
    return {table: len(keys) for table, keys in seen.items()}


@pytest.mark.parametrize(("path", "fmt"), [(MAXWELL, SourceFormat.MAXWELL), (DEBEZIUM, SourceFormat.DEBEZIUM)])
def test_replaying_a_captured_stream_twice_gives_the_bins_of_one_replay(
    realtime_store: RealtimeStore, realtime_url: str, path: Path, fmt: SourceFormat
) -> None:
    # Given the captured stream replayed once
    first = replay_file(path, realtime_store, CONFIG, source_format=fmt, batch_size=64)
    once = bins(realtime_url)

    # When it is replayed again on the same shard, and once more as if from another shard
    second = replay_file(path, realtime_store, CONFIG, source_format=fmt, batch_size=50)
    third = replay_file(path, realtime_store, CONFIG, source_format=fmt, shard_id="elsewhere", batch_size=200)

    # Then nothing changed: the checkpoint skipped the second, source identities absorbed the third
    assert once and bins(realtime_url) == once
    assert second.skipped_at_checkpoint == first.records and second.counted == 0
    assert third.counted == 0 and third.duplicates == first.counted + first.duplicates
    assert not first.rejected and not first.failed


def test_replayed_counts_match_an_independent_count_of_the_capture(
    realtime_store: RealtimeStore, realtime_url: str
) -> None:
    # When both captured streams are replayed
    mx = replay_file(MAXWELL, realtime_store, CONFIG)
    dz = replay_file(DEBEZIUM, realtime_store, CONFIG)

    # Then created/sent totals equal the distinct live inserts in the files (bootstrap/snapshot rows excluded)
    expected_mx, expected_dz = maxwell_inserts_by_table(MAXWELL), debezium_creates_by_table(DEBEZIUM)
    got = totals(realtime_url)
    assert got["tickets_created"] == expected_mx["tickets"] + expected_dz["tickets"]
    assert got["messages_sent"] == expected_mx["messages"] + expected_dz["messages"]
    # And the noise in the captures is accounted for
    assert mx.ignored["control"] == 3 and mx.ignored["unknown_table"] == 1 and mx.ignored["snapshot"] == 5
    assert dz.ignored["snapshot"] == 5 and dz.ignored["tombstone"] == 1
    assert mx.duplicates > 0 and dz.duplicates > 0


def test_kpl_aggregated_capture_gives_the_same_bins(
    realtime_store: RealtimeStore, realtime_url: str, pg_admin: str, db_prefix: str, tmp_path: Path
) -> None:
    # Given the Maxwell capture packed by the KPL aggregation format, 10 user records per Kinesis record
    lines = MAXWELL.read_bytes().splitlines()
    packed = tmp_path / "maxwell.kpl"
    with packed.open("w") as out:
        for start in range(0, len(lines), 10):
            aggregator = RecordAggregator()
            for i, line in enumerate(lines[start : start + 10]):
                aggregator.add_user_record(f"pk-{start + i}", line)
            out.write(base64.b64encode(aggregator.clear_and_get().get_contents()[2]).decode() + "\n")
    replay_file(MAXWELL, realtime_store, CONFIG)
    plain = bins(realtime_url)

    # When the packed file is replayed into another database
    from tenant_analytics.local.postgres import ensure_database

    other_url = ensure_database(pg_admin, f"{db_prefix}_kpl")
    other = RealtimeStore(other_url)
    other.ensure_schema()
    summary = replay_file(packed, other, CONFIG, kpl=True)
    other.close()

    # Then the bins are the same as from the plain capture
    assert summary.records == (len(lines) + 9) // 10
    assert bins(other_url) == plain
