"""Reproducible synthetic messaging data: campaigns, templates, sent messages and their delivery receipts.

A tenant sends messages on four channels (sms, email, push, whatsapp), each for one of its campaigns with one of
the campaign's templates. Two streams reach the platform and land in one events table keyed by
``(tenant_id, message_id, event_type)``:

* the *sent* stream: one ``sent`` event per message, carrying campaign, template and channel;
* the *receipt* stream: ``delivered`` then maybe ``read`` (email, push, whatsapp), or ``failed`` with an error code;
  a few messages never get a receipt.

Delivery latencies are skewed (a lognormal of a few seconds, plus a tail of deferred deliveries taking minutes to
hours). Events *arrive* later than they happen and out of order: receipts are reported after a lag (sometimes a
carrier's batch hours later), the sent stream now and then falls behind so that a message's receipts arrive
before its ``sent`` event, often in an earlier hourly batch, and a small share of events is delivered twice
(at-least-once delivery). Campaigns and templates are master data: an initial version before the window, then
occasional renames and ``updated_at``-only touches inside it.

The same ``(seed, tenant_id)``, size and window always yield the same data (only ``random.Random`` seeded with
strings is used). :func:`iter_message_events` streams a tenant's events in arrival order holding only the events
not yet due (a few hours' worth), so tens of millions of events need bounded memory;
:func:`generate_messaging_data` builds the whole dataset with its hourly arrival batches for tests.
:func:`reference_message_status` and :func:`reference_campaign_channel_hours` compute, in plain Python, the
figures messaging models must reproduce.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any, Final, NamedTuple

from tenant_analytics.errors import InvalidInput
from tenant_analytics.sources.synthetic import zipf_tenants

__all__ = [
    "CHANNELS",
    "ERROR_CODES",
    "EVENT_TYPES",
    "LATENCY_BUCKETS",
    "LATENCY_BUCKET_BOUNDS_S",
    "MESSAGE_STATUSES",
    "TEMPLATE_CATEGORIES",
    "CampaignChannelHour",
    "CampaignVersion",
    "MessageEvent",
    "MessageStatus",
    "MessagingBatch",
    "MessagingDataset",
    "MessagingTenantSpec",
    "TemplateVersion",
    "event_record",
    "events_jsonl",
    "format_event_time",
    "generate_master_data",
    "generate_messaging_data",
    "iter_message_events",
    "iter_tenants_events",
    "latency_bucket",
    "latest_campaigns",
    "latest_templates",
    "reference_campaign_channel_hours",
    "reference_message_status",
    "unique_events",
    "zipf_messaging_tenants",
]

EVENT_TYPES: Final = ("sent", "delivered", "read", "failed")
CHANNELS: Final = ("sms", "email", "push", "whatsapp")
ERROR_CODES: Final = ("invalid_number", "invalid_address", "blocked", "carrier_error", "expired", "unsubscribed")
TEMPLATE_CATEGORIES: Final = ("marketing", "utility", "authentication")
# A message's status is the furthest state any of its events proves, in this order (first wins).
MESSAGE_STATUSES: Final = ("read", "delivered", "failed", "sent")
# Upper bounds (inclusive, seconds) of the delivery-latency histogram; one more bucket holds everything above.
LATENCY_BUCKET_BOUNDS_S: Final = (1, 5, 30, 60, 300, 3600)
LATENCY_BUCKETS: Final = ("le_1s", "le_5s", "le_30s", "le_60s", "le_300s", "le_3600s", "gt_3600s")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_HOUR_MS: Final = 3_600_000
_CHOICE_CHUNK: Final = 4096
# Relative send volume per UTC hour: campaigns go out in the daytime.
_HOUR_FACTOR: Final = (
    0.1, 0.08, 0.06, 0.06, 0.08, 0.15, 0.35, 0.7, 1.2, 1.6, 1.7, 1.6,
    1.4, 1.5, 1.6, 1.5, 1.3, 1.1, 1.0, 0.9, 0.7, 0.5, 0.3, 0.15,
)  # fmt: skip
_CHANNEL_WEIGHTS: Final = (0.35, 0.35, 0.2, 0.1)
_CAMPAIGN_THEMES: Final = (
    "Spring sale, 20% off",
    "Welcome series",
    "Cart reminder",
    "Order updates",
    "Black Friday",
    "Re-engagement",
    "Appointment reminders",
    "Loyalty points",
    "Mother's Day",
    "Product launch",
    "Delivery survey",
    'The "VIP" list',
)
_TEMPLATE_THEMES: Final = ("promo", "reminder", "otp_code", "order_status", "welcome", "survey", "receipt")
_RENAME_SHARE: Final = 0.25
_TOUCH_SHARE: Final = 0.1
_TEMPLATE_CHANGE_SHARE: Final = 0.15
_MAX_CAMPAIGNS: Final = 500


@dataclass(frozen=True)
class _ChannelProfile:
    fail_share: float
    no_receipt_share: float
    read_share: float  # of delivered messages
    median_latency_s: float
    errors: tuple[str, ...]
    error_weights: tuple[float, ...]


_PROFILES: Final = {
    "sms": _ChannelProfile(
        0.06, 0.02, 0.0, 3.0, ("invalid_number", "carrier_error", "blocked", "expired"), (0.35, 0.3, 0.2, 0.15)
    ),
    "email": _ChannelProfile(
        0.04, 0.01, 0.3, 8.0, ("invalid_address", "blocked", "expired", "unsubscribed"), (0.45, 0.35, 0.1, 0.1)
    ),
    "push": _ChannelProfile(0.05, 0.05, 0.12, 1.0, ("invalid_address", "unsubscribed", "expired"), (0.5, 0.4, 0.1)),
    "whatsapp": _ChannelProfile(
        0.05, 0.01, 0.65, 2.0, ("invalid_number", "blocked", "expired", "carrier_error"), (0.4, 0.3, 0.2, 0.1)
    ),
}
# Arrival lags and their caps: the caps bound how long the stream must hold an event before it is due.
_LATENCY_SIGMA: Final = 1.3
_DEFERRED_SHARE: Final = 0.03  # deliveries deferred by the carrier or greylisting: minutes to hours
_DEFERRED_RANGE_S: Final = (600.0, 6 * 3600.0)
_EXPIRY_RANGE_S: Final = (3600.0, 6 * 3600.0)  # an undelivered message expires when its time-to-live runs out
_MAX_LATENCY_MS: Final = 6 * _HOUR_MS
_READ_MEDIAN_S: Final = 600.0
_MAX_READ_MS: Final = 6 * _HOUR_MS
_RECEIPT_LAG_MEAN_S: Final = 15.0
_CARRIER_BATCH_SHARE: Final = 0.08  # receipts a carrier reports in a later batch
_CARRIER_BATCH_RANGE_S: Final = (300.0, 2 * 3600.0)
_SENT_LAG_MEAN_S: Final = 5.0
_SENT_BACKLOG_SHARE: Final = 0.03  # sent events held up behind a backlog: their receipts overtake them
_SENT_BACKLOG_RANGE_S: Final = (1800.0, 3 * 3600.0)
_REDELIVERY_SHARE: Final = 0.01
_REDELIVERY_RANGE_S: Final = (60.0, 3 * 3600.0)
# campaign_id, template_id and channel of a receipt: only sent events carry them.
_NO_SENT: Final = (None, None, None)


@dataclass(frozen=True)
class MessagingTenantSpec:
    """A messaging tenant: its id and how many messages it sends over the generated window."""

    tenant_id: str
    messages: int


class MessageEvent(NamedTuple):
    """One event of the events table, with the instant it reached the platform.

    ``event_ms`` and ``arrival_ms`` are unix milliseconds; ``campaign_id``, ``template_id`` and ``channel`` are set
    on ``sent`` events only, ``error_code`` on ``failed`` events only.
    """

    tenant_id: str
    message_id: str
    event_type: str
    event_ms: int
    arrival_ms: int
    campaign_id: int | None
    template_id: int | None
    channel: str | None
    error_code: str | None

    @property
    def event_at(self) -> datetime:
        """Return when the event happened (UTC, millisecond precision)."""
        return _EPOCH + timedelta(milliseconds=self.event_ms)

    @property
    def arrived_at(self) -> datetime:
        """Return when the event reached the platform (UTC, millisecond precision)."""
        return _EPOCH + timedelta(milliseconds=self.arrival_ms)

    @property
    def key(self) -> tuple[str, str, str]:
        """Return the events table's primary key ``(tenant_id, message_id, event_type)``."""
        return self.tenant_id, self.message_id, self.event_type


