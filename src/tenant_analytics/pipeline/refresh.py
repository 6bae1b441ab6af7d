"""Refresh step: bring the models of every store a batch loaded into up to date, scoped to the loaded tenants.

Models are refreshed after the load and before publish, so a tenant's new data_version never names facts its
rollups do not reflect yet. A store whose refresh fails fails its loaded tenants at the ``refresh`` step; the
scheduled refresh (every few minutes) and the next hour retry it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import psycopg

from tenant_analytics.constants import OPERATIONAL_MODELS, OPERATIONAL_STORE_ID
from tenant_analytics.errors import TenantAnalyticsError, one_line
from tenant_analytics.stores.postgres import PostgresStore
from tenant_analytics.tenants.models import Tier
from tenant_analytics.tenants.registry import TenantRegistry

from .load import StoreOpener
from .models import BatchState, ModelRefresh, RefreshResult, TenantFailure


def refresh_store(store_id: str, open_store: StoreOpener, tenant_ids: Iterable[str] | None = None) -> RefreshResult:
    """Refresh one store's models (only the changes of ``tenant_ids``, if given); a failure is returned, not raised."""
    scope = sorted(tenant_ids) if tenant_ids is not None else None
    try:
        records = open_store(store_id).refresh_models(scope)
    except (TenantAnalyticsError, psycopg.Error) as exc:
        message = one_line(exc)
        return RefreshResult(
            failures=[TenantFailure(tenant_id=t, step="refresh", error=message) for t in scope or []],
            store_errors={store_id: message},
        )
    return RefreshResult(
        refreshed=[
            ModelRefresh(
                store=store_id,
                model=r.model,
                mode=r.mode,
                rows_changed=r.rows_changed,
                duration_s=round(r.duration_s, 4),
                warning=r.warning,
            )
            for r in records
        ]
    )


def export_operational(store_id: str, tenant_ids: list[str], open_store: StoreOpener) -> RefreshResult:
    """Copy Redshift-tier tenants' top-level metrics into the operational (Aurora) store, for hot dashboards.

    Locally both stores are PostgreSQL and rows are copied directly; on AWS the copy is an UNLOAD to S3 and an
    ``aws_s3`` import (see stores.operational_export), which a Data API store does not run from here yet.
    """
    source, target = open_store(store_id), open_store(OPERATIONAL_STORE_ID)
    if not isinstance(source, PostgresStore) or not isinstance(target, PostgresStore):
        return RefreshResult()
    try:
        source.export_models(OPERATIONAL_MODELS, tenant_ids, target)
    except (TenantAnalyticsError, psycopg.Error) as exc:
        message = one_line(exc)
        return RefreshResult(
            failures=[
                TenantFailure(tenant_id=t, step="refresh", error=f"operational export: {message}") for t in tenant_ids
            ],
            store_errors={OPERATIONAL_STORE_ID: message},
        )
    return RefreshResult()


def refresh_batch(state: BatchState, registry: TenantRegistry, open_store: StoreOpener) -> RefreshResult:
    """Refresh the models of every store the batch loaded into, scoped to the tenants loaded there; then copy
    the Redshift-tier tenants' top-level metrics to the operational store."""
    by_store: dict[str, list[str]] = defaultdict(list)
    on_redshift: dict[str, list[str]] = defaultdict(list)
    for load in state.load.loaded if state.load else []:
        tenant = registry.get(load.tenant_id)
        by_store[tenant.store].append(tenant.tenant_id)
        if tenant.tier is Tier.REDSHIFT:
            on_redshift[tenant.store].append(tenant.tenant_id)
    result = RefreshResult()
    for store_id, tenants in sorted(by_store.items()):
        done = refresh_store(store_id, open_store, tenants)
        if not done.store_errors and on_redshift.get(store_id):
            done.merge(export_operational(store_id, on_redshift[store_id], open_store))
        result.merge(done)
    return result
