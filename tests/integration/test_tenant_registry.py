"""TenantRegistry on DynamoDB (moto): add, list, get, set status, placement, data_version."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from tenant_analytics.errors import InvalidInput, NoCapacity, TenantExists, UnknownTenant
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.models import TenantStatus, Tier
from tenant_analytics.tenants.registry import TenantRegistry

STORES = {
    "aurora-1": StoreConfig(engine="postgres", tier="aurora", dsn="postgresql://a"),
    "aurora-2": StoreConfig(engine="postgres", tier="aurora", dsn="postgresql://b"),
    "redshift-1": StoreConfig(engine="redshift", tier="redshift", workgroup_name="wg"),
}


@pytest.fixture
def registry() -> Iterator[TenantRegistry]:
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="tenants",
            KeySchema=[{"AttributeName": "tenant_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "tenant_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield TenantRegistry(
            ddb, "tenants", STORES, PlacementBudgets(tenants_per_cluster=2, redshift_threshold_rows=1000)
        )


def test_tenants_spread_over_clusters_by_headroom_until_full(registry: TenantRegistry) -> None:
    stores = [registry.add(f"t{i}", f"https://src/t{i}").store for i in range(4)]
    assert sorted(stores) == ["aurora-1", "aurora-1", "aurora-2", "aurora-2"]
    with pytest.raises(NoCapacity, match="every aurora store is full"):
        registry.add("t5", "https://src/t5")


def test_size_threshold_and_explicit_tier(registry: TenantRegistry) -> None:
    assert registry.add("large", "https://src/large", expected_rows=5000).tier is Tier.REDSHIFT
    assert registry.add("chosen", "https://src/c", tier=Tier.REDSHIFT).store == "redshift-1"


def test_get_list_status_and_versions(registry: TenantRegistry) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    registry.add("acme", "https://src/acme/", since=since)
    registry.add("beta", "https://src/beta")
    assert registry.get("acme").source_url == "https://src/acme" and registry.get("acme").since == since
    assert [t.tenant_id for t in registry.list()] == ["acme", "beta"]

    failed = registry.set_status("beta", TenantStatus.FAILED, error="export: boom")
    assert failed.status is TenantStatus.FAILED and failed.last_error == "export: boom"
    assert [t.tenant_id for t in registry.list(status=TenantStatus.ACTIVE)] == ["acme"]

    loaded = registry.record_load("beta", size_rows=10, loaded_through=since)
    again = registry.record_load("beta", size_rows=12, loaded_through=since)
    assert (loaded.data_version, again.data_version) == (1, 2)
    assert again.status is TenantStatus.ACTIVE and again.last_error is None and again.size_rows == 12


def test_bad_input_is_rejected_with_a_reason(registry: TenantRegistry) -> None:
    registry.add("acme", "https://src/acme")
    with pytest.raises(TenantExists, match="'acme' is already registered"):
        registry.add("acme", "https://src/other")
    with pytest.raises(InvalidInput, match="tenant id 'Bad Id!' is not allowed"):
        registry.add("Bad Id!", "https://src/x")
    with pytest.raises(InvalidInput, match="must start with http"):
        registry.add("okay", "ftp://src/x")
    with pytest.raises(UnknownTenant, match="'ghost' is not registered"):
        registry.get("ghost")
    with pytest.raises(UnknownTenant):
        registry.set_status("ghost", TenantStatus.SUSPENDED)
