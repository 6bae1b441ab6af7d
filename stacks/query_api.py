"""Query API stack: authorizer and query functions behind API Gateway."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from tenant_analytics import constants as c

from .config import PlatformConfig
from .constructs.lambda_runtime import PlatformFunction, execution_role
from .constructs.nag import acknowledge_key_grants
from .constructs.query_api import QueryApi
from .constructs.stores import AnalyticsStores
from .constructs.tenant_registry import grant_item_calls


class QueryApiStack(Stack):
    """JWT -> tenant (authorizer, outside the VPC) -> routed, cached query (query function, in the VPC)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        logs_key: kms.IKey,
        tenants_table: dynamodb.ITable,
        cache_table: dynamodb.ITable,
        stores: AnalyticsStores,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.authorizer = PlatformFunction(
            self,
            "Authorizer",
            logical="authorizer",
            description="Verify the tenant JWT against the issuer's JWKS; allow the API for that tenant",
            environment={
                c.ENV_TENANTS_TABLE: tenants_table.table_name,
                c.ENV_AUTH_ISSUER: config.auth_issuer,
                c.ENV_AUTH_AUDIENCE: config.auth_audience,
                c.ENV_AUTH_JWKS_URL: config.jwks_url,
                c.ENV_API_KEYS_REQUIRED: "true",
            },
            logs_key=logs_key,
            environment_key=stores.data_key,
            layer_dir=config.lambda_layer_dir,
            timeout=Duration.seconds(10),
            memory_size=256,
        ).function
        grant_item_calls(tenants_table, self.authorizer, "GetItem")  # the caller's item: its API key value

        self.query = PlatformFunction(
            self,
            "Query",
            logical="query",
            description="Plan, route, run and cache one tenant's semantic query",
            environment={
                c.ENV_TENANTS_TABLE: tenants_table.table_name,
                c.ENV_CACHE_TABLE: cache_table.table_name,
                c.ENV_DATA_VERSION_MAX_AGE_MS: str(config.data_version_max_age_ms),
                **stores.environment(self, tenant_queries=True),
            },
            logs_key=logs_key,
            environment_key=stores.data_key,
            layer_dir=config.lambda_layer_dir,
            timeout=Duration.seconds(29),
            memory_size=1024,
            network=stores.network,
        ).function
        grant_item_calls(tenants_table, self.query, "GetItem")
        grant_item_calls(cache_table, self.query, "GetItem", "PutItem")
        stores.grant_access(self.query, tenant_queries=True)

        acknowledge_key_grants(execution_role(self.query))  # it writes the answer cache
        self.api = QueryApi(
            self,
            "QueryApi",
            query=self.query,
            authorizer=self.authorizer,
            logs_key=logs_key,
            usage_plans=config.usage_plans,
        )
        CfnOutput(self, "QueryUrl", value=self.api.query_url, description="POST a query here")
        assert self.query.role is not None
        CfnOutput(
            self,
            "QueryFunctionRoleName",
            value=self.query.role.role_name,
            description="Redshift database user IAMR:<this name> runs tenant queries: grant it ROLE ta_query",
        )
        CfnOutput(
            self,
            "UsagePlanIds",
            value=self.to_json_string({name: plan.usage_plan_id for name, plan in self.api.usage_plans.items()}),
            description=f"set {c.ENV_USAGE_PLAN_IDS} to this where tenants are registered (API keys per tenant)",
        )
