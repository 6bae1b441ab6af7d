"""Settings: the only module that reads ``os.environ``. Validated once, at cold start."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from tenant_analytics import constants as c
from tenant_analytics.errors import InvalidInput


class StoreConfig(BaseModel):
    """How to reach one analytics store (an Aurora cluster or a Redshift workgroup)."""

    engine: Literal["postgres", "redshift"]
    tier: Literal["aurora", "redshift"]
    dsn: str | None = Field(default=None, description="libpq URL; local stores and tests")
    query_dsn: str | None = Field(
        default=None,
        description="local stores: the libpq URL tenant queries log in with (the query login), where the query"
        " function on AWS uses iam_user",
    )
    host: str | None = None
    port: int = 5432
    database: str = "analytics"
    secret_arn: str | None = Field(default=None, description="Secrets Manager secret with username/password")
    iam_user: str | None = Field(
        default=None,
        description="PostgreSQL stores: log in as this database user with an IAM authentication token instead of"
        " secret_arn (the query function, as the query login)",
    )
    workgroup_name: str | None = Field(default=None, description="Redshift Serverless workgroup (Data API)")
    copy_role_arn: str | None = Field(
        default=None, description="IAM role Redshift assumes to COPY from S3 and to UNLOAD the operational export"
    )
    s3_import: Literal["aws_s3", "copy"] = Field(
        default="copy",
        description="how a PostgreSQL store imports unloaded files: 'aws_s3' (Aurora's extension, the cluster's S3"
        " import role) or 'copy' (the function fetches the object and streams it through COPY; local stores)",
    )
    s3_import_region: str | None = Field(default=None, description="region of the bucket 'aws_s3' imports from")
    stale_model_after_hours: float = Field(
        default=c.STALE_MODEL_AFTER_HOURS,
        gt=0,
        description="PostgreSQL stores: a model without a successful refresh for this long stops holding back its"
        " inputs' change images; they are dropped and it is marked to catch up in full",
    )

    @model_validator(mode="after")
    def _aws_s3_needs_a_region(self) -> StoreConfig:
        if self.s3_import == "aws_s3" and not self.s3_import_region:
            raise ValueError("s3_import 'aws_s3' needs s3_import_region (the bucket's region)")
        return self


class PlacementBudgets(BaseModel):
    """Capacity model for tenant placement."""

    tenants_per_cluster: int = Field(default=600, gt=0)
    rows_per_cluster: int = Field(default=2_000_000_000, gt=0)
    redshift_threshold_rows: int = Field(default=50_000_000, gt=0)
    batch_capacity_rows: int = Field(default=5_000_000, gt=0)
    emr_threshold_rows: int = Field(default=20_000_000, gt=0, description="from this size a tenant runs on EMR")
    max_concurrency: int = Field(default=10, gt=0)
    poll_seconds: int = Field(default=30, ge=0)


class Settings(BaseModel):
    """Runtime settings of every Lambda, the Glue driver and the CLI."""

    tenants_table: str = c.TENANTS_TABLE
    cursors_table: str = c.CURSORS_TABLE
    raw_bucket: str = c.RAW_BUCKET
    curated_bucket: str = c.CURATED_BUCKET
    artifacts_bucket: str = c.ARTIFACTS_BUCKET
    transform_job_name: str = c.TRANSFORM_JOB
    stores: dict[str, StoreConfig] = Field(default_factory=dict)
    budgets: PlacementBudgets = Field(default_factory=PlacementBudgets)
    source_timeout_seconds: float = Field(default=10.0, gt=0)
    state_machine_arn: str | None = None
    history_compact_after_files: int = Field(
        default=48,
        ge=1,
        description="a tenant's curated history of one stream is rewritten into one folder by the next Spark run"
        " once it spans more files than this (each run adds one or two)",
    )
    cache_table: str | None = Field(default=None, description="shared answer cache (DynamoDB); None: in-process only")
    auth_issuer: str = "https://auth.tenant-analytics.local/"
    auth_audience: str = "tenant-analytics-api"
    auth_jwks_url: str | None = None
    auth_jwks: str | None = Field(default=None, description="inline JWKS JSON (local development key)")
    data_version_max_age_ms: int = Field(
        default=1000,
        ge=0,
        le=60_000,
        description="a container re-reads a tenant's data_version from the registry once its copy is this old;"
        " a cache hit may follow a publish by at most this long (0: read on every request)",
    )
    usage_plan_ids: dict[str, str] = Field(
        default_factory=dict,
        description="API Gateway usage plan id per plan name (standard, large); empty: tenants get no API key",
    )
    api_keys_required: bool = Field(
        default=False, description="the API requires API keys: the authorizer returns the tenant's key"
    )


def _env_json(key: str) -> str | None:
    value = os.environ.get(key)
    return value if value else None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read and validate the environment once; raise InvalidInput naming the bad variable."""
    raw: dict[str, object] = {}
    simple = {
        c.ENV_TENANTS_TABLE: "tenants_table",
        c.ENV_CURSORS_TABLE: "cursors_table",
        c.ENV_RAW_BUCKET: "raw_bucket",
        c.ENV_CURATED_BUCKET: "curated_bucket",
        c.ENV_ARTIFACTS_BUCKET: "artifacts_bucket",
        c.ENV_TRANSFORM_JOB: "transform_job_name",
        c.ENV_SOURCE_TIMEOUT: "source_timeout_seconds",
        c.ENV_STATE_MACHINE_ARN: "state_machine_arn",
        c.ENV_HISTORY_COMPACT_AFTER_FILES: "history_compact_after_files",
        c.ENV_CACHE_TABLE: "cache_table",
        c.ENV_AUTH_ISSUER: "auth_issuer",
        c.ENV_AUTH_AUDIENCE: "auth_audience",
        c.ENV_AUTH_JWKS_URL: "auth_jwks_url",
        c.ENV_AUTH_JWKS: "auth_jwks",
        c.ENV_DATA_VERSION_MAX_AGE_MS: "data_version_max_age_ms",
        c.ENV_API_KEYS_REQUIRED: "api_keys_required",
    }
    for key, field in simple.items():
        if os.environ.get(key):
            raw[field] = os.environ[key]
    for key, field in (
        (c.ENV_STORES, "stores"),
        (c.ENV_CLUSTER_BUDGETS, "budgets"),
        (c.ENV_USAGE_PLAN_IDS, "usage_plan_ids"),
    ):
        value = _env_json(key)
        if value is not None:
            raw[field] = value
    try:
        return Settings.model_validate_json(_to_json(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"environment setting '{where}' is invalid: {first['msg']}", field=where) from exc


def _to_json(raw: dict[str, object]) -> str:
    import json

    # JSON-valued variables are embedded as parsed JSON so pydantic sees one document.
    doc: dict[str, object] = {}
    for key, value in raw.items():
        if key in ("stores", "budgets", "usage_plan_ids") and isinstance(value, str):
            try:
                doc[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"environment setting '{key}' is not valid JSON: {exc.msg}", field=key) from exc
        else:
            doc[key] = value
    return json.dumps(doc)


def home_dir() -> Path:
    """Folder of the CLI's local state: $TENANT_ANALYTICS_HOME, else ./.local."""
    return Path(os.environ.get(c.ENV_HOME) or ".local").resolve()


def database_url() -> str | None:
    """An external PostgreSQL to use instead of the embedded one, if set."""
    return os.environ.get(c.ENV_DATABASE_URL) or None
