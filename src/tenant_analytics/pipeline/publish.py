"""Publish step: make loaded data visible (data_version + 1, freshness) and record each failure in the registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tenant_analytics.tenants.registry import TenantRegistry

from .cursors import CursorStore
from .models import BatchState, PublishResult, TenantFailure


def publish_batch(
    state: BatchState,
    registry: TenantRegistry,
    cursors: CursorStore,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PublishResult:
    """Record the batch's outcome per tenant and return it.

    A failed shared step (export, transform, load) of a multi-tenant batch fails no tenant: those tenants are
    returned in ``retried_alone``, and the state machine runs each again in a batch of its own (see
    :func:`~tenant_analytics.pipeline.rounds.collect_round`), so only a tenant that fails on its own is marked failed.
    """
    loaded_through = state.hour + timedelta(hours=1)
    outcome = PublishResult(batch_id=state.batch.batch_id)
    export = state.step.export if state.step else None
    failures: list[TenantFailure] = list(export.failures) if export else []
    if export is not None:
        outcome.records_exported += sum(e.records for e in export.exported)
        for exported in export.exported:
            for stream, stream_export in exported.streams.items():
                outcome.records_by_stream[stream] = outcome.records_by_stream.get(stream, 0) + stream_export.records
        outcome.records_quarantined += export.quarantined
    if state.error is not None:
        in_flight = [e.tenant_id for e in export.exported] if export else list(state.batch.tenants)
        if len(in_flight) > 1:
            outcome.retried_alone = in_flight
        else:
            step = "transform" if state.error.error == "TransformFailed" else "batch"
            cause = f"{state.error.error}: {state.error.cause or 'no cause given'}"
            failures += [TenantFailure(tenant_id=t, step=step, error=cause[:1000]) for t in in_flight]
    elif state.load is not None:
        failures += state.load.failures
        refresh_failed = set()
        if state.refresh is not None:
            failures += state.refresh.failures
            refresh_failed = {f.tenant_id for f in state.refresh.failures}
        for load in state.load.loaded:
            if load.tenant_id in refresh_failed:
                # Its rows are merged but its models lag them: a new data_version would let answers from the old
                # models be cached under it. Its pages stay unloaded, so the next run loads (idempotently),
                # refreshes and publishes them.
                continue
            # The version first: pages are marked loaded only once a data_version names them, so a publish that
            # fails between the two leaves them to be loaded and published again, never loaded and unpublished.
            registry.record_load(load.tenant_id, size_rows=load.size_rows, loaded_through=loaded_through)
            for stream, last_seq in load.last_seqs.items():
                if last_seq:
                    cursors.mark_loaded(load.tenant_id, stream, last_seq)
            outcome.loaded.append(load.tenant_id)
    for tenant_id in export.unchanged if export else []:
        registry.record_fresh(tenant_id, loaded_through=loaded_through)
        outcome.unchanged.append(tenant_id)
    for failure in failures:
        registry.record_failure(failure.tenant_id, f"{failure.step}: {failure.error}")
    outcome.failed += failures
    if outcome.loaded or outcome.unchanged:
        outcome.freshness_lag_seconds = max(0, int((clock() - loaded_through).total_seconds()))
    return outcome
