"""Builds the query path's collaborators once per process (the cache lives as long as the container)."""

from __future__ import annotations

import json
import threading
from functools import cache

from tenant_analytics import constants as c
from tenant_analytics.aws import clients
from tenant_analytics.cdc.settings import get_cdc_settings
from tenant_analytics.errors import UnknownTenant
from tenant_analytics.pipeline import runtime as pipeline_runtime
from tenant_analytics.query.auth import TokenVerifier
from tenant_analytics.query.cache import AnswerCache, AnswerStore, DynamoAnswerCache, TieredAnswerCache
from tenant_analytics.query.service import QueryService
from tenant_analytics.query.versions import TenantSnapshots
from tenant_analytics.settings import get_settings
from tenant_analytics.stores.base import AnalyticsStore
from tenant_analytics.stores.factory import open_query_store


@cache
def query_service() -> QueryService:
    settings = get_settings()
    answers: AnswerStore = AnswerCache()
    if settings.cache_table:
        answers = TieredAnswerCache(
            AnswerCache(), DynamoAnswerCache(clients.resource("dynamodb"), settings.cache_table)
        )
    realtime_store_id = get_cdc_settings().store_id
    opening = threading.Lock()

    def open_for(store_id: str) -> AnalyticsStore:
        # Concurrent first requests open a store once, not once per thread.
        with opening:
            return open_query_store(store_id, settings)

    registry = pipeline_runtime.registry(settings)
    versions = TenantSnapshots(registry.get, max_age_ms=settings.data_version_max_age_ms)
    return QueryService(registry, open_for, cache=answers, realtime_store=realtime_store_id, versions=versions)


@cache
def token_verifier() -> TokenVerifier:
    s = get_settings()
    if s.auth_jwks:
        return TokenVerifier(issuer=s.auth_issuer, audience=s.auth_audience, jwks=json.loads(s.auth_jwks))
    if s.auth_jwks_url:
        return TokenVerifier(issuer=s.auth_issuer, audience=s.auth_audience, jwks_url=s.auth_jwks_url)
    raise RuntimeError("no JWKS configured: set AUTH_JWKS_URL (or AUTH_JWKS for local development)")


@cache
def _api_key_records() -> TenantSnapshots:
    # A tenant's key changes only when it is re-provisioned; API Gateway caches the decision as long anyway.
    return TenantSnapshots(pipeline_runtime.registry().get, max_age_ms=c.AUTHORIZER_CACHE_SECONDS * 1000)


def usage_identifier_key(tenant_id: str) -> str | None:
    """The tenant's API key value for its usage plan, when the API requires keys (None otherwise, or without one)."""
    if not get_settings().api_keys_required:
        return None
    try:
        return _api_key_records().get(tenant_id).tenant.api_key_value
    except UnknownTenant:
        return None


def reset() -> None:
    """Forget the built service, verifier and kept API keys (after settings change)."""
    query_service.cache_clear()
    token_verifier.cache_clear()
    _api_key_records.cache_clear()
