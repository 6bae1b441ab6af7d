"""Redshift Serverless: the production namespace/workgroup ("redshift-1") and the analysts' own compute."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_redshiftserverless as redshift
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tenant_analytics import constants as c

from .logs import encrypted_log_group

PORT = 5439
ADMIN_USER = "analytics_admin"
AUDIT_LOGS = ["userlog", "connectionlog", "useractivitylog"]


class RedshiftServerlessWarehouse(Construct):
    """One namespace and its workgroup: KMS, managed admin secret, audit logs in encrypted groups, enhanced VPC
    routing."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        namespace_name: str,
        workgroup_name: str,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        clients: ec2.ISecurityGroup,
        base_capacity: int,
        max_capacity: int,
        load_bucket: s3.IBucket | None = None,
        unload_prefix: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        roles: list[str] = []
        if load_bucket is not None:
            # COPY/UNLOAD run as this role, so only the curated bucket is readable from SQL, and only
            # ``unload_prefix`` of it writable.
            self.copy_role: iam.Role | None = iam.Role(
                self,
                "CopyRole",
                assumed_by=iam.CompositePrincipal(
                    iam.ServicePrincipal("redshift.amazonaws.com"),
                    iam.ServicePrincipal("redshift-serverless.amazonaws.com"),
                ),
                description=f"COPY from the curated bucket into {namespace_name}, UNLOAD the operational export",
            )
            load_bucket.grant_read(self.copy_role)
            if unload_prefix is not None:
                self._grant_unload(self.copy_role, load_bucket, unload_prefix)
            roles.append(self.copy_role.role_arn)
        else:
            self.copy_role = None
        # Redshift Serverless exports each audit log into /aws/redshift/<namespace>/<log type>, a group it creates
        # (unencrypted, kept forever) unless it exists: made first, under the logs key and with a retention.
        audit_groups = [
            encrypted_log_group(
                self, f"{log_type.capitalize()}Logs", key=logs_key, name=f"/aws/redshift/{namespace_name}/{log_type}"
            )
            for log_type in AUDIT_LOGS
        ]
        self.namespace = redshift.CfnNamespace(
            self,
            "Namespace",
            namespace_name=namespace_name,
            db_name=c.ANALYTICS_DATABASE,
            admin_username=ADMIN_USER,
            manage_admin_password=True,
            admin_password_secret_kms_key_id=data_key.key_arn,
            kms_key_id=data_key.key_arn,
            log_exports=AUDIT_LOGS,
            iam_roles=roles or None,
            default_iam_role_arn=roles[0] if roles else None,
        )
        for group in audit_groups:
            self.namespace.node.add_dependency(group)
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description=f"{workgroup_name} workgroup", allow_all_outbound=False
        )
        self.security_group.add_ingress_rule(clients, ec2.Port.tcp(PORT), "platform functions")
        # Enhanced VPC routing sends COPY/UNLOAD through the VPC, i.e. through the S3 gateway endpoint.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "S3 and AWS APIs via endpoints")
        self.workgroup = redshift.CfnWorkgroup(
            self,
            "Workgroup",
            workgroup_name=workgroup_name,
            namespace_name=namespace_name,
            base_capacity=base_capacity,
            max_capacity=max_capacity,
            enhanced_vpc_routing=True,
            publicly_accessible=False,
            port=PORT,
            subnet_ids=vpc.select_subnets(subnet_type=subnets.subnet_type).subnet_ids,
            security_group_ids=[self.security_group.security_group_id],
            config_parameters=[
                redshift.CfnWorkgroup.ConfigParameterProperty(
                    parameter_key="enable_user_activity_logging", parameter_value="true"
                ),
                redshift.CfnWorkgroup.ConfigParameterProperty(parameter_key="require_ssl", parameter_value="true"),
            ],
        )
        self.workgroup.add_resource_dependency(self.namespace)

    @staticmethod
    def _grant_unload(role: iam.Role, bucket: s3.IBucket, prefix: str) -> None:
        """Let UNLOAD ... ENCRYPTED AUTO write under ``prefix`` with the bucket's default KMS key."""
        exports = bucket.arn_for_objects(f"{prefix}*")
        role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[exports]))
        # ENCRYPTED AUTO reads the bucket's default encryption to pick its KMS key
        encryption = iam.PolicyStatement(actions=["s3:GetEncryptionConfiguration"], resources=[bucket.bucket_arn])
        role.add_to_policy(encryption)
        key = bucket.encryption_key
        if key is not None:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(key).region}.amazonaws.com"}},
                )
            )

    @property
    def workgroup_arn(self) -> str:
        """ARN of the workgroup (the Data API's resource)."""
        return self.workgroup.attr_workgroup_workgroup_arn

    @property
    def endpoint_address(self) -> str:
        """Host name of the workgroup endpoint."""
        return self.workgroup.attr_workgroup_endpoint_address

    @property
    def admin_secret_arn(self) -> str:
        """Partial ARN (no random suffix) of the admin secret Redshift manages and rotates in Secrets Manager.

        CloudFormation exposes no attribute for it; Secrets Manager and the Data API accept the partial ARN.
        """
        stack = Stack.of(self)
        name = f"redshift!{self.namespace.namespace_name}-{ADMIN_USER}"
        return f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:{name}"

    @property
    def admin_secret_policy_arn(self) -> str:
        """The admin secret's ARN for IAM policies: any six-character suffix Secrets Manager appended."""
        return f"{self.admin_secret_arn}-??????"

    @property
    def namespace_id(self) -> str:
        """Namespace id, the identifier datashare grants use."""
        return self.namespace.attr_namespace_namespace_id
