"""The pooled Aurora PostgreSQL Serverless v2 store ("aurora-1")."""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sam as sam
from constructs import Construct

from tenant_analytics import constants as c

from .data_lake import grant_prefix_read
from .logs import encrypted_log_group
from .nag import acknowledge, resource_finding

ENGINE = rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_16_6)
PORT = 5432
ADMIN_USER = "analytics_admin"


class AuroraStore(Construct):
    """Serverless v2 writer and reader in isolated subnets, KMS, IAM auth, rotated admin secret, audit logs, HTTPS-only
    egress."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        clients: ec2.ISecurityGroup,
        import_bucket: s3.IBucket,
        import_prefix: str,
    ) -> None:
        super().__init__(scope, construct_id)
        identifier = f"{c.PROJECT}-{c.AURORA_STORE_ID}"
        # aws_s3.table_import_from_s3 reads as this role: the operational export's files and nothing else.
        self.s3_import_role = iam.Role(
            self,
            "S3ImportRole",
            assumed_by=iam.ServicePrincipal("rds.amazonaws.com"),
            description=f"Aurora {c.AURORA_STORE_ID} imports the operational export from S3 (aws_s3)",
        )
        grant_prefix_read(self.s3_import_role, import_bucket, import_prefix, data_key)
        acknowledge(
            self.s3_import_role,
            "AwsSolutions-IAM5",
            "The cluster imports the files each operational export run UNLOADs under a prefix of its own"
            f" ({import_prefix}<model>/run=<id>/), so the grant is that prefix, read-only.",
            findings=(resource_finding(self, import_bucket.arn_for_objects(f"{import_prefix}*")),),
        )
        # Created ahead of the cluster so RDS exports into an encrypted group with a retention.
        export_logs = encrypted_log_group(
            self, "PostgresqlLogs", key=logs_key, name=f"/aws/rds/cluster/{identifier}/postgresql"
        )
        # Outbound, the cluster only fetches the operational export from S3 (aws_s3.table_import_from_s3, through the
        # VPC's S3 gateway endpoint); it calls no Lambda function and no other database. The VPC is isolated (no
        # internet or NAT gateway), so HTTPS out reaches the VPC endpoints only.
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"Aurora {c.AURORA_STORE_ID}: clients in, S3 imports out",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "S3 (aws_s3 imports) through the VPC gateway endpoint"
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=ENGINE,
            description="TLS only; log slow statements",
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=identifier,
            engine=ENGINE,
            parameter_group=parameters,
            writer=rds.ClusterInstance.serverless_v2(
                "Writer", enable_performance_insights=True, performance_insight_encryption_key=data_key
            ),
            readers=[
                rds.ClusterInstance.serverless_v2(
                    "Reader",
                    scale_with_writer=True,
                    enable_performance_insights=True,
                    performance_insight_encryption_key=data_key,
                )
            ],
            serverless_v2_min_capacity=0.5,
            serverless_v2_max_capacity=16,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            port=PORT,
            default_database_name=c.ANALYTICS_DATABASE,
            credentials=rds.Credentials.from_generated_secret(
                ADMIN_USER, encryption_key=data_key, secret_name=f"{c.PROJECT}/{c.AURORA_STORE_ID}/admin"
            ),
            storage_encrypted=True,
            storage_encryption_key=data_key,
            iam_authentication=True,
            deletion_protection=True,
            backup=rds.BackupProps(retention=Duration.days(14), preferred_window="02:00-03:00"),
            cloudwatch_logs_exports=["postgresql"],
            s3_import_role=self.s3_import_role,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        self.cluster.node.add_dependency(export_logs)
        # The rotation function reaches Secrets Manager through its VPC endpoint and the cluster (the egress rule to
        # the cluster's port comes with the cluster's ingress rule for it), nothing else.
        rotation_group = ec2.SecurityGroup(
            self,
            "RotationSecurityGroup",
            vpc=vpc,
            description=f"Aurora {c.AURORA_STORE_ID} admin secret rotation function",
            allow_all_outbound=False,
        )
        rotation_group.add_egress_rule(
            ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(443), "Secrets Manager through its VPC endpoint"
        )
        rotation = self.cluster.add_rotation_single_user(
            automatically_after=Duration.days(30), security_group=rotation_group
        )
        # The rotation application (Serverless Application Repository) names its function after the functionName
        # parameter CDK gives it, so its log group is known here: made first, encrypted and with a retention, instead
        # of by Lambda on the first rotation.
        application = rotation.node.default_child
        assert isinstance(application, sam.CfnApplication)
        function_name = cast(dict[str, str], application.parameters)["functionName"]
        rotation_logs = encrypted_log_group(self, "RotationLogs", key=logs_key, name=f"/aws/lambda/{function_name}")
        application.node.add_dependency(rotation_logs)
        self.cluster.connections.allow_default_port_from(clients, "platform functions and rotation")
        acknowledge(
            self.cluster,
            "AwsSolutions-RDS11",
            "The default port is part of the store contract (STORES env var, local PostgreSQL); only the"
            " platform's client security group may reach it.",
        )

    @property
    def secret_arn(self) -> str:
        """ARN of the rotated admin secret (username, password, host, port, dbname)."""
        secret = self.cluster.secret
        assert secret is not None  # from_generated_secret always attaches one
        return secret.secret_arn