@dataclass(frozen=True)
class CampaignVersion:
    """One version of a campaign, valid from ``updated_at``."""

    tenant_id: str
    campaign_id: int
    name: str
    updated_at: datetime


@dataclass(frozen=True)
class TemplateVersion:
    """One version of a message template, valid from ``updated_at``."""

    tenant_id: str
    template_id: int
    name: str
    category: str
    updated_at: datetime


@dataclass(frozen=True)
class MessagingBatch:
    """What arrived in ``[arrived_from, arrived_to)``: events in arrival order and master-data versions."""

    index: int
    arrived_from: datetime
    arrived_to: datetime
    events: list[MessageEvent] = field(hash=False)
    campaigns: list[CampaignVersion] = field(hash=False)
    templates: list[TemplateVersion] = field(hash=False)


@dataclass(frozen=True)
class MessagingDataset:
    """One tenant's messaging data: every event as it arrived (duplicates included), every master-data version,
    and the same split into consecutive arrival batches (empty batches included)."""

    tenant_id: str
    events: list[MessageEvent] = field(hash=False)
    campaigns: list[CampaignVersion] = field(hash=False)
    templates: list[TemplateVersion] = field(hash=False)
    batches: list[MessagingBatch] = field(hash=False)


@dataclass(frozen=True)
class MessageStatus:
    """A message's state derived from its events (see :func:`reference_message_status`)."""

    tenant_id: str
    message_id: str
    status: str
    campaign_id: int | None
    template_id: int | None
    channel: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: str | None
    delivery_latency_s: float | None


