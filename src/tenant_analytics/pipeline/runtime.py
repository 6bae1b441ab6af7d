"""Builds the pipeline's collaborators from Settings and cached AWS clients (one place, for every handler)."""

from __future__ import annotations

from tenant_analytics import constants as c
from tenant_analytics.aws import clients
from tenant_analytics.settings import Settings, get_settings
from tenant_analytics.sources.credentials import load_credentials
from tenant_analytics.stores.base import AnalyticsStore
from tenant_analytics.stores.factory import open_store
from tenant_analytics.tenants.api_keys import usage_plan_keys
from tenant_analytics.tenants.models import Tenant
from tenant_analytics.tenants.registry import TenantRegistry

from .cursors import CursorStore
from .export import Exporter
from .load import StoreOpener
from .streams import StreamSource, http_stream


def registry(settings: Settings | None = None) -> TenantRegistry:
    s = settings or get_settings()
    return TenantRegistry(
        clients.resource("dynamodb"), s.tenants_table, s.stores, s.budgets, api_keys=usage_plan_keys(s)
    )


def cursors(settings: Settings | None = None) -> CursorStore:
    s = settings or get_settings()
    return CursorStore(clients.resource("dynamodb"), s.cursors_table)


def exporter(settings: Settings | None = None) -> Exporter:
    s = settings or get_settings()

    credentials: dict[str, tuple[str, str] | None] = {}  # one secret read per tenant, not per stream

    def source_for(tenant: Tenant, stream: str) -> StreamSource:
        secret = tenant.credentials_secret
        if secret and secret not in credentials:
            credentials[secret] = load_credentials(clients.client("secretsmanager"), secret).basic_auth
        auth = credentials.get(secret) if secret else None
        return http_stream(stream, tenant.source_url, timeout=s.source_timeout_seconds, auth=auth)

    return Exporter(
        s3=clients.client("s3"),
        registry=registry(s),
        cursors=cursors(s),
        sources=source_for,
        raw_bucket=s.raw_bucket,
        curated_bucket=s.curated_bucket,
        artifacts_bucket=s.artifacts_bucket,
        history_compact_after_files=s.history_compact_after_files,
    )


def store_opener(settings: Settings | None = None) -> StoreOpener:
    s = settings or get_settings()

    def open_for(store_id: str) -> AnalyticsStore:
        return open_store(store_id, s)

    return open_for


def operational_export_uri(settings: Settings | None = None) -> str:
    """Where Redshift stores UNLOAD the operational export: ``s3://<curated bucket>/exports/operational/``."""
    s = settings or get_settings()
    return f"s3://{s.curated_bucket}/{c.OPERATIONAL_EXPORT_PREFIX}"
