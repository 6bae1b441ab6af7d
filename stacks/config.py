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
class UsagePlanLimits:
    """Throttle and quota of one usage plan (every tenant's API key is attached to its tier's plan)."""

    rate_limit: float  # steady requests per second per tenant
    burst_limit: int
    quota_per_month: int


# Plan names are the values of constants.USAGE_PLAN_BY_TIER; both stay below the stage's 200 rps / 400 burst.
DEFAULT_USAGE_PLANS: dict[str, UsagePlanLimits] = {
    "standard": UsagePlanLimits(rate_limit=25, burst_limit=50, quota_per_month=1_000_000),
    "large": UsagePlanLimits(rate_limit=100, burst_limit=200, quota_per_month=10_000_000),
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
    transform_script: Path = REPO_ROOT / "glue_jobs" / "transform_support.py"
    lambda_layer_dir: Path = REPO_ROOT / "build" / "lambda-layer"
    usage_plans: dict[str, UsagePlanLimits] = field(default_factory=lambda: dict(DEFAULT_USAGE_PLANS))
    # How old a query container's copy of a tenant's data_version may be (the cache-hit freshness bound).
    data_version_max_age_ms: int = 1000
    # A tenant's curated history of a stream is compacted by the next Spark run once it spans more files than this.
    history_compact_after_files: int = 48

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
        plans = get("usage-plans", {})
        if isinstance(plans, str):
            plans = json.loads(plans)
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
            data_version_max_age_ms=int(get("data-version-max-age-ms", defaults.data_version_max_age_ms)),
            history_compact_after_files=int(get("history-compact-after-files", defaults.history_compact_after_files)),
            usage_plans={
                **DEFAULT_USAGE_PLANS,
                **{name: UsagePlanLimits(**dict(limits)) for name, limits in dict(plans).items()},
            },
        )
