"""Deployment settings read from CDK context, with defaults that synthesize offline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from constructs import Node

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_ACCOUNT = "111111111111"
DEFAULT_REGION = "eu-west-1"
DEFAULT_CLUSTER_BUDGETS: dict[str, int] = {
    "tenants_per_cluster": 600,
    "rows_per_cluster": 2_000_000_000,
    "redshift_threshold_rows": 50_000_000,
    "batch_capacity_rows": 5_000_000,
    "max_concurrency": 10,
    "poll_seconds": 30,
}


@dataclass(frozen=True)
class PlatformConfig:
    """Everything a stack may vary by deployment; built once in app.py and passed down."""

    account: str = DEFAULT_ACCOUNT
    region: str = DEFAULT_REGION
    availability_zones: tuple[str, ...] = ()
    cluster_budgets: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CLUSTER_BUDGETS))
    freshness_alarm_seconds: int = 7200
    # The identity provider that issues tenants' JWTs (the authorizer fetches its JWKS over the internet).
    auth_issuer: str = "https://auth.tenant-analytics.local/"
    auth_audience: str = "tenant-analytics-api"
    auth_jwks_url: str = ""
    transform_script: Path = REPO_ROOT / "glue_jobs" / "transform_tickets.py"
    lambda_layer_dir: Path = REPO_ROOT / "build" / "lambda-layer"

    @property
    def jwks_url(self) -> str:
        """The JWKS URL, by default the issuer's well-known location."""
        return self.auth_jwks_url or f"{self.auth_issuer.rstrip('/')}/.well-known/jwks.json"

    @property
    def zones(self) -> list[str]:
        """Explicit availability zones (three: Redshift Serverless needs subnets in three zones)."""
        if self.availability_zones:
            return list(self.availability_zones)
        return [f"{self.region}{suffix}" for suffix in ("a", "b", "c")]

    @classmethod
    def from_context(cls, node: Node) -> PlatformConfig:
        """Read the ``tenant-analytics:*`` context keys (cdk.json, ``-c`` flags); absent keys keep defaults."""

        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(f"tenant-analytics:{key}")
            return default if value is None else value

        budgets = get("cluster-budgets", {})
        if isinstance(budgets, str):
            budgets = json.loads(budgets)
        zones = get("availability-zones", [])
        if isinstance(zones, str):
            zones = [zone.strip() for zone in zones.split(",") if zone.strip()]
        script = get("transform-script", None)
        layer = get("lambda-layer-dir", None)
        defaults = cls()
        return cls(
            account=str(get("account", DEFAULT_ACCOUNT)),
            region=str(get("region", DEFAULT_REGION)),
            availability_zones=tuple(zones),
            cluster_budgets={**DEFAULT_CLUSTER_BUDGETS, **{k: int(v) for k, v in dict(budgets).items()}},
            freshness_alarm_seconds=int(get("freshness-alarm-seconds", defaults.freshness_alarm_seconds)),
            auth_issuer=str(get("auth-issuer", defaults.auth_issuer)),
            auth_audience=str(get("auth-audience", defaults.auth_audience)),
            auth_jwks_url=str(get("auth-jwks-url", defaults.auth_jwks_url)),
            transform_script=Path(script) if script else defaults.transform_script,
            lambda_layer_dir=Path(layer) if layer else defaults.lambda_layer_dir,
        )
