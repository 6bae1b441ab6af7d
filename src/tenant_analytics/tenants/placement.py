"""Placement: which store a new tenant goes to, by the capacity model of DESIGN.md section 4."""

from __future__ import annotations

from dataclasses import dataclass

from tenant_analytics.errors import NoCapacity
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.models import Tier


@dataclass(frozen=True)
class StoreLoad:
    """How full a store is now."""

    store: str
    tenants: int
    rows: int


def choose_tier(expected_rows: int, budgets: PlacementBudgets, requested: Tier | None = None) -> Tier:
    """Return the tier a tenant belongs on: the requested one, else Redshift past the size threshold."""
    if requested is not None:
        return requested
    return Tier.REDSHIFT if expected_rows >= budgets.redshift_threshold_rows else Tier.AURORA


def choose_store(
    tier: Tier,
    expected_rows: int,
    stores: dict[str, StoreConfig],
    loads: dict[str, StoreLoad],
    budgets: PlacementBudgets,
) -> str:
    """Return the store of the given tier with the most headroom that can still take the tenant.

    Aurora clusters are bounded by tenants and rows per cluster; headroom is the smaller of the two
    remaining fractions. Raises NoCapacity when no store of the tier fits.
    """
    candidates = sorted(store_id for store_id, cfg in stores.items() if cfg.tier == tier.value)
    if not candidates:
        raise NoCapacity(f"no {tier.value} store is configured (configured stores: {sorted(stores) or 'none'})")
    best: tuple[float, str] | None = None
    for store_id in candidates:
        load = loads.get(store_id, StoreLoad(store_id, 0, 0))
        if tier is Tier.AURORA:
            tenants_left = budgets.tenants_per_cluster - load.tenants
            rows_left = budgets.rows_per_cluster - load.rows
            if tenants_left < 1 or rows_left < expected_rows:
                continue
            headroom = min(tenants_left / budgets.tenants_per_cluster, rows_left / budgets.rows_per_cluster)
        else:
            headroom = -float(load.rows)
        if best is None or headroom > best[0]:
            best = (headroom, store_id)
    if best is None:
        raise NoCapacity(
            f"every {tier.value} store is full (budget {budgets.tenants_per_cluster} tenants and "
            f"{budgets.rows_per_cluster} rows per cluster): add a cluster to the configuration"
        )
    return best[1]
