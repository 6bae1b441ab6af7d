"""The plain-Python reference of message status and campaign x channel x hour counts, on hand-built cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenant_analytics.sources.messaging import (
    LATENCY_BUCKET_BOUNDS_S,
    LATENCY_BUCKETS,
    CampaignChannelHour,
    CampaignVersion,
    MessageEvent,
    MessagingTenantSpec,
    generate_messaging_data,
    latency_bucket,
    reference_campaign_channel_hours,
    reference_message_status,
    unique_events,
)

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
S = 1000  # one second in ms


def sent(message: str, at_ms: int, campaign: int, channel: str, tenant: str = "acme") -> MessageEvent:
    return MessageEvent(tenant, message, "sent", at_ms, at_ms, campaign, 7, channel, None)


def receipt(message: str, kind: str, at_ms: int, error: str | None = None, tenant: str = "acme") -> MessageEvent:
    return MessageEvent(tenant, message, kind, at_ms, at_ms + 5 * S, None, None, None, error)


EVENTS = [
    # hour 10, campaign 1, sms: delivered after 0.5 s
    sent("m1", T0_MS, 1, "sms"),
    receipt("m1", "delivered", T0_MS + 500),
    # hour 10, campaign 1, sms: delivered after exactly 5 s (an inclusive bound), then read; the delivery twice
    receipt("m2", "read", T0_MS + 30 * 60 * S),  # arrives before its sent event
    sent("m2", T0_MS + 60 * S, 1, "sms"),
    receipt("m2", "delivered", T0_MS + 65 * S),
    receipt("m2", "delivered", T0_MS + 65 * S),
    # hour 10, campaign 1, sms: failed
    sent("m3", T0_MS + 3_599_999, 1, "sms"),
    receipt("m3", "failed", T0_MS + 3_600_500, error="blocked"),
    # hour 11, campaign 1, sms: delivered after 3600.001 s
    sent("m4", T0_MS + 3_600_000, 1, "sms"),
    receipt("m4", "delivered", T0_MS + 7_200_001),
    # hour 10, campaign 1, email: failed, expired
    sent("m5", T0_MS + 10 * S, 1, "email"),
    receipt("m5", "failed", T0_MS + 10 * S + 7200 * S, error="expired"),
    # hour 10, campaign 2 (no version known), push: no receipt
    sent("m6", T0_MS, 2, "push"),
    # a receipt whose sent event has not arrived: no campaign to count it under
    receipt("m7", "delivered", T0_MS + 100 * S),
    # another tenant with the same message id
    sent("m1", T0_MS, 1, "sms", tenant="globex"),
    receipt("m1", "failed", T0_MS + S, error="invalid_number", tenant="globex"),
]
CAMPAIGNS = [
    CampaignVersion("acme", 1, "Spring sale (renamed)", T0),
    CampaignVersion("acme", 1, "Spring sale", T0 - timedelta(days=3)),
    CampaignVersion("globex", 1, "Welcome", T0 - timedelta(days=1)),
]


def test_message_status_is_the_furthest_state_and_the_sent_event_names_the_campaign() -> None:
    statuses = reference_message_status(EVENTS)

    assert {key: s.status for key, s in statuses.items()} == {
        ("acme", "m1"): "delivered",
        ("acme", "m2"): "read",
        ("acme", "m3"): "failed",
        ("acme", "m4"): "delivered",
        ("acme", "m5"): "failed",
        ("acme", "m6"): "sent",
        ("acme", "m7"): "delivered",
        ("globex", "m1"): "failed",
    }
    m2 = statuses[("acme", "m2")]
    assert (m2.campaign_id, m2.template_id, m2.channel, m2.delivery_latency_s) == (1, 7, "sms", 5.0)
    assert m2.sent_at == T0 + timedelta(seconds=60) and m2.read_at == T0 + timedelta(minutes=30)
    m7 = statuses[("acme", "m7")]
    assert (m7.campaign_id, m7.channel, m7.sent_at, m7.delivery_latency_s) == (None, None, None, None)
    assert statuses[("acme", "m5")].error_code == "expired"


def test_campaign_channel_hour_counts_match_the_hand_computed_answer() -> None:
    rows = reference_campaign_channel_hours(EVENTS, CAMPAIGNS)

    hour10, hour11 = T0, T0 + timedelta(hours=1)
    assert rows == [
        CampaignChannelHour("acme", 1, "Spring sale (renamed)", "email", hour10, 1, 0, 0, 1, {"expired": 1}, (0,) * 7),
        CampaignChannelHour(
            "acme", 1, "Spring sale (renamed)", "sms", hour10, 3, 2, 1, 1, {"blocked": 1}, (1, 1, 0, 0, 0, 0, 0)
        ),
        CampaignChannelHour("acme", 1, "Spring sale (renamed)", "sms", hour11, 1, 1, 0, 0, {}, (0, 0, 0, 0, 0, 0, 1)),
        CampaignChannelHour("acme", 2, None, "push", hour10, 1, 0, 0, 0, {}, (0,) * 7),
        CampaignChannelHour("globex", 1, "Welcome", "sms", hour10, 1, 0, 0, 1, {"invalid_number": 1}, (0,) * 7),
    ]


def test_the_answer_does_not_depend_on_arrival_order() -> None:
    assert reference_campaign_channel_hours(reversed(EVENTS), CAMPAIGNS) == reference_campaign_channel_hours(
        EVENTS, CAMPAIGNS
    )


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [(-2.0, 0), (0.0, 0), (1.0, 0), (1.001, 1), (5.0, 1), (30.0, 2), (60.0, 3), (300.0, 4), (3600.0, 5), (3600.5, 6)],
)
def test_latency_buckets_have_inclusive_upper_bounds(seconds: float, bucket: int) -> None:
    assert latency_bucket(seconds) == bucket
    assert len(LATENCY_BUCKETS) == len(LATENCY_BUCKET_BOUNDS_S) + 1
    assert LATENCY_BUCKET_BOUNDS_S == (1, 5, 30, 60, 300, 3600)


def test_on_generated_data_the_counts_add_up_to_the_messages() -> None:
    # Given a generated tenant
    data = generate_messaging_data(MessagingTenantSpec("acme", 800), 9, T0, T0 + timedelta(days=1))
    events = unique_events(data.events)

    # When the reference runs over it
    rows = reference_campaign_channel_hours(data.events, data.campaigns)

    # Then every message is counted once, every delivery once in the histogram, every failure once by code
    kinds = {kind: sum(e.event_type == kind for e in events) for kind in ("sent", "delivered", "read", "failed")}
    assert sum(r.sent for r in rows) == kinds["sent"] == 800
    assert sum(r.delivered for r in rows) == kinds["delivered"] == sum(sum(r.latency_histogram) for r in rows)
    assert sum(r.read for r in rows) == kinds["read"]
    assert sum(r.failed for r in rows) == kinds["failed"] == sum(sum(r.failures_by_error.values()) for r in rows)
    assert all(r.campaign_name for r in rows)
