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


@dataclass(frozen=True)
class Dimension:
    name: str
    column: str
    description: str = ""


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

CATALOG: dict[str, Dataset] = {TICKETS.name: TICKETS}
