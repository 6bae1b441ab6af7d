"""The query API through the local API Gateway: real authorizer, real query Lambda, PostgreSQL with RLS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tenant_analytics import constants as c
from tenant_analytics.aws import clients
from tenant_analytics.local.api import LocalApiGateway
from tenant_analytics.local.aws import LocalLambdaContext
from tenant_analytics.local.platform import LocalPlatform, local_platform
from tenant_analytics.pipeline import runtime
from tenant_analytics.query import runtime as query_runtime
from tenant_analytics.settings import get_settings
from tenant_analytics.stores.base import CuratedFiles
from tenant_analytics.tenants.api_keys import usage_plan_keys
from tenant_analytics.tenants.models import TenantStatus, Tier
from tenant_analytics.tenants.registry import TenantRegistry

DAILY = {
    "dataset": "tickets",
    "measures": ["tickets_created"],
    "time": {"dimension": "created_at", "granularity": "day"},
}
HOUR = datetime(2026, 1, 3, 12, tzinfo=UTC)


def csv(rows: list[tuple[int, str, str, str]]) -> CuratedFiles:
    """Curated CSV lines: ticket_id, created_at, updated_at, status, priority, channel, ids..."""
    return CuratedFiles.from_bytes(
        f"{tid},{created},{created},{status},normal,{channel},1,,,,,,,\n".encode()
        for tid, created, status, channel in rows
    )


@pytest.fixture
def platform(tmp_path: Path, pg_admin: str, db_prefix: str) -> Iterator[LocalPlatform]:
    with local_platform(tmp_path / "home", persist=False, pg_admin=pg_admin, db_prefix=db_prefix) as p:
        # Given two tenants on the same pooled cluster and one on the Redshift tier, each with its own tickets
        p.add_tenant("acme", "http://127.0.0.1:1/acme")
        p.add_tenant("globex", "http://127.0.0.1:1/globex")
        p.add_tenant("bigco", "http://127.0.0.1:1/bigco", tier=Tier.REDSHIFT)
        data = {
            "acme": [
                (1, "2026-01-01T10:00:00Z", "open", "email"),
                (2, "2026-01-01T11:00:00Z", "solved", "web"),
                (3, "2026-01-02T09:00:00Z", "open", "email"),
            ],
            "globex": [(1, "2026-01-01T08:00:00Z", "open", "chat")],
            "bigco": [(7, "2026-01-02T08:00:00Z", "new", "api"), (8, "2026-01-02T09:00:00Z", "new", "api")],
        }
        for tenant_id, rows in data.items():
            tenant = p.registry.get(tenant_id)
            store = runtime.store_opener()(tenant.store)
            stats = store.merge_curated(tenant_id, {"tickets": csv(rows)})
            store.refresh_models([tenant_id])  # as the pipeline does between load and publish
            p.registry.record_load(tenant_id, size_rows=stats.size_rows, loaded_through=HOUR)
        yield p


def call(gw: LocalApiGateway, token: str | None, body: object, headers: dict[str, str] | None = None):
    h = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    return gw.handle("POST", "/v1/query", h, json.dumps(body))


def test_each_tenant_sees_only_its_own_data_on_both_tiers(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    acme = call(gw, platform.token("acme"), DAILY)
    globex = call(gw, platform.token("globex"), DAILY)
    bigco = call(gw, platform.token("bigco"), DAILY)
    assert acme.status == globex.status == bigco.status == 200
    assert acme.json()["rows"] == [["2026-01-01", 2], ["2026-01-02", 1]]
    assert globex.json()["rows"] == [["2026-01-01", 1]]
    assert bigco.json()["rows"] == [["2026-01-02", 2]]
    assert acme.json()["data_version"] == 1
    assert acme.json()["freshness"]["loaded_through"] == "2026-01-03T12:00:00Z"


def test_tenant_queries_log_in_as_the_query_login_on_both_tiers(platform: LocalPlatform, pg_admin: str) -> None:
    # When tenants of both tiers query through the API
    gw = LocalApiGateway()
    for tenant_id in ("acme", "bigco"):
        assert call(gw, platform.token(tenant_id), DAILY).status == 200
    # Then the answers came over connections of the query login, one per store, as on AWS (never the writers')
    stores = {store_id: cfg.dsn for store_id, cfg in get_settings().stores.items()}
    with psycopg.connect(pg_admin, autocommit=True) as admin:
        logged_in = {
            str(r[0])
            for r in admin.execute(
                "SELECT datname FROM pg_stat_activity WHERE usename = %s AND datname = ANY(%s)",
                (c.QUERY_LOGIN, [conninfo_to_dict(dsn)["dbname"] for dsn in stores.values() if dsn]),
            )
        }
    assert logged_in == {
        conninfo_to_dict(stores[platform.registry.get(t).store] or "")["dbname"] for t in ("acme", "bigco")
    }


def test_the_tenant_comes_from_the_token_never_from_body_or_headers(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    token = platform.token("globex")
    # When globex asks with another tenant named in the body, or in headers
    in_body = call(gw, token, {**DAILY, "tenant_id": "acme"})
    in_headers = call(gw, token, DAILY, {"X-Tenant-Id": "acme", "tenant_id": "acme"})
    # Then the body is rejected and the headers are ignored: globex's own rows only
    assert in_body.status == 400 and in_body.json()["error"]["field"] == "tenant_id"
    assert in_headers.status == 200 and in_headers.json()["rows"] == [["2026-01-01", 1]]


def test_bad_credentials_get_401(platform: LocalPlatform, tmp_path: Path) -> None:
    from tenant_analytics.query.auth import DevSigner
    from tenant_analytics.settings import get_settings

    s = get_settings()
    forged = DevSigner(tmp_path / "forger.pem", issuer=s.auth_issuer, audience=s.auth_audience).sign("acme")
    gw = LocalApiGateway()
    for token in (None, "not-a-jwt", forged, platform.token("acme", ttl_seconds=-5)):
        assert call(gw, token, DAILY).status == 401


def test_bad_queries_get_400_with_the_field_and_unknown_tenants_404(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    bad = call(gw, platform.token("acme"), {**DAILY, "measures": ["nope"]})
    assert bad.status == 400
    assert bad.json()["error"] == {
        "code": "invalid_query",
        "message": "unknown measure 'nope' in dataset 'tickets'; allowed: ['requesters', 'solve_rate', "
        "'tickets_assigned', 'tickets_created', 'tickets_solved', 'tickets_unresolved']",
        "field": "measures[0]",
    }
    assert call(gw, platform.token("stranger"), DAILY).status == 404
    injected = call(
        gw,
        platform.token("acme"),
        {**DAILY, "filters": [{"dimension": "channel", "op": "eq", "values": ["email' OR '1'='1"]}]},
    )
    assert injected.status == 200 and injected.json()["rows"] == []


def _use_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Deploy new settings to the local functions (a cold start: settings and collaborators are built again)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    query_runtime.reset()


def test_a_load_makes_cached_answers_unreachable_once_the_bound_has_passed(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given query containers that keep a tenant's data_version for at most 200 ms
    _use_settings(monkeypatch, **{c.ENV_DATA_VERSION_MAX_AGE_MS: "200"})
    gw = LocalApiGateway()
    token = platform.token("acme")
    first, again = call(gw, token, DAILY), call(gw, token, DAILY)
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "hit")
    assert again.json()["freshness"]["data_version_age_ms"] <= 200
    # When a load adds a ticket and bumps the data version
    store = runtime.store_opener()(platform.registry.get("acme").store)
    store.merge_curated("acme", {"tickets": csv([(4, "2026-01-02T10:00:00Z", "new", "web")])})
    store.refresh_models(["acme"])
    platform.registry.record_load("acme", size_rows=4, loaded_through=HOUR)
    # Then the first request after the bound is answered afresh, not from the cached answer
    time.sleep(0.25)
    after = call(gw, token, DAILY)
    assert after.headers["X-Cache"] == "miss"
    assert after.json()["data_version"] == 2 and after.json()["freshness"]["data_version_age_ms"] == 0
    assert after.json()["rows"] == [["2026-01-01", 2], ["2026-01-02", 2]]


def test_with_a_zero_bound_the_next_request_after_a_load_is_a_miss(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_settings(monkeypatch, **{c.ENV_DATA_VERSION_MAX_AGE_MS: "0"})
    gw = LocalApiGateway()
    token = platform.token("acme")
    assert call(gw, token, DAILY).headers["X-Cache"] == "miss"
    platform.registry.record_load("acme", size_rows=3, loaded_through=HOUR)
    after = call(gw, token, DAILY)
    assert (after.headers["X-Cache"], after.json()["data_version"]) == ("miss", 2)


def _channel_filter(*values: object, op: str = "eq") -> dict[str, object]:
    return {**DAILY, "filters": [{"dimension": "channel", "op": op, "values": list(values)}]}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            _channel_filter(5),
            "filters[0].values[0]",
            "dimension 'channel' holds text: give the value as a string, got 5",
        ),
        (_channel_filter(True), "filters[0].values[0]", "must be a string or an integer, got True"),
        (_channel_filter(1.5), "filters[0].values[0]", "must be a string or an integer, got 1.5"),
        (_channel_filter("a\x00b"), "filters[0].values[0]", "cannot contain the character NUL"),
        (_channel_filter("x" * 1001), "filters[0].values[0]", "has at most 1000 characters, got 1001"),
        (_channel_filter(*(["email"] * 1001), op="in"), "filters[0].values", "at most 1000 items"),
        (
            {**DAILY, "time": {"dimension": "created_at", "from": "0001-01-01T00:00:00+14:00"}},
            "time.from",
            "must be from 1900-01-01 to before 3000-01-01 (UTC), got 0001-01-01T00:00:00+14:00",
        ),
        (
            {**DAILY, "time": {"dimension": "created_at", "granularity": "day", "to": "9999-12-31T23:59:59-14:00"}},
            "time.to",
            "must be from 1900-01-01",
        ),
        ({**DAILY, "measures": ["tickets_created", "tickets_created"]}, "measures[1]", "listed twice in 'measures'"),
    ],
)
def test_values_the_store_cannot_take_get_400_naming_the_field(
    platform: LocalPlatform, body: dict[str, object], field: str, message: str
) -> None:
    response = call(LocalApiGateway(), platform.token("acme"), body)
    assert response.status == 400, response.json()
    assert response.json()["error"]["field"] == field and message in response.json()["error"]["message"]


def test_bodies_that_are_not_json_objects_get_400_saying_why(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    headers = {"Authorization": f"Bearer {platform.token('acme')}", "Content-Type": "application/json"}
    for path in ("/v1/query", "/v1/query/batch"):
        truncated = gw.handle("POST", path, headers, '{"dataset":')
        assert truncated.status == 400
        assert truncated.json()["error"]["message"].startswith("the request body is not valid JSON: ")
        deep = gw.handle("POST", path, headers, "[" * 5000 + "]" * 5000)  # deeper than the JSON parser recurses
        assert deep.status == 400 and "could not be read" in deep.json()["error"]["message"]


def test_a_suspended_tenant_is_served_no_data_but_may_read_its_own_record(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    platform.registry.set_status("globex", TenantStatus.SUSPENDED)
    auth = {"Authorization": f"Bearer {platform.token('globex')}", "Content-Type": "application/json"}
    refused = [
        call(gw, platform.token("globex"), DAILY),
        gw.handle("POST", "/v1/query/batch", auth, json.dumps({"queries": [DAILY]})),
        gw.handle("GET", "/v1/realtime", auth, None, {"metric": ["tickets_created"]}),
    ]
    for response in refused:
        assert response.status == 403
        assert response.json()["error"]["code"] == "tenant_suspended"
        assert "tenant 'globex' is suspended" in response.json()["error"]["message"]
    me = gw.handle("GET", "/v1/tenants/me", auth, None)
    assert me.status == 200 and me.json()["status"] == "suspended"
    assert call(gw, platform.token("acme"), DAILY).status == 200  # the others are served as before


def test_realtime_bins_of_an_unregistered_tenant_are_404_like_its_queries(platform: LocalPlatform) -> None:
    auth = {"Authorization": f"Bearer {platform.token('stranger')}"}
    response = LocalApiGateway().handle("GET", "/v1/realtime", auth, None, {"metric": ["tickets_created"]})
    assert response.status == 404 and response.json()["error"]["code"] == "unknown_tenant"


def test_unknown_routes_and_methods_answer_in_the_error_shape(platform: LocalPlatform) -> None:
    gw, auth = LocalApiGateway(), {"Authorization": f"Bearer {platform.token('acme')}"}
    unknown = gw.handle("GET", "/v1/nope", auth, None)
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "not_found"
    assert unknown.json()["error"]["message"].startswith("no route GET /v1/nope; routes: POST /v1/query, ")
    for method in ("GET", "DELETE"):
        wrong = gw.handle(method, "/v1/query", auth, None)
        assert wrong.status == 405 and wrong.headers["Allow"] == "POST"
        assert wrong.json()["error"] == {
            "code": "method_not_allowed",
            "message": f"/v1/query does not take {method}; it takes POST",
            "field": "",
        }


def test_a_query_that_fails_unexpectedly_loses_no_other_answer_of_its_batch(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenant_analytics.query import service

    real_plan = service.plan_query

    def plan_with_a_defect(query: Any, *args: Any, **kwargs: Any) -> Any:
        if query.dimensions == ["priority"]:
            raise RuntimeError("a defect")
        return real_plan(query, *args, **kwargs)

    monkeypatch.setattr(service, "plan_query", plan_with_a_defect)
    by_priority = {"dataset": "tickets", "measures": ["tickets_created"], "dimensions": ["priority"]}
    response = LocalApiGateway().handle(
        "POST",
        "/v1/query/batch",
        {"Authorization": f"Bearer {platform.token('acme')}"},
        json.dumps({"queries": [DAILY, by_priority]}),
    )
    assert response.status == 200
    first, second = response.json()["answers"]
    assert first["rows"] == [["2026-01-01", 2], ["2026-01-02", 1]]
    assert second["error"]["code"] == "internal_error" and "a defect" not in second["error"]["message"]


def test_a_batch_answers_each_query_or_names_its_error(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    token = platform.token("acme")
    by_channel = {
        "dataset": "tickets",
        "measures": ["tickets_created"],
        "dimensions": ["channel"],
        "order": [{"by": "channel"}],
    }
    response = gw.handle(
        "POST",
        "/v1/query/batch",
        {"Authorization": f"Bearer {token}"},
        json.dumps({"queries": [DAILY, by_channel, {**DAILY, "measures": ["nope"]}]}),
    )
    assert response.status == 200
    answers = response.json()["answers"]
    assert answers[0]["rows"] == [["2026-01-01", 2], ["2026-01-02", 1]]
    assert answers[1]["rows"] == [["email", 2], ["web", 1]]
    assert answers[2]["error"]["field"] == "measures[0]"
    too_many = gw.handle(
        "POST", "/v1/query/batch", {"Authorization": f"Bearer {token}"}, json.dumps({"queries": [DAILY] * 21})
    )
    assert too_many.status == 400 and too_many.json()["error"]["field"] == "queries"


def test_catalog_and_tenant_routes(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    auth = {"Authorization": f"Bearer {platform.token('bigco')}"}
    catalog = gw.handle("GET", "/v1/catalog", auth, None).json()
    tickets = next(d for d in catalog["datasets"] if d["name"] == "tickets")
    assert "tickets_created" in [m["name"] for m in tickets["measures"]]
    me = gw.handle("GET", "/v1/tenants/me", auth, None).json()
    assert (me["tenant_id"], me["tier"], me["size_rows"], me["data_version"]) == ("bigco", "redshift", 2, 1)
    assert "store" not in me and "source_url" not in me


def test_published_openapi_document_is_current() -> None:
    from lambdas.query.handler import openapi_document

    published = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert json.loads(published.read_text()) == json.loads(openapi_document()), (
        "run: tenant-analytics openapi > docs/openapi.json"
    )


def test_the_shared_cache_serves_other_containers_but_never_other_tenants(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    first = call(gw, platform.token("acme"), DAILY)
    # When a new container (empty in-process cache) gets the same query from the same tenant
    query_runtime.reset()
    other_container = call(gw, platform.token("acme"), DAILY)
    # Then the shared layer answers it; another tenant asking the same query is never served acme's answer
    globex = call(gw, platform.token("globex"), DAILY)
    assert first.headers["X-Cache"] == "miss" and other_container.headers["X-Cache"] == "hit"
    assert other_container.json()["rows"] == first.json()["rows"]
    assert globex.headers["X-Cache"] == "miss" and globex.json()["rows"] == [["2026-01-01", 1]]


def test_a_body_that_is_not_json_gets_415_naming_the_header(platform: LocalPlatform) -> None:
    gw = LocalApiGateway()
    form = call(gw, platform.token("acme"), DAILY, {"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415
    assert "Content-Type: application/json" in form.json()["error"]["message"]


def test_with_usage_plans_each_tenant_is_identified_to_its_plan_by_the_authorizer(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.authorizer.handler import lambda_handler as authorizer

    # Given usage plans per tier, keys required, and a tenant registered with them
    apigw = clients.client("apigateway")
    plans = {name: apigw.create_usage_plan(name=name)["id"] for name in ("standard", "large")}
    _use_settings(monkeypatch, **{c.ENV_USAGE_PLAN_IDS: json.dumps(plans), c.ENV_API_KEYS_REQUIRED: "true"})
    s = get_settings()
    registry = TenantRegistry(
        clients.resource("dynamodb"), s.tenants_table, s.stores, s.budgets, api_keys=usage_plan_keys(s)
    )
    initech = registry.add("initech", "http://127.0.0.1:1/initech")
    # When the authorizer checks initech's token
    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {platform.token('initech')}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/local/POST/v1/query",
    }
    policy = authorizer(event, LocalLambdaContext(function_name=c.function_name("authorizer")))
    # Then it names initech's own key, the one attached to the standard plan
    key = apigw.get_api_key(apiKey=initech.api_key_id, includeValue=True)
    assert policy["usageIdentifierKey"] == key["value"]
    assert {k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=plans["standard"])["items"]} == {key["id"]}
    # And through the gateway initech is served, while a tenant registered before the plans (no key) is refused
    gw = LocalApiGateway()
    assert call(gw, platform.token("initech"), DAILY).status == 200
    refused = call(gw, platform.token("acme"), DAILY)
    assert refused.status == 403 and "API key" in refused.json()["error"]["message"]


def test_without_usage_plans_the_authorizer_names_no_key(platform: LocalPlatform) -> None:
    from lambdas.authorizer.handler import lambda_handler as authorizer

    event = {
        "type": "TOKEN",
        "authorizationToken": f"Bearer {platform.token('acme')}",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/local/POST/v1/query",
    }
    policy = authorizer(event, LocalLambdaContext(function_name=c.function_name("authorizer")))
    assert policy["context"] == {"tenant_id": "acme"} and "usageIdentifierKey" not in policy


def test_concurrent_requests_of_different_tenants_each_get_their_own_answer(platform: LocalPlatform) -> None:
    # Given three tenants calling the gateway at once, from many threads (authorizers run concurrently)
    gw = LocalApiGateway()
    expected = {
        "acme": [["2026-01-01", 2], ["2026-01-02", 1]],
        "globex": [["2026-01-01", 1]],
        "bigco": [["2026-01-02", 2]],
    }
    tokens = {tenant: platform.token(tenant) for tenant in expected}
    tenants = [list(expected)[i % 3] for i in range(60)]
    # When each sends its query
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda tenant: call(gw, tokens[tenant], DAILY), tenants))
    # Then every answer is its own tenant's, never another's
    assert [r.status for r in responses] == [200] * len(tenants)
    assert [r.json()["rows"] for r in responses] == [expected[tenant] for tenant in tenants]
