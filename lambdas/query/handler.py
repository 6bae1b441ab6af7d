"""Query API: semantic queries answered for the tenant named by the authorizer, never by the request.

Routes are typed with the contract's models, so Powertools validates every request and generates the
OpenAPI document (docs/openapi.json) from the same models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query as QueryParam
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from tenant_analytics.cdc import runtime as cdc_runtime
from tenant_analytics.cdc.store import read_bins
from tenant_analytics.constants import METRICS_NAMESPACE
from tenant_analytics.errors import Forbidden, TenantAnalyticsError
from tenant_analytics.query.api_models import (
    LAST_PATTERN,
    Catalog,
    RealtimeAnswer,
    RealtimeBin,
    TenantInfo,
    catalog_document,
    parse_last,
    tenant_info,
)
from tenant_analytics.query.contract import Answer, BatchAnswer, ErrorBody, Query, QueryBatch, invalid_query
from tenant_analytics.query.runtime import query_service

logger = Logger(service="query")
tracer = Tracer(service="query")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="query")
app = APIGatewayRestResolver(enable_validation=True)


def _not_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """A 415 answer for a body that is not JSON (curl's default form encoding would read as an empty query)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    if not event.get("body") or not media_type or media_type == "application/json":
        return None
    message = f"the body must be JSON: send 'Content-Type: application/json', not '{media_type}'"
    body = {"error": {"code": "unsupported_media_type", "message": message, "field": ""}}
    return {"statusCode": 415, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def _tenant() -> str:
    authorizer = app.current_event.request_context.authorizer
    tenant = authorizer.get("tenant_id") if authorizer else None
    if not isinstance(tenant, str) or not tenant:
        raise Forbidden("the request carries no tenant from the authorizer")
    return tenant


def _count_cache(answers: list[Answer]) -> None:
    for answer in answers:
        metrics.add_metric(name=f"Cache{answer.cache.capitalize()}", unit=MetricUnit.Count, value=1)


@app.post("/v1/query", summary="Answer one semantic query for the calling tenant")
def post_query(query: Query) -> Response[Answer]:
    answer = query_service().answer(_tenant(), query)
    _count_cache([answer])
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=answer, headers={"X-Cache": answer.cache}
    )


@app.post("/v1/query/batch", summary="Answer a dashboard's queries concurrently")
def post_query_batch(batch: QueryBatch) -> BatchAnswer:
    results = query_service().answer_many(_tenant(), batch.queries)
    _count_cache([r for r in results if isinstance(r, Answer)])
    return BatchAnswer(answers=[r if isinstance(r, Answer) else ErrorBody.model_validate(r.to_dict()) for r in results])


@app.get("/v1/catalog", summary="Datasets, measures, dimensions and granularities that can be queried")
def get_catalog() -> Catalog:
    return catalog_document()


@app.get("/v1/tenants/me", summary="The calling tenant: tier, size and freshness")
def get_me() -> TenantInfo:
    return tenant_info(query_service().tenant(_tenant()))


@app.get("/v1/realtime", summary="The calling tenant's 10-second bins of one change-stream metric")
def get_realtime(
    metric: Annotated[str, QueryParam(min_length=1, max_length=64)],
    last: Annotated[str, QueryParam(pattern=LAST_PATTERN)] = "15m",
    dimension: Annotated[str | None, QueryParam(min_length=1, max_length=64)] = None,
) -> RealtimeAnswer:
    since = datetime.now(UTC) - parse_last(last)
    tenant = query_service().served(_tenant()).tenant.tenant_id  # registered and not suspended
    rows = read_bins(cdc_runtime.realtime_reader(), tenant, metric, since, dimension)
    return RealtimeAnswer(
        metric=metric,
        dimension=dimension,
        since=since,
        bins=[RealtimeBin(bin_start=r.bin_start, value=r.dimension_value, n=r.n) for r in rows],
    )


@app.not_found
def no_route(_: NotFoundError) -> Response[Any]:
    """404 for a path the API does not have, 405 (with Allow) for a method a path does not take."""
    event = app.current_event
    allowed = [method for method, path in ERROR_STATUSES if path == event.path]
    if allowed:
        message = f"{event.path} does not take {event.http_method}; it takes {', '.join(allowed)}"
        body = {"error": {"code": "method_not_allowed", "message": message, "field": ""}}
        return Response(
            status_code=405,
            content_type=content_types.APPLICATION_JSON,
            body=body,
            headers={"Allow": ", ".join(allowed)},
        )
    routes = ", ".join(f"{method} {path}" for method, path in ERROR_STATUSES)
    message = f"no route {event.http_method} {event.path}; routes: {routes}"
    body = {"error": {"code": "not_found", "message": message, "field": ""}}
    return Response(status_code=404, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(TenantAnalyticsError)  # type: ignore[untyped-decorator]
def domain_error(exc: TenantAnalyticsError) -> Response[Any]:
    return Response(status_code=exc.http_status, content_type=content_types.APPLICATION_JSON, body=exc.to_dict())


@app.exception_handler(ValueError)  # type: ignore[untyped-decorator]
@app.exception_handler(RecursionError)  # type: ignore[untyped-decorator]
def unreadable_body(exc: ValueError | RecursionError) -> Response[Any]:
    # e.g. a body that is not JSON, nested deeper than the parser goes, or a multipart content type without a
    # boundary: the caller's mistake
    body = {"error": {"code": "invalid_input", "message": f"the request body could not be read: {exc}", "field": ""}}
    return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=body)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def invalid_request(exc: RequestValidationError) -> Response[Any]:
    error = invalid_query(list(exc.errors()), strip=("body", "query", "batch"))
    return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=error.to_dict())


