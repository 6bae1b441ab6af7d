"""Lazily created, cached boto3 clients. Tests and the local runner reset the cache after switching endpoints."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service: str) -> Any:
    """Return a cached low-level client for ``service``."""
    return boto3.client(service)  # type: ignore[call-overload]


@cache
def resource(service: str) -> Any:
    """Return a cached resource for ``service`` (DynamoDB tables)."""
    return boto3.resource(service)  # type: ignore[call-overload]


def reset() -> None:
    """Forget every cached client (used when credentials or endpoints change)."""
    client.cache_clear()
    resource.cache_clear()
