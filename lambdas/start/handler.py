"""Scheduled start of the hourly pipeline: one execution per hour, named after it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.aws import clients
from tenant_analytics.constants import PIPELINE_SERVICE
from tenant_analytics.pipeline.start import StartRequest, start_hourly_run
from tenant_analytics.settings import get_settings

logger = Logger(service=PIPELINE_SERVICE)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    result = start_hourly_run(
        clients.client("stepfunctions"), get_settings().state_machine_arn or "", StartRequest.model_validate(event)
    )
    logger.info("hourly run", extra=result.model_dump(mode="json"))
    return result.model_dump(mode="json")
