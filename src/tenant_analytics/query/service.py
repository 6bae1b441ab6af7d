"""QueryService: tenant -> store -> plan -> rows -> answer, with the data-version cache in front."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from tenant_analytics.constants import AURORA_STORE_ID, OPERATIONAL_MODELS, OPERATIONAL_STORE_ID
from tenant_analytics.errors import InvalidQuery, TenantAnalyticsError, TenantSuspended
from tenant_analytics.query.cache import AnswerCache, AnswerStore, cache_key
from tenant_analytics.query.contract import MAX_LIMIT, Answer, Freshness, Query
from tenant_analytics.query.planner import format_cell, plan_query, resolve_dataset
from tenant_analytics.query.versions import TenantSnapshots, VersionedTenant
from tenant_analytics.stores.base import AnalyticsStore
from tenant_analytics.tenants.models import Tenant, TenantStatus, Tier
from tenant_analytics.tenants.registry import TenantRegistry

logger = logging.getLogger(__name__)
MAX_BATCH = 20
BATCH_WORKERS = 8


class QueryService:
    """Answers semantic queries for one tenant at a time, from the store the tenant lives in."""

    def __init__(
        self,
        registry: TenantRegistry,
        open_store: Callable[[str], AnalyticsStore],
        cache: AnswerStore | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        realtime_store: str = AURORA_STORE_ID,
        versions: TenantSnapshots | None = None,
    ) -> None:
        self._registry = registry
        # Without a bound given, every request reads the tenant's data_version from the registry.
        self._versions = versions or TenantSnapshots(registry.get, max_age_ms=0)
        self._realtime_store = realtime_store  # the bins of every tenant live in one Aurora store
        self._open_store = open_store
        self._cache = cache or AnswerCache()
        self._clock = clock
        # Long-lived workers, so their per-thread store connections are reused across requests.
        self._pool = ThreadPoolExecutor(max_workers=BATCH_WORKERS, thread_name_prefix="query")

    def tenant(self, tenant_id: str) -> Tenant:
        """The caller's registry record (raises UnknownTenant); a suspended tenant may still read it."""
        return self._registry.get(tenant_id)

    def served(self, tenant_id: str) -> VersionedTenant:
        """The record of a tenant whose data may be served: UnknownTenant or TenantSuspended raise otherwise."""
        versioned = self._versions.get(tenant_id)
        if versioned.tenant.status is TenantStatus.SUSPENDED:
            raise TenantSuspended(tenant_id)
        return versioned

    def answer(self, tenant_id: str, query: Query) -> Answer:
        """Answer ``query`` for ``tenant_id`` (from the credential, never from the query)."""
        return self._answer(self.served(tenant_id), query)

    def answer_many(self, tenant_id: str, queries: list[Query]) -> list[Answer | TenantAnalyticsError]:
        """Answer a dashboard's queries concurrently; each entry is an answer or the error of that query."""
        if not 1 <= len(queries) <= MAX_BATCH:
            raise InvalidQuery(f"a batch holds 1 to {MAX_BATCH} queries, got {len(queries)}", field="queries")
        tenant = self.served(tenant_id)

        def one(query: Query) -> Answer | TenantAnalyticsError:
            try:
                return self._answer(tenant, query)
            except TenantAnalyticsError as exc:
                return exc
            except Exception:  # a defect answering this query must not lose the others' answers
                logger.exception("query of the batch failed", extra={"tenant_id": tenant_id})
                return TenantAnalyticsError("this query could not be answered: an internal error, logged")

        return list(self._pool.map(one, queries))

    def _answer(self, versioned: VersionedTenant, query: Query) -> Answer:
        normalized = query.normalized()
        dataset = resolve_dataset(query)
        # Realtime bins change every few seconds without a load: their answers are never cached.
        cacheable = dataset.store != "realtime"
        key = cache_key(versioned.tenant.tenant_id, normalized, versioned.tenant.data_version)
        cached = self._cache.get(key) if cacheable else None
        if cacheable and cached is None and not versioned.read_now:
            # A miss is computed from a version read for this request, never from a kept copy.
            versioned = self._versions.refresh(versioned.tenant.tenant_id)
            cached = self._cache.get(cache_key(versioned.tenant.tenant_id, normalized, versioned.tenant.data_version))
        tenant = versioned.tenant
        if cached is not None:
            freshness = self._freshness(tenant.loaded_through, versioned.age_ms)
            return cached.model_copy(update={"cache": "hit", "freshness": freshness})
        key = cache_key(tenant.tenant_id, normalized, tenant.data_version)
        store = self._open_store(self._realtime_store if dataset.store == "realtime" else tenant.store)
        plan = plan_query(query, tenant.tenant_id, dialect=store.dialect)
        if tenant.tier is Tier.REDSHIFT and plan.answered_by in OPERATIONAL_MODELS:
            # hot dashboards of Redshift tenants read the copy of their top-level metrics in Aurora
            store = self._open_store(OPERATIONAL_STORE_ID)
            plan = plan_query(query, tenant.tenant_id, dialect=store.dialect, operational=True)
        _, rows = store.query(tenant.tenant_id, plan.sql, plan.params)
        if len(rows) > query.limit:
            raise InvalidQuery(
                f"the answer has more than {query.limit} rows; narrow the query or raise 'limit' (at most {MAX_LIMIT})",
                field="limit",
            )
        time_index = 0 if plan.time_granularity else -1
        cells: list[list[Any]] = [
            [format_cell(v, plan.time_granularity, i == time_index) for i, v in enumerate(row)] for row in rows
        ]
        answer = Answer(
            columns=plan.columns,
            rows=cells,
            answered_by=plan.answered_by,
            data_version=tenant.data_version,
            freshness=self._freshness(tenant.loaded_through),
            cache="miss",
        )
        if cacheable:
            self._cache.put(key, answer)
        return answer

    def _freshness(self, loaded_through: datetime | None, data_version_age_ms: int = 0) -> Freshness:
        if loaded_through is None:
            return Freshness(loaded_through=None, lag_seconds=None, data_version_age_ms=data_version_age_ms)
        lag = int((self._clock() - loaded_through).total_seconds())
        return Freshness(
            loaded_through=loaded_through, lag_seconds=max(lag, 0), data_version_age_ms=data_version_age_ms
        )
