"""Lambda functions of the platform: one code asset, one dependency layer, common settings."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, Duration, ILocalBundling, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from tenant_analytics import constants as c

from ..config import REPO_ROOT
from .logs import encrypted_log_group
from .nag import ANY_RESOURCE, LAMBDA_BASIC_EXECUTION, LAMBDA_VPC_EXECUTION, acknowledge

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


class PlatformFunction(Construct):
    """One platform Lambda: named and wired from the constants module, traced, logging to an encrypted group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        logical: str,
        environment: dict[str, str],
        logs_key: kms.IKey,
        layer_dir: Path,
        timeout: Duration,
        memory_size: int = 512,
        network: FunctionNetwork | None = None,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        runtime = LambdaRuntime.of(self, layer_dir=layer_dir)
        name = c.function_name(logical)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=c.LAMBDA_HANDLERS[logical],
            code=runtime.code,
            layers=[runtime.layer],
            timeout=timeout,
            memory_size=memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=encrypted_log_group(self, "Logs", key=logs_key, name=f"/aws/lambda/{name}"),
            environment={
                "POWERTOOLS_SERVICE_NAME": logical,
                "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
                "LOG_LEVEL": "INFO",
                **environment,
            },
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.11 on purpose: Glue 5.0 runs 3.11 and the core package is shared by Lambda and Glue.",
        )
        managed = (LAMBDA_BASIC_EXECUTION, LAMBDA_VPC_EXECUTION) if network else (LAMBDA_BASIC_EXECUTION,)
        acknowledge(
            self,
            "AwsSolutions-IAM4",
            "AWS-managed Lambda execution policies grant only log writes and, in the VPC, ENI management.",
            findings=managed,
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
            findings=(ANY_RESOURCE,),
        )
