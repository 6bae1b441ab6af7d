"""Refresh models: the hourly pipeline's step after a load, and a schedule (every few minutes) over every store."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from tenant_analytics.constants import (
    METRICS_NAMESPACE,
    MODEL_REFRESH_FAILURES_METRIC,
    MODELS_REFRESHED_METRIC,
    PIPELINE_SERVICE,
)
from tenant_analytics.pipeline import runtime
from tenant_analytics.pipeline.models import BatchState
from tenant_analytics.pipeline.refresh import refresh_batch, refresh_scheduled
from tenant_analytics.settings import get_settings

logger = Logger(service=PIPELINE_SERVICE)
tracer = Tracer(service=PIPELINE_SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=PIPELINE_SERVICE)


class ScheduledRefresh(BaseModel):
    """The schedule's input: every configured store unless ``stores`` names some."""

    model_config = ConfigDict(extra="forbid")

    stores: list[str] | None = None


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "batch" in event:
        state = BatchState.model_validate(event)
        result = refresh_batch(
            state, runtime.registry(), runtime.store_opener(), export_uri=runtime.operational_export_uri()
        )
    else:
        request = ScheduledRefresh.model_validate(event)
        result = refresh_scheduled(
            request.stores or sorted(get_settings().stores),
            runtime.registry(),
            runtime.store_opener(),
            export_uri=runtime.operational_export_uri(),
        )
    metrics.add_metric(name=MODELS_REFRESHED_METRIC, unit=MetricUnit.Count, value=len(result.refreshed))
    metrics.add_metric(name=MODEL_REFRESH_FAILURES_METRIC, unit=MetricUnit.Count, value=len(result.store_errors))
    for warning in {r.warning for r in result.refreshed if r.warning}:
        logger.warning("model refreshed in full", extra={"reason": warning})
    if result.store_errors:
        logger.warning("refresh failed", extra={"stores": result.store_errors})
    return result.model_dump(mode="json")
