"""Publish step: advance loaded tenants' data_version and freshness; record failed tenants in the registry."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.constants import FAILED_TENANTS_METRIC, FRESHNESS_METRIC, METRICS_NAMESPACE, PIPELINE_SERVICE
from tenant_analytics.pipeline import runtime
from tenant_analytics.pipeline.models import BatchState
from tenant_analytics.pipeline.publish import publish_batch

logger = Logger(service=PIPELINE_SERVICE)
tracer = Tracer(service=PIPELINE_SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=PIPELINE_SERVICE)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = publish_batch(BatchState.model_validate(event), runtime.registry(), runtime.cursors())
    metrics.add_metric(name="TenantsLoaded", unit=MetricUnit.Count, value=len(result.loaded))
    metrics.add_metric(name=FAILED_TENANTS_METRIC, unit=MetricUnit.Count, value=len(result.failed))
    if result.freshness_lag_seconds is not None:
        metrics.add_metric(name=FRESHNESS_METRIC, unit=MetricUnit.Seconds, value=result.freshness_lag_seconds)
    if result.failed:
        logger.warning("tenants failed", extra={"failed": [f.model_dump() for f in result.failed]})
    if result.retried_alone:
        logger.info("shared step failed; tenants run again alone", extra={"tenants": result.retried_alone})
    return result.model_dump(mode="json", exclude_none=True, by_alias=True)
