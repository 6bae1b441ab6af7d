"""The data_version a container keeps: hits never wait for the registry, and the bound on staleness holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tenant_analytics.errors import UnknownTenant
from tenant_analytics.query.contract import parse_query
from tenant_analytics.query.service import QueryService
from tenant_analytics.query.versions import TenantSnapshots
from tenant_analytics.tenants.models import Tenant, Tier

NOW = datetime(2026, 1, 3, 12, tzinfo=UTC)
DAILY = parse_query({"dataset": "tickets", "measures": ["tickets_created"], "dimensions": ["channel"]})
BOUND_MS = 1000


class FakeClock:
    def __init__(self) -> None:
        self.seconds = 100.0

    def __call__(self) -> float:
        return self.seconds

    def advance_ms(self, ms: float) -> None:
        self.seconds += ms / 1000


@dataclass
class FakeRegistry:
    """Tenant records by id; counts reads, as the registry table would be read."""

    versions: dict[str, int]
    reads: int = 0

    def get(self, tenant_id: str) -> Tenant:
        self.reads += 1
        if tenant_id not in self.versions:
            raise UnknownTenant(tenant_id)
        return Tenant(
            tenant_id=tenant_id,
            tier=Tier.AURORA,
            store="aurora-1",
            source_url="https://src",
            data_version=self.versions[tenant_id],
            loaded_through=NOW,
            created_at=NOW,
            updated_at=NOW,
        )

    def publish(self, tenant_id: str) -> None:
        self.versions[tenant_id] += 1


@dataclass
class FakeStore:
    """A store whose answer is the number of the load it has seen (so a stale answer is visible)."""

    loads: int = 1
    statements: list[str] = field(default_factory=list)
    store_id: str = "aurora-1"
    dialect: str = "postgres"

    def query(self, tenant_id: str, sql: str, params: Sequence[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        self.statements.append(sql)
        return ["channel", "tickets_created"], [("email", self.loads)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry({"acme": 1})


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def service(registry: FakeRegistry, store: FakeStore, clock: FakeClock) -> QueryService:
    versions = TenantSnapshots(registry.get, max_age_ms=BOUND_MS, clock=clock)
    return QueryService(registry, lambda _: store, versions=versions, clock=lambda: NOW)  # type: ignore[arg-type]


def test_hits_within_the_bound_do_not_read_the_registry(
    service: QueryService, registry: FakeRegistry, clock: FakeClock
) -> None:
    # Given an answer computed (and cached) for acme
    first = service.answer("acme", DAILY)
    reads = registry.reads
    # When the same query comes again, just inside the bound
    clock.advance_ms(BOUND_MS - 1)
    again = service.answer("acme", DAILY)
    # Then it is a hit that read nothing, and it says how old its data_version is
    assert (first.cache, again.cache) == ("miss", "hit")
    assert registry.reads == reads
    assert (first.freshness.data_version_age_ms, again.freshness.data_version_age_ms) == (0, BOUND_MS - 1)


def test_a_publish_makes_the_first_request_after_the_bound_a_miss(
    service: QueryService, registry: FakeRegistry, store: FakeStore, clock: FakeClock
) -> None:
    # Given a cached answer of data_version 1
    assert service.answer("acme", DAILY).rows == [["email", 1]]
    # When a load lands and publish bumps the data_version
    store.loads = 2
    registry.publish("acme")
    # Then within the bound the kept version may still answer (the documented freshness bound) ...
    clock.advance_ms(BOUND_MS / 2)
    inside = service.answer("acme", DAILY)
    assert (inside.cache, inside.data_version, inside.rows) == ("hit", 1, [["email", 1]])
    # ... and the first request at the bound reads the new version: a miss, computed from the new load
    clock.advance_ms(BOUND_MS / 2)
    after = service.answer("acme", DAILY)
    assert (after.cache, after.data_version, after.rows) == ("miss", 2, [["email", 2]])
    assert after.freshness.data_version_age_ms == 0


def test_a_miss_never_uses_a_kept_version(
    service: QueryService, registry: FakeRegistry, store: FakeStore, clock: FakeClock
) -> None:
    # Given acme's version kept by an earlier request
    service.answer("acme", DAILY)
    registry.publish("acme")
    store.loads = 2
    # When another query, not cached, comes within the bound
    by_priority = parse_query({"dataset": "tickets", "measures": ["tickets_created"], "dimensions": ["priority"]})
    clock.advance_ms(10)
    answer = service.answer("acme", by_priority)
    # Then it was computed with the version read for it, not the kept one
    assert (answer.cache, answer.data_version) == ("miss", 2)


def test_a_zero_bound_reads_the_registry_on_every_request(registry: FakeRegistry, clock: FakeClock) -> None:
    versions = TenantSnapshots(registry.get, max_age_ms=0, clock=clock)
    for _ in range(3):
        assert versions.get("acme").read_now
    assert registry.reads == 3


def test_kept_versions_are_bounded_and_unknown_tenants_are_not_kept(clock: FakeClock) -> None:
    # Given room for two tenants
    registry = FakeRegistry({"a1": 1, "a2": 1, "a3": 1})
    versions = TenantSnapshots(registry.get, max_age_ms=BOUND_MS, capacity=2, clock=clock)
    # When three tenants ask, then the first again
    for tenant_id in ("a1", "a2", "a3"):
        versions.get(tenant_id)
    # Then the least recently used was dropped and is read again; the others are still kept
    assert versions.get("a1").read_now
    assert not versions.get("a3").read_now
    with pytest.raises(UnknownTenant):
        versions.get("ghost")
    with pytest.raises(UnknownTenant):
        versions.get("ghost")
    assert registry.reads == 6
