"""The semantic catalog: datasets with their measures, dimensions, time dimensions and the rollups that serve them.

Identifiers and expressions in generated SQL come only from here, never from the caller. A rollup is a model
(``tenant_analytics/models/sql``) whose rows pre-aggregate the dataset: it can answer a query when it holds every
requested dimension and filtered dimension, its time grain divides the requested one and the range is aligned to
it, and every measure is additive (summed) or a ratio of additive measures it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar


@dataclass(frozen=True)
class Measure:
    name: str
    aggregation: Literal["count", "sum", "min", "max", "count_distinct", "ratio"]
    column: str | None = None  # None for count(*)
    additive: bool = True
    description: str = ""
    metric: str | None = None  # in a metric table (realtime bins): sum ``column`` over rows of this metric only
    condition: str | None = None  # count: only rows where this (catalog-defined SQL) holds
    ratio: tuple[str, str] | None = None  # ratio: numerator and denominator measures (each additive)


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str
    description: str = ""
    json_key: str | None = None  # the value is ``column ->> json_key`` (a jsonb column of dimensions)
    null_as: str | None = None  # a missing value reads as this (rollup keys cannot be null)
    kind: Literal["text", "integer"] = "text"  # what a filter's values must be


@dataclass(frozen=True)
class Rollup:
    """A model that pre-aggregates a dataset: its time bucket column and grain, and where each member lives."""

    name: str  # the model's name; also its table in the ``models`` schema
    granularity: str  # the grain of ``time_column`` (its rows hold bucket starts)
    time_column: str
    dimensions: dict[str, str]  # dimension name -> column of the rollup
    measures: dict[str, str]  # additive measure name -> column of the rollup (summed)
    schema: str = "models"


@dataclass(frozen=True)
class TimeDimension:
    name: str
    column: str
    granularities: tuple[str, ...] = ("minute", "hour", "day", "week", "month")


@dataclass(frozen=True)
class Dataset:
    name: str
    schema: str
    table: str
    measures: dict[str, Measure]
    dimensions: dict[str, Dimension]
    time_dimensions: dict[str, TimeDimension]
    description: str = ""
    tenant_column: str = "tenant_id"
    rollups: tuple[Rollup, ...] = field(default_factory=tuple)  # smallest first: the planner takes the first that fits
    base_filter: str | None = None  # catalog-defined SQL every base-table row must satisfy
    store: Literal["tenant", "realtime"] = "tenant"  # the tenant's own store, or the store of the realtime bins
    metric_column: str | None = None  # set for metric tables: rows are restricted to the requested metrics


_T = TypeVar("_T", Measure, Dimension, TimeDimension)


def _index(*items: _T) -> dict[str, _T]:
    return {item.name: item for item in items}


_DONE = "status IN ('solved', 'closed')"
_TICKET_MEASURES = {m: m for m in ("tickets_created", "tickets_solved", "tickets_unresolved", "tickets_assigned")}
_TICKET_DIMENSIONS = {"channel": "channel", "priority": "priority"}

TICKETS = Dataset(
    name="tickets",
    schema="support",
    table="tickets",
    description="Support tickets, one current row per ticket.",
    measures=_index(
        Measure("tickets_created", "count", description="tickets created in the period"),
        Measure("tickets_solved", "count", condition=_DONE, description="of those, solved or closed now"),
        Measure(
            "tickets_unresolved", "count", condition=f"status IS NULL OR NOT {_DONE}", description="of those, open now"
        ),
        Measure("tickets_assigned", "count", condition="assignee_id IS NOT NULL", description="of those, assigned"),
        Measure(
            "solve_rate",
            "ratio",
            additive=False,
            ratio=("tickets_solved", "tickets_created"),
            description="tickets_solved / tickets_created",
        ),
        Measure("requesters", "count_distinct", "requester_id", additive=False, description="distinct requesters"),
    ),
    dimensions=_index(
        Dimension("channel", "channel", "where the ticket came from (email, web, chat, ...)", null_as="unknown"),
        Dimension("priority", "priority", null_as="none"),
        Dimension("status", "status", "current status"),
        Dimension("group", "group_name", "the group the ticket is routed to"),
        Dimension("organization", "organization_name", "the requester's organization"),
    ),
    time_dimensions=_index(TimeDimension("created_at", "created_at")),
    rollups=(
        Rollup("tickets_monthly", "month", "month", _TICKET_DIMENSIONS, _TICKET_MEASURES),
        Rollup("tickets_daily", "day", "day", _TICKET_DIMENSIONS, _TICKET_MEASURES),
    ),
)

_MESSAGE_MEASURES = {
    "messages_sent": "sent",
    "messages_delivered": "delivered",
    "messages_read": "opened",
    "messages_failed": "failed",
}
_LATENCY_BOUNDS_S = (1, 5, 30, 60, 300, 3600)  # the delivery-latency histogram's buckets (cumulative)
_LATENCY_MEASURES = {f"delivered_within_{s}s": f"latency_le_{s}s" for s in _LATENCY_BOUNDS_S}

MESSAGES = Dataset(
    name="messages",
    schema="models",
    table="message_status",
    description="Messages sent, one row per message with its delivery receipts (sends and receipts joined by id).",
    measures=_index(
        Measure("messages_sent", "count", description="messages sent in the period"),
        Measure("messages_delivered", "count", condition="delivered_at IS NOT NULL", description="of those, delivered"),
        Measure("messages_read", "count", condition="read_at IS NOT NULL", description="of those, read"),
        Measure("messages_failed", "count", condition="failed_at IS NOT NULL", description="of those, failed"),
        *(
            Measure(
                name,
                "count",
                condition=f"delivered_at <= sent_at + INTERVAL '{seconds} seconds'",
                description=f"of those, delivered within {seconds} s (a cumulative latency histogram)",
            )
            for seconds, name in zip(_LATENCY_BOUNDS_S, _LATENCY_MEASURES, strict=True)
        ),
        Measure(
            "delivery_rate",
            "ratio",
            additive=False,
            ratio=("messages_delivered", "messages_sent"),
            description="messages_delivered / messages_sent",
        ),
        Measure(
            "read_rate",
            "ratio",
            additive=False,
            ratio=("messages_read", "messages_delivered"),
            description="messages_read / messages_delivered",
        ),
    ),
    dimensions=_index(
        Dimension("channel", "channel", "sms, email, push or whatsapp", null_as="unknown"),
        Dimension("campaign_id", "campaign_id", "the campaign the message belongs to", kind="integer"),
    ),
    time_dimensions=_index(TimeDimension("sent_at", "sent_at")),
    # a receipt whose send has not landed yet is no sent message; every send names its campaign
    base_filter="sent_at IS NOT NULL AND campaign_id IS NOT NULL",
    rollups=(
        Rollup("tenant_daily", "day", "day", {}, {**_MESSAGE_MEASURES, **_LATENCY_MEASURES}),
        Rollup(
            "campaign_daily", "day", "day", {"campaign_id": "campaign_id"}, {**_MESSAGE_MEASURES, **_LATENCY_MEASURES}
        ),
        Rollup(
            "campaign_channel_hourly",
            "hour",
            "hour",
            {"campaign_id": "campaign_id", "channel": "channel"},
            {**_MESSAGE_MEASURES, **_LATENCY_MEASURES},
        ),
    ),
)


def realtime_dataset() -> Dataset:
    """The change stream's 10-second bins: one measure per configured metric, its dimensions, bin_start."""
    from tenant_analytics.cdc.config import load_config

    metrics = load_config().metric_dimensions()
    dimensions = sorted({d for dims in metrics.values() for d in dims})
    return Dataset(
        name="realtime",
        schema="realtime",
        table="bins",
        description="Counts of changes from the product databases' change stream, in 10-second bins.",
        measures=_index(
            *(
                Measure(name, "sum", "n", description=f"changes counted as {name}", metric=name)
                for name in sorted(metrics)
            )
        ),
        dimensions=_index(*(Dimension(d, "dimensions", json_key=d) for d in dimensions)),
        time_dimensions=_index(
            TimeDimension("bin_start", "bin_start", granularities=("10s", "minute", "hour", "day", "week", "month"))
        ),
        store="realtime",
        metric_column="metric",
    )


REALTIME = realtime_dataset()
CATALOG: dict[str, Dataset] = {TICKETS.name: TICKETS, MESSAGES.name: MESSAGES, REALTIME.name: REALTIME}
