"""Customer-managed KMS keys shared by the platform's data and log stores."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from tenant_analytics import constants as c


class PlatformKeys(Construct):
    """Two rotating keys: ``data`` for data at rest (S3, DynamoDB, Kinesis, SQS, databases) and ``logs``.

    Logs get a key of their own because CloudWatch Logs needs a key-policy grant to a service principal,
    which the data key should not carry.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.data = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{c.PROJECT}/data",
            description="Tenant analytics data at rest: buckets, tables, streams, queues, databases",
            enable_key_rotation=True,
        )
        self.logs = kms.Key(
            self,
            "LogsKey",
            alias=f"alias/{c.PROJECT}/logs",
            description="Tenant analytics CloudWatch log groups",
            enable_key_rotation=True,
        )
        self.logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )
