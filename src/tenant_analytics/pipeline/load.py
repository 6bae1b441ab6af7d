"""Load step: merge each tenant's transformed rows into the tenant's store, one transaction per tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from tenant_analytics.errors import InvalidInput, TenantAnalyticsError
from tenant_analytics.stores.base import AnalyticsStore, CuratedFiles
from tenant_analytics.tenants.registry import TenantRegistry

from .models import BatchState, LoadResult, TenantFailure, TenantLoad

StoreOpener = Callable[[str], AnalyticsStore]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key); raise InvalidInput otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidInput(f"'{uri}' is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def tenant_prefix(output_uri: str, tenant_id: str) -> str:
    """Where the Spark run wrote one tenant's part files."""
    return output_uri.rstrip("/") + f"/tenant_id={tenant_id}/"


def tenant_csv_chunks(s3: Any, output_uri: str, tenant_id: str) -> Iterator[bytes]:
    """Stream the CSV part files the Spark run wrote for one tenant."""
    bucket, prefix = split_s3_uri(tenant_prefix(output_uri, tenant_id))
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in sorted(page.get("Contents", []), key=lambda o: o["Key"]):
            if obj["Key"].endswith(".csv"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                yield from body.iter_chunks(chunk_size=1 << 20)


def load_batch(state: BatchState, s3: Any, registry: TenantRegistry, open_store: StoreOpener) -> LoadResult:
    """Merge every exported tenant of the batch; one tenant's failure is recorded and the others go on."""
    if state.step is None or state.step.export.output_uri is None:
        raise InvalidInput("the load step needs the export step's output_uri in the state", field="step.export")
    output_uri = state.step.export.output_uri
    result = LoadResult()
    for exported in state.step.export.exported:
        tenant_id = exported.tenant_id
        try:
            store = open_store(registry.get(tenant_id).store)
            files = CuratedFiles(
                uri_prefix=tenant_prefix(output_uri, tenant_id),
                open_chunks=lambda t=tenant_id: tenant_csv_chunks(s3, output_uri, t),  # type: ignore[misc]
            )
            stats = store.merge_tickets(tenant_id, files)
        except (TenantAnalyticsError, psycopg.Error) as exc:
            message = exc.message if isinstance(exc, TenantAnalyticsError) else str(exc).strip().splitlines()[0]
            result.failures.append(TenantFailure(tenant_id=tenant_id, step="load", error=message))
            continue
        result.loaded.append(
            TenantLoad(
                tenant_id=tenant_id,
                rows_merged=stats.rows_in,
                inserted=stats.inserted,
                updated=stats.updated,
                size_rows=stats.size_rows,
                last_seq=exported.last_seq,
            )
        )
    return result
