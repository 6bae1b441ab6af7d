"""KMS-encrypted CloudWatch log groups with a bounded retention."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

LOG_RETENTION = logs.RetentionDays.ONE_YEAR


def encrypted_log_group(
    scope: Construct, construct_id: str, *, key: kms.IKey, name: str | None = None
) -> logs.LogGroup:
    """Return a log group encrypted with ``key``, kept one year and retained when its stack is deleted."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        encryption_key=key,
        retention=LOG_RETENTION,
        removal_policy=RemovalPolicy.RETAIN,
    )
