"""TenantRegistry on DynamoDB (moto): add, list, get, set status, placement, data_version, API keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws
from registry_tables import create_tenants_table

from tenant_analytics.errors import InvalidInput, NoCapacity, TenantExists, UnknownTenant
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.api_keys import UsagePlanKeys
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
        create_tenants_table(ddb)
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
    with pytest.raises(InvalidInput, match=r"tenant id 'okay\\n' is not allowed: use 2-63 characters"):
        registry.add("okay\n", "https://src/x")  # "$" alone would let the newline through
    with pytest.raises(InvalidInput, match="must start with http"):
        registry.add("okay", "ftp://src/x")
    with pytest.raises(UnknownTenant, match="'ghost' is not registered"):
        registry.get("ghost")
    with pytest.raises(UnknownTenant):
        registry.set_status("ghost", TenantStatus.SUSPENDED)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"source_url": "http://"}, "source_url", "source URL 'http://' names no host"),
        ({"source_url": "https://:8080/api"}, "source_url", "names no host"),
        ({"source_url": "https://src/a b"}, "source_url", "contains spaces or control characters"),
        ({"source_url": "https://src\n/x"}, "source_url", "contains spaces or control characters"),
        ({"source_url": "https://src:99999/x"}, "source_url", "has an invalid port"),
        ({"since": datetime(2999, 1, 1, tzinfo=UTC)}, "since", "since 2999-01-01T00:00:00\\+00:00 lies in the future"),
        ({"since": datetime(2026, 1, 1)}, "since", "needs a UTC offset"),
        ({"credentials_secret": "other/secret"}, "credentials_secret", "cannot be read by the export function"),
        ({"credentials_secret": ""}, "credentials_secret", "credentials secret '' cannot be read"),
        ({"credentials_secret": "tenant-analytics/sources/"}, "credentials_secret", "name a secret under"),
        ({"credentials_secret": "x/tenant-analytics/sources/acme"}, "credentials_secret", "name a secret under"),
    ],
)
def test_a_registration_the_platform_could_not_serve_is_refused_naming_the_field(
    registry: TenantRegistry, kwargs: dict[str, Any], field: str, message: str
) -> None:
    # When a tenant is registered with a source URL without a host, a future start or an unreadable secret
    with pytest.raises(InvalidInput, match=message) as err:
        registry.add("acme", **{"source_url": "https://src/acme", **kwargs})
    # Then the field is named and nothing was registered
    assert err.value.field == field
    assert registry.list() == []


def test_a_secret_under_the_sources_prefix_and_a_past_start_are_accepted(registry: TenantRegistry) -> None:
    secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tenant-analytics/sources/beta-AbC123"
    acme = registry.add(
        "acme",
        "https://user@src.example.com:8443/api",
        since=datetime(2026, 1, 1, tzinfo=UTC),
        credentials_secret="tenant-analytics/sources/acme",
    )
    beta = registry.add("beta", "http://127.0.0.1:9000", credentials_secret=secret_arn)
    assert (acme.credentials_secret, beta.credentials_secret) == ("tenant-analytics/sources/acme", secret_arn)


def test_an_id_that_cannot_be_a_tenant_is_not_registered(registry: TenantRegistry) -> None:
    # Looked up without asking DynamoDB, which refuses an empty key outright
    for tenant_id in ("", "Bad!", "x" * 3000):
        with pytest.raises(UnknownTenant, match="is not registered"):
            registry.get(tenant_id)


@pytest.fixture
def keyed_registry() -> Iterator[tuple[TenantRegistry, object, dict[str, str]]]:
    """A registry that gives each new tenant an API key on its tier's usage plan (moto API Gateway)."""
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        create_tenants_table(ddb)
        apigw = boto3.client("apigateway", region_name="us-east-1")
        plan_ids = {
            name: apigw.create_usage_plan(name=name, throttle={"rateLimit": rate, "burstLimit": rate * 2})["id"]
            for name, rate in (("standard", 25), ("large", 100))
        }
        registry = TenantRegistry(
            ddb,
            "tenants",
            STORES,
            PlacementBudgets(tenants_per_cluster=2, redshift_threshold_rows=1000),
            api_keys=UsagePlanKeys(apigw, plan_ids),
        )
        yield registry, apigw, plan_ids


def _plan_members(apigw: Any, plan_id: str) -> set[str]:
    return {key["id"] for key in apigw.get_usage_plan_keys(usagePlanId=plan_id)["items"]}


def test_a_new_tenant_gets_an_api_key_on_its_tiers_usage_plan(keyed_registry: tuple[Any, Any, Any]) -> None:
    registry, apigw, plan_ids = keyed_registry
    # When a pooled tenant and a Redshift tenant are registered
    acme = registry.add("acme", "https://src/acme")
    bigco = registry.add("bigco", "https://src/bigco", tier=Tier.REDSHIFT)
    # Then each has its own key, attached to the plan of its tier only
    assert (acme.usage_plan, bigco.usage_plan) == ("standard", "large")
    assert _plan_members(apigw, plan_ids["standard"]) == {acme.api_key_id}
    assert _plan_members(apigw, plan_ids["large"]) == {bigco.api_key_id}
    # And the key's value is kept in the registry (for the authorizer) but left out of the record's dumps
    stored = registry.get("acme")
    assert stored.api_key_value == apigw.get_api_key(apiKey=acme.api_key_id, includeValue=True)["value"]
    assert stored.api_key_value != registry.get("bigco").api_key_value
    assert "api_key_value" not in stored.model_dump() and stored.api_key_value not in stored.model_dump_json()
    assert stored.api_key_value not in repr(stored)