@dataclass(frozen=True)
class CampaignChannelHour:
    """Counts of the messages of one campaign and channel sent in one UTC hour.

    ``delivered``, ``read`` and ``failed`` count messages having that receipt; ``latency_histogram`` counts
    delivered messages by :data:`LATENCY_BUCKETS`; ``failures_by_error`` counts failed messages by error code.
    """

    tenant_id: str
    campaign_id: int
    campaign_name: str | None
    channel: str
    hour: datetime
    sent: int
    delivered: int
    read: int
    failed: int
    failures_by_error: dict[str, int] = field(hash=False)
    latency_histogram: tuple[int, ...]


def zipf_messaging_tenants(
    count: int, total_messages: int, seed: int, prefix: str = "m", *, exponent: float = 1.0
) -> list[MessagingTenantSpec]:
    """Return ``count`` tenants sharing ``total_messages`` with Zipf sizes (see
    :func:`~tenant_analytics.sources.synthetic.zipf_tenants`), listed in id order."""
    return [
        MessagingTenantSpec(spec.tenant_id, spec.tickets)
        for spec in zipf_tenants(count, total_messages, seed, prefix, exponent=exponent)
    ]


def format_event_time(ms: int) -> str:
    """Return unix milliseconds as an ISO-8601 UTC timestamp with milliseconds, e.g. ``2026-01-05T09:00:01.250Z``."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def event_record(event: MessageEvent) -> dict[str, Any]:
    """Return the event as the raw landing zone stores it (one JSON object per line, arrival time included)."""
    return {
        "tenant_id": event.tenant_id,
        "message_id": event.message_id,
        "event_type": event.event_type,
        "event_at": format_event_time(event.event_ms),
        "arrived_at": format_event_time(event.arrival_ms),
        "campaign_id": event.campaign_id,
        "template_id": event.template_id,
        "channel": event.channel,
        "error_code": event.error_code,
    }


def events_jsonl(events: Iterable[MessageEvent], *, rows_per_chunk: int = 10_000) -> Iterator[bytes]:
    """Return a generator of JSONL chunks (UTF-8, ``rows_per_chunk`` lines each) of :func:`event_record`."""
    iterator = iter(events)
    while chunk := list(itertools.islice(iterator, rows_per_chunk)):
        yield "".join(json.dumps(event_record(event), separators=(",", ":")) + "\n" for event in chunk).encode()


def generate_master_data(
    spec: MessagingTenantSpec, seed: int, start: datetime, end: datetime
) -> tuple[list[CampaignVersion], list[TemplateVersion]]:
    """Return every version of the tenant's campaigns and templates, each list ordered by ``(updated_at, id)``.

    The first version of each record is dated before ``start``; renames and touches fall in ``[start, end)``.
    """
    start_ms, end_ms = _window(spec, start, end)
    plan = _MasterPlan.draw(spec, seed, start_ms, end_ms)
    return plan.campaigns, plan.templates


def iter_message_events(spec: MessagingTenantSpec, seed: int, start: datetime, end: datetime) -> Iterator[MessageEvent]:
    """Return a generator of the tenant's events in arrival order (ties: generation order), duplicates included.

    ``spec.messages`` messages are sent at millisecond instants in ``[start, end)``; their receipts and late
    arrivals may fall after ``end``. A message yields about 2.2 events on average. Only events not yet due are
    held (at most the ~17 hours of the longest latency and lags), so memory follows the send rate, not the count.
    """
    start_ms, end_ms = _window(spec, start, end)
    plan = _MasterPlan.draw(spec, seed, start_ms, end_ms)
    rng = random.Random(f"tenant-analytics-messaging:{seed}:{spec.tenant_id}:messages")
    pending: list[tuple[int, int, MessageEvent]] = []
    counter = itertools.count()
    for number, sent_ms in enumerate(_iter_send_times(rng, spec.messages, start_ms, end_ms), start=1):
        while pending and pending[0][0] < sent_ms:
            yield heapq.heappop(pending)[2]
        for event in _message_events(rng, plan, spec.tenant_id, number, sent_ms):
            heapq.heappush(pending, (event.arrival_ms, next(counter), event))
    while pending:
        yield heapq.heappop(pending)[2]


def iter_tenants_events(
    specs: Sequence[MessagingTenantSpec], seed: int, start: datetime, end: datetime
) -> Iterator[MessageEvent]:
    """Return a generator of several tenants' events merged into one stream in arrival order (ties: tenant order).

    Each tenant contributes exactly :func:`iter_message_events`; memory is the sum of what each tenant holds, so a
    Zipf population (:func:`zipf_messaging_tenants`) producing tens of millions of events streams in bounded memory.
    """
    seen: set[str] = set()
    for spec in specs:
        if spec.tenant_id in seen:
            raise InvalidInput(f"tenant '{spec.tenant_id}' is listed twice", field="tenants")
        seen.add(spec.tenant_id)
    streams = [iter_message_events(spec, seed, start, end) for spec in specs]
    return heapq.merge(*streams, key=attrgetter("arrival_ms"))


def generate_messaging_data(
    spec: MessagingTenantSpec, seed: int, start: datetime, end: datetime, *, batch_hours: int = 1
) -> MessagingDataset:
    """Generate the tenant's whole :class:`MessagingDataset`, split into arrival batches of ``batch_hours``.

    Batch ``i`` holds what arrived in ``[h0 + i * batch_hours, h0 + (i + 1) * batch_hours)`` where ``h0`` is the
    start of the hour holding ``start``; master-data versions dated before ``start`` arrive in batch 0, later ones
    at their ``updated_at``. Agrees with :func:`iter_message_events` and :func:`generate_master_data`.
    """
    if batch_hours < 1:
        raise InvalidInput(f"batch_hours must be at least 1, got {batch_hours}", field="batch_hours")
    start_ms, end_ms = _window(spec, start, end)
    events = list(iter_message_events(spec, seed, start, end))
    campaigns, templates = generate_master_data(spec, seed, start, end)
    width = batch_hours * _HOUR_MS
    first = start_ms - start_ms % _HOUR_MS
    last_arrival = max([end_ms - 1, *(event.arrival_ms for event in events[-1:])])
    count = (last_arrival - first) // width + 1
    batch_events: list[list[MessageEvent]] = [[] for _ in range(count)]
    batch_campaigns: list[list[CampaignVersion]] = [[] for _ in range(count)]
    batch_templates: list[list[TemplateVersion]] = [[] for _ in range(count)]
    for event in events:
        batch_events[(event.arrival_ms - first) // width].append(event)
    for campaign in campaigns:
        batch_campaigns[(max(_ms(campaign.updated_at), start_ms) - first) // width].append(campaign)
    for template in templates:
        batch_templates[(max(_ms(template.updated_at), start_ms) - first) // width].append(template)
    batches = [
        MessagingBatch(
            index=index,
            arrived_from=_EPOCH + timedelta(milliseconds=first + index * width),
            arrived_to=_EPOCH + timedelta(milliseconds=first + (index + 1) * width),
            events=batch_events[index],
            campaigns=batch_campaigns[index],
            templates=batch_templates[index],
        )
        for index in range(count)
    ]
    return MessagingDataset(spec.tenant_id, events, campaigns, templates, batches)


def unique_events(events: Iterable[MessageEvent]) -> list[MessageEvent]:
    """Return the events with duplicates of a key removed (the first arrival kept), ordered by key."""
    kept: dict[tuple[str, str, str], MessageEvent] = {}
    for event in events:
        kept.setdefault(event.key, event)
    return [kept[key] for key in sorted(kept)]


def latest_campaigns(versions: Iterable[CampaignVersion]) -> dict[tuple[str, int], CampaignVersion]:
    """Return ``(tenant_id, campaign_id)`` -> the version with the greatest ``updated_at`` (ties: the first seen)."""
    latest: dict[tuple[str, int], CampaignVersion] = {}
    for version in versions:
        key = (version.tenant_id, version.campaign_id)
        if key not in latest or version.updated_at > latest[key].updated_at:
            latest[key] = version
    return latest


def latest_templates(versions: Iterable[TemplateVersion]) -> dict[tuple[str, int], TemplateVersion]:
    """Return ``(tenant_id, template_id)`` -> the version with the greatest ``updated_at`` (ties: the first seen)."""
    latest: dict[tuple[str, int], TemplateVersion] = {}
    for version in versions:
        key = (version.tenant_id, version.template_id)
        if key not in latest or version.updated_at > latest[key].updated_at:
            latest[key] = version
    return latest


def latency_bucket(seconds: float) -> int:
    """Return the index in :data:`LATENCY_BUCKETS` of a delivery latency (negative latencies count as 0 s)."""
    for index, bound in enumerate(LATENCY_BUCKET_BOUNDS_S):
        if seconds <= bound:
            return index
    return len(LATENCY_BUCKET_BOUNDS_S)


def reference_message_status(events: Iterable[MessageEvent]) -> dict[tuple[str, str], MessageStatus]:
    """Return ``(tenant_id, message_id)`` -> :class:`MessageStatus`, computed from the events in any order.

    Duplicates of a key count once (the first seen). The status is the first of :data:`MESSAGE_STATUSES` the
    message has an event of; campaign, template and channel come from the ``sent`` event and are ``None`` while it
    has not arrived. ``delivery_latency_s`` is ``delivered`` minus ``sent`` when both are present.
    """
    by_message: dict[tuple[str, str], dict[str, MessageEvent]] = defaultdict(dict)
    for event in events:
        by_message[(event.tenant_id, event.message_id)].setdefault(event.event_type, event)
    statuses: dict[tuple[str, str], MessageStatus] = {}
    for (tenant_id, message_id), kinds in by_message.items():
        sent, delivered, read, failed = (kinds.get(kind) for kind in ("sent", "delivered", "read", "failed"))
        latency = (delivered.event_ms - sent.event_ms) / 1000 if sent and delivered else None
        statuses[(tenant_id, message_id)] = MessageStatus(
            tenant_id=tenant_id,
            message_id=message_id,
            status=next(status for status in MESSAGE_STATUSES if status in kinds),
            campaign_id=sent.campaign_id if sent else None,
            template_id=sent.template_id if sent else None,
            channel=sent.channel if sent else None,
            sent_at=sent.event_at if sent else None,
            delivered_at=delivered.event_at if delivered else None,
            read_at=read.event_at if read else None,
            failed_at=failed.event_at if failed else None,
            error_code=failed.error_code if failed else None,
            delivery_latency_s=latency,
        )
    return statuses


def reference_campaign_channel_hours(
    events: Iterable[MessageEvent], campaigns: Iterable[CampaignVersion]
) -> list[CampaignChannelHour]:
    """Return per ``(tenant, campaign, channel, UTC hour of sending)`` counts, ordered by that key.

    Only messages whose ``sent`` event is present are counted (a receipt alone names no campaign). The campaign
    name is that of its latest version, ``None`` for a campaign with no version.
    """
    names = {key: version.name for key, version in latest_campaigns(campaigns).items()}
    groups: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    for status in reference_message_status(events).values():
        if status.sent_at is None or status.campaign_id is None or status.channel is None:
            continue
        hour_ms = _ms(status.sent_at) - _ms(status.sent_at) % _HOUR_MS
        key = (status.tenant_id, status.campaign_id, status.channel, hour_ms)
        group = groups.setdefault(
            key,
            {"sent": 0, "delivered": 0, "read": 0, "failed": 0, "errors": {}, "histogram": [0] * len(LATENCY_BUCKETS)},
        )
        group["sent"] += 1
        if status.delivered_at is not None and status.delivery_latency_s is not None:
            group["delivered"] += 1
            group["histogram"][latency_bucket(status.delivery_latency_s)] += 1
        if status.read_at is not None:
            group["read"] += 1
        if status.failed_at is not None:
            group["failed"] += 1
            code = status.error_code or ""
            group["errors"][code] = group["errors"].get(code, 0) + 1
    return [
        CampaignChannelHour(
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            campaign_name=names.get((tenant_id, campaign_id)),
            channel=channel,
            hour=_EPOCH + timedelta(milliseconds=hour_ms),
            sent=group["sent"],
            delivered=group["delivered"],
            read=group["read"],
            failed=group["failed"],
            failures_by_error=dict(sorted(group["errors"].items())),
            latency_histogram=tuple(group["histogram"]),
        )
        for (tenant_id, campaign_id, channel, hour_ms), group in sorted(groups.items())
    ]


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _window(spec: MessagingTenantSpec, start: datetime, end: datetime) -> tuple[int, int]:
    """Check the window and the spec; return the window as unix milliseconds ``[start_ms, end_ms)``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("start and end must be timezone-aware datetimes (UTC)", field="start")
    if end <= start:
        raise InvalidInput(f"end {end.isoformat()} must be later than start {start.isoformat()}", field="end")
    if spec.messages < 0:
        raise InvalidInput(f"tenant '{spec.tenant_id}' asks for {spec.messages} messages; the count must be >= 0")
    start_ms = math.ceil((start - _EPOCH) / timedelta(milliseconds=1))
    end_ms = math.ceil((end - _EPOCH) / timedelta(milliseconds=1))
    return start_ms, end_ms


