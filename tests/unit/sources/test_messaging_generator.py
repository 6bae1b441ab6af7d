"""The synthetic messaging generator: reproducible, realistic receipts, late and out-of-order arrival, Zipf sizes."""

from __future__ import annotations

import itertools
import json
import math
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.messaging import (
    CHANNELS,
    ERROR_CODES,
    TEMPLATE_CATEGORIES,
    MessageEvent,
    MessagingDataset,
    MessagingTenantSpec,
    event_record,
    events_jsonl,
    generate_master_data,
    generate_messaging_data,
    iter_message_events,
    iter_tenants_events,
    latest_campaigns,
    unique_events,
    zipf_messaging_tenants,
)
from tenant_analytics.sources.synthetic import zipf_tenants

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
END = START + timedelta(days=2)
SPEC = MessagingTenantSpec("acme", 2000)
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def dataset() -> MessagingDataset:
    return generate_messaging_data(SPEC, 42, START, END)


def _by_message(events: list[MessageEvent]) -> dict[str, dict[str, MessageEvent]]:
    grouped: dict[str, dict[str, MessageEvent]] = defaultdict(dict)
    for event in unique_events(events):
        grouped[event.message_id][event.event_type] = event
    return grouped


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(dataset: MessagingDataset) -> None:
    # When the dataset is generated again with the same and with another seed
    again = generate_messaging_data(SPEC, 42, START, END)
    other = generate_messaging_data(SPEC, 43, START, END)

    # Then the first is identical down to arrival order and batches, the second differs
    assert again == dataset
    assert again.events == dataset.events and again.batches == dataset.batches
    assert other.events != dataset.events


def test_every_message_has_one_sent_event_in_the_window_and_the_asked_count(dataset: MessagingDataset) -> None:
    sent = [e for e in unique_events(dataset.events) if e.event_type == "sent"]
    assert len(sent) == SPEC.messages == len({e.message_id for e in sent})
    assert all(START <= e.event_at < END for e in sent)
    assert {e.channel for e in sent} == set(CHANNELS)
    assert all(e.campaign_id is not None and e.template_id is not None for e in sent)


def test_receipts_follow_the_messaging_rules(dataset: MessagingDataset) -> None:
    messages = _by_message(dataset.events)
    codes: Counter[str] = Counter()
    for kinds in messages.values():
        sent = kinds["sent"]
        # delivered and failed exclude each other; read only after delivered, never for sms
        assert not ("delivered" in kinds and "failed" in kinds)
        if "read" in kinds:
            assert "delivered" in kinds and sent.channel != "sms"
            assert kinds["read"].event_ms >= kinds["delivered"].event_ms
        for kind, event in kinds.items():
            assert event.event_ms >= sent.event_ms
            assert event.arrival_ms >= event.event_ms
            if kind != "sent":
                assert (event.campaign_id, event.template_id, event.channel) == (None, None, None)
            assert (event.error_code is not None) == (kind == "failed")
        if "failed" in kinds:
            codes[str(kinds["failed"].error_code)] += 1
    statuses = Counter(frozenset(kinds) for kinds in messages.values())
    assert statuses[frozenset({"sent"})] > 0  # some messages never get a receipt
    assert set(codes) <= set(ERROR_CODES) and len(codes) >= 4


