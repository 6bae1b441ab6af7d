"""The semantic catalog: datasets with their measures, dimensions and time dimensions.

Identifiers in generated SQL come only from here, never from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar


@dataclass(frozen=True)
class Measure:
    name: str
    aggregation: Literal["count", "sum", "min", "max", "count_distinct"]
    column: str | None = None  # None for count(*)
    additive: bool = True
    description: str = ""
    metric: str | None = None  # in a metric table (realtime bins): sum ``column`` over rows of this metric only


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str
    description: str = ""
    json_key: str | None = None  # the value is ``column ->> json_key`` (a jsonb column of dimensions)


@dataclass(frozen=True)
class TimeDimension:
    name: str
    column: str
    granularities: tuple[str, ...] = ("hour", "day", "week", "month")


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
    rollups: tuple[str, ...] = field(default_factory=tuple)
    store: Literal["tenant", "realtime"] = "tenant"  # the tenant's own store, or the store of the realtime bins
    metric_column: str | None = None  # set for metric tables: rows are restricted to the requested metrics


_T = TypeVar("_T", Measure, Dimension, TimeDimension)


def _index(*items: _T) -> dict[str, _T]:
    return {item.name: item for item in items}


TICKETS = Dataset(
    name="tickets",
    schema="support",
    table="tickets",
    description="Support tickets, one current row per ticket.",
    measures=_index(
        Measure("tickets_created", "count", description="tickets created in the period"),
        Measure("requesters", "count_distinct", "requester_id", additive=False, description="distinct requesters"),
    ),
    dimensions=_index(
        Dimension("channel", "channel", "where the ticket came from (email, web, chat, ...)"),
        Dimension("priority", "priority"),
        Dimension("status", "status", "current status"),
    ),
    time_dimensions=_index(TimeDimension("created_at", "created_at")),
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
CATALOG: dict[str, Dataset] = {TICKETS.name: TICKETS, REALTIME.name: REALTIME}
