"""The data lake buckets: raw, curated and artifacts, plus the bucket that receives their access logs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tenant_analytics import constants as c

from .nag import acknowledge

_ABORT_UPLOADS = Duration.days(7)
_NONCURRENT_KEEP = Duration.days(30)


@dataclass(frozen=True)
class SharedBuckets:
    """The buckets as other stacks use them.

    References by literal name and ARN (with their key): grants in other stacks then name the bucket, not a
    CloudFormation export, and cdk-nag findings on them can be acknowledged by bucket.
    """

    raw: s3.IBucket
    curated: s3.IBucket
    artifacts: s3.IBucket


class DataLakeBuckets(Construct):
    """KMS-encrypted, TLS-only, versioned buckets with lifecycle rules and server access logging."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        suffix = f"{stack.account}-{stack.region}"
        # S3 server access logs can only be delivered to an SSE-S3 bucket, so this one bucket is not on KMS.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{c.PROJECT}-access-logs-{suffix}",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=_NONCURRENT_KEEP,
                    abort_incomplete_multipart_upload_after=_ABORT_UPLOADS,
                )
            ],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log destination itself; logging it into itself would loop.",
        )
        self.raw = self._data_bucket(
            "Raw",
            f"{c.RAW_BUCKET}-{suffix}",
            key,
            [
                s3.LifecycleRule(
                    id="tier-raw-increments",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30)
                        ),
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=Duration.days(90)
                        ),
                    ],
                    noncurrent_version_expiration=_NONCURRENT_KEEP,
                    abort_incomplete_multipart_upload_after=_ABORT_UPLOADS,
                ),
            ],
        )
        self.curated = self._data_bucket(
            "Curated",
            f"{c.CURATED_BUCKET}-{suffix}",
            key,
            [
                s3.LifecycleRule(
                    id="expire-overwritten-curated",
                    noncurrent_version_expiration=_NONCURRENT_KEEP,
                    abort_incomplete_multipart_upload_after=_ABORT_UPLOADS,
                ),
                # Each operational export run UNLOADs under a prefix of its own and is imported within minutes.
                s3.LifecycleRule(
                    id="expire-operational-exports",
                    prefix=c.OPERATIONAL_EXPORT_PREFIX,
                    expiration=Duration.days(3),
                    noncurrent_version_expiration=Duration.days(1),
                ),
            ],
        )
        self.artifacts = self._data_bucket(
            "Artifacts",
            f"{c.ARTIFACTS_BUCKET}-{suffix}",
            key,
            [
                s3.LifecycleRule(id="expire-spark-scratch", prefix=c.GLUE_TEMP_PREFIX, expiration=Duration.days(7)),
                s3.LifecycleRule(
                    id="expire-old-artifact-versions",
                    noncurrent_version_expiration=_NONCURRENT_KEEP,
                    abort_incomplete_multipart_upload_after=_ABORT_UPLOADS,
                ),
            ],
        )

        self.shared = SharedBuckets(
            raw=self._reference("Raw", f"{c.RAW_BUCKET}-{suffix}", key),
            curated=self._reference("Curated", f"{c.CURATED_BUCKET}-{suffix}", key),
            artifacts=self._reference("Artifacts", f"{c.ARTIFACTS_BUCKET}-{suffix}", key),
        )

    def _reference(self, construct_id: str, name: str, key: kms.IKey) -> s3.IBucket:
        return s3.Bucket.from_bucket_attributes(self, f"{construct_id}Reference", bucket_name=name, encryption_key=key)

    def _data_bucket(self, construct_id: str, name: str, key: kms.IKey, lifecycle: list[s3.LifecycleRule]) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{construct_id.lower()}/",
            lifecycle_rules=lifecycle,
            removal_policy=RemovalPolicy.RETAIN,
        )


def grant_prefix_list(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str) -> None:
    """Let ``grantee`` list the keys under ``prefix`` of ``bucket`` (no object read, no other prefix)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
    )


def grant_prefix_read(grantee: iam.IGrantable, bucket: s3.IBucket, prefix: str, key: kms.IKey) -> None:
    """Let ``grantee`` read the objects under ``prefix`` of ``bucket`` and nothing else of it.

    Listing is allowed for that prefix only, so that a missing object is a 404 (NoSuchKey), not a 403; the key
    decrypts only for S3. Written out instead of ``grant_read``, which also grants listing the whole bucket.
    """
    principal = grantee.grant_principal
    principal.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
    )
    principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(key).region}.amazonaws.com"}},
        )
    )
