"""Response models of the API's read-only routes: the catalog and the caller's tenant record."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from tenant_analytics.errors import InvalidQuery
from tenant_analytics.query.catalog import CATALOG
from tenant_analytics.tenants.models import Tenant


class MeasureInfo(BaseModel):
    name: str
    aggregation: str
    additive: bool
    description: str


class MemberInfo(BaseModel):
    name: str
    description: str


class TimeDimensionInfo(BaseModel):
    name: str
    granularities: list[str]


class RollupInfo(BaseModel):
    """A pre-aggregated table that answers the dataset's queries it covers (the planner picks the smallest)."""

    name: str
    granularity: str
    dimensions: list[str]
    measures: list[str]


class DatasetInfo(BaseModel):
    name: str
    description: str
    measures: list[MeasureInfo]
    dimensions: list[MemberInfo]
    time_dimensions: list[TimeDimensionInfo]
    rollups: list[RollupInfo] = Field(default_factory=list)


class Catalog(BaseModel):
    datasets: list[DatasetInfo]


class TenantInfo(BaseModel):
    tenant_id: str
    tier: str
    status: str
    size_rows: int
    data_version: int
    loaded_through: datetime | None
    lag_seconds: int | None


class RealtimeBin(BaseModel):
    bin_start: datetime
    value: str | None = None
    n: int


class RealtimeAnswer(BaseModel):
    """The calling tenant's 10-second bins of one metric over the last minutes."""

    metric: str
    dimension: str | None
    since: datetime
    bins: list[RealtimeBin]


LAST_PATTERN = r"^[1-9][0-9]{0,4}[smh]$"
MAX_LAST_SECONDS = 24 * 3600


def parse_last(last: str) -> timedelta:
    """``90s``, ``15m``, ``2h`` -> a duration of at most a day; raise InvalidQuery naming ``last`` otherwise (the
    code the route's own parameter check gives)."""
    if not re.fullmatch(LAST_PATTERN, last):
        raise InvalidQuery(f"'last' must look like 30s, 15m or 2h, got {last!r}", field="last")
    seconds = int(last[:-1]) * {"s": 1, "m": 60, "h": 3600}[last[-1]]
    if seconds > MAX_LAST_SECONDS:
        raise InvalidQuery(f"'last' may cover at most 24h, got {last}", field="last")
    return timedelta(seconds=seconds)


def catalog_document() -> Catalog:
    """The catalog as the API publishes it."""
    return Catalog(
        datasets=[
            DatasetInfo(
                name=ds.name,
                description=ds.description,
                measures=[
                    MeasureInfo(name=m.name, aggregation=m.aggregation, additive=m.additive, description=m.description)
                    for m in ds.measures.values()
                ],
                dimensions=[MemberInfo(name=d.name, description=d.description) for d in ds.dimensions.values()],
                time_dimensions=[
                    TimeDimensionInfo(name=t.name, granularities=list(t.granularities))
                    for t in ds.time_dimensions.values()
                ],
                rollups=[
                    RollupInfo(
                        name=r.name, granularity=r.granularity, dimensions=list(r.dimensions), measures=list(r.measures)
                    )
                    for r in ds.rollups
                ],
            )
            for ds in CATALOG.values()
        ]
    )


def tenant_info(tenant: Tenant, now: datetime | None = None) -> TenantInfo:
    """What a tenant may know about itself (never its store or source credentials)."""
    lag = None
    if tenant.loaded_through is not None:
        lag = max(0, int(((now or datetime.now(UTC)) - tenant.loaded_through).total_seconds()))
    return TenantInfo(
        tenant_id=tenant.tenant_id,
        tier=tenant.tier.value,
        status=tenant.status.value,
        size_rows=tenant.size_rows,
        data_version=tenant.data_version,
        loaded_through=tenant.loaded_through,
        lag_seconds=lag,
    )
