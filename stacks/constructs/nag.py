"""cdk-nag acknowledgments: one call per finding, each with the reason it is accepted."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

ANY_RESOURCE = "Resource::*"
# Action groups of the CDK grant_* methods (read/write on objects, encrypt/decrypt with a key).
GRANT_ACTION_GROUPS = (
    "Action::s3:GetObject*",
    "Action::s3:GetBucket*",
    "Action::s3:List*",
    "Action::s3:DeleteObject*",
    "Action::s3:Abort*",
    "Action::kms:GenerateDataKey*",
    "Action::kms:ReEncrypt*",
)


def acknowledge(scope: IConstruct, rule: str, reason: str, *, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule`` on ``scope`` and its children.

    Without ``findings`` the whole rule is acknowledged; with them, only ``rule[finding]`` for each finding
    (cdk-nag 3 reports every wildcard of AwsSolutions-IAM4/IAM5 as a finding of its own).
    """
    listed = list(findings)
    ids = [f"{rule}[{finding}]" for finding in listed] if listed else [rule]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=rule_id, reason=reason) for rule_id in ids))


def resource_finding(scope: IConstruct, value: str) -> str:
    """The IAM5 finding cdk-nag reports for ``value`` (an ARN, possibly a token) used as a policy Resource."""
    return f"Resource::{flatten_reference(Stack.of(scope).resolve(value))}"


def flatten_reference(node: Any) -> str:
    """Render a resolved CloudFormation value the way cdk-nag names it in finding ids."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    return json.dumps(node)


KEY_ACTION_GROUPS = ("Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*")


def acknowledge_key_grants(scope: IConstruct) -> None:
    """Acknowledge, under ``scope``, the KMS action groups CDK grants for writing items or messages encrypted with
    the platform's own keys (no bucket grant)."""
    acknowledge(
        scope,
        "AwsSolutions-IAM5",
        "Writes to tables and queues encrypted with this platform's own KMS keys: the CDK key grant action groups"
        " (kms:GenerateDataKey*, kms:ReEncrypt*) on those key ARNs only.",
        findings=KEY_ACTION_GROUPS,
    )


def acknowledge_data_grants(scope: IConstruct, buckets: Iterable[s3.IBucket]) -> None:
    """Acknowledge, under ``scope``, the wildcards that CDK grants on the platform's buckets and keys produce."""
    acknowledge(
        scope,
        "AwsSolutions-IAM5",
        "Grants made with the CDK grant_* methods on this platform's own buckets and KMS keys: object access"
        " needs <bucket>/*, and the grant action groups (s3:GetObject*, s3:List*, kms:GenerateDataKey*, ...)"
        " are limited to those bucket and key ARNs.",
        findings=(
            *GRANT_ACTION_GROUPS,
            *(resource_finding(scope, bucket.arn_for_objects("*")) for bucket in buckets),
        ),
    )
