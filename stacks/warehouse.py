"""Warehouse stack: the Aurora store, the production Redshift Serverless store and the analysts' compute."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from tenant_analytics import constants as c

from .constructs import aurora, redshift
from .constructs.aurora import AuroraStore
from .constructs.lambda_runtime import FunctionNetwork
from .constructs.nag import acknowledge, acknowledge_data_grants, resource_finding
from .constructs.redshift import RedshiftServerlessWarehouse
from .constructs.stores import AnalyticsStores


class WarehouseStack(Stack):
    """Stores in isolated subnets; ``stores`` tells other stacks how to reach and grant them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        curated_bucket: s3.IBucket,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Attached to every function that talks to a store; the stores admit only this group.
        self.clients = ec2.SecurityGroup(
            self,
            "StoreClients",
            vpc=vpc,
            description="Platform functions that reach the stores",
            allow_all_outbound=False,
        )
        self.clients.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs through VPC endpoints")
        for port in (aurora.PORT, redshift.PORT):
            self.clients.add_egress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(port), "stores")
        # Attach to the analysts' VPN endpoint or bastion to open their workgroup to them.
        self.analyst_access = ec2.SecurityGroup(
            self, "AnalystAccess", vpc=vpc, description="Analyst SQL clients", allow_all_outbound=False
        )
        self.analyst_access.add_egress_rule(ec2.Peer.ipv4(vpc.vpc_cidr_block), ec2.Port.tcp(redshift.PORT), "analysts")

        self.aurora = AuroraStore(
            self,
            "Aurora",
            vpc=vpc,
            subnets=subnets,
            data_key=data_key,
            logs_key=logs_key,
            clients=self.clients,
            import_bucket=curated_bucket,
            import_prefix=c.OPERATIONAL_EXPORT_PREFIX,
        )
        self.redshift = RedshiftServerlessWarehouse(
            self,
            "Redshift",
            namespace_name=c.REDSHIFT_NAMESPACE,
            workgroup_name=c.REDSHIFT_WORKGROUP,
            vpc=vpc,
            subnets=subnets,
            data_key=data_key,
            logs_key=logs_key,
            clients=self.clients,
            base_capacity=8,
            max_capacity=128,
            load_bucket=curated_bucket,
            unload_prefix=c.OPERATIONAL_EXPORT_PREFIX,
        )
        # Analysts query production through a datashare on compute of their own (ADR 0001).
        self.analysts = RedshiftServerlessWarehouse(
            self,
            "Analysts",
            namespace_name=c.ANALYST_NAMESPACE,
            workgroup_name=c.ANALYST_WORKGROUP,
            vpc=vpc,
            subnets=subnets,
            data_key=data_key,
            logs_key=logs_key,
            clients=self.analyst_access,
            base_capacity=8,
            max_capacity=32,
        )
        self.stores = AnalyticsStores(
            aurora=self.aurora,
            redshift=self.redshift,
            data_key=data_key,
            network=FunctionNetwork(vpc=vpc, subnets=subnets, security_group=self.clients),
        )
        assert self.redshift.copy_role is not None
        acknowledge_data_grants(self.redshift.copy_role, [curated_bucket])
        exports = curated_bucket.arn_for_objects(f"{c.OPERATIONAL_EXPORT_PREFIX}*")
        acknowledge(
            self.redshift.copy_role,
            "AwsSolutions-IAM5",
            "UNLOAD of the operational export writes one new prefix per run"
            f" ({c.OPERATIONAL_EXPORT_PREFIX}<model>/run=<id>/); the role may write only under that prefix.",
            findings=(resource_finding(self, exports),),
        )
        CfnOutput(self, "ProducerNamespaceId", value=self.redshift.namespace_id)
        CfnOutput(self, "ConsumerNamespaceId", value=self.analysts.namespace_id)