@dataclass(frozen=True)
class _Campaign:
    campaign_id: int
    channel: str  # the channel most of its messages use
    template_ids: tuple[int, ...]


@dataclass(frozen=True)
class _MasterPlan:
    """The tenant's master data and what the message generator needs of it."""

    campaigns: list[CampaignVersion]
    templates: list[TemplateVersion]
    plans: list[_Campaign]
    cum_weights: list[float]

    @classmethod
    def draw(cls, spec: MessagingTenantSpec, seed: int, start_ms: int, end_ms: int) -> _MasterPlan:
        rng = random.Random(f"tenant-analytics-messaging:{seed}:{spec.tenant_id}:master")
        campaign_count = max(1, min(_MAX_CAMPAIGNS, round(math.sqrt(spec.messages) / 2)))
        template_count = campaign_count // 2 + 1
        templates: list[TemplateVersion] = []
        for template_id in range(1, template_count + 1):
            theme = rng.choice(_TEMPLATE_THEMES)
            category = "authentication" if theme == "otp_code" else rng.choice(TEMPLATE_CATEGORIES[:2])
            first = _before(rng, start_ms)
            templates.append(TemplateVersion(spec.tenant_id, template_id, f"{theme}_{template_id}", category, first))
            if rng.random() < _TEMPLATE_CHANGE_SHARE:
                changed = rng.choice(TEMPLATE_CATEGORIES) if theme != "otp_code" else category
                moment = _inside(rng, start_ms, end_ms)
                templates.append(
                    TemplateVersion(spec.tenant_id, template_id, f"{theme}_{template_id}_v2", changed, moment)
                )
        campaigns: list[CampaignVersion] = []
        plans: list[_Campaign] = []
        for campaign_id in range(1, campaign_count + 1):
            name = f"{rng.choice(_CAMPAIGN_THEMES)} #{campaign_id}"
            campaigns.append(CampaignVersion(spec.tenant_id, campaign_id, name, _before(rng, start_ms)))
            roll = rng.random()
            if roll < _RENAME_SHARE:
                renamed = f"{name} (renamed)"
                campaigns.append(CampaignVersion(spec.tenant_id, campaign_id, renamed, _inside(rng, start_ms, end_ms)))
            elif roll < _RENAME_SHARE + _TOUCH_SHARE:
                campaigns.append(CampaignVersion(spec.tenant_id, campaign_id, name, _inside(rng, start_ms, end_ms)))
            used = rng.sample(range(1, template_count + 1), k=min(template_count, rng.randint(1, 3)))
            plans.append(_Campaign(campaign_id, rng.choices(CHANNELS, weights=_CHANNEL_WEIGHTS)[0], tuple(used)))
        # A few campaigns carry most messages.
        weights = [1.0 / rank for rank in range(1, campaign_count + 1)]
        rng.shuffle(weights)
        campaigns.sort(key=lambda version: (version.updated_at, version.campaign_id))
        templates.sort(key=lambda version: (version.updated_at, version.template_id))
        return cls(campaigns, templates, plans, list(itertools.accumulate(weights)))


