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
    rows = read_bins(cdc_runtime.realtime_store(), _tenant(), metric, since, dimension)
    return RealtimeAnswer(
        metric=metric,
        dimension=dimension,
        since=since,
        bins=[RealtimeBin(bin_start=r.bin_start, value=r.dimension_value, n=r.n) for r in rows],
    )


@app.exception_handler(TenantAnalyticsError)  # type: ignore[untyped-decorator]
def domain_error(exc: TenantAnalyticsError) -> Response[Any]:
    return Response(status_code=exc.http_status, content_type=content_types.APPLICATION_JSON, body=exc.to_dict())


@app.exception_handler(ValueError)  # type: ignore[untyped-decorator]
def unreadable_body(exc: ValueError) -> Response[Any]:
    # e.g. a body that is not JSON, or a multipart content type without a boundary: the caller's mistake
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

    return app.get_openapi_json_schema(
        title="tenant-analytics query API",
        version=__version__,
        description="Semantic queries over the calling tenant's data. The tenant comes from the bearer token only.",
        security_schemes={"bearer": HTTPBearer(bearerFormat="JWT")},
        security=[{"bearer": []}],
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _not_json(event) or app.resolve(event, context)
