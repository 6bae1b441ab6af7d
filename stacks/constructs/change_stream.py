"""The near-real-time path: Kinesis change stream, aggregator Lambda, Firehose copy into raw/cdc/."""

from __future__ import annotations

from aws_cdk import Duration, Size
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tenant_analytics import constants as c

from .logs import encrypted_log_group
from .nag import acknowledge
from .queues import FailureQueue

_HOUR_PARTITION = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"


class ChangeStream(Construct):
    """A KMS-encrypted on-demand Kinesis stream (binlog rows from Maxwell/Debezium)."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.stream = kinesis.Stream(
            self,
            "Stream",
            stream_name=c.CHANGE_STREAM,
            stream_mode=kinesis.StreamMode.ON_DEMAND,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            retention_period=Duration.days(7),
        )
        acknowledge(
            self.stream,
            "AwsSolutions-KDS3",
            "A customer-managed key on purpose: rotation, key policy and CloudTrail under the platform's control,"
            " and one key for the stream, its consumers and the Firehose copy.",
        )


class AggregatorSubscription(Construct):
    """The aggregator's event source mapping; records it gives up on go to a failure queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        function: lambda_.Function,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.failures = FailureQueue(self, "Failures", key=key)
        function.add_event_source(
            sources.KinesisEventSource(
                stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=1000,
                max_batching_window=Duration.seconds(1),
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                # one batch per shard at a time: the checkpoint that makes redelivery harmless is per shard
                parallelization_factor=1,
                retry_attempts=10,
                max_record_age=Duration.days(1),
                on_failure=sources.SqsDlq(self.failures.queue),
            )
        )


class RawChangeArchive(Construct):
    """Firehose delivery of every change record into the raw bucket under ``raw/cdc/``, partitioned by hour."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stream: kinesis.IStream,
        bucket: s3.IBucket,
        data_key: kms.IKey,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = encrypted_log_group(self, "DeliveryLogs", key=logs_key)
        self.delivery_stream = firehose.DeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=f"{c.PROJECT}-raw-cdc",
            source=firehose.KinesisStreamSource(stream),
            destination=firehose.S3Bucket(
                bucket,
                data_output_prefix=f"{c.RAW_CDC_PREFIX}{_HOUR_PARTITION}",
                error_output_prefix=f"{c.RAW_CDC_ERRORS_PREFIX}!{{firehose:error-output-type}}/{_HOUR_PARTITION}",
                encryption_key=data_key,
                compression=firehose.Compression.GZIP,
                buffering_interval=Duration.seconds(300),
                buffering_size=Size.mebibytes(64),
                logging_config=firehose.EnableLogging(self.log_group),
            ),
        )
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-KDF1",
            "Firehose server-side encryption is not available with a Kinesis stream source; the source stream"
            " and the S3 destination are both encrypted with the data key.",
        )