def _before(rng: random.Random, start_ms: int) -> datetime:
    """Return a whole-second instant up to 60 days before ``start_ms``."""
    return _EPOCH + timedelta(seconds=start_ms // 1000 - rng.randint(3600, 60 * 86_400))


def _inside(rng: random.Random, start_ms: int, end_ms: int) -> datetime:
    """Return a whole-second instant in ``[start_ms, end_ms)`` (``start_ms`` when the window is shorter)."""
    low, high = math.ceil(start_ms / 1000), (end_ms - 1) // 1000
    return _EPOCH + timedelta(seconds=rng.randint(low, high) if high >= low else start_ms / 1000)


def _iter_send_times(rng: random.Random, count: int, start_ms: int, end_ms: int) -> Iterator[int]:
    """Yield ``count`` millisecond instants in ``[start_ms, end_ms)``, ascending, busier in the daytime.

    Counts per hour are drawn first (memory per hour, not per message), then the instants inside each hour.
    """
    if count == 0:
        return
    first_hour = start_ms - start_ms % _HOUR_MS
    hours = (end_ms - first_hour + _HOUR_MS - 1) // _HOUR_MS

    def span(hour: int) -> tuple[int, int]:
        low = first_hour + hour * _HOUR_MS
        return max(low, start_ms), min(low + _HOUR_MS, end_ms)

    day_factor: dict[int, float] = {}

    def weight(hour: int) -> float:
        day = (first_hour // _HOUR_MS + hour) // 24
        if day not in day_factor:
            day_factor[day] = rng.lognormvariate(0.0, 0.3)
        low, high = span(hour)
        return day_factor[day] * _HOUR_FACTOR[(first_hour // _HOUR_MS + hour) % 24] * (high - low)

    cumulative = list(itertools.accumulate(weight(hour) for hour in range(hours)))
    day_factor.clear()
    counts = array("q", bytes(8 * hours))
    remaining = count
    while remaining:
        chunk = min(remaining, _CHOICE_CHUNK)
        for index in rng.choices(range(hours), cum_weights=cumulative, k=chunk):
            counts[index] += 1
        remaining -= chunk
    for hour, drawn in enumerate(counts):
        if drawn:
            low, high = span(hour)
            yield from sorted(rng.randrange(low, high) for _ in range(drawn))


def _seconds_between(rng: random.Random, bounds: tuple[float, float]) -> float:
    """Return a log-uniform draw in ``bounds`` (seconds): as many waits of minutes as of hours."""
    return math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))


def _receipt_lag_ms(rng: random.Random) -> int:
    if rng.random() < _CARRIER_BATCH_SHARE:
        return int(rng.uniform(*_CARRIER_BATCH_RANGE_S) * 1000)
    return int(rng.expovariate(1.0 / _RECEIPT_LAG_MEAN_S) * 1000) + 1


def _message_events(
    rng: random.Random, plan: _MasterPlan, tenant_id: str, number: int, sent_ms: int
) -> list[MessageEvent]:
    """Return one message's events: sent, then its receipts, each with its arrival (and a rare second arrival)."""
    campaign = plan.plans[rng.choices(range(len(plan.plans)), cum_weights=plan.cum_weights)[0]]
    channel = campaign.channel if rng.random() < 0.85 else rng.choice(CHANNELS)
    template_id = rng.choice(campaign.template_ids)
    profile = _PROFILES[channel]
    message_id = f"msg-{number:010d}"
    if rng.random() < _SENT_BACKLOG_SHARE:
        sent_lag = int(rng.uniform(*_SENT_BACKLOG_RANGE_S) * 1000)
    else:
        sent_lag = int(rng.expovariate(1.0 / _SENT_LAG_MEAN_S) * 1000)
    events = [
        MessageEvent(
            tenant_id, message_id, "sent", sent_ms, sent_ms + sent_lag, campaign.campaign_id, template_id, channel, None
        )
    ]
    roll = rng.random()
    if roll < profile.fail_share:
        code = rng.choices(profile.errors, weights=profile.error_weights)[0]
        if code == "expired":
            after = int(_seconds_between(rng, _EXPIRY_RANGE_S) * 1000)
        else:
            after = min(_MAX_LATENCY_MS, int(rng.lognormvariate(math.log(2.0), _LATENCY_SIGMA) * 1000) + 1)
        at = sent_ms + after
        events.append(MessageEvent(tenant_id, message_id, "failed", at, at + _receipt_lag_ms(rng), *_NO_SENT, code))
    elif roll < profile.fail_share + profile.no_receipt_share:
        pass  # the receipt never comes
    else:
        if rng.random() < _DEFERRED_SHARE:
            latency = int(_seconds_between(rng, _DEFERRED_RANGE_S) * 1000)
        else:
            latency = int(rng.lognormvariate(math.log(profile.median_latency_s), _LATENCY_SIGMA) * 1000) + 1
        delivered_ms = sent_ms + min(latency, _MAX_LATENCY_MS)
        lag = _receipt_lag_ms(rng)
        events.append(
            MessageEvent(tenant_id, message_id, "delivered", delivered_ms, delivered_ms + lag, *_NO_SENT, None)
        )
        if rng.random() < profile.read_share:
            read_after = int(rng.lognormvariate(math.log(_READ_MEDIAN_S), 1.5) * 1000) + 1
            read_ms = delivered_ms + min(read_after, _MAX_READ_MS)
            arrival = max(read_ms + _receipt_lag_ms(rng), delivered_ms + lag)
            events.append(MessageEvent(tenant_id, message_id, "read", read_ms, arrival, *_NO_SENT, None))
    for event in list(events):
        if rng.random() < _REDELIVERY_SHARE:
            again = event.arrival_ms + int(rng.uniform(*_REDELIVERY_RANGE_S) * 1000)
            events.append(event._replace(arrival_ms=again))
    return events
