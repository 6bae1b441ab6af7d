"""Publish step: make loaded data visible (data_version + 1, freshness) and record each failure in the registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tenant_analytics.tenants.models import TenantStatus
from tenant_analytics.tenants.registry import TenantRegistry

from .cursors import CursorStore
from .export import STREAM
from .models import BatchState, PublishResult, TenantFailure


def publish_batch(
    state: BatchState,
    registry: TenantRegistry,
    cursors: CursorStore,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PublishResult:
    """Record the batch's outcome per tenant and return it (the execution's output lists every failure)."""
    loaded_through = state.hour + timedelta(hours=1)
    result = PublishResult(batch_id=state.batch.batch_id)
    export = state.step.export if state.step else None
    failures: list[TenantFailure] = list(export.failures) if export else []
    if state.error is not None:
        # A whole step failed: every tenant that had data in flight failed with it.
        in_flight = [e.tenant_id for e in export.exported] if export else state.batch.tenants
        cause = f"{state.error.error}: {state.error.cause or 'no cause given'}"
        failures += [TenantFailure(tenant_id=t, step="transform", error=cause[:1000]) for t in in_flight]
    elif state.load is not None:
        failures += state.load.failures
        for load in state.load.loaded:
            cursors.mark_loaded(load.tenant_id, STREAM, load.last_seq)
            registry.record_load(load.tenant_id, size_rows=load.size_rows, loaded_through=loaded_through)
            result.loaded.append(load.tenant_id)
    for tenant_id in export.unchanged if export else []:
        registry.record_fresh(tenant_id, loaded_through=loaded_through)
        result.unchanged.append(tenant_id)
    for failure in failures:
        registry.set_status(failure.tenant_id, TenantStatus.FAILED, error=f"{failure.step}: {failure.error}")
    result.failed = failures
    if result.loaded or result.unchanged:
        result.freshness_lag_seconds = max(0, int((clock() - loaded_through).total_seconds()))
    return result