def test_delivery_latencies_are_skewed_from_seconds_to_hours(dataset: MessagingDataset) -> None:
    latencies = sorted(
        (kinds["delivered"].event_ms - kinds["sent"].event_ms) / 1000
        for kinds in _by_message(dataset.events).values()
        if "delivered" in kinds
    )
    median = latencies[len(latencies) // 2]
    assert 1 <= median <= 10
    assert sum(latency <= 5 for latency in latencies) / len(latencies) > 0.5
    assert any(latency > 3600 for latency in latencies)
    assert latencies[-1] <= 6 * 3600
    assert sum(latencies) / len(latencies) > 3 * median  # a long tail pulls the mean far above the median


def test_events_arrive_late_out_of_order_across_batches_and_sometimes_twice(dataset: MessagingDataset) -> None:
    events = dataset.events
    batch_of = {(e.key, e.arrival_ms): b.index for b in dataset.batches for e in b.events}
    sent_batch = {e.message_id: batch_of[(e.key, e.arrival_ms)] for e in events if e.event_type == "sent"}
    receipts = [e for e in events if e.event_type != "sent"]

    # arrival order is not event order
    assert [e.arrival_ms for e in events] == sorted(e.arrival_ms for e in events)
    assert any(a.event_ms > b.event_ms for a, b in itertools.pairwise(events))
    # receipts land in a later batch than their sent event ...
    assert sum(batch_of[(e.key, e.arrival_ms)] > sent_batch[e.message_id] for e in receipts) > 20
    # ... and some arrive before it, in an earlier batch
    assert sum(batch_of[(e.key, e.arrival_ms)] < sent_batch[e.message_id] for e in receipts) > 5
    # some receipts take hours to arrive
    assert any(e.arrival_ms - e.event_ms > HOUR_MS for e in receipts)
    # at-least-once delivery: a few keys arrive twice, identical but for the arrival
    repeated = [key for key, n in Counter(e.key for e in events).items() if n > 1]
    assert repeated
    twice = [e for e in events if e.key == repeated[0]]
    assert len({e._replace(arrival_ms=0) for e in twice}) == 1 and len({e.arrival_ms for e in twice}) == 2


def test_batches_are_consecutive_hours_holding_every_arrival_once(dataset: MessagingDataset) -> None:
    batches = dataset.batches
    assert batches[0].arrived_from == START
    assert all(a.arrived_to == b.arrived_from for a, b in itertools.pairwise(batches))
    assert all(b.arrived_to - b.arrived_from == timedelta(hours=1) for b in batches)
    assert all(b.arrived_from <= e.arrived_at < b.arrived_to for b in batches for e in b.events)
    assert [e for b in batches for e in b.events] == dataset.events
    assert [v for b in batches for v in b.campaigns] == dataset.campaigns
    assert [v for b in batches for v in b.templates] == dataset.templates
    assert any(not b.events for b in batches) or len(batches) > 48  # the nights are quiet, arrivals trail on
    coarse = generate_messaging_data(SPEC, 42, START, END, batch_hours=24)
    assert [e for b in coarse.batches for e in b.events] == dataset.events
    assert coarse.batches[1].arrived_from == START + timedelta(days=1)


def test_master_data_has_initial_versions_renames_and_touches(dataset: MessagingDataset) -> None:
    first_batch = dataset.batches[0]
    ids = {v.campaign_id for v in dataset.campaigns}
    assert {v.campaign_id for v in first_batch.campaigns if v.updated_at < START} == ids
    later = [v for v in dataset.campaigns if v.updated_at >= START]
    assert later and all(START <= v.updated_at < END for v in later)
    original = {v.campaign_id: v.name for v in dataset.campaigns if v.updated_at < START}
    assert any(v.name != original[v.campaign_id] for v in later)  # renamed
    assert any(v.name == original[v.campaign_id] for v in later)  # only updated_at changed
    assert any("," in v.name or '"' in v.name or "'" in v.name for v in dataset.campaigns)
    assert {v.category for v in dataset.templates} <= set(TEMPLATE_CATEGORIES)
    # every sent event names a campaign and template that exist
    sent = [e for e in dataset.events if e.event_type == "sent"]
    assert {e.campaign_id for e in sent} <= ids
    assert {e.template_id for e in sent} <= {v.template_id for v in dataset.templates}
    assert generate_master_data(SPEC, 42, START, END) == (dataset.campaigns, dataset.templates)
    assert len(latest_campaigns(dataset.campaigns)) == len(ids)


def test_the_stream_agrees_with_the_batches_and_holds_only_what_is_not_yet_due() -> None:
    # Given the same send rate over a window four times as long
    short = MessagingTenantSpec("acme", 3000)
    long = MessagingTenantSpec("acme", 12000)

    def peak(spec: MessagingTenantSpec, days: int) -> tuple[int, int]:
        tracemalloc.start()
        count = sum(1 for _ in iter_message_events(spec, 5, START, START + timedelta(days=days)))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return count, top

    # When both are streamed
    short_count, short_peak = peak(short, 3)
    long_count, long_peak = peak(long, 12)

    # Then four times the events need far less than four times the memory (what is held follows the send rate and
    # the longest lag), and the stream is the batches' events
    assert long_count > 3.5 * short_count
    assert long_peak < 2 * short_peak
    small = MessagingTenantSpec("tiny", 50)
    assert list(iter_message_events(small, 5, START, END)) == generate_messaging_data(small, 5, START, END).events


def test_zipf_sizes_reuse_the_support_apportionment() -> None:
    specs = zipf_messaging_tenants(20, 100_000, seed=3)
    sizes = sorted((s.messages for s in specs), reverse=True)
    assert sum(sizes) == 100_000
    assert [s.tenant_id for s in specs] == [t.tenant_id for t in zipf_tenants(20, 100_000, 3, "m")]
    assert [s.messages for s in specs] == [t.tickets for t in zipf_tenants(20, 100_000, 3, "m")]
    assert math.isclose(sizes[0] / sizes[9], 10, rel_tol=0.05)
    assert [s.messages for s in specs] != sizes  # the seed shuffles ranks across ids


def test_several_tenants_stream_as_one_arrival_ordered_merge_of_their_own_streams() -> None:
    # Given three Zipf-sized tenants
    specs = zipf_messaging_tenants(3, 600, seed=8)

    # When their events are streamed together
    merged = list(iter_tenants_events(specs, 2, START, END))

    # Then the stream is in arrival order and each tenant's part is exactly its own stream
    assert [e.arrival_ms for e in merged] == sorted(e.arrival_ms for e in merged)
    for spec in specs:
        assert [e for e in merged if e.tenant_id == spec.tenant_id] == list(iter_message_events(spec, 2, START, END))
    with pytest.raises(InvalidInput, match="twice"):
        list(iter_tenants_events([specs[0], specs[0]], 2, START, END))


def test_jsonl_records_carry_the_table_columns_and_the_arrival(dataset: MessagingDataset) -> None:
    lines = b"".join(events_jsonl(dataset.events[:25], rows_per_chunk=10)).decode().splitlines()
    assert len(lines) == 25
    first = json.loads(lines[0])
    assert first == event_record(dataset.events[0])
    assert set(first) == {
        "tenant_id", "message_id", "event_type", "event_at", "arrived_at",
        "campaign_id", "template_id", "channel", "error_code",
    }  # fmt: skip
    assert datetime.fromisoformat(first["event_at"]) == dataset.events[0].event_at


@pytest.mark.parametrize(
    ("spec", "start", "end", "field"),
    [
        (SPEC, START.replace(tzinfo=None), END, "start"),
        (SPEC, END, START, "end"),
        (MessagingTenantSpec("acme", -1), START, END, None),
    ],
)
def test_bad_windows_and_counts_are_refused(
    spec: MessagingTenantSpec, start: datetime, end: datetime, field: str | None
) -> None:
    with pytest.raises(InvalidInput) as err:
        generate_messaging_data(spec, 1, start, end)
    assert err.value.field == field


def test_a_tenant_without_messages_still_has_master_data_and_empty_batches() -> None:
    data = generate_messaging_data(MessagingTenantSpec("quiet", 0), 1, START, END)
    assert data.events == [] and data.campaigns
    assert len(data.batches) == 48 and all(not b.events for b in data.batches)
    with pytest.raises(InvalidInput):
        generate_messaging_data(SPEC, 1, START, END, batch_hours=0)
