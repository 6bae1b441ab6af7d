"""The query HTTP API: REST API with a Lambda token authorizer, usage plans per tier, access logs and a WebACL."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as waf
from constructs import Construct

from tenant_analytics import constants as c

from ..config import UsagePlanLimits
from .logs import encrypted_log_group
from .nag import acknowledge

STAGE = "api"
# Validation failures keep the API's error contract: {"error": {"code", "message", "field"}}.
_INVALID_BODY = (
    '{"error": {"code": "invalid_request", "message": "$context.error.validationErrorString", "field": null}}'
)
# What API Gateway answers by itself (no token, a denied or throttled caller) in the same shape:
# response type -> (status, code). The local gateway answers these the same way.
_GATEWAY_ERRORS = {
    apigw.ResponseType.UNAUTHORIZED: ("401", "unauthorized"),
    apigw.ResponseType.ACCESS_DENIED: ("403", "forbidden"),
    apigw.ResponseType.THROTTLED: ("429", "too_many_requests"),
    apigw.ResponseType.QUOTA_EXCEEDED: ("429", "too_many_requests"),
}
_MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


class QueryApi(Construct):
    """``POST /v1/query`` plus a ``/v1/{proxy+}`` catch-all, all behind the authorizer and an API key.

    The key comes from the authorizer (``usageIdentifierKey``), never from the caller: each tenant's key is
    created at registration and attached to its tier's usage plan, which throttles that tenant alone.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        query: lambda_.IFunction,
        authorizer: lambda_.IFunction,
        logs_key: kms.IKey,
        usage_plans: Mapping[str, UsagePlanLimits],
    ) -> None:
        super().__init__(scope, construct_id)
        access_logs = encrypted_log_group(self, "AccessLogs", key=logs_key)
        self.authorizer = apigw.TokenAuthorizer(
            self,
            "TokenAuthorizer",
            handler=authorizer,
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=Duration.seconds(c.AUTHORIZER_CACHE_SECONDS),
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{c.PROJECT}-query",
            description="Tenant analytics query API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                logging_level=apigw.MethodLoggingLevel.INFO,
                metrics_enabled=True,
                data_trace_enabled=False,  # request bodies may carry tenant data
                throttling_rate_limit=200,
                throttling_burst_limit=400,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            default_method_options=apigw.MethodOptions(
                authorizer=self.authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                api_key_required=True,
            ),
        )
        # API Gateway writes its execution logs (INFO) to a group it would create unencrypted: made here first, under
        # the logs key, before the stage that writes to it.
        execution_logs = encrypted_log_group(
            self, "ExecutionLogs", key=logs_key, name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{STAGE}"
        )
        self.api.deployment_stage.node.add_dependency(execution_logs)
        self.api.add_gateway_response(
            "InvalidBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={"application/json": _INVALID_BODY},
        )
        for response_type, (status, code) in _GATEWAY_ERRORS.items():
            self.api.add_gateway_response(
                response_type.response_type.title().replace("_", ""),  # e.g. AccessDenied
                type=response_type,
                status_code=status,
                templates={
                    "application/json": f'{{"error": {{"code": "{code}", "message": "$context.error.message", '
                    '"field": null}}'
                },
            )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        query_model = self.api.add_model(
            "QueryRequest",
            content_type="application/json",
            model_name="QueryRequest",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                type=apigw.JsonSchemaType.OBJECT,
                required=["dataset", "measures"],
                properties={
                    "dataset": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1),
                    "measures": apigw.JsonSchema(
                        type=apigw.JsonSchemaType.ARRAY,
                        min_items=1,
                        items=apigw.JsonSchema(type=apigw.JsonSchemaType.STRING),
                    ),
                },
            ),
        )
        integration = apigw.LambdaIntegration(query)
        v1 = self.api.root.add_resource("v1")
        v1.add_resource("query").add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": query_model},
        )
        v1.add_proxy(default_integration=integration, any_method=True)

        # One plan per tier; tenants' keys are attached by the registry (tenants.api_keys), not by CloudFormation.
        self.usage_plans: dict[str, apigw.UsagePlan] = {
            name: self.api.add_usage_plan(
                f"UsagePlan{name.capitalize()}",
                name=f"{c.PROJECT}-{name}",
                description=f"per-tenant throttle and quota of the {name} tier",
                throttle=apigw.ThrottleSettings(rate_limit=limits.rate_limit, burst_limit=limits.burst_limit),
                quota=apigw.QuotaSettings(limit=limits.quota_per_month, period=apigw.Period.MONTH),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
            )
            for name, limits in sorted(usage_plans.items())
        }
        self.web_acl = RegionalWebAcl(self, "WebAcl")
        waf.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.acl.attr_arn,
        )
        acknowledge(
            self.api,
            "AwsSolutions-COG4",
            "Callers present tenant JWTs checked by the Lambda token authorizer (tenant claims, registry status);"
            " a Cognito user pool is not the identity provider here.",
        )
        acknowledge(
            self.api,
            "AwsSolutions-IAM4",
            "API Gateway's account-level CloudWatch role needs the AWS-managed push-to-logs policy.",
            findings=(
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
            ),
        )

    @property
    def query_url(self) -> str:
        """Full URL of ``POST /v1/query``."""
        return self.api.url_for_path("/v1/query")


class RegionalWebAcl(Construct):
    """AWS managed rule groups plus a per-IP rate limit, for the API stage."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        rules = [
            waf.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=waf.CfnWebACL.OverrideActionProperty(none={}),
                statement=waf.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=waf.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=_visibility(group),
            )
            for priority, group in enumerate(_MANAGED_RULE_GROUPS)
        ]
        rules.append(
            waf.CfnWebACL.RuleProperty(
                name="RateLimitPerIp",
                priority=len(rules),
                action=waf.CfnWebACL.RuleActionProperty(block={}),
                statement=waf.CfnWebACL.StatementProperty(
                    rate_based_statement=waf.CfnWebACL.RateBasedStatementProperty(limit=2000, aggregate_key_type="IP")
                ),
                visibility_config=_visibility("RateLimitPerIp"),
            )
        )
        self.acl = waf.CfnWebACL(
            self,
            "Acl",
            name=f"{c.PROJECT}-query-api",
            scope="REGIONAL",
            default_action=waf.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"{c.PROJECT}-query-api"),
            rules=rules,
        )


def _visibility(name: str) -> waf.CfnWebACL.VisibilityConfigProperty:
    return waf.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
