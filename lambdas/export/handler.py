"""Export step: land each tenant's changed records from its source API in S3 and write the batch manifest."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.pipeline import runtime
from tenant_analytics.pipeline.models import BatchState

logger = Logger(service="pipeline")
tracer = Tracer(service="pipeline")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    state = BatchState.model_validate(event)
    result = runtime.exporter().export_batch(state)
    logger.info(
        "exported batch",
        extra={"batch_id": state.batch.batch_id, "exported": len(result.exported), "failed": len(result.failures)},
    )
    return result.model_dump(mode="json", exclude_none=True)
