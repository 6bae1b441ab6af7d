"""Builds the aggregator's collaborators once per process from settings (one place, for the Lambda handler)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from typing import Any

from tenant_analytics.cdc.aggregator import aggregate_batch
from tenant_analytics.cdc.config import CdcConfig, load_config
from tenant_analytics.cdc.events import batch_from_event
from tenant_analytics.cdc.model import BatchOutcome
from tenant_analytics.cdc.settings import ENV_FAILURE_QUEUE_URL, get_cdc_settings
from tenant_analytics.cdc.sink import FailureSink, SqsFailureSink
from tenant_analytics.cdc.store import RealtimeStore
from tenant_analytics.errors import InvalidInput, StoreUnavailable, UnknownTenant
from tenant_analytics.pipeline import runtime as pipeline_runtime
from tenant_analytics.settings import StoreConfig, get_settings
from tenant_analytics.stores.factory import postgres_conninfo


@cache
def realtime_store() -> RealtimeStore:
    """Return the store holding the realtime bins (CDC_STORE_ID in STORES), its schema ensured."""
    store_id, cfg = _realtime_config()
    store = RealtimeStore(postgres_conninfo(cfg), store_id=store_id)
    store.ensure_schema(if_missing=True)
    return store


@cache
def realtime_reader() -> RealtimeStore:
    """The store of the realtime bins as the query path reads it: as its STORES entry logs in (on AWS the query
    login), creating nothing (the deployment's setup and the aggregator do)."""
    store_id, cfg = _realtime_config()
    return RealtimeStore(cfg.query_dsn or postgres_conninfo(cfg), store_id=store_id)


def _realtime_config() -> tuple[str, StoreConfig]:
    settings, cdc = get_settings(), get_cdc_settings()
    cfg = settings.stores.get(cdc.store_id)
    if cfg is None or cfg.engine != "postgres":
        raise InvalidInput(
            f"realtime store '{cdc.store_id}' is not a configured postgres store"
            f" (configured: {sorted(settings.stores)})",
            field="CDC_STORE_ID",
        )
    return cdc.store_id, cfg


@cache
def failure_sink() -> FailureSink:
    """Return the on-failure queue sink (CDC_FAILURE_QUEUE_URL)."""
    url = get_cdc_settings().failure_queue_url
    if not url:
        raise InvalidInput(f"{ENV_FAILURE_QUEUE_URL} is not set: rejected records have nowhere to go")
    return SqsFailureSink(url)


@cache
def metric_config() -> CdcConfig:
    """Return the metric mapping (CDC_METRICS_CONFIG, else the shipped default)."""
    return load_config(get_cdc_settings().metrics_config)


class KnownTenants:
    """Whether a tenant is registered: a yes is remembered for a minute, a no for a second (about one batch), so a
    tenant's changes are counted as soon as it is registered, and a batch still asks the registry once per tenant."""

    def __init__(
        self, ttl_seconds: float = 60.0, unknown_ttl_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._unknown_ttl = unknown_ttl_seconds
        self._clock = clock
        self._answers: dict[str, tuple[bool, float]] = {}

    def __call__(self, tenant_id: str) -> bool:
        now = self._clock()
        cached = self._answers.get(tenant_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            pipeline_runtime.registry().get(tenant_id)
            known = True
        except UnknownTenant:
            known = False
        self._answers[tenant_id] = (known, now + (self._ttl if known else self._unknown_ttl))
        return known


@cache
def known_tenants() -> KnownTenants:
    return KnownTenants()


def aggregate_event(event: dict[str, Any]) -> BatchOutcome:
    """Aggregate one Lambda Kinesis event; an unreachable database reports every record for redelivery."""
    batch = batch_from_event(event)
    sink, config = failure_sink(), metric_config()
    try:
        store = realtime_store()
    except StoreUnavailable as exc:
        return BatchOutcome(
            stream=batch.stream,
            shard_id=batch.shard_id,
            records=len(batch.records),
            failed_sequence_numbers=tuple(r.sequence_number for r in batch.records),
            failure_reason=exc.message,
        )
    return aggregate_batch(
        batch.records,
        store,
        config,
        batch.shard_id,
        sink=sink,
        stream=batch.stream,
        options=replace(get_cdc_settings().options(), known_tenant=known_tenants()),
    )


def reset() -> None:
    """Forget built collaborators (after settings change: tests, local runner)."""
    for opened in (realtime_store, realtime_reader):
        if opened.cache_info().currsize:
            opened().close()
        opened.cache_clear()
    failure_sink.cache_clear()
    metric_config.cache_clear()
    known_tenants.cache_clear()
    get_cdc_settings.cache_clear()
