"""Per-tenant throttling: API keys from the authorizer, required on every method, a usage plan per tier."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from tenant_analytics import constants as c

from .synthesis import SynthResult

pytestmark = pytest.mark.xdist_group(name="cdk-synth")

# The default plans of stacks/config.py (DEFAULT_USAGE_PLANS): rate, burst, monthly quota per tenant.
PLANS = {"standard": (25, 50, 1_000_000), "large": (100, 200, 10_000_000)}


def _resources(synth: SynthResult, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for stack, logical_id, resource in synth.resources(resource_type)
        if stack == "QueryApi"
    }


def test_the_api_takes_its_keys_from_the_authorizer_and_every_method_requires_one(synth: SynthResult) -> None:
    # Given the query API's template
    api = synth.template("QueryApi")
    # Then the REST API reads the key from the authorizer's usageIdentifierKey, not from a header
    api.has_resource_properties("AWS::ApiGateway::RestApi", {"ApiKeySourceType": "AUTHORIZER"})
    # And every method requires a key and the authorizer
    methods = _resources(synth, "AWS::ApiGateway::Method")
    assert methods
    for logical_id, method in methods.items():
        assert method.get("ApiKeyRequired") is True, logical_id
        assert method["AuthorizationType"] == "CUSTOM", logical_id


def test_each_tier_has_a_usage_plan_with_the_configured_throttle_and_quota(synth: SynthResult) -> None:
    # Given the plans of the default configuration, one per plan name the tiers use
    assert set(PLANS) == set(c.USAGE_PLAN_BY_TIER.values())
    plans = {props["UsagePlanName"]: props for props in _resources(synth, "AWS::ApiGateway::UsagePlan").values()}
    (rest_api,) = _resources(synth, "AWS::ApiGateway::RestApi")
    # Then each exists once, on the API's stage, with its own rate, burst and monthly quota
    assert set(plans) == {f"{c.PROJECT}-{name}" for name in PLANS}
    for name, (rate, burst, quota) in PLANS.items():
        plan = plans[f"{c.PROJECT}-{name}"]
        assert plan["Throttle"] == {"RateLimit": rate, "BurstLimit": burst}
        assert plan["Quota"] == {"Limit": quota, "Period": "MONTH"}
        assert [stage["ApiId"] for stage in plan["ApiStages"]] == [{"Ref": rest_api}]
    # And no key is made by CloudFormation: tenants' keys are created at registration
    assert _resources(synth, "AWS::ApiGateway::ApiKey") == {}


def test_the_authorizer_returns_keys_and_the_plan_ids_are_published(synth: SynthResult) -> None:
    api = synth.template("QueryApi")
    # The authorizer is told that keys are required (it then returns each tenant's key)
    api.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": c.function_name("authorizer"),
            "Environment": {"Variables": Match.object_like({c.ENV_API_KEYS_REQUIRED: "true"})},
        },
    )
    api.has_resource_properties(
        "AWS::ApiGateway::Authorizer", {"AuthorizerResultTtlInSeconds": c.AUTHORIZER_CACHE_SECONDS}
    )
    # The query function is told how old a kept data_version may be
    api.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": c.function_name("query"),
            "Environment": {"Variables": Match.object_like({c.ENV_DATA_VERSION_MAX_AGE_MS: "1000"})},
        },
    )
    # The plan ids are an output, in the shape USAGE_PLAN_IDS takes
    output = synth.templates["QueryApi"]["Outputs"]["UsagePlanIds"]["Value"]["Fn::Join"][1]
    rendered = "".join(part if isinstance(part, str) else part["Ref"] for part in output)
    assert set(json.loads(rendered)) == set(PLANS)


def test_cdk_nag_finds_nothing_on_the_query_api(synth: SynthResult) -> None:
    # Given the validation report of the synthesis (the whole app's verdict is test_synth's)
    report = synth.validation_report()
    assert report.get("pluginReports"), "the cdk-nag pack did not run"
    findings = [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
        if "QueryApi" in construct["constructPath"]
    ]
    # Then nothing under the query API is unacknowledged
    assert findings == []


def test_what_the_gateway_answers_by_itself_keeps_the_apis_error_shape(synth: SynthResult) -> None:
    # Given the gateway's own answers: no or bad token, a denied caller, a throttled or over-quota tenant
    responses = {
        props["ResponseType"]: props for props in _resources(synth, "AWS::ApiGateway::GatewayResponse").values()
    }
    expected = {
        "UNAUTHORIZED": ("401", "unauthorized"),
        "ACCESS_DENIED": ("403", "forbidden"),
        "THROTTLED": ("429", "too_many_requests"),
        "QUOTA_EXCEEDED": ("429", "too_many_requests"),
    }
    for response_type, (status, code) in expected.items():
        # Then each answers its status with {"error": {"code", "message", "field"}}, as the function's errors do
        props = responses[response_type]
        assert props["StatusCode"] == status
        template = props["ResponseTemplates"]["application/json"]
        body = json.loads(template.replace("$context.error.message", "Unauthorized"))
        assert body == {"error": {"code": code, "message": "Unauthorized", "field": None}}


def test_the_stages_execution_logs_go_to_a_group_made_first_under_the_logs_key(synth: SynthResult) -> None:
    groups = _resources(synth, "AWS::Logs::LogGroup")
    (logical, group) = next(
        (k, g) for k, g in groups.items() if "API-Gateway-Execution-Logs_" in json.dumps(g.get("LogGroupName"))
    )
    (rest_api,) = _resources(synth, "AWS::ApiGateway::RestApi")
    assert group["LogGroupName"] == {"Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": rest_api}, "/api"]]}
    assert "KmsKeyId" in group and group["RetentionInDays"] == 365
    # created before the stage starts writing (API Gateway would otherwise create it, unencrypted)
    ((_, _, stage),) = [r for r in synth.resources("AWS::ApiGateway::Stage") if r[0] == "QueryApi"]
    assert logical in stage["DependsOn"]
