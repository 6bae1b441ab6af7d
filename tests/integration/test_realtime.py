"""The change stream end to end locally: a file onto Kinesis (moto), the real aggregator handler, then the
calling tenant's bins through the realtime API, against an independent count of the file."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenant_analytics.cdc.synthetic import ticket_changes
from tenant_analytics.local.api import LocalApiGateway
from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.local.stream import replay_to_stream

pytestmark = pytest.mark.xdist_group("cdc")
TENANTS = ("acme", "globex", "initech")


@pytest.fixture
def platform(tmp_path: Path, pg_admin: str, db_prefix: str) -> Iterator[LocalPlatform]:
    with local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as p:
        for tenant in TENANTS:
            p.add_tenant(tenant, f"http://127.0.0.1:1/{tenant}")
        yield p


def realtime(platform: LocalPlatform, tenant: str, **params: str) -> dict:
    response = LocalApiGateway().handle(
        "GET",
        "/v1/realtime",
        {"Authorization": f"Bearer {platform.token(tenant)}"},
        None,
        {k: [v] for k, v in params.items()},
    )
    assert response.status == 200, response.body
    return response.json()


def expected_bins(changes: list[dict], tenant: str, table: str) -> Counter[str]:
    """Inserts per 10-second bin, counted from the file itself."""
    bins: Counter[str] = Counter()
    for change in changes:
        if change["table"] == table and change["type"] == "insert" and change["data"]["account_id"] == tenant:
            start = datetime.fromtimestamp(change["ts"] - change["ts"] % 10, tz=UTC)
            bins[start.isoformat().replace("+00:00", "Z")] += 1
    return bins


def test_a_replayed_stream_is_counted_once_per_change_and_served_per_tenant(
    platform: LocalPlatform, tmp_path: Path
) -> None:
    # Given five minutes of changes for three tenants, captured to a file
    changes = ticket_changes(400, start=datetime.now(UTC) - timedelta(minutes=6), seconds=300, tenants=TENANTS)
    capture = tmp_path / "capture.jsonl"
    capture.write_text("".join(json.dumps(c) + "\n" for c in changes))

    # When it is replayed through Kinesis and the aggregator, twice
    first = replay_to_stream(capture)
    second = replay_to_stream(capture)

    # Then every record was delivered, nothing was given up, and each tenant sees exactly its own inserts per bin
    assert first.records == second.records == 400 and first.given_up == second.given_up == 0
    for tenant in TENANTS:
        for metric, table in (("tickets_created", "tickets"), ("messages_sent", "messages")):
            answer = realtime(platform, tenant, metric=metric, last="15m")
            got = Counter({b["bin_start"].replace("+00:00", "Z"): b["n"] for b in answer["bins"]})
            assert got == expected_bins(changes, tenant, table), (tenant, metric)


def test_unregistered_and_malformed_records_reach_the_failure_queue(platform: LocalPlatform, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    good = ticket_changes(5, start=now - timedelta(minutes=1), seconds=30, tenants=("acme",))
    stranger = json.loads(json.dumps(good[0]))
    stranger["data"]["account_id"] = "stranger"
    capture = tmp_path / "capture.jsonl"
    capture.write_text("".join(json.dumps(c) + "\n" for c in [*good, stranger]) + "{not json\n")

    replay = replay_to_stream(capture)

    assert replay.rejected == Counter({"unknown_tenant": 1, "bad_json": 1})
    counted = sum(b["n"] for b in realtime(platform, "acme", metric="tickets_created", last="5m")["bins"])
    assert counted == sum(1 for c in good if c["table"] == "tickets" and c["type"] == "insert")


def test_realtime_rejects_bad_parameters_with_the_field(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    auth = {"Authorization": f"Bearer {platform.token('acme')}"}
    unknown = gw.handle("GET", "/v1/realtime", auth, None, {"metric": ["revenue"]})
    too_long = gw.handle("GET", "/v1/realtime", auth, None, {"metric": ["tickets_created"], "last": ["48h"]})
    assert unknown.status == 400 and unknown.json()["error"]["field"] == "metric"
    assert too_long.status == 400 and too_long.json()["error"]["field"] == "last"


def test_the_bins_are_the_realtime_dataset_of_the_query_contract(platform: LocalPlatform, tmp_path: Path) -> None:
    # Given a replayed stream
    changes = ticket_changes(300, start=datetime.now(UTC) - timedelta(minutes=8), seconds=240, tenants=TENANTS)
    capture = tmp_path / "capture.jsonl"
    capture.write_text("".join(json.dumps(c) + "\n" for c in changes))
    replay_to_stream(capture)

    # When acme asks the query API for tickets created per minute and channel
    start = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    answer = platform.query(
        "acme",
        {
            "dataset": "realtime",
            "measures": ["tickets_created", "messages_sent"],
            "dimensions": ["channel"],
            "time": {"dimension": "bin_start", "granularity": "minute", "from": start.isoformat()},
            "limit": 10000,
        },
    )

    # Then the rows equal a count of the file's inserts per minute and channel
    expected: Counter[tuple[str, str, str]] = Counter()
    for c in changes:
        if c["type"] == "insert" and c["data"]["account_id"] == "acme":
            minute = datetime.fromtimestamp(c["ts"] - c["ts"] % 60, tz=UTC).isoformat().replace("+00:00", "Z")
            expected[(minute, c["data"]["channel"], c["table"])] += 1
    got: Counter[tuple[str, str, str]] = Counter()
    for minute, channel, created, sent in answer.rows:
        got[(minute, channel, "tickets")] += created
        got[(minute, channel, "messages")] += sent
    assert +got == expected
    assert answer.columns == ["bin_start.minute", "channel", "tickets_created", "messages_sent"]


def test_realtime_answers_are_never_served_from_the_cache(platform: LocalPlatform, tmp_path: Path) -> None:
    # Given a realtime query answered once, before more changes arrive (no load, so data_version stays)
    query = {"dataset": "realtime", "measures": ["tickets_created"], "limit": 10}
    first = platform.query("acme", query)
    changes = ticket_changes(50, start=datetime.now(UTC) - timedelta(minutes=2), seconds=60, tenants=TENANTS)
    capture = tmp_path / "more.jsonl"
    capture.write_text("".join(json.dumps(c) + "\n" for c in changes))
    replay_to_stream(capture)

    # When the same query is asked again
    second = platform.query("acme", query)

    # Then it is recomputed and counts the new changes
    inserted = sum(
        1 for c in changes if c["type"] == "insert" and c["data"]["account_id"] == "acme" and c["table"] == "tickets"
    )
    assert second.cache == "miss"
    assert second.rows[0][0] - (first.rows[0][0] or 0) == inserted
