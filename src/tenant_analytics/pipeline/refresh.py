"""Refresh step: bring the models of every store a batch loaded into up to date, scoped to the loaded tenants.

Models are refreshed after the load and before publish, so a tenant's new data_version never names facts its
rollups do not reflect yet. A store whose refresh fails fails its loaded tenants at the ``refresh`` step; the
scheduled refresh (every few minutes) and the next hour retry it. Redshift-tier tenants' top-level metrics are then
copied to the operational (Aurora) store: UNLOAD to S3 and import on AWS, a direct copy locally. The schedule does
both for every store and all its tenants (``refresh_scheduled``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import psycopg

from tenant_analytics.constants import OPERATIONAL_MODELS, OPERATIONAL_STORE_ID
from tenant_analytics.errors import InvalidInput, TenantAnalyticsError, one_line
from tenant_analytics.stores.postgres import PostgresStore
from tenant_analytics.stores.redshift import RedshiftDataStore
from tenant_analytics.tenants.models import Tier
from tenant_analytics.tenants.registry import RUNNABLE_STATUSES, TenantRegistry

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


def export_operational(
    store_id: str, tenant_ids: list[str], open_store: StoreOpener, *, export_uri: str | None = None
) -> RefreshResult:
    """Copy Redshift-tier tenants' top-level metrics into the operational (Aurora) store, for hot dashboards.

    From a PostgreSQL store (locally) rows are copied directly; from a Redshift store they are UNLOADed under
    ``export_uri`` (``s3://bucket/prefix/``, see :func:`runtime.operational_export_uri`) and imported from there
    (see stores.operational_export). Any other pair of stores is an error, never a silent no-op. Failures are
    returned as the tenants' ``refresh`` failures, not raised.
    """
    try:
        source, target = open_store(store_id), open_store(OPERATIONAL_STORE_ID)
        if not isinstance(target, PostgresStore):
            raise InvalidInput(f"operational store '{OPERATIONAL_STORE_ID}' is not a PostgreSQL store")
        if isinstance(source, PostgresStore):
            source.export_models(OPERATIONAL_MODELS, tenant_ids, target)
        elif isinstance(source, RedshiftDataStore):
            if export_uri is None:
                raise InvalidInput(f"exporting from Redshift store '{store_id}' needs an S3 export location")
            target.import_unloaded(source.unload_models(OPERATIONAL_MODELS, tenant_ids, export_uri), tenant_ids)
        else:
            raise InvalidInput(
                f"store '{store_id}' ({type(source).__name__}) cannot export to the operational store:"
                " only PostgreSQL and Redshift Data API stores can"
            )
    except (TenantAnalyticsError, psycopg.Error) as exc:
        message = one_line(exc)
        return RefreshResult(
            failures=[
                TenantFailure(tenant_id=t, step="refresh", error=f"operational export: {message}") for t in tenant_ids
            ],
            store_errors={OPERATIONAL_STORE_ID: message},
        )
    return RefreshResult()


def refresh_batch(
    state: BatchState, registry: TenantRegistry, open_store: StoreOpener, *, export_uri: str | None = None
) -> RefreshResult:
    """Refresh the models of every store the batch loaded into, scoped to the tenants loaded there; then copy
    the Redshift-tier tenants' top-level metrics to the operational store (through ``export_uri`` from Redshift)."""
    by_store: dict[str, list[str]] = defaultdict(list)
    on_redshift: dict[str, list[str]] = defaultdict(list)
    for load in state.load.loaded if state.load else []:
        tenant = registry.get(load.tenant_id)
        by_store[tenant.store].append(tenant.tenant_id)
        if tenant.tier is Tier.REDSHIFT:
            on_redshift[tenant.store].append(tenant.tenant_id)
    result = RefreshResult()
    for store_id, tenants in sorted(by_store.items()):
        result.merge(_refresh_and_export(store_id, tenants, on_redshift.get(store_id, []), open_store, export_uri))
    return result


def _refresh_and_export(
    store_id: str,
    tenant_ids: list[str] | None,
    on_redshift: list[str],
    open_store: StoreOpener,
    export_uri: str | None,
) -> RefreshResult:
    """Refresh one store's models (``tenant_ids``' changes, or all with None), then, unless that failed, copy the
    ``on_redshift`` tenants' top-level metrics to the operational store."""
    done = refresh_store(store_id, open_store, tenant_ids)
    if not done.store_errors and on_redshift:
        done.merge(export_operational(store_id, on_redshift, open_store, export_uri=export_uri))
    return done


def refresh_scheduled(
    store_ids: Iterable[str], registry: TenantRegistry, open_store: StoreOpener, *, export_uri: str | None = None
) -> RefreshResult:
    """The schedule's refresh: each store's models brought up to date with every tenant's changes (messaging
    streams land between hourly runs), then the operational copy of the store's Redshift-tier tenants refreshed,
    so their hot dashboards on Aurora are as fresh as the models. A store whose refresh fails is not exported."""
    on_redshift: dict[str, list[str]] = defaultdict(list)
    for tenant in registry.list():
        # the tenants the runs own: a suspended one is not served, a migrating one's rows are moving between stores
        if tenant.tier is Tier.REDSHIFT and tenant.status in RUNNABLE_STATUSES:
            on_redshift[tenant.store].append(tenant.tenant_id)
    result = RefreshResult()
    for store_id in store_ids:
        result.merge(_refresh_and_export(store_id, None, on_redshift.get(store_id, []), open_store, export_uri))
    return result
