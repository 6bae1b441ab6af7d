"""The platform VPC: isolated subnets only, reached through VPC endpoints, with flow logs."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from constructs import Construct

from .logs import encrypted_log_group

# Services the in-VPC workloads call. Functions in the VPC (load, refresh, setup, query, aggregator) read
# secrets, call the Redshift Data API and STS and send traces to X-Ray; the aggregator sends rejected records to
# its SQS failure queue; EMR Serverless writes logs, decrypts with KMS and reads the Glue catalog. S3 and DynamoDB
# are gateway endpoints. Kinesis and Step Functions are only called from outside the VPC (the Lambda service polls
# the stream; the scheduler starts executions), so they get no endpoint.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "RedshiftData": ec2.InterfaceVpcEndpointAwsService.REDSHIFT_DATA,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
}


VPC_CIDR = "10.40.0.0/16"


class IsolatedNetwork(Construct):
    """A VPC without internet access.

    The export Lambda, the only code that calls the internet (tenants' source APIs), runs outside
    the VPC: it only needs S3 and DynamoDB besides, which are public IAM-authorised endpoints. That
    keeps this VPC free of NAT gateways (no egress path for the databases, no NAT hourly cost).
    """

    def __init__(self, scope: Construct, construct_id: str, *, zones: list[str], logs_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        flow_logs = encrypted_log_group(self, "FlowLogs", key=logs_key)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            availability_zones=zones,
            nat_gateways=0,
            restrict_default_security_group=False,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=20)
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.isolated_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        # One group for all endpoints: HTTPS from inside the VPC only.
        self.endpoint_security_group = ec2.SecurityGroup(
            self, "Endpoints", vpc=self.vpc, description="Interface VPC endpoints", allow_all_outbound=False
        )
        self.endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), "HTTPS from the VPC")
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.isolated_subnets,
                private_dns_enabled=True,
                open=False,
                security_groups=[self.endpoint_security_group],
            )
