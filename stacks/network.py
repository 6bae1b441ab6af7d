"""Network stack: an isolated VPC with endpoints and flow logs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from .config import PlatformConfig
from .constructs.network import IsolatedNetwork


class NetworkStack(Stack):
    """The VPC the databases, the in-VPC functions and EMR Serverless run in."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: PlatformConfig, logs_key: kms.IKey, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.network = IsolatedNetwork(self, "Network", zones=config.zones, logs_key=logs_key)
        self.vpc = self.network.vpc
        self.isolated_subnets = self.network.isolated_subnets
