"""Plan step of the hourly state machine: validate the input, bin-pack the active and failed tenants into batches."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.pipeline import runtime
from tenant_analytics.pipeline.models import PlanRequest
from tenant_analytics.pipeline.plan import plan_run
from tenant_analytics.settings import get_settings

logger = Logger(service="pipeline")
tracer = Tracer(service="pipeline")


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PlanRequest.model_validate(event)
    plan = plan_run(request, runtime.registry(), get_settings().budgets)
    logger.info("planned run", extra={"run_id": plan.run_id, "batches": len(plan.batches)})
    return plan.model_dump(mode="json")