def openapi_document() -> str:
    """The API's OpenAPI 3.1 document, generated from the routes' models (published as docs/openapi.json)."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from tenant_analytics import __version__

    document = json.loads(
        app.get_openapi_json_schema(
            title="tenant-analytics query API",
            version=__version__,
            description="Semantic queries over the calling tenant's data. The tenant comes from the bearer token "
            "only. Every error answers with an ErrorBody: a code, a message saying what was wrong and what is "
            "allowed, and the field at fault.",
            security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
            security=[{"bearer": []}],
        )
    )
    # The generator documents its own 422 validation shape; this API answers every error with an ErrorBody.
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            responses.pop("422", None)
            for status in ERROR_STATUSES[(method.upper(), path)]:
                responses[str(status)] = {"description": ERROR_RESPONSES[status], "content": error}
    for unused in ("HTTPValidationError", "ValidationError"):
        document["components"]["schemas"].pop(unused, None)
    return json.dumps(document, indent=2)


ERROR_RESPONSES = {
    400: "The request is not valid: `field` names what, `message` what is allowed (invalid_input, invalid_query)",
    401: "No valid bearer token (unauthorized)",
    403: "The tenant may not be served now (tenant_suspended), or the request carries no tenant (forbidden)",
    404: "The token's tenant is not registered (unknown_tenant), or no such route (not_found)",
    415: "The body is not JSON (unsupported_media_type)",
    429: "Over the tenant's usage plan: rate, burst or monthly quota (too_many_requests)",
    503: "The tenant's store is not reachable or not set up yet (store_unavailable, store_not_ready): retry later",
}

# What each route can answer besides 200 (the catalog reads no tenant data; only the query routes read stores).
ERROR_STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/v1/query"): (400, 401, 403, 404, 415, 429, 503),
    ("POST", "/v1/query/batch"): (400, 401, 403, 404, 415, 429, 503),
    ("GET", "/v1/catalog"): (401, 429),
    ("GET", "/v1/tenants/me"): (401, 403, 404, 429),
    ("GET", "/v1/realtime"): (400, 401, 403, 404, 429, 503),
}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _not_json(event) or app.resolve(event, context)
