"""Which tenants a run covers: the plan step and `run-hour` share the rules (pure logic, a registry in memory)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenant_analytics.errors import InvalidInput, UnknownTenant
from tenant_analytics.pipeline.plan import ALLOWED_INPUT, runnable_tenants, select_tenants
from tenant_analytics.tenants.models import Tenant, TenantStatus, Tier

NOW = datetime(2026, 3, 4, 10, tzinfo=UTC)


class MemoryRegistry:
    def __init__(self, *tenants: Tenant) -> None:
        self._tenants = {t.tenant_id: t for t in tenants}

    def get(self, tenant_id: str) -> Tenant:
        if tenant_id not in self._tenants:
            raise UnknownTenant(tenant_id)
        return self._tenants[tenant_id]

    def list(self) -> list[Tenant]:
        return sorted(self._tenants.values(), key=lambda t: t.tenant_id)


def tenant(tenant_id: str, status: TenantStatus) -> Tenant:
    return Tenant(
        tenant_id=tenant_id,
        tier=Tier.AURORA,
        store="aurora-1",
        status=status,
        source_url="http://x",
        created_at=NOW,
        updated_at=NOW,
    )


REGISTRY = MemoryRegistry(
    tenant("acme", TenantStatus.ACTIVE),
    tenant("broken", TenantStatus.FAILED),
    tenant("paused", TenantStatus.SUSPENDED),
    tenant("moving", TenantStatus.MIGRATING),
)


def test_by_default_every_active_and_failed_tenant_runs_and_the_allowed_input_says_so() -> None:
    assert [t.tenant_id for t in runnable_tenants(REGISTRY)] == ["acme", "broken"]
    assert "every active or failed tenant" in ALLOWED_INPUT


def test_named_tenants_run_once_each_when_registered_and_runnable() -> None:
    selected = select_tenants(["broken", "acme", "broken"], REGISTRY)
    assert [t.tenant_id for t in selected] == ["broken", "acme"]


@pytest.mark.parametrize(
    ("wanted", "error", "message"),
    [
        ([], InvalidInput, "'tenants' must be a non-empty list of tenant ids, got \\[\\]"),
        ("acme", InvalidInput, "must be a non-empty list"),
        (["nosuch"], UnknownTenant, "tenant 'nosuch' is not registered"),
        (["acme", "paused", "moving"], InvalidInput, r"tenant\(s\) \['paused', 'moving'\] are not active"),
    ],
)
def test_a_bad_tenant_list_is_refused(wanted: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        select_tenants(wanted, REGISTRY)
