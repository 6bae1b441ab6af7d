"""Collect step of the hourly state machine: gather the batches' outcomes; split failed batches to run tenant by
tenant."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.constants import PIPELINE_SERVICE
from tenant_analytics.pipeline.models import PipelineRound
from tenant_analytics.pipeline.rounds import collect_round

logger = Logger(service=PIPELINE_SERVICE)
tracer = Tracer(service=PIPELINE_SERVICE)


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    following = collect_round(PipelineRound.model_validate(event))
    if following.batches:
        logger.info("running tenants alone", extra={"tenants": [b.tenants[0] for b in following.batches]})
    return following.model_dump(mode="json", exclude_none=True, by_alias=True)
