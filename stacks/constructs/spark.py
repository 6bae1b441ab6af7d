"""Spark compute for the transform: the Glue job (default) and an EMR Serverless application (large tenants)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_emrserverless as emr
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as assets
from constructs import Construct

from tenant_analytics import constants as c

from ..config import REPO_ROOT
from .logs import encrypted_log_group
from .nag import ANY_RESOURCE, acknowledge, resource_finding

GLUE_VERSION = "5.0"
EMR_RELEASE = "emr-7.5.0"
LOG_GROUP = f"/aws/emr-serverless/{c.EMR_APPLICATION}"
_ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info"]


@dataclass(frozen=True)
class SparkData:
    """What a Spark run reads and writes."""

    raw: s3.IBucket
    curated: s3.IBucket
    artifacts: s3.IBucket
    data_key: kms.IKey
    logs_key: kms.IKey


class SparkCode(Construct):
    """The job script and the core package zip (``tenant_analytics/`` at its root) as S3 assets."""

    def __init__(self, scope: Construct, construct_id: str, *, script: Path) -> None:
        super().__init__(scope, construct_id)
        self.script = assets.Asset(self, "Script", path=str(script))
        self.core_package = assets.Asset(self, "CorePackage", path=str(REPO_ROOT / "src"), exclude=_ASSET_EXCLUDES)

    def grant_read(self, role: iam.IRole) -> None:
        """Let ``role`` fetch both assets: those two objects of the CDK asset bucket (``Asset.grant_read`` would
        grant reading and listing every asset of every stack the bootstrap bucket holds)."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    asset.bucket.arn_for_objects(asset.s3_object_key) for asset in (self.script, self.core_package)
                ],
            )
        )


def grant_spark_data(role: iam.IRole, data: SparkData, code: SparkCode) -> None:
    """The least a transform run needs: read raw and code, read/write curated and artifacts (manifests, temp)."""
    data.raw.grant_read(role)
    data.curated.grant_read_write(role)
    data.artifacts.grant_read_write(role)
    data.data_key.grant_encrypt_decrypt(role)
    code.grant_read(role)


class TransformJob(Construct):
    """The Glue 5.0 job ``c.TRANSFORM_JOB`` with a KMS security configuration for S3, logs and bookmarks."""

    def __init__(self, scope: Construct, construct_id: str, *, data: SparkData, code: SparkCode) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{c.PROJECT}-spark",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=data.data_key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=data.logs_key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=data.data_key.key_arn
                ),
            ),
        )
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"), description="Glue transform job"
        )
        grant_spark_data(self.role, data, code)
        data.logs_key.grant_encrypt_decrypt(self.role)
        glue_logs = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/*"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[glue_logs],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )
        self.job = glue.CfnJob(
            self,
            "Job",
            name=c.TRANSFORM_JOB,
            description="Transform a batch of tenants' landed increments (tenant_id is a column)",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=code.script.s3_object_url
            ),
            worker_type="G.1X",
            number_of_workers=2,
            timeout=120,
            max_retries=0,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=20),
            security_configuration=self.security_configuration.name,
            default_arguments=default_job_arguments(data, code),
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Glue names its log groups /aws-glue/jobs/<security configuration>-role/<role>/..., so the role may"
            " write under /aws-glue/*; PutMetricData takes no resource ARN and is conditioned on the Glue"
            " namespace.",
            findings=(resource_finding(self, glue_logs), ANY_RESOURCE),
        )


def default_job_arguments(data: SparkData, code: SparkCode) -> dict[str, str]:
    """Glue default arguments; the state machine adds ``--manifest`` and ``--output`` per run."""
    return {
        "--job-language": "python",
        "--extra-py-files": code.core_package.s3_object_url,
        "--TempDir": f"s3://{data.artifacts.bucket_name}/{c.GLUE_TEMP_PREFIX}",
        "--job-bookmark-option": "job-bookmark-disable",
        "--enable-metrics": "true",
        "--enable-observability-metrics": "true",
        "--enable-continuous-cloudwatch-log": "true",
        "--enable-job-insights": "true",
    }


class SparkServerlessApplication(Construct):
    """An EMR Serverless Spark application in the VPC for tenants too large for a Glue run; stops when idle; its runs
    log to a group of their own under the logs key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: SparkData,
        code: SparkCode,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="EMR Serverless Spark workers", allow_all_outbound=False
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "S3 and AWS APIs via endpoints")
        self.log_group = encrypted_log_group(self, "RunLogs", key=data.logs_key, name=LOG_GROUP)
        self.application = emr.CfnApplication(
            self,
            "Application",
            name=c.EMR_APPLICATION,
            release_label=EMR_RELEASE,
            type="SPARK",
            auto_start_configuration=emr.CfnApplication.AutoStartConfigurationProperty(enabled=True),
            auto_stop_configuration=emr.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=15
            ),
            maximum_capacity=emr.CfnApplication.MaximumAllowedResourcesProperty(
                cpu="200 vCPU", memory="800 GB", disk="2000 GB"
            ),
            network_configuration=emr.CfnApplication.NetworkConfigurationProperty(
                subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
                security_group_ids=[self.security_group.security_group_id],
            ),
            # Every run's driver logs (stdout, stderr) go to a group of this stack, which CloudWatch Logs encrypts with
            # the logs key. No encryptionKeyArn: it would have EMR associate the key the group already has, and require
            # kms:GenerateDataKey/Decrypt on it of whoever starts a run. The StartJobRun calls override nothing.
            monitoring_configuration=emr.CfnApplication.MonitoringConfigurationProperty(
                cloud_watch_logging_configuration=emr.CfnApplication.CloudWatchLoggingConfigurationProperty(
                    enabled=True, log_group_name=self.log_group.log_group_name
                )
            ),
        )
        self.job_role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("emr-serverless.amazonaws.com"),
            description="Runtime role of transform runs on EMR Serverless",
        )
        grant_spark_data(self.job_role, data, code)
        # What EMR Serverless needs to write a run's logs: find the group, then create and write streams in it (the
        # group exists; the runs never create one).
        any_group = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
        own_group = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{LOG_GROUP}:*"
        self.job_role.add_to_policy(iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=[any_group]))
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:DescribeLogStreams", "logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[own_group],
            )
        )
        acknowledge(
            self.job_role,
            "AwsSolutions-IAM5",
            "EMR Serverless looks the runs' log group up with logs:DescribeLogGroups (lists the account's groups, no"
            " log data) and writes only that group's streams, which it names at run time (<group ARN>:*).",
            findings=(resource_finding(self, any_group), resource_finding(self, own_group)),
        )
