"""Export step: pull each tenant's changed records, stream by stream, from its source API into S3, page by page.

A page is written to S3 first; only then does the stream's cursor move past it. A tenant that fails keeps every
page it landed (they are loaded by a later run) and is left out of this run's manifest, so its store sees nothing
partial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tenant_analytics import constants as c
from tenant_analytics.errors import TenantAnalyticsError
from tenant_analytics.tenants.models import Tenant
from tenant_analytics.tenants.registry import TenantRegistry
from tenant_analytics.transforms.manifest import StreamFiles, TransformManifest

from .cursors import CursorStore
from .models import BatchState, ExportResult, StreamExport, TenantExport, TenantFailure
from .streams import SUPPORT_STREAMS, SourceFactory


def page_key(tenant_id: str, seq: int, stream: str = "tickets") -> str:
    """S3 key of a landed page; zero-padded so keys sort by page number."""
    return f"{c.RAW_SUPPORT_PREFIX}/{stream}/tenant_id={tenant_id}/page-{seq:012d}.jsonl"


def quarantine_key(tenant_id: str, cursor_version: int, stream: str = "tickets") -> str:
    """S3 key of the records a page rejected, one per cursor move, so a retried page overwrites its own."""
    return f"{c.QUARANTINE_SUPPORT_PREFIX}/{stream}/tenant_id={tenant_id}/move-{cursor_version:012d}.jsonl"


def history_prefix(tenant_id: str, stream: str) -> str:
    """Where the Spark runs keep a tenant's curated history of one stream."""
    return f"{c.HISTORY_SUPPORT_PREFIX}/{stream}/tenant_id={tenant_id}/"


def _jsonl(records: list[Any]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":"), sort_keys=True, default=str) + "\n" for r in records).encode()


@dataclass
class Exporter:
    """Lands tenants' pages in the raw bucket and writes the batch manifest for the Spark run."""

    s3: Any
    registry: TenantRegistry
    cursors: CursorStore
    sources: SourceFactory
    raw_bucket: str
    curated_bucket: str
    artifacts_bucket: str
    streams: tuple[str, ...] = SUPPORT_STREAMS
    history_compact_after_files: int | None = None  # see TransformManifest.compact_after_files

    def export_stream(self, tenant: Tenant, stream: str) -> StreamExport:
        """Land every page of ``stream`` changed since the tenant's cursor; return the pages pending a load."""
        state = self.cursors.get(tenant.tenant_id, stream)
        start_time = int(tenant.since.timestamp()) if tenant.since else 0
        landed = records = quarantined = 0
        for page in self.sources(tenant, stream).pages(cursor=state.cursor, start_time=start_time):
            if page.rejected:
                # A bad record is kept with its reason, out of the data path; the run goes on.
                body = _jsonl([{"reason": reason, "record": record} for record, reason in page.rejected])
                self.s3.put_object(
                    Bucket=self.raw_bucket,
                    Key=quarantine_key(tenant.tenant_id, state.version + 1, stream),
                    Body=body,
                    ContentType="application/x-ndjson",
                )
                quarantined += len(page.rejected)
            if page.items:
                self.s3.put_object(
                    Bucket=self.raw_bucket,
                    Key=page_key(tenant.tenant_id, state.next_seq, stream),
                    Body=_jsonl(page.items),
                    ContentType="application/x-ndjson",
                )
                landed += 1
                records += len(page.items)
            state = self.cursors.advance(state, cursor=page.next_cursor, landed_page=bool(page.items))
        return StreamExport(
            pages=landed,
            records=records,
            quarantined=quarantined,
            pending_pages=state.next_seq - 1 - state.loaded_seq,
            last_seq=state.next_seq - 1,
        )

    def export_tenant(self, tenant: Tenant) -> TenantExport:
        """Export every stream of the tenant; return the pages pending a load, per stream and in total."""
        streams = {stream: self.export_stream(tenant, stream) for stream in self.streams}
        return TenantExport(
            tenant_id=tenant.tenant_id,
            pages=sum(s.pages for s in streams.values()),
            records=sum(s.records for s in streams.values()),
            quarantined=sum(s.quarantined for s in streams.values()),
            pending_pages=sum(s.pending_pages for s in streams.values()),
            streams=streams,
        )

    def export_batch(self, batch_state: BatchState) -> ExportResult:
        """Export every tenant of the batch; one tenant's failure is recorded and the others go on."""
        result = ExportResult()
        for tenant_id in batch_state.batch.tenants:
            try:
                exported = self.export_tenant(self.registry.get(tenant_id))
            except TenantAnalyticsError as exc:
                result.failures.append(TenantFailure(tenant_id=tenant_id, step="export", error=exc.message))
                continue
            result.quarantined += exported.quarantined
            if exported.pending_pages:
                result.exported.append(exported)
            else:
                result.unchanged.append(tenant_id)
        if result.exported:
            prefix = f"run={batch_state.run_id}/batch={batch_state.batch.batch_id}"
            manifest_key = f"{c.MANIFESTS_PREFIX}/{prefix}.json"
            manifest = self._manifest(result.exported, batch_state.hour, batch_state.batch.batch_id)
            self.s3.put_object(
                Bucket=self.artifacts_bucket,
                Key=manifest_key,
                Body=manifest.to_json().encode(),
                ContentType="application/json",
            )
            result.manifest_uri = f"s3://{self.artifacts_bucket}/{manifest_key}"
            result.output_uri = f"s3://{self.curated_bucket}/{c.CURATED_SUPPORT_PREFIX}/{prefix}/"
        return result

    def _manifest(self, exports: list[TenantExport], hour: datetime, batch_id: str) -> TransformManifest:
        tenants: dict[str, StreamFiles] = {}
        history: dict[str, StreamFiles] = {}
        for exported in exports:
            tenant_id = exported.tenant_id
            tenants[tenant_id] = {}
            for stream, stream_export in exported.streams.items():
                last = stream_export.last_seq
                pages = range(last - stream_export.pending_pages + 1, last + 1)
                if pages:
                    tenants[tenant_id][stream] = [
                        f"s3://{self.raw_bucket}/{page_key(tenant_id, seq, stream)}" for seq in pages
                    ]
            history[tenant_id] = {stream: self._history_files(tenant_id, stream) for stream in self.streams}
        return TransformManifest(
            raw_root=f"s3://{self.raw_bucket}/{c.RAW_SUPPORT_PREFIX}/",
            hour=hour.isoformat(),
            batch_id=batch_id,
            tenants=tenants,
            history_root=f"s3://{self.curated_bucket}/{c.HISTORY_SUPPORT_PREFIX}/",
            history=history,
            compact_after_files=self.history_compact_after_files,
        )

    def _history_files(self, tenant_id: str, stream: str) -> list[str]:
        files: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.curated_bucket, Prefix=history_prefix(tenant_id, stream)):
            files += [f"s3://{self.curated_bucket}/{o['Key']}" for o in page.get("Contents", [])]
        return sorted(f for f in files if f.endswith(".parquet"))
