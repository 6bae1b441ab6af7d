"""Settings: the only module that reads ``os.environ``. Validated once, at cold start."""

from __future__ import annotations

import json
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


# Each setting read from the environment: its variable, and whether the value is JSON.
_ENV_FIELDS: dict[str, tuple[str, bool]] = {
    "tenants_table": (c.ENV_TENANTS_TABLE, False),
    "cursors_table": (c.ENV_CURSORS_TABLE, False),
    "raw_bucket": (c.ENV_RAW_BUCKET, False),
    "curated_bucket": (c.ENV_CURATED_BUCKET, False),
    "artifacts_bucket": (c.ENV_ARTIFACTS_BUCKET, False),
    "transform_job_name": (c.ENV_TRANSFORM_JOB, False),
    "source_timeout_seconds": (c.ENV_SOURCE_TIMEOUT, False),
    "state_machine_arn": (c.ENV_STATE_MACHINE_ARN, False),
    "history_compact_after_files": (c.ENV_HISTORY_COMPACT_AFTER_FILES, False),
    "cache_table": (c.ENV_CACHE_TABLE, False),
    "auth_issuer": (c.ENV_AUTH_ISSUER, False),
    "auth_audience": (c.ENV_AUTH_AUDIENCE, False),
    "auth_jwks_url": (c.ENV_AUTH_JWKS_URL, False),
    "auth_jwks": (c.ENV_AUTH_JWKS, False),
    "data_version_max_age_ms": (c.ENV_DATA_VERSION_MAX_AGE_MS, False),
    "api_keys_required": (c.ENV_API_KEYS_REQUIRED, False),
    "stores": (c.ENV_STORES, True),
    "budgets": (c.ENV_CLUSTER_BUDGETS, True),
    "usage_plan_ids": (c.ENV_USAGE_PLAN_IDS, True),
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read and validate the environment once; raise InvalidInput naming the bad variable (and the key inside a
    JSON-valued one)."""
    doc: dict[str, object] = {}
    for field, (key, is_json) in _ENV_FIELDS.items():
        value = os.environ.get(key)
        if not value:
            continue
        if is_json:
            try:
                doc[field] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"environment variable {key} is not valid JSON: {exc.msg} at character {exc.pos}", field=key
                ) from exc
        else:
            doc[field] = value
    try:
        return Settings.model_validate_json(json.dumps(doc))
    except ValidationError as exc:
        first = exc.errors()[0]
        field, *inside = (str(p) for p in first["loc"])
        key = _ENV_FIELDS[field][0]
        where = f"{key} (at '{'.'.join(inside)}')" if inside else key
        value = first["input"]
        # a scalar is shown; a whole object is not (a store's object may hold a password)
        got = f" (got {value!r})" if isinstance(value, str | int | float | bool) else ""
        raise InvalidInput(f"environment variable {where} is invalid: {first['msg']}{got}", field=key) from exc


def home_dir() -> Path:
    """Folder of the CLI's local state: $TENANT_ANALYTICS_HOME, else ./.local. Raise InvalidInput when it (or the
    nearest part of its path that exists) is not a folder."""
    home = Path(os.environ.get(c.ENV_HOME) or ".local").resolve()
    existing = next(p for p in (home, *home.parents) if p.exists())
    if not existing.is_dir():
        raise InvalidInput(
            f"environment variable {c.ENV_HOME} must name a folder (or where to create one), but {existing} is a file",
            field=c.ENV_HOME,
        )
    return home


def database_url() -> str | None:
    """An external PostgreSQL to use instead of the embedded one, if set. Raise InvalidInput when it is not a
    PostgreSQL URL (its value is not repeated: it may hold a password)."""
    url = os.environ.get(c.ENV_DATABASE_URL) or None
    if url is None:
        return None
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    form = "postgresql://user:password@host:port/database"
    if not url.startswith(("postgresql://", "postgres://")):
        raise InvalidInput(
            f"environment variable {c.ENV_DATABASE_URL} must be a URL like {form}", field=c.ENV_DATABASE_URL
        )
    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise InvalidInput(
            f"environment variable {c.ENV_DATABASE_URL} is not a valid {form} URL: {reason}", field=c.ENV_DATABASE_URL
        ) from exc
    return url
