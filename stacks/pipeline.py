"""Pipeline stack: the hourly state machine, its functions, the Spark compute and the schedule."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Duration, Stack, triggers
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tenant_analytics import constants as c

from .config import PlatformConfig
from .constructs.data_lake import grant_prefix_list, grant_prefix_read
from .constructs.hourly_pipeline import FunctionSchedule, HourlyPipeline, HourlySchedule
from .constructs.lambda_runtime import PlatformFunction, confine_trigger_provider, execution_role
from .constructs.nag import acknowledge, acknowledge_data_grants, acknowledge_key_grants, resource_finding
from .constructs.spark import SparkCode, SparkData, SparkServerlessApplication, TransformJob
from .constructs.stores import AnalyticsStores
from .constructs.tenant_registry import grant_item_calls


class PipelineStack(Stack):
    """Plan -> (export -> transform -> load -> refresh -> publish) per batch -> collect, every hour."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        tenants_table: dynamodb.ITable,
        cursors_table: dynamodb.ITable,
        stores: AnalyticsStores,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        data = SparkData(
            raw=raw_bucket, curated=curated_bucket, artifacts=artifacts_bucket, data_key=data_key, logs_key=logs_key
        )
        code = SparkCode(self, "SparkCode", script=config.transform_script)
        self.transform = TransformJob(self, "Transform", data=data, code=code)
        self.spark_serverless = SparkServerlessApplication(
            self, "SparkServerless", data=data, code=code, vpc=vpc, subnets=subnets
        )

        environment = {
            c.ENV_TENANTS_TABLE: tenants_table.table_name,
            c.ENV_CURSORS_TABLE: cursors_table.table_name,
            c.ENV_RAW_BUCKET: raw_bucket.bucket_name,
            c.ENV_CURATED_BUCKET: curated_bucket.bucket_name,
            c.ENV_ARTIFACTS_BUCKET: artifacts_bucket.bucket_name,
            c.ENV_TRANSFORM_JOB: c.TRANSFORM_JOB,
            c.ENV_CLUSTER_BUDGETS: json.dumps(config.cluster_budgets, sort_keys=True),
            **stores.environment(self),
        }

        def function(
            logical: str, description: str, timeout: Duration, *, in_vpc: bool, settings: bool = True
        ) -> lambda_.Function:
            return PlatformFunction(
                self,
                logical.capitalize(),
                logical=logical,
                description=description,
                environment=environment if settings else {},
                logs_key=logs_key,
                environment_key=data_key,
                layer_dir=config.lambda_layer_dir,
                timeout=timeout,
                network=stores.network if in_vpc else None,
            ).function

        # Plan, export and publish stay outside the VPC: export calls tenants' source APIs on the internet and the
        # VPC has no NAT; they need only DynamoDB and S3 besides (publish: the registry and the cursors).
        self.plan = function("plan", "Bin-pack active tenants into batches", Duration.minutes(1), in_vpc=False)
        self.export = function("export", "Pull tenants' increments into S3 raw/", Duration.minutes(15), in_vpc=False)
        # The export writes each batch's transform manifest, which tells the Spark run when to compact history.
        self.export.add_environment(c.ENV_HISTORY_COMPACT_AFTER_FILES, str(config.history_compact_after_files))
        self.load = function(
            "load", "Merge transformed rows into each tenant's store", Duration.minutes(15), in_vpc=True
        )
        self.publish = function(
            "publish", "Advance data_version and freshness; record failures", Duration.minutes(5), in_vpc=False
        )
        # Pure logic over the state machine's own state: no network, no grants, no settings.
        self.collect = function(
            "collect",
            "Gather batch outcomes; split failed batches to rerun tenant by tenant",
            Duration.minutes(1),
            in_vpc=False,
            settings=False,
        )
        self.refresh = function(
            "refresh", "Refresh models after a load, and on a schedule", Duration.minutes(15), in_vpc=True
        )

        tenants_table.grant_read_data(self.plan)
        tenants_table.grant_read_data(self.export)
        # Tenants' source API credentials: only secrets under the platform's prefix, read-only.
        source_secrets = (
            f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:{c.SOURCE_SECRETS_PREFIX}*"
        )
        self.export.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[source_secrets])
        )
        acknowledge(
            execution_role(self.export),
            "AwsSolutions-IAM5",
            f"Tenants' source credentials are secrets named {c.SOURCE_SECRETS_PREFIX}<tenant>; one per tenant, "
            "created as tenants are added, so the grant is the prefix, read-only.",
            findings=(resource_finding(self, source_secrets),),
        )
        cursors_table.grant_read_write_data(self.export)
        raw_bucket.grant_put(self.export)
        # It names each tenant's curated history files in the batch manifest (listing under that prefix only) and
        # writes the manifest.
        grant_prefix_list(self.export, curated_bucket, f"{c.HISTORY_SUPPORT_PREFIX}/")
        manifests = f"{c.MANIFESTS_PREFIX}/*"
        artifacts_bucket.grant_put(self.export, manifests)
        acknowledge(
            execution_role(self.export),
            "AwsSolutions-IAM5",
            "The export writes one manifest per run and batch under the manifests prefix (named at run time).",
            findings=(resource_finding(self, artifacts_bucket.arn_for_objects(manifests)),),
        )
        grant_item_calls(tenants_table, self.load, "GetItem")
        # The load reads the Spark run's curated files (and nothing else of the buckets).
        curated = f"{c.CURATED_SUPPORT_PREFIX}/"
        grant_prefix_read(self.load, curated_bucket, curated, data_key)
        acknowledge(
            execution_role(self.load),
            "AwsSolutions-IAM5",
            "The load reads the curated files of its run and batch, under the curated prefix (named at run time).",
            findings=(resource_finding(self, curated_bucket.arn_for_objects(f"{curated}*")),),
        )
        stores.grant_access(self.load)
        # records outcomes (an update each) and marks landed pages as loaded
        grant_item_calls(tenants_table, self.publish, "UpdateItem")
        grant_item_calls(cursors_table, self.publish, "UpdateItem")
        tenants_table.grant_read_data(self.refresh)
        stores.grant_access(self.refresh)
        # The refresh reads the UNLOAD manifest of each operational export run (Aurora reads the data files).
        grant_prefix_read(self.refresh, curated_bucket, c.OPERATIONAL_EXPORT_PREFIX, data_key)
        acknowledge(
            execution_role(self.refresh),
            "AwsSolutions-IAM5",
            "The refresh reads the manifest each operational export run writes under a prefix of its own"
            f" ({c.OPERATIONAL_EXPORT_PREFIX}<model>/run=<id>/manifest): read-only, that prefix only.",
            findings=(resource_finding(self, curated_bucket.arn_for_objects(f"{c.OPERATIONAL_EXPORT_PREFIX}*")),),
        )

        # Run once per release by the deployment (a trigger), before the query API is updated (app.py): every
        # store created or migrated before anything reads it. It needs only the stores; a store it cannot set up
        # fails the deployment.
        setup = PlatformFunction(
            self,
            "Setup",
            logical="setup",
            description="Set up every store (roles, tables, models) during the deployment",
            environment=stores.environment(self),
            logs_key=logs_key,
            environment_key=data_key,
            layer_dir=config.lambda_layer_dir,
            timeout=Duration.minutes(10),
            network=stores.network,
        )
        self.setup = setup.function
        stores.grant_access(self.setup)
        self.setup_trigger = triggers.Trigger(
            self,
            "SetupStores",
            handler=self.setup,
            invocation_type=triggers.InvocationType.REQUEST_RESPONSE,
            timeout=Duration.minutes(10),
            # after every grant of the function (its role, its role's policies, its Data API policy: resources apart
            # from the function) and its log group, not only after the function version the trigger invokes
            execute_after=[setup],
        )
        confine_trigger_provider(
            self, logs_key=logs_key, log_group_name=f"/aws/lambda/{c.function_name('setup')}-trigger"
        )

        self.functions: dict[str, lambda_.Function] = {
            "plan": self.plan,
            "export": self.export,
            "load": self.load,
            "publish": self.publish,
            "collect": self.collect,
            "refresh": self.refresh,
        }
        self.pipeline = HourlyPipeline(
            self,
            "Hourly",
            functions=self.functions,
            transform_job_name=c.TRANSFORM_JOB,
            spark=self.spark_serverless,
            code=code,
            logs_key=logs_key,
        )
        self.pipeline.node.add_dependency(self.transform)
        self.state_machine = self.pipeline.state_machine
        buckets = [raw_bucket, curated_bucket, artifacts_bucket]
        # Only the grantees of bucket grants; publish writes registry items only; plan and collect write nothing.
        writers = (execution_role(self.export), execution_role(self.load), execution_role(self.refresh))
        for grantee in (*writers, self.transform.role, self.spark_serverless.job_role):
            acknowledge_data_grants(grantee, buckets)
        acknowledge_key_grants(execution_role(self.publish))
        self.starter = PlatformFunction(
            self,
            "Start",
            logical="start",
            description="Start the hourly run named after its hour",
            environment={c.ENV_STATE_MACHINE_ARN: self.state_machine.state_machine_arn},
            logs_key=logs_key,
            environment_key=data_key,
            layer_dir=config.lambda_layer_dir,
            timeout=Duration.minutes(1),
            network=None,
        ).function
        self.functions["start"] = self.starter
        self.functions["setup"] = self.setup
        self.schedule = HourlySchedule(self, "Schedule", pipeline=self.pipeline, starter=self.starter, key=data_key)
        self.refresh_schedule = FunctionSchedule(
            self,
            "RefreshSchedule",
            function=self.refresh,
            expression=f"rate({c.MODEL_REFRESH_MINUTES} minutes)",
            payload={},
            name="model-refresh",
            description="Refresh every store's models between hourly loads (streams land continuously)",
            key=data_key,
            max_event_age=Duration.minutes(c.MODEL_REFRESH_MINUTES),
        )
