"""Lambda functions of the platform: one code asset, one dependency layer, common settings."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, CfnResource, DockerImage, Duration, ILocalBundling, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from tenant_analytics import constants as c

from ..config import REPO_ROOT
from .logs import encrypted_log_group
from .nag import ANY_RESOURCE, acknowledge, resource_finding

RUNTIME = lambda_.Runtime.PYTHON_3_11
LAYER_README = (
    "Filled by `make lambda-layer` (pip install of requirements-lambda.txt for manylinux2014_x86_64,"
    " Python 3.11, into python/). Empty here: this synth is not deployable as is.\n"
)
# The asset root holds both packages, so handler strings like `lambdas.export.handler.lambda_handler`
# and `import tenant_analytics` resolve from /var/task.
CODE_PACKAGES: dict[str, Path] = {
    "lambdas": REPO_ROOT / "lambdas",
    "tenant_analytics": REPO_ROOT / "src" / "tenant_analytics",
}
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


@jsii.implements(ILocalBundling)
class CopyPackages:
    """Local bundling that copies the two Python packages into the asset: no Docker, no network."""

    def __init__(self, packages: dict[str, Path]) -> None:
        self._packages = packages

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        """Copy each package directory to ``output_dir``/<name>; return True (bundled locally)."""
        for name, source in self._packages.items():
            shutil.copytree(source, Path(output_dir) / name, ignore=_IGNORED, dirs_exist_ok=True)
        return True


def ensure_layer_dir(layer_dir: Path) -> Path:
    """Return ``layer_dir``, creating it with a marker README when `make lambda-layer` has not filled it."""
    if not layer_dir.is_dir():
        layer_dir.mkdir(parents=True, exist_ok=True)
        (layer_dir / "README.md").write_text(LAYER_README)
    return layer_dir


class LambdaRuntime(Construct):
    """The code asset and the dependency layer shared by every function of one stack."""

    ID = "LambdaRuntime"

    def __init__(self, scope: Construct, construct_id: str, *, layer_dir: Path) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(
            str(CODE_PACKAGES["lambdas"]),
            asset_hash_type=AssetHashType.OUTPUT,
            bundling=BundlingOptions(
                image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.11"),
                # jsii calls try_bundle(output_dir, options); mypy cannot see @jsii.implements.
                local=cast(ILocalBundling, CopyPackages(CODE_PACKAGES)),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=lambda_.Code.from_asset(str(ensure_layer_dir(layer_dir))),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Third-party runtime dependencies (requirements-lambda.txt)",
        )

    @classmethod
    def of(cls, scope: Construct, *, layer_dir: Path) -> LambdaRuntime:
        """Return the stack's runtime, creating it on first use."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(cls.ID)
        if isinstance(existing, LambdaRuntime):
            return existing
        return cls(stack, cls.ID, layer_dir=layer_dir)


