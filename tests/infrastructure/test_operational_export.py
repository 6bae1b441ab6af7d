"""The operational export on AWS: Redshift UNLOADs under one prefix of the curated bucket, Aurora imports from it
with an S3 import role of its own, the refresh function reads the manifests. Each may do that and no more."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenant_analytics import constants as c

from .synthesis import SynthResult

pytestmark = pytest.mark.xdist_group(name="cdk-synth")

CURATED = f"arn:aws:s3:::{c.CURATED_BUCKET}-111111111111-eu-west-1"
EXPORTS = f"{CURATED}/{c.OPERATIONAL_EXPORT_PREFIX}*"
S3_ONLY = {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of the identity policies attached to one role of ``template``."""
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_logical_id} in resource["Properties"].get("Roles", [])
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _grants(statements: list[dict[str, Any]], prefix: str) -> list[tuple[str, Any]]:
    """(action, resource) pairs of the statements for actions starting with ``prefix``."""
    return [
        (action, resource)
        for statement in statements
        for action in _as_list(statement["Action"])
        if action.startswith(prefix)
        for resource in _as_list(statement["Resource"])
    ]


def test_aurora_imports_from_s3_with_a_role_that_reads_only_the_export_prefix(synth: SynthResult) -> None:
    # Given the Aurora cluster and the role it associates for the s3Import feature
    warehouse = synth.templates["Warehouse"]
    (cluster,) = [r for r in warehouse["Resources"].values() if r["Type"] == "AWS::RDS::DBCluster"]
    (association,) = cluster["Properties"]["AssociatedRoles"]
    assert association["FeatureName"] == "s3Import"
    role_id = association["RoleArn"]["Fn::GetAtt"][0]
    role = warehouse["Resources"][role_id]
    statements = _role_statements(warehouse, role_id)

    # Then only RDS assumes it, and it reads the export prefix, lists only that prefix, decrypts only via S3
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "rds.amazonaws.com"
    }
    assert _grants(statements, "s3:") == [("s3:GetObject", EXPORTS), ("s3:ListBucket", CURATED)]
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{c.OPERATIONAL_EXPORT_PREFIX}*"]}}
    (decrypt,) = [s for s in statements if str(s["Action"]).startswith("kms:")]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Condition"] == S3_ONLY


def test_redshift_may_unload_only_under_the_export_prefix_with_the_bucket_key(synth: SynthResult) -> None:
    # Given the production namespace's default role (COPY and UNLOAD run as it)
    warehouse = synth.templates["Warehouse"]
    (namespace,) = [
        r["Properties"]
        for r in warehouse["Resources"].values()
        if r["Type"] == "AWS::RedshiftServerless::Namespace"
        and r["Properties"]["NamespaceName"] == c.REDSHIFT_NAMESPACE
    ]
    role_id = namespace["DefaultIamRoleArn"]["Fn::GetAtt"][0]
    statements = _role_statements(warehouse, role_id)

    # Then it writes objects only under the export prefix, may read the bucket's default encryption (ENCRYPTED
    # AUTO) and may have S3 generate data keys with the bucket's key
    writes = [(a, r) for a, r in _grants(statements, "s3:") if a.startswith(("s3:Put", "s3:Delete", "s3:Abort"))]
    assert writes == [("s3:PutObject", EXPORTS)]
    assert ("s3:GetEncryptionConfiguration", CURATED) in _grants(statements, "s3:")
    (generate,) = [s for s in statements if s["Action"] == "kms:GenerateDataKey"]
    assert generate["Condition"] == S3_ONLY
    assert not any(a.startswith(("kms:Encrypt", "kms:ReEncrypt")) for a, _ in _grants(statements, "kms:"))


def test_the_refresh_function_reads_manifests_under_the_export_prefix_and_writes_nothing(synth: SynthResult) -> None:
    # Given the refresh function's role
    pipeline = synth.templates["Pipeline"]
    (function,) = [
        r["Properties"]
        for r in pipeline["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("FunctionName") == c.function_name("refresh")
    ]
    statements = _role_statements(pipeline, function["Role"]["Fn::GetAtt"][0])

    # Then its S3 access is reading and listing the export prefix of the curated bucket, nothing else
    assert sorted(_grants(statements, "s3:")) == [("s3:GetObject", EXPORTS), ("s3:ListBucket", CURATED)]
    # and it knows the curated bucket and that Aurora imports with aws_s3 in the stack's region
    variables = function["Environment"]["Variables"]
    assert c.ENV_CURATED_BUCKET in variables
    stores = "".join(part for part in variables[c.ENV_STORES]["Fn::Join"][1] if isinstance(part, str))
    assert '"s3_import":"aws_s3","s3_import_region":"eu-west-1"' in stores
    assert '"copy_role_arn":"' in stores


def test_export_runs_expire_from_the_curated_bucket(synth: SynthResult) -> None:
    buckets = [
        r["Properties"]
        for r in synth.templates["DataLake"]["Resources"].values()
        if r["Type"] == "AWS::S3::Bucket" and str(r["Properties"].get("BucketName", "")).startswith(c.CURATED_BUCKET)
    ]
    rules = {rule["Id"]: rule for rule in buckets[0]["LifecycleConfiguration"]["Rules"]}
    rule = rules["expire-operational-exports"]
    assert rule["Prefix"] == c.OPERATIONAL_EXPORT_PREFIX and rule["ExpirationInDays"] <= 7, json.dumps(rule)
