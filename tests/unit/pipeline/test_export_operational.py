"""Operational export dispatch: which pair of stores copies how, and every other pair is a failure, not a no-op."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tenant_analytics.constants import OPERATIONAL_STORE_ID
from tenant_analytics.pipeline.models import TenantFailure
from tenant_analytics.pipeline.refresh import export_operational, refresh_scheduled
from tenant_analytics.settings import StoreConfig
from tenant_analytics.stores.operational_export import UnloadedFiles
from tenant_analytics.stores.postgres import PostgresStore
from tenant_analytics.stores.redshift import RedshiftDataStore
from tenant_analytics.tenants.models import Tenant

CREATED = datetime(2026, 6, 1, tzinfo=UTC)
EXPORT_URI = "s3://tenant-analytics-curated/exports/operational/"


class QueryOnlyStore:
    """A store that can answer queries but knows nothing of exports (a third kind of store)."""

    store_id = "duck-1"
    dialect = "duckdb"


class RecordingAurora(PostgresStore):
    """The operational store, recording imports instead of connecting (constructing one does not connect)."""

    def __init__(self) -> None:
        super().__init__(OPERATIONAL_STORE_ID, "postgresql://nowhere.invalid/x")
        self.imported: list[tuple[list[UnloadedFiles], list[str]]] = []

    def import_unloaded(self, unloaded: Any, tenant_ids: Any) -> int:
        self.imported.append((list(unloaded), list(tenant_ids)))
        return 0


class RecordingRedshift(RedshiftDataStore):
    """A Redshift store recording what it was asked to UNLOAD."""

    def __init__(self) -> None:
        cfg = StoreConfig(engine="redshift", tier="redshift", workgroup_name="wg")
        super().__init__("redshift-1", cfg, boto3.client("redshift-data", region_name="eu-west-1"))
        self.unloads: list[tuple[tuple[str, ...], list[str], str]] = []

    def unload_models(self, models: Any, tenant_ids: Any, s3_prefix: str) -> list[UnloadedFiles]:
        self.unloads.append((tuple(models), list(tenant_ids), s3_prefix))
        return [UnloadedFiles("tenant_daily", f"{s3_prefix}tenant_daily/run=r1/", ())]


def _opener(**stores: Any) -> Any:
    return lambda store_id: stores[store_id.replace("-", "_")]


def test_a_redshift_source_is_unloaded_under_the_export_uri_and_imported_into_the_operational_store() -> None:
    # Given a Redshift store and the operational store
    redshift, aurora = RecordingRedshift(), RecordingAurora()

    # When two of its tenants are exported
    result = export_operational(
        "redshift-1", ["acme", "globex"], _opener(redshift_1=redshift, aurora_1=aurora), export_uri=EXPORT_URI
    )

    # Then the operational models are unloaded for exactly them and what was unloaded is imported for them
    assert result.failures == [] and result.store_errors == {}
    assert redshift.unloads == [(("tenant_daily",), ["acme", "globex"], EXPORT_URI)]
    assert aurora.imported == [
        ([UnloadedFiles("tenant_daily", f"{EXPORT_URI}tenant_daily/run=r1/", ())], ["acme", "globex"])
    ]


@pytest.mark.parametrize(
    ("stores", "export_uri", "message"),
    [
        (
            {"duck_1": QueryOnlyStore(), "aurora_1": RecordingAurora()},
            EXPORT_URI,
            "store 'duck-1' (QueryOnlyStore) cannot export to the operational store: only PostgreSQL and Redshift"
            " Data API stores can",
        ),
        (
            {"duck_1": RecordingAurora(), "aurora_1": QueryOnlyStore()},
            EXPORT_URI,
            f"operational store '{OPERATIONAL_STORE_ID}' is not a PostgreSQL store",
        ),
        (
            {"duck_1": RecordingRedshift(), "aurora_1": RecordingAurora()},
            None,
            "exporting from Redshift store 'duck-1' needs an S3 export location",
        ),
    ],
)
def test_any_other_pair_of_stores_fails_the_tenants_instead_of_doing_nothing(
    stores: dict[str, Any], export_uri: str | None, message: str
) -> None:
    # When the export runs between stores it cannot copy between
    result = export_operational("duck-1", ["acme", "globex"], _opener(**stores), export_uri=export_uri)

    # Then both tenants fail at the refresh step with a message naming what is wrong
    assert result.failures == [
        TenantFailure(tenant_id=t, step="refresh", error=f"operational export: {message}") for t in ("acme", "globex")
    ]
    assert result.store_errors == {OPERATIONAL_STORE_ID: message}
    assert not any(getattr(store, "imported", None) for store in stores.values())


class RefreshingRedshift(RecordingRedshift):
    """A Redshift store whose refresh succeeds without a database."""

    def refresh_models(self, tenant_ids: Any = None, *, full: bool = False) -> list[Any]:
        return []


class TenantList:
    """The registry's listing, for the schedule's choice of tenants."""

    def __init__(self, *tenants: tuple[str, str, str, str]) -> None:
        self.tenants = [
            Tenant(
                tenant_id=t,
                source_url=f"http://127.0.0.1:1/{t}",
                tier=tier,
                store=store,
                status=status,
                created_at=CREATED,
                updated_at=CREATED,
            )
            for t, tier, store, status in tenants
        ]

    def list(self, *, status: Any = None) -> list[Tenant]:
        return self.tenants


def test_the_schedule_copies_the_serving_redshift_tenants_of_each_store_it_refreshed() -> None:
    # Given Redshift-tier tenants in several states, and one tenant on Aurora
    redshift, aurora = RefreshingRedshift(), RecordingAurora()
    registry = TenantList(
        ("bigco", "redshift", "redshift-1", "active"),
        ("retrying", "redshift", "redshift-1", "failed"),
        ("paused", "redshift", "redshift-1", "suspended"),
        ("moving", "redshift", "redshift-1", "migrating"),
    )

    # When the schedule refreshes the Redshift store
    result = refresh_scheduled(
        ["redshift-1"],
        registry,
        _opener(redshift_1=redshift, aurora_1=aurora),
        export_uri=EXPORT_URI,  # type: ignore[arg-type]
    )

    # Then the tenants being served (active, or failed at their last run) are unloaded, not suspended or migrating
    assert result.store_errors == {}
    assert redshift.unloads == [(("tenant_daily",), ["bigco", "retrying"], EXPORT_URI)]
