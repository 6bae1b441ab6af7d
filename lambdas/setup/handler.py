"""Set up every store during the deployment (a CDK trigger runs it once per release, before the query API)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.cdc import runtime as cdc_runtime
from tenant_analytics.constants import PIPELINE_SERVICE
from tenant_analytics.pipeline import runtime
from tenant_analytics.settings import get_settings
from tenant_analytics.stores.setup import set_up_stores

logger = Logger(service=PIPELINE_SERVICE)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Set up every configured store; a store that cannot be set up fails the invocation, and so the deployment."""
    result = set_up_stores(
        sorted(get_settings().stores), runtime.store_opener(), also={"realtime bins": cdc_runtime.realtime_store}
    )
    logger.info("stores set up", extra={"stores": result.set_up})
    return {"set_up": result.set_up}
