"""Pydantic models of the hourly state machine's payloads: what each step receives and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Batch(BaseModel):
    """Tenants processed together by one Spark run."""

    batch_id: str
    tenants: list[str] = Field(min_length=1)
    engine: Literal["glue", "emr"] = "glue"
    rows: int = 0
    retry_of: str | None = Field(
        default=None, description="the batch whose shared step failed, of which this batch runs one tenant again"
    )


class PlanRequest(BaseModel):
    """The Plan step's payload: the execution input as the user gave it, plus execution context."""

    input: dict[str, object] = Field(default_factory=dict)
    execution_name: str
    execution_start: datetime


class PlanResult(BaseModel):
    hour: datetime
    run_id: str
    max_concurrency: int
    poll_seconds: int
    batches: list[Batch]


class StreamExport(BaseModel):
    """One source stream of a tenant's export."""

    pages: int = Field(description="pages landed by this run")
    records: int = Field(description="records landed by this run")
    quarantined: int = Field(default=0, description="records rejected with a reason and kept under quarantine/")
    pending_pages: int = Field(description="landed pages not yet loaded, including earlier runs'")
    last_seq: int = Field(description="the highest landed page number to load")


class TenantExport(BaseModel):
    tenant_id: str
    pages: int = Field(description="pages landed by this run, all streams")
    records: int = Field(description="records landed by this run, all streams")
    quarantined: int = Field(default=0, description="records rejected with a reason and kept under quarantine/")
    pending_pages: int = Field(description="landed pages not yet loaded, including earlier runs', all streams")
    streams: dict[str, StreamExport] = Field(default_factory=dict)

    @property
    def last_seqs(self) -> dict[str, int]:
        """The highest landed page number to load, per stream."""
        return {name: s.last_seq for name, s in self.streams.items()}


class TenantFailure(BaseModel):
    tenant_id: str
    step: Literal["export", "transform", "load", "refresh", "publish", "batch"]
    error: str


class ExportResult(BaseModel):
    exported: list[TenantExport] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    failures: list[TenantFailure] = Field(default_factory=list)
    quarantined: int = Field(default=0, description="records of the batch's tenants rejected and quarantined")
    manifest_uri: str | None = None
    output_uri: str | None = None


class TenantLoad(BaseModel):
    tenant_id: str
    rows_merged: int = Field(description="ticket rows in the load")
    inserted: int = Field(description="tickets new to the store")
    updated: int = Field(description="tickets replaced by a newer version")
    size_rows: int = Field(description="the tenant's tickets in the store after the load")
    tables: dict[str, int] = Field(default_factory=dict, description="rows in the load, per curated table")
    last_seqs: dict[str, int] = Field(description="per stream, the highest landed page now loaded")


class LoadResult(BaseModel):
    loaded: list[TenantLoad] = Field(default_factory=list)
    failures: list[TenantFailure] = Field(default_factory=list)


class ModelRefresh(BaseModel):
    """One model's refresh in one store."""

    store: str
    model: str
    mode: Literal["incremental", "full"]
    rows_changed: int
    duration_s: float
    warning: str | None = None


class RefreshResult(BaseModel):
    refreshed: list[ModelRefresh] = Field(default_factory=list)
    failures: list[TenantFailure] = Field(default_factory=list)
    store_errors: dict[str, str] = Field(default_factory=dict, description="store id -> why its refresh failed")

    def merge(self, other: RefreshResult) -> None:
        """Add another store's (or step's) refreshes and failures to this result."""
        self.refreshed += other.refreshed
        self.failures += other.failures
        self.store_errors.update(other.store_errors)


class StepOutputs(BaseModel):
    export: ExportResult


class StateError(BaseModel):
    """A caught error as Step Functions puts it into the state (``Error``/``Cause``)."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")


class PublishResult(BaseModel):
    batch_id: str
    loaded: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    failed: list[TenantFailure] = Field(default_factory=list)
    records_exported: int = Field(default=0, description="source records landed by this run's exports")
    records_by_stream: dict[str, int] = Field(default_factory=dict, description="records_exported per source stream")
    records_quarantined: int = Field(default=0, description="source records rejected and quarantined")
    freshness_lag_seconds: int | None = Field(
        default=None, description="seconds from the end of the published hour to now (None if nothing published)"
    )
    retried_alone: list[str] = Field(
        default_factory=list,
        description="tenants a failed shared step left undecided; each ran again in a batch of its own, whose outcome"
        " is merged into this one",
    )
    unrecorded_tenants: list[str] = Field(
        default_factory=list, description="tenants of a failure the publish step could not record (see error)"
    )
    error: StateError | None = None
    more_errors: list[StateError] = Field(
        default_factory=list,
        description="the errors of further re-runs whose failure could not be recorded (the first is 'error')",
    )

    def merge(self, other: PublishResult) -> None:
        """Add ``other``'s outcome (a re-run of some of this batch's tenants) to this one."""
        self.loaded += other.loaded
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.records_exported += other.records_exported
        for stream, records in other.records_by_stream.items():
            self.records_by_stream[stream] = self.records_by_stream.get(stream, 0) + records
        self.records_quarantined += other.records_quarantined
        lags = [lag for lag in (self.freshness_lag_seconds, other.freshness_lag_seconds) if lag is not None]
        self.freshness_lag_seconds = max(lags) if lags else None
        self.unrecorded_tenants += other.unrecorded_tenants
        errors = [e for e in (self.error, *self.more_errors, other.error, *other.more_errors) if e is not None]
        self.error, self.more_errors = (errors[0], errors[1:]) if errors else (None, [])


class BatchState(BaseModel):
    """The state of one Map iteration, as it grows through export, transform and load."""

    model_config = ConfigDict(extra="ignore")

    batch: Batch
    hour: datetime
    run_id: str
    poll_seconds: int = 0
    step: StepOutputs | None = None
    load: LoadResult | None = None
    refresh: RefreshResult | None = None
    error: StateError | None = None


class PipelineRound(BaseModel):
    """The execution's state between passes of the batch Map: the batches of the pass that ran, their outcomes
    (in the same order), and the outcomes gathered so far (one per planned batch)."""

    model_config = ConfigDict(extra="ignore")

    hour: datetime
    run_id: str
    max_concurrency: int
    poll_seconds: int
    batches: list[Batch]
    results: list[PublishResult] = Field(default_factory=list)
    outcomes: list[PublishResult] = Field(default_factory=list)
