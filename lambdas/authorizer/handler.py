"""API Gateway TOKEN authorizer: a valid JWT becomes an Allow for the whole API, with the tenant in context.

The policy does not depend on the requested path, so a cached decision for one path grants nothing
another path would not grant the same token. When the API requires API keys (key source AUTHORIZER), the
tenant's key is returned as ``usageIdentifierKey``: its usage plan throttles the tenant.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.errors import Unauthorized
from tenant_analytics.query.runtime import token_verifier, usage_identifier_key

logger = Logger(service="query")


def _api_arn(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> every method and path of this stage
    arn, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0]
    return f"{arn}/{stage}/*/*"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        tenant_id = token_verifier().tenant_of(event.get("authorizationToken"))
    except Unauthorized as exc:
        logger.info("credential rejected", extra={"reason": exc.message})
        raise Exception("Unauthorized") from exc  # API Gateway answers 401 for exactly this message
    response: dict[str, Any] = {
        "principalId": tenant_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": _api_arn(event["methodArn"])}
            ],
        },
        "context": {"tenant_id": tenant_id},
    }
    api_key = usage_identifier_key(tenant_id)
    if api_key is not None:
        response["usageIdentifierKey"] = api_key
    return response
