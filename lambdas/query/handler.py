"""Query API: semantic queries answered for the tenant named by the authorizer, never by the request."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.errors import Forbidden, TenantAnalyticsError
from tenant_analytics.query.contract import parse_query
from tenant_analytics.query.runtime import query_service

logger = Logger(service="query")
tracer = Tracer(service="query")
app = APIGatewayRestResolver()


def _tenant() -> str:
    authorizer = app.current_event.request_context.authorizer
    tenant = authorizer.get("tenant_id") if authorizer else None
    if not isinstance(tenant, str) or not tenant:
        raise Forbidden("the request carries no tenant from the authorizer")
    return tenant


@app.post("/v1/query")
def post_query() -> Response[Any]:
    answer = query_service().answer(_tenant(), parse_query(app.current_event.json_body))
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=answer.model_dump(mode="json"),
        headers={"X-Cache": answer.cache},
    )


@app.exception_handler(TenantAnalyticsError)  # type: ignore[untyped-decorator]
def domain_error(exc: TenantAnalyticsError) -> Response[Any]:
    return Response(status_code=exc.http_status, content_type=content_types.APPLICATION_JSON, body=exc.to_dict())


@app.exception_handler(ValueError)  # type: ignore[untyped-decorator]
def bad_body(exc: ValueError) -> Response[Any]:
    body = {"error": {"code": "invalid_input", "message": f"request body is not valid JSON: {exc}", "field": ""}}
    return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
