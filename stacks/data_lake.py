"""Data lake stack: the platform's KMS keys and its S3 buckets."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from .constructs.data_lake import DataLakeBuckets
from .constructs.encryption import PlatformKeys


class DataLakeStack(Stack):
    """Keys (data, logs) and the raw / curated / artifacts buckets."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.keys = PlatformKeys(self, "Keys")
        self.buckets = DataLakeBuckets(self, "Buckets", key=self.keys.data)
        self.shared_buckets = self.buckets.shared