def test_a_refused_registration_leaves_no_key_behind(keyed_registry: tuple[Any, Any, Any]) -> None:
    registry, apigw, _ = keyed_registry
    registry.add("acme", "https://src/acme")
    # When the same id is registered again
    with pytest.raises(TenantExists):
        registry.add("acme", "https://src/other")
    # Then no second key exists
    assert len(apigw.get_api_keys()["items"]) == 1


def test_a_missing_usage_plan_is_named_and_nothing_is_registered() -> None:
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        create_tenants_table(ddb)
        apigw = boto3.client("apigateway", region_name="us-east-1")
        standard = apigw.create_usage_plan(name="standard")["id"]
        registry = TenantRegistry(
            ddb, "tenants", STORES, PlacementBudgets(), api_keys=UsagePlanKeys(apigw, {"standard": standard})
        )
        # When a Redshift tenant is registered but only the standard plan is configured
        with pytest.raises(InvalidInput, match="no usage plan 'large' is configured"):
            registry.add("bigco", "https://src/bigco", tier=Tier.REDSHIFT)
        # Then neither a key nor a record was made
        assert apigw.get_api_keys()["items"] == []
        with pytest.raises(UnknownTenant):
            registry.get("bigco")


def test_without_usage_plans_a_tenant_has_no_key(registry: TenantRegistry) -> None:
    tenant = registry.add("acme", "https://src/acme")
    assert (tenant.api_key_id, tenant.usage_plan, registry.get("acme").api_key_value) == (None, None, None)


def test_ensure_api_key_backfills_a_keyless_tenant_and_follows_a_tier_change(
    keyed_registry: tuple[TenantRegistry, Any, dict[str, str]],
) -> None:
    registry, apigw, plan_ids = keyed_registry
    # Given a tenant registered before usage plans were configured (no key)
    keyless = TenantRegistry(boto3.resource("dynamodb", region_name="us-east-1"), "tenants", STORES, PlacementBudgets())
    keyless.add("acme", "https://src/acme")
    # When it is given its key
    acme = registry.ensure_api_key("acme")
    # Then the key is on the standard plan and kept in the registry; asking again changes nothing
    assert acme.usage_plan == "standard" and _plan_members(apigw, plan_ids["standard"]) == {acme.api_key_id}
    assert registry.get("acme").api_key_value
    assert registry.ensure_api_key("acme").api_key_id == acme.api_key_id
    assert len(apigw.get_api_keys()["items"]) == 1
    # When the tenant has moved to the Redshift tier
    boto3.resource("dynamodb", region_name="us-east-1").Table("tenants").update_item(
        Key={"tenant_id": "acme"}, UpdateExpression="SET tier = :t", ExpressionAttributeValues={":t": "redshift"}
    )
    moved = registry.ensure_api_key("acme")
    # Then the same key now belongs to the large plan only
    assert moved.usage_plan == "large" and moved.api_key_id == acme.api_key_id
    assert _plan_members(apigw, plan_ids["large"]) == {acme.api_key_id}
    assert _plan_members(apigw, plan_ids["standard"]) == set()


def test_a_runs_outcome_sets_the_status_only_of_tenants_the_runs_own(registry: TenantRegistry) -> None:
    since = datetime(2026, 1, 1, 1, tzinfo=UTC)
    for tenant_id in ("acme", "beta", "gamma"):
        registry.add(tenant_id, f"https://src/{tenant_id}")
    # Given acme suspended and gamma moving to another store while their runs were in flight
    registry.set_status("acme", TenantStatus.SUSPENDED)
    registry.set_status("gamma", TenantStatus.MIGRATING)

    # When the runs' outcomes are recorded
    acme = registry.record_load("acme", size_rows=5, loaded_through=since)
    gamma = registry.record_failure("gamma", "load: connection reset")
    beta = registry.record_failure("beta", "export: 503")

    # Then the data and the errors are recorded, but the operator's statuses stand (no run resumes them)
    assert (acme.status, acme.data_version, acme.size_rows) == (TenantStatus.SUSPENDED, 1, 5)
    assert (gamma.status, gamma.last_error) == (TenantStatus.MIGRATING, "load: connection reset")
    assert registry.get("acme").status is TenantStatus.SUSPENDED
    # while a tenant the runs own moves between active and failed as before
    assert (beta.status, beta.last_error) == (TenantStatus.FAILED, "export: 503")
    fresh = registry.record_fresh("beta", loaded_through=since)
    assert (fresh.status, fresh.last_error, fresh.data_version) == (TenantStatus.ACTIVE, None, 0)
    with pytest.raises(UnknownTenant):
        registry.record_failure("ghost", "load: boom")
