"""CDK app: read the deployment config, build the stacks, register cdk-nag, synthesize.

Synthesizes offline: explicit account, region and availability zones, no lookups, no Docker.
``python app.py`` writes ./cdk.out; the CDK CLI runs it the same way (see cdk.json).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import REPO_ROOT, PlatformConfig
from stacks.data_lake import DataLakeStack
from stacks.ingestion import IngestionStack
from stacks.monitoring import MonitoringStack
from stacks.network import NetworkStack
from stacks.pipeline import PipelineStack
from stacks.query_api import QueryApiStack
from stacks.tenant_registry import TenantRegistryStack
from stacks.warehouse import WarehouseStack
from tenant_analytics import constants as c

STACK_PREFIX = "TenantAnalytics"


def file_context() -> dict[str, Any]:
    """Context from cdk.json and cdk.context.json, so a plain `python app.py` sees what the CLI would pass."""
    context: dict[str, Any] = {}
    cdk_json = REPO_ROOT / "cdk.json"
    if cdk_json.is_file():
        context.update(json.loads(cdk_json.read_text()).get("context", {}))
    cached = REPO_ROOT / "cdk.context.json"
    if cached.is_file():
        context.update(json.loads(cached.read_text()))
    return context


def build_app(outdir: str | Path = "cdk.out", context: dict[str, Any] | None = None) -> App:
    """Build every stack of the platform into a new App (not yet synthesized)."""
    app = App(outdir=str(outdir), context={**file_context(), **(context or {})})
    config = PlatformConfig.from_context(app.node)
    env = Environment(account=config.account, region=config.region)

    def name(stack: str) -> str:
        return f"{STACK_PREFIX}-{stack}"

    data_lake = DataLakeStack(app, name("DataLake"), env=env, description="Keys and data lake buckets")
    keys, buckets = data_lake.keys, data_lake.shared_buckets
    network = NetworkStack(
        app, name("Network"), config=config, logs_key=keys.logs, env=env, description="Isolated VPC and endpoints"
    )
    registry = TenantRegistryStack(
        app, name("TenantRegistry"), data_key=keys.data, env=env, description="Tenant registry tables"
    )
    warehouse = WarehouseStack(
        app,
        name("Warehouse"),
        vpc=network.vpc,
        subnets=network.isolated_subnets,
        data_key=keys.data,
        logs_key=keys.logs,
        curated_bucket=buckets.curated,
        env=env,
        description="Aurora and Redshift Serverless stores",
    )
    ingestion = IngestionStack(
        app,
        name("Ingestion"),
        config=config,
        data_key=keys.data,
        logs_key=keys.logs,
        raw_bucket=buckets.raw,
        tenants_table=registry.tables.tenants,
        stores=warehouse.stores,
        env=env,
        description="Change stream, aggregator and raw archive",
    )
    pipeline = PipelineStack(
        app,
        name("Pipeline"),
        config=config,
        vpc=network.vpc,
        subnets=network.isolated_subnets,
        data_key=keys.data,
        logs_key=keys.logs,
        raw_bucket=buckets.raw,
        curated_bucket=buckets.curated,
        artifacts_bucket=buckets.artifacts,
        tenants_table=registry.tables.tenants,
        cursors_table=registry.tables.cursors,
        stores=warehouse.stores,
        env=env,
        description="Hourly pipeline: state machine, functions, Spark, schedule",
    )
    query_api = QueryApiStack(
        app,
        name("QueryApi"),
        config=config,
        logs_key=keys.logs,
        tenants_table=registry.tables.tenants,
        cache_table=registry.tables.query_cache,
        stores=warehouse.stores,
        env=env,
        description="Query API",
    )
    # The deployment sets up every store (the Pipeline stack's trigger) before a release's query API is served.
    query_api.add_stack_dependency(pipeline, "stores are set up before the query API of a release is served")
    MonitoringStack(
        app,
        name("Monitoring"),
        config=config,
        aggregator=ingestion.aggregator,
        functions={
            **pipeline.functions,
            "query": query_api.query,
            "authorizer": query_api.authorizer,
            "aggregator": ingestion.aggregator,
        },
        failure_queues={
            "AggregatorFailures": ingestion.subscription.failures.queue,
            "AggregatorDeadLetters": ingestion.subscription.failures.dead_letters,
            "ScheduleFailures": pipeline.schedule.failures.queue,
            "ScheduleDeadLetters": pipeline.schedule.failures.dead_letters,
        },
        state_machine=pipeline.state_machine,
        env=env,
        description="Alarms and dashboard",
    )
    Tags.of(app).add("project", c.PROJECT)
    # Acknowledgments are also written into the templates' Metadata (cdk_nag), as an audit trail.
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return app


if __name__ == "__main__":
    # CDK_OUTDIR is how the CDK CLI (and the infrastructure tests) choose where the assembly goes.
    build_app(os.environ.get("CDK_OUTDIR") or "cdk.out").synth()
