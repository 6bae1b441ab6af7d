"""Ingestion stack: change stream, aggregator Lambda and the Firehose copy into the raw bucket."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tenant_analytics import constants as c

from .config import PlatformConfig
from .constructs.change_stream import AggregatorSubscription, ChangeStream, RawChangeArchive
from .constructs.lambda_runtime import PlatformFunction, execution_role
from .constructs.nag import acknowledge_data_grants, acknowledge_key_grants
from .constructs.stores import AnalyticsStores
from .constructs.tenant_registry import grant_item_calls


class IngestionStack(Stack):
    """Binlog rows in Kinesis: binned into Aurora within seconds, and archived to S3 for the warehouse path."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: PlatformConfig,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        raw_bucket: s3.IBucket,
        tenants_table: dynamodb.ITable,
        stores: AnalyticsStores,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.change_stream = ChangeStream(self, "ChangeStream", key=data_key)
        self.aggregator = PlatformFunction(
            self,
            "Aggregator",
            logical="aggregator",
            description="Bins change records into 10-second buckets in the tenant's store, exactly once per shard",
            environment={c.ENV_TENANTS_TABLE: tenants_table.table_name, **stores.environment(self)},
            logs_key=logs_key,
            environment_key=data_key,
            layer_dir=config.lambda_layer_dir,
            timeout=Duration.minutes(5),
            memory_size=1024,
            network=stores.network,
        ).function
        grant_item_calls(tenants_table, self.aggregator, "GetItem")  # is the change's tenant registered
        stores.grant_access(self.aggregator, redshift=False)  # it writes the realtime bins in Aurora only
        self.subscription = AggregatorSubscription(
            self, "Subscription", stream=self.change_stream.stream, function=self.aggregator, key=data_key
        )
        # Malformed records are sent here by the function itself, with the reason, so the shard keeps moving.
        self.aggregator.add_environment(c.ENV_CDC_FAILURE_QUEUE_URL, self.subscription.failures.queue.queue_url)
        self.subscription.failures.queue.grant_send_messages(self.aggregator)
        self.archive = RawChangeArchive(
            self,
            "RawArchive",
            stream=self.change_stream.stream,
            bucket=raw_bucket,
            data_key=data_key,
            logs_key=logs_key,
        )
        acknowledge_data_grants(self.archive.delivery_stream, [raw_bucket])
        # it sends rejected records to its encrypted failure queue
        acknowledge_key_grants(execution_role(self.aggregator))
