"""Publish: a data_version is recorded for exactly the loads whose rows and models are both in the store, and a
page is marked loaded only once a data_version names it (registry and cursors on moto's DynamoDB)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from registry_tables import create_cursors_table, create_tenants_table

from tenant_analytics.pipeline.cursors import CursorState, CursorStore
from tenant_analytics.pipeline.models import (
    Batch,
    BatchState,
    ExportResult,
    LoadResult,
    RefreshResult,
    StateError,
    StepOutputs,
    TenantExport,
    TenantFailure,
    TenantLoad,
)
from tenant_analytics.pipeline.publish import publish_batch
from tenant_analytics.settings import PlacementBudgets, StoreConfig
from tenant_analytics.tenants.models import TenantStatus
from tenant_analytics.tenants.registry import TenantRegistry

HOUR = datetime(2026, 2, 1, 10, tzinfo=UTC)
STORES = {"aurora-1": StoreConfig(engine="postgres", tier="aurora", dsn="postgresql://a")}


@pytest.fixture
def tables() -> Iterator[tuple[TenantRegistry, CursorStore]]:
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        create_tenants_table(ddb)
        create_cursors_table(ddb)
        registry = TenantRegistry(ddb, "tenants", STORES, PlacementBudgets())
        cursors = CursorStore(ddb, "cursors")
        registry.add("acme", "https://src/acme")
        cursors.advance(CursorState(tenant_id="acme", stream="tickets"), cursor="c1", landed_page=True)  # page 1
        yield registry, cursors


def loaded_batch(*, refresh: RefreshResult | None = None) -> BatchState:
    """acme's page 1 of tickets exported, transformed and merged into its store."""
    export = TenantExport(tenant_id="acme", pages=1, records=3, pending_pages=1)
    load = TenantLoad(tenant_id="acme", rows_merged=3, inserted=3, updated=0, size_rows=3, last_seqs={"tickets": 1})
    return BatchState(
        batch=Batch(batch_id="b0000", tenants=["acme"]),
        hour=HOUR,
        run_id="hourly-1",
        step=StepOutputs(export=ExportResult(exported=[export])),
        load=LoadResult(loaded=[load]),
        refresh=refresh or RefreshResult(),
    )


def test_a_publish_that_fails_before_recording_the_version_leaves_the_pages_to_load_again(
    tables: tuple[TenantRegistry, CursorStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, cursors = tables

    # Given the registry refuses the version update (throttled), so the Publish task fails
    def throttled(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "Update")

    with monkeypatch.context() as patched:
        patched.setattr(registry, "record_load", throttled)
        with pytest.raises(ClientError):
            publish_batch(loaded_batch(), registry, cursors)
    # and the state machine's catch publishes the batch as failed
    state = loaded_batch()
    state.error = StateError(Error="ClientError", Cause="ProvisionedThroughputExceededException")
    publish_batch(state, registry, cursors)

    # Then the page is not marked loaded (the next run loads it again), and no version was recorded yet
    assert cursors.get("acme", "tickets").loaded_seq == 0
    assert (registry.get("acme").status, registry.get("acme").data_version) == (TenantStatus.FAILED, 0)
    # and when the next run loads it, its version is recorded and the page marked loaded
    again = publish_batch(loaded_batch(), registry, cursors)
    assert again.loaded == ["acme"] and registry.get("acme").data_version == 1
    assert cursors.get("acme", "tickets").loaded_seq == 1


def test_a_tenant_whose_models_failed_to_refresh_is_not_published(tables: tuple[TenantRegistry, CursorStore]) -> None:
    registry, cursors = tables
    # Given acme's rows merged but its store's model refresh failed
    failed = TenantFailure(tenant_id="acme", step="refresh", error="deadlock detected")
    outcome = publish_batch(
        loaded_batch(refresh=RefreshResult(failures=[failed], store_errors={"aurora-1": "deadlock"})),
        registry,
        cursors,
    )
    # Then it is failed, not loaded: no new data_version names rows its models lack, and its page is still to load
    assert outcome.loaded == [] and outcome.failed == [failed]
    tenant = registry.get("acme")
    assert (tenant.status, tenant.data_version, tenant.last_error) == (
        TenantStatus.FAILED,
        0,
        "refresh: deadlock detected",
    )
    assert cursors.get("acme", "tickets").loaded_seq == 0
