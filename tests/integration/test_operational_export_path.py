"""Redshift-tier tenants' top-level metrics are copied to the operational (Aurora) store and served from there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.local.postgres import with_database
from tenant_analytics.sources.messaging import (
    MessagingTenantSpec,
    generate_messaging_data,
    reference_campaign_channel_hours,
)
from tenant_analytics.tenants.models import Tier

pytestmark = [pytest.mark.xdist_group("models")]

START, END = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC)
DAILY = {
    "dataset": "messages",
    "measures": ["messages_sent", "delivery_rate"],
    "time": {"dimension": "sent_at", "granularity": "day"},
}


@pytest.fixture
def platform(tmp_path: Path, pg_admin: str, db_prefix: str) -> Iterator[LocalPlatform]:
    with local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as p:
        yield p


def test_a_redshift_tenants_daily_metrics_are_copied_to_aurora_and_answered_there(
    platform: LocalPlatform, pg_admin: str, db_prefix: str
) -> None:
    # Given a large tenant on the Redshift tier and a small one on Aurora, both sending messages
    platform.add_tenant("bigco", "http://127.0.0.1:1/bigco", tier=Tier.REDSHIFT)
    platform.add_tenant("smallco", "http://127.0.0.1:1/smallco")
    data = {
        t: generate_messaging_data(MessagingTenantSpec(t, 600), 3, START, END, batch_hours=6)
        for t in ("bigco", "smallco")
    }

    # When their batches land (each followed by its refresh, and the copy for the Redshift tenant)
    for tenant_id, dataset in data.items():
        for batch in dataset.batches:
            platform.land_messaging(tenant_id, batch)

    # Then the Redshift tenant's daily metrics are in Aurora's operational schema, and only its own
    aurora = with_database(pg_admin, f"{db_prefix}_aurora_1")
    with psycopg.connect(aurora) as conn:
        copied = conn.execute(
            "SELECT tenant_id, sum(sent)::bigint FROM operational.tenant_daily GROUP BY tenant_id"
        ).fetchall()
    hours = reference_campaign_channel_hours(data["bigco"].events, data["bigco"].campaigns)
    assert copied == [("bigco", sum(h.sent for h in hours))]
    # and its dashboard query is answered by the daily model, with the numbers a replay gives
    answer = platform.query("bigco", DAILY)
    assert answer.answered_by == "tenant_daily"
    assert sum(row[1] for row in answer.rows) == sum(h.sent for h in hours)
    # and it is Aurora's copy that answers: with the Redshift store's own rows gone, a new query still sees them
    with psycopg.connect(with_database(pg_admin, f"{db_prefix}_redshift_1"), autocommit=True) as conn:
        conn.execute("DELETE FROM models.tenant_daily WHERE tenant_id = 'bigco'")
    weekly = platform.query("bigco", {**DAILY, "time": {"dimension": "sent_at", "granularity": "week"}})
    assert sum(row[1] for row in weekly.rows) == sum(h.sent for h in hours)
    # and the Aurora tenant is answered from its own store's models as before
    small = platform.query("smallco", DAILY)
    small_hours = reference_campaign_channel_hours(data["smallco"].events, data["smallco"].campaigns)
    assert small.answered_by == "tenant_daily" and sum(r[1] for r in small.rows) == sum(h.sent for h in small_hours)
