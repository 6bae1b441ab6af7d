"""Placement: the cluster with most headroom, budgets respected, the size threshold picks the tier."""

from __future__ import annotations

import pytest

from tenant_analytics.errors import NoCapacity
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.models import Tier
from tenant_analytics.tenants.placement import StoreLoad, choose_store, choose_tier

STORES = {
    "aurora-1": StoreConfig(engine="postgres", tier="aurora", dsn="postgresql://a"),
    "aurora-2": StoreConfig(engine="postgres", tier="aurora", dsn="postgresql://b"),
    "redshift-1": StoreConfig(engine="redshift", tier="redshift", workgroup_name="wg"),
}


def test_new_tenant_goes_to_the_cluster_with_most_headroom() -> None:
    budgets = PlacementBudgets(tenants_per_cluster=10, rows_per_cluster=1000)
    loads = {"aurora-1": StoreLoad("aurora-1", 3, 100), "aurora-2": StoreLoad("aurora-2", 5, 100)}
    assert choose_store(Tier.AURORA, 10, STORES, loads, budgets) == "aurora-1"
    # rows count too: aurora-1 is nearly full of rows
    loads["aurora-1"] = StoreLoad("aurora-1", 3, 950)
    assert choose_store(Tier.AURORA, 10, STORES, loads, budgets) == "aurora-2"


def test_full_clusters_are_skipped_and_all_full_is_an_error() -> None:
    budgets = PlacementBudgets(tenants_per_cluster=2, rows_per_cluster=1000)
    loads = {"aurora-1": StoreLoad("aurora-1", 2, 0), "aurora-2": StoreLoad("aurora-2", 1, 0)}
    assert choose_store(Tier.AURORA, 0, STORES, loads, budgets) == "aurora-2"
    loads["aurora-2"] = StoreLoad("aurora-2", 2, 0)
    with pytest.raises(NoCapacity, match="every aurora store is full"):
        choose_store(Tier.AURORA, 0, STORES, loads, budgets)


def test_size_threshold_assigns_redshift_unless_a_tier_is_requested() -> None:
    budgets = PlacementBudgets(redshift_threshold_rows=1_000)
    assert choose_tier(999, budgets) is Tier.AURORA
    assert choose_tier(1_000, budgets) is Tier.REDSHIFT
    assert choose_tier(5_000, budgets, Tier.AURORA) is Tier.AURORA
