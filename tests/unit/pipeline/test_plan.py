"""Plan step: input validation and bin-packing (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.pipeline.plan import last_complete_hour, pack_batches, parse_hour
from tenant_analytics.settings import PlacementBudgets
from tenant_analytics.tenants.models import Tenant, Tier

NOW = datetime(2026, 3, 4, 10, 17, 5, tzinfo=UTC)


def tenant(tenant_id: str, rows: int) -> Tenant:
    return Tenant(
        tenant_id=tenant_id,
        tier=Tier.AURORA,
        store="aurora-1",
        source_url="http://x",
        size_rows=rows,
        created_at=NOW,
        updated_at=NOW,
    )


def test_last_complete_hour_is_the_hour_before_the_current_one() -> None:
    assert last_complete_hour(NOW) == datetime(2026, 3, 4, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-03-04T09:30:00Z", "must be on the hour"),
        ("2026-03-04T10:00:00Z", "has not completed yet"),
        ("yesterday", "is not ISO-8601"),
        (1700000000, "must be an ISO-8601 string"),
    ],
)
def test_parse_hour_rejects_with_a_reason(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as err:
        parse_hour(value, NOW)
    assert err.value.field == "hour"


def test_parse_hour_accepts_a_complete_hour_in_any_offset() -> None:
    assert parse_hour("2026-03-04T10:00:00+02:00", NOW) == datetime(2026, 3, 4, 8, tzinfo=UTC)


def test_small_tenants_share_a_batch_and_a_large_one_runs_alone() -> None:
    # Given a capacity of 1000 rows per run
    budgets = PlacementBudgets(batch_capacity_rows=1000)
    tenants = [tenant("big", 5000), tenant("t1", 600), tenant("t2", 300), tenant("t3", 300), tenant("t4", 100)]

    # When they are packed
    batches = pack_batches(tenants, budgets)

    # Then every tenant is in exactly one batch, no shared batch exceeds capacity, and the big one is alone
    members = [t for b in batches for t in b.tenants]
    assert sorted(members) == ["big", "t1", "t2", "t3", "t4"]
    assert [b.tenants for b in batches if "big" in b.tenants] == [["big"]]
    assert all(b.rows <= 1000 for b in batches if len(b.tenants) > 1)
    assert len(batches) == 3  # big | t1+t2+t4 (1000) | t3
