"""Encryption at rest and least-privilege IAM across every stack."""

from __future__ import annotations

from typing import Any

import pytest

from .synthesis import SynthResult

pytestmark = pytest.mark.xdist_group(name="cdk-synth")

DATA_SERVICES = ("s3:", "dynamodb:", "kinesis:", "kms:", "sqs:", "secretsmanager:", "firehose:")


def _statements(synth: SynthResult) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for resource_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for stack, logical_id, resource in synth.resources(resource_type):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                found.append((f"{stack}/{logical_id}", statement))
    for stack, logical_id, resource in synth.resources("AWS::IAM::Role"):
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                found.append((f"{stack}/{logical_id}", statement))
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_statement_grants_every_action_of_a_service(synth: SynthResult) -> None:
    # Given every identity-policy statement of the app
    statements = _statements(synth)
    assert statements
    # Then none allows "*" or "<service>:*"
    offenders = [
        (where, action)
        for where, statement in statements
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
        if action == "*" or action.endswith(":*")
    ]
    assert offenders == []


def test_no_data_action_is_allowed_on_every_resource(synth: SynthResult) -> None:
    # Given every identity-policy statement of the app
    offenders = [
        (where, statement["Action"])
        for where, statement in _statements(synth)
        if statement["Effect"] == "Allow"
        and "*" in _as_list(statement["Resource"])
        and any(str(action).startswith(DATA_SERVICES) for action in _as_list(statement["Action"]))
    ]
    # Then data actions (S3, DynamoDB, Kinesis, KMS, SQS, secrets) always name their resources
    assert offenders == []


def test_buckets_use_kms_except_the_access_log_destination(synth: SynthResult) -> None:
    # Given the buckets (S3 delivers server access logs only to SSE-S3 buckets)
    buckets = {logical_id: resource["Properties"] for _, logical_id, resource in synth.resources("AWS::S3::Bucket")}
    log_targets = {
        props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
        for props in buckets.values()
        if "LoggingConfiguration" in props
    }
    # Then every data bucket is KMS-encrypted, versioned, public-access-blocked and logs its access
    assert len(buckets) == 4 and len(log_targets) == 1
    for logical_id, props in buckets.items():
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert props["VersioningConfiguration"]["Status"] == "Enabled"
        assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
        assert props["LifecycleConfiguration"]["Rules"]
        if logical_id in log_targets:
            assert rule["SSEAlgorithm"] == "AES256"
        else:
            assert rule["SSEAlgorithm"] == "aws:kms" and "KMSMasterKeyID" in rule
            assert "LoggingConfiguration" in props


def test_buckets_refuse_plain_http(synth: SynthResult) -> None:
    policies = [resource["Properties"]["PolicyDocument"] for _, _, resource in synth.resources("AWS::S3::BucketPolicy")]
    ssl_denies = [
        statement
        for document in policies
        for statement in document["Statement"]
        if statement["Effect"] == "Deny" and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    ]
    assert len(ssl_denies) == 4


def test_tables_streams_queues_topics_and_log_groups_use_kms(synth: SynthResult) -> None:
    for _, logical_id, table in synth.resources("AWS::DynamoDB::Table"):
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS" and "KMSMasterKeyId" in sse, logical_id
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["Properties"]["BillingMode"] == "PAY_PER_REQUEST"
    for _, logical_id, stream in synth.resources("AWS::Kinesis::Stream"):
        assert stream["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS", logical_id
    for _, logical_id, queue in synth.resources("AWS::SQS::Queue"):
        assert "KmsMasterKeyId" in queue["Properties"], logical_id
    for _, logical_id, topic in synth.resources("AWS::SNS::Topic"):
        assert "KmsMasterKeyId" in topic["Properties"], logical_id
    log_groups = synth.resources("AWS::Logs::LogGroup")
    assert log_groups
    for _, logical_id, group in log_groups:
        assert "KmsKeyId" in group["Properties"] and "RetentionInDays" in group["Properties"], logical_id
    for _, logical_id, key in synth.resources("AWS::KMS::Key"):
        assert key["Properties"]["EnableKeyRotation"] is True, logical_id


def test_cache_table_expires_entries(synth: SynthResult) -> None:
    from tenant_analytics import constants as c

    synth.template("TenantRegistry").has_resource_properties(
        "AWS::DynamoDB::Table",
        {"TableName": c.CACHE_TABLE, "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True}},
    )


def test_databases_are_encrypted_private_and_protected(synth: SynthResult) -> None:
    warehouse = synth.template("Warehouse")
    warehouse.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
            "DeletionProtection": True,
            "EnableCloudwatchLogsExports": ["postgresql"],
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0.5, "MaxCapacity": 16},
        },
    )
    warehouse.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    warehouse.resource_count_is("AWS::RedshiftServerless::Workgroup", 2)
    for _, logical_id, namespace in synth.resources("AWS::RedshiftServerless::Namespace"):
        props = namespace["Properties"]
        assert props["ManageAdminPassword"] is True and "KmsKeyId" in props, logical_id
        assert set(props["LogExports"]) == {"userlog", "connectionlog", "useractivitylog"}
    for _, logical_id, workgroup in synth.resources("AWS::RedshiftServerless::Workgroup"):
        props = workgroup["Properties"]
        assert props["EnhancedVpcRouting"] is True and props["PubliclyAccessible"] is False, logical_id
