"""The refresh function as the schedule invokes it: every store's models brought up to date."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import psycopg
import pytest

from tenant_analytics import constants as c
from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.local.postgres import with_database
from tenant_analytics.pipeline import runtime
from tenant_analytics.settings import get_settings
from tenant_analytics.sources.messaging import (
    MessagingTenantSpec,
    generate_messaging_data,
    reference_campaign_channel_hours,
)
from tenant_analytics.tenants.models import Tier

pytestmark = [pytest.mark.xdist_group("models")]


@pytest.fixture
def platform(tmp_path: Path, pg_admin: str, db_prefix: str) -> Iterator[LocalPlatform]:
    with local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as p:
        yield p


def invoke(payload: dict) -> tuple[dict, str | None]:
    response = boto3.client("lambda").invoke(FunctionName=c.function_name("refresh"), Payload=json.dumps(payload))
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_the_scheduled_refresh_brings_landed_events_into_the_models(platform: LocalPlatform) -> None:
    # Given events landed in a store without a refresh (a stream between hourly runs)
    platform.add_tenant("acme", "http://127.0.0.1:1/acme")
    store = runtime.store_opener()(platform.registry.get("acme").store)
    data = generate_messaging_data(
        MessagingTenantSpec("acme", 300), 8, datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC)
    )
    for batch in data.batches:
        store.land_messaging("acme", batch)  # type: ignore[attr-defined]
    before = store.query("acme", "SELECT count(*) FROM models.message_status", [])[1]

    # When the schedule invokes the function with its input ({}: every store)
    result, error = invoke({})

    # Then every store's models were refreshed and the messages are in them
    assert error is None, result
    assert {r["store"] for r in result["refreshed"]} == set(get_settings().stores)
    assert {r["model"] for r in result["refreshed"]} >= {"message_status", "tenant_daily", "tickets_daily"}
    after = store.query("acme", "SELECT count(*) FROM models.message_status", [])[1]
    assert before == [(0,)] and after[0][0] > 0 and result["store_errors"] == {}


def test_the_scheduled_refresh_copies_redshift_tenants_metrics_to_the_operational_store(
    platform: LocalPlatform, pg_admin: str, db_prefix: str
) -> None:
    # Given a Redshift-tier tenant whose messages landed between hourly runs (no refresh, no copy yet)
    platform.add_tenant("bigco", "http://127.0.0.1:1/bigco", tier=Tier.REDSHIFT)
    store = runtime.store_opener()(platform.registry.get("bigco").store)
    data = generate_messaging_data(
        MessagingTenantSpec("bigco", 400), 5, datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 3, tzinfo=UTC)
    )
    for batch in data.batches:
        store.land_messaging("bigco", batch)  # type: ignore[attr-defined]

    # When the schedule invokes the function
    result, error = invoke({})

    # Then Aurora's operational copy holds its daily metrics, as many messages as a replay of the events sends
    assert error is None and result["store_errors"] == {} and result["failures"] == [], result
    with psycopg.connect(with_database(pg_admin, f"{db_prefix}_aurora_1")) as conn:
        copied = conn.execute("SELECT tenant_id, sum(sent)::bigint FROM operational.tenant_daily GROUP BY 1").fetchall()
    hours = reference_campaign_channel_hours(data.events, data.campaigns)
    assert copied == [("bigco", sum(h.sent for h in hours))]


def test_an_unknown_input_field_is_a_function_error_naming_it(platform: LocalPlatform) -> None:
    result, error = invoke({"storez": ["aurora-1"]})
    assert error == "Unhandled" and "storez" in result["errorMessage"]
