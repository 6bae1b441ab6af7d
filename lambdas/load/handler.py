"""Load step: merge each tenant's transformed rows into its store (one transaction per tenant)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.aws import clients
from tenant_analytics.pipeline import runtime
from tenant_analytics.pipeline.load import load_batch
from tenant_analytics.pipeline.models import BatchState

logger = Logger(service="pipeline")
tracer = Tracer(service="pipeline")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = BatchState.model_validate(event)
    result = load_batch(state, clients.client("s3"), runtime.registry(), runtime.store_opener())
    logger.info("loaded batch", extra={"batch_id": state.batch.batch_id, "loaded": len(result.loaded)})
    return result.model_dump(mode="json")
