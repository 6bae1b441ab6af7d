"""Load step: merge each tenant's transformed rows into the tenant's store, one transaction per tenant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from tenant_analytics.errors import InvalidInput, TenantAnalyticsError, one_line
from tenant_analytics.stores.base import AnalyticsStore, CuratedFiles
from tenant_analytics.tenants.registry import TenantRegistry
from tenant_analytics.transforms.tables import SUPPORT_TABLES

from .models import BatchState, LoadResult, TenantFailure, TenantLoad

StoreOpener = Callable[[str], AnalyticsStore]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key); raise InvalidInput otherwise."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidInput(f"'{uri}' is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def table_prefix(output_uri: str, table: str, tenant_id: str) -> str:
    """Where the Spark run wrote one tenant's part files of one curated table."""
    return output_uri.rstrip("/") + f"/{table}/tenant_id={tenant_id}/"


def _csv_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".csv")]
    return sorted(keys)


def _stream_objects(s3: Any, bucket: str, keys: list[str]) -> Iterator[bytes]:
    for key in keys:
        yield from s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(chunk_size=1 << 20)


def tenant_files(s3: Any, output_uri: str, tenant_id: str) -> dict[str, CuratedFiles]:
    """The curated tables the Spark run wrote for one tenant (a table without part files is left out)."""
    files: dict[str, CuratedFiles] = {}
    for table in SUPPORT_TABLES:
        uri = table_prefix(output_uri, table.name, tenant_id)
        bucket, prefix = split_s3_uri(uri)
        keys = _csv_keys(s3, bucket, prefix)
        if keys:
            files[table.name] = CuratedFiles(
                uri_prefix=uri,
                open_chunks=lambda b=bucket, k=keys: _stream_objects(s3, b, k),  # type: ignore[misc]
            )
    return files


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
            stats = store.merge_curated(tenant_id, tenant_files(s3, output_uri, tenant_id))
        except (TenantAnalyticsError, psycopg.Error) as exc:
            message = one_line(exc)
            result.failures.append(TenantFailure(tenant_id=tenant_id, step="load", error=message))
            continue
        result.loaded.append(
            TenantLoad(
                tenant_id=tenant_id,
                rows_merged=stats.rows_in,
                inserted=stats.inserted,
                updated=stats.updated,
                size_rows=stats.size_rows,
                tables=stats.tables,
                last_seqs=exported.last_seqs,
            )
        )
    return result
