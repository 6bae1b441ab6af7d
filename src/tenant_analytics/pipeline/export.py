"""Export step: pull each tenant's changed tickets from its source API into S3, page by page.

A page is written to S3 first; only then does the cursor move past it. A tenant that fails keeps every page it
landed (they are loaded by a later run) and is left out of this run's manifest, so its store sees nothing partial.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tenant_analytics import constants as c
from tenant_analytics.errors import TenantAnalyticsError
from tenant_analytics.tenants.models import Tenant
from tenant_analytics.tenants.registry import TenantRegistry
from tenant_analytics.transforms.manifest import TransformManifest

from .cursors import CursorState, CursorStore
from .models import BatchState, ExportResult, TenantExport, TenantFailure

STREAM = "tickets"


class Page(Protocol):
    """What the export needs of a source page."""

    @property
    def tickets(self) -> list[dict[str, Any]]: ...

    @property
    def rejected(self) -> list[tuple[dict[str, Any], str]]: ...

    @property
    def after_cursor(self) -> str | None: ...


class PageSource(Protocol):
    def iter_pages(self, *, start_time: int | None = None, cursor: str | None = None) -> Iterator[Page]: ...


SourceFactory = Callable[[Tenant], PageSource]


def page_key(tenant_id: str, seq: int) -> str:
    """S3 key of a landed page; zero-padded so keys sort by page number."""
    return f"{c.RAW_TICKETS_PREFIX}/tenant_id={tenant_id}/page-{seq:012d}.jsonl"


def quarantine_key(tenant_id: str, cursor_version: int) -> str:
    """S3 key of the records a page rejected, one per cursor move, so a retried page overwrites its own."""
    return f"{c.QUARANTINE_TICKETS_PREFIX}/tenant_id={tenant_id}/move-{cursor_version:012d}.jsonl"


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

    def export_tenant(self, tenant: Tenant) -> TenantExport:
        """Land every page changed since the tenant's cursor; return the pages pending a load."""
        state = self.cursors.get(tenant.tenant_id, STREAM)
        source = self.sources(tenant)
        if state.cursor is not None:
            pages = source.iter_pages(cursor=state.cursor)
        else:
            pages = source.iter_pages(start_time=int(tenant.since.timestamp()) if tenant.since else 0)
        landed = records = quarantined = 0
        for page in pages:
            if page.rejected:
                # A bad record is kept with its reason, out of the data path; the run goes on.
                body = "".join(
                    json.dumps({"reason": reason, "record": record}, separators=(",", ":"), default=str) + "\n"
                    for record, reason in page.rejected
                )
                self.s3.put_object(
                    Bucket=self.raw_bucket,
                    Key=quarantine_key(tenant.tenant_id, state.version + 1),
                    Body=body.encode(),
                    ContentType="application/x-ndjson",
                )
                quarantined += len(page.rejected)
            tickets = page.tickets
            if tickets:
                body = "".join(json.dumps(t, separators=(",", ":"), sort_keys=True) + "\n" for t in tickets)
                self.s3.put_object(
                    Bucket=self.raw_bucket,
                    Key=page_key(tenant.tenant_id, state.next_seq),
                    Body=body.encode(),
                    ContentType="application/x-ndjson",
                )
                landed += 1
                records += len(tickets)
            state = self.cursors.advance(state, cursor=page.after_cursor, landed_page=bool(tickets))
        return TenantExport(
            tenant_id=tenant.tenant_id,
            pages=landed,
            records=records,
            quarantined=quarantined,
            pending_pages=state.next_seq - 1 - state.loaded_seq,
            last_seq=state.next_seq - 1,
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
            manifest = self._manifest(result.exported, batch_state.hour)
            self.s3.put_object(
                Bucket=self.artifacts_bucket,
                Key=manifest_key,
                Body=manifest.to_json().encode(),
                ContentType="application/json",
            )
            result.manifest_uri = f"s3://{self.artifacts_bucket}/{manifest_key}"
            result.output_uri = f"s3://{self.curated_bucket}/{c.CURATED_TICKETS_PREFIX}/{prefix}/"
        return result

    def _manifest(self, exports: list[TenantExport], hour: datetime) -> TransformManifest:
        tenants: dict[str, list[str]] = {}
        for exported in exports:
            state: CursorState = self.cursors.get(exported.tenant_id, STREAM)
            tenants[exported.tenant_id] = [
                f"s3://{self.raw_bucket}/{page_key(exported.tenant_id, seq)}"
                for seq in range(state.loaded_seq + 1, exported.last_seq + 1)
            ]
        return TransformManifest(
            raw_root=f"s3://{self.raw_bucket}/{c.RAW_TICKETS_PREFIX}/", hour=hour.isoformat(), tenants=tenants
        )