@dataclass(frozen=True)
class FunctionNetwork:
    """Where a function attaches when it must reach the databases."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup


def execution_role(function: lambda_.IFunction) -> iam.IRole:
    """The role ``function`` runs as: where grants to the function land, so where their cdk-nag findings are
    acknowledged."""
    role = function.role
    assert role is not None  # every function of the platform has one (PlatformFunction makes it)
    return role


class PlatformFunction(Construct):
    """One platform Lambda: named and wired from the constants module, traced, logging to an encrypted group, its
    settings encrypted with the platform's data key.

    Its role is made here rather than by CDK, which would attach the AWS-managed execution policies: those allow
    creating and writing every log group of the account. This role may write only the function's own group and, in
    the VPC, manage the function's network interfaces.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        logical: str,
        environment: dict[str, str],
        logs_key: kms.IKey,
        environment_key: kms.IKey,
        layer_dir: Path,
        timeout: Duration,
        memory_size: int = 512,
        network: FunctionNetwork | None = None,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        runtime = LambdaRuntime.of(self, layer_dir=layer_dir)
        name = c.function_name(logical)
        log_group = encrypted_log_group(self, "Logs", key=logs_key, name=f"/aws/lambda/{name}")
        # The group's ARN as IAM policies name it (":*" covers the group and its streams).
        own_logs = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/lambda/{name}:*"
        policies = {"WriteOwnLogs": own_log_writes(own_logs)}
        in_account = f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:*/*"
        if network:
            policies["ManageVpcInterfaces"] = vpc_interface_policy(in_account)
        # Role and function share the construct "Function", the function as its default child ("Default" is left out
        # of logical ids): both keep the logical ids CDK gave them when it made the role itself, so the deployed role
        # (and its name, which Redshift users are named after) is kept.
        holder = Construct(self, "Function")
        self.role = iam.Role(
            holder,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs the {name} function",
            inline_policies=policies,
        )
        self.function = lambda_.Function(
            holder,
            "Default",
            function_name=name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=c.LAMBDA_HANDLERS[logical],
            code=runtime.code,
            layers=[runtime.layer],
            timeout=timeout,
            memory_size=memory_size,
            role=self.role,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            environment={
                "POWERTOOLS_SERVICE_NAME": logical,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
                **environment,
            },
            # Lambda decrypts the settings through a grant it makes on the key when the function is deployed.
            environment_encryption=environment_key,
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.11 on purpose: Glue 5.0 runs 3.11 and the core package is shared by Lambda and Glue.",
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords and, in the VPC, ec2:DescribeNetworkInterfaces/DescribeSubnets"
            " support no resource-level permissions.",
            findings=(ANY_RESOURCE,),
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "The function writes its own log group only: <group ARN>:* is how IAM names a group and its streams, whose"
            " names Lambda picks at run time.",
            findings=(resource_finding(self, own_logs),),
        )
        if network:
            acknowledge(
                self,
                "AwsSolutions-IAM5",
                "Lambda creates, re-addresses and deletes the function's network interfaces, whose ids are only known"
                " then: the calls are limited to this account and region (the form Lambda documents).",
                findings=(resource_finding(self, in_account),),
            )


def own_log_writes(group_arn: str) -> iam.PolicyDocument:
    """Writing one log group: streams created and written in it, nothing else of CloudWatch Logs (``group_arn``
    ending in ``:*`` names the group and its streams)."""
    return iam.PolicyDocument(
        statements=[iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[group_arn])]
    )


def vpc_interface_policy(in_account: str) -> iam.PolicyDocument:
    """What Lambda needs to attach a function to the VPC: the EC2 actions of AWSLambdaVPCAccessExecutionRole (that
    policy also allows writing every log group, so it is not attached)."""
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                actions=["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=[in_account],
            ),
        ]
    )


# The function CDK makes (once per stack) to run triggers.Trigger handlers, and its role.
TRIGGER_PROVIDER = "AWSCDK.TriggerCustomResourceProviderCustomResourceProvider"


def confine_trigger_provider(stack: Stack, *, logs_key: kms.IKey, log_group_name: str) -> logs.LogGroup:
    """Give the stack's trigger provider an encrypted log group of a known name, and log rights to that group only.

    CDK makes the provider with ``AWSLambdaBasicExecutionRole`` (every log group of the account) and no function
    name, so Lambda would create its group itself: unencrypted, kept forever. Its resources are plain CloudFormation
    to CDK (no L2 construct), so the group is set and the managed policy replaced by overrides. Returns the group.
    """
    provider = stack.node.find_child(TRIGGER_PROVIDER)
    handler = provider.node.find_child("Handler")
    role = provider.node.find_child("Role")
    assert isinstance(handler, CfnResource) and isinstance(role, CfnResource)
    group = encrypted_log_group(stack, "TriggerProviderLogs", key=logs_key, name=log_group_name)
    handler.add_property_override("LoggingConfig", {"LogGroup": group.log_group_name})
    handler.node.add_dependency(group)
    role.add_property_deletion_override("ManagedPolicyArns")
    role.add_property_override(
        "Policies.1",  # after CDK's own "Inline" policy (invoking the triggers' handlers)
        # the group's ARN attribute ends in ":*": the group and its streams
        {"PolicyName": "WriteOwnLogs", "PolicyDocument": own_log_writes(group.log_group_arn).to_json()},
    )
    return group
