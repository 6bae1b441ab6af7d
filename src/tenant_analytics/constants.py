"""Resource names, environment-variable keys and other identifiers shared by CDK, runtime and tests.

One place so that a stack, a handler and a test can never disagree on a name.
"""

from __future__ import annotations

from typing import Final

PROJECT: Final = "tenant-analytics"

# --- environment-variable keys read by settings.py (and set by the CDK stacks) ---
ENV_TENANTS_TABLE: Final = "TENANTS_TABLE"
ENV_CURSORS_TABLE: Final = "CURSORS_TABLE"
ENV_RAW_BUCKET: Final = "RAW_BUCKET"
ENV_CURATED_BUCKET: Final = "CURATED_BUCKET"
ENV_ARTIFACTS_BUCKET: Final = "ARTIFACTS_BUCKET"
ENV_STORES: Final = "STORES"  # JSON: store id -> connection description
ENV_CLUSTER_BUDGETS: Final = "CLUSTER_BUDGETS"  # JSON: placement budgets
ENV_TRANSFORM_JOB: Final = "TRANSFORM_JOB_NAME"
ENV_HOME: Final = "TENANT_ANALYTICS_HOME"
ENV_DATABASE_URL: Final = "DATABASE_URL"
ENV_SOURCE_TIMEOUT: Final = "SOURCE_TIMEOUT_SECONDS"
ENV_STATE_MACHINE_ARN: Final = "STATE_MACHINE_ARN"
ENV_HISTORY_COMPACT_AFTER_FILES: Final = "HISTORY_COMPACT_AFTER_FILES"  # see Settings.history_compact_after_files
# change-stream aggregator (read by cdc/settings.py)
ENV_CDC_FAILURE_QUEUE_URL: Final = "CDC_FAILURE_QUEUE_URL"  # on-failure SQS queue for rejected records
ENV_CDC_STORE_ID: Final = "CDC_STORE_ID"  # which store of STORES holds the realtime bins
ENV_CDC_SOURCE_FORMAT: Final = "CDC_SOURCE_FORMAT"  # auto | maxwell | debezium
ENV_CDC_ALLOWED_LATENESS: Final = "CDC_ALLOWED_LATENESS_SECONDS"
ENV_CDC_MAX_FUTURE: Final = "CDC_MAX_FUTURE_SECONDS"
ENV_CDC_DEDUPE_MARGIN: Final = "CDC_DEDUPE_MARGIN_SECONDS"
ENV_CDC_METRICS_CONFIG: Final = "CDC_METRICS_CONFIG"  # path of a metric-mapping JSON replacing the shipped default
ENV_AUTH_ISSUER: Final = "AUTH_ISSUER"
ENV_AUTH_AUDIENCE: Final = "AUTH_AUDIENCE"
ENV_AUTH_JWKS_URL: Final = "AUTH_JWKS_URL"
ENV_AUTH_JWKS: Final = "AUTH_JWKS"  # inline JWKS, local development only

# --- default resource names (prefixed per deployment stage by the stacks) ---
TENANTS_TABLE: Final = "tenant-analytics-tenants"
CURSORS_TABLE: Final = "tenant-analytics-cursors"
IDEMPOTENCY_TABLE: Final = "tenant-analytics-idempotency"
CACHE_TABLE: Final = "tenant-analytics-query-cache"
RAW_BUCKET: Final = "tenant-analytics-raw"
CURATED_BUCKET: Final = "tenant-analytics-curated"
ARTIFACTS_BUCKET: Final = "tenant-analytics-artifacts"
CHANGE_STREAM: Final = "tenant-analytics-changes"
SOURCE_SECRETS_PREFIX: Final = "tenant-analytics/sources/"  # tenants' source API credentials (Secrets Manager)
CDC_FAILURE_QUEUE: Final = "tenant-analytics-cdc-failures"  # local name; the stack names its queue itself
TRANSFORM_JOB: Final = "tenant-analytics-transform"
HOURLY_STATE_MACHINE: Final = "tenant-analytics-hourly"

# --- Lambda functions: logical name -> handler (module path inside the Lambda asset) ---
LAMBDA_HANDLERS: Final[dict[str, str]] = {
    "start": "lambdas.start.handler.lambda_handler",
    "plan": "lambdas.plan.handler.lambda_handler",
    "export": "lambdas.export.handler.lambda_handler",
    "load": "lambdas.load.handler.lambda_handler",
    "publish": "lambdas.publish.handler.lambda_handler",
    "collect": "lambdas.collect.handler.lambda_handler",
    "refresh": "lambdas.refresh.handler.lambda_handler",
    "setup": "lambdas.setup.handler.lambda_handler",
    "query": "lambdas.query.handler.lambda_handler",
    "authorizer": "lambdas.authorizer.handler.lambda_handler",
    "aggregator": "lambdas.aggregator.handler.lambda_handler",
}


def function_name(logical: str) -> str:
    """Return the deployed name of a Lambda function from its logical name."""
    return f"{PROJECT}-{logical}"


# --- data layout in S3 ---
RAW_SUPPORT_PREFIX: Final = "raw/support"  # <stream>/tenant_id=<id>/page-<seq>.jsonl
QUARANTINE_SUPPORT_PREFIX: Final = "quarantine/support"  # rejected records of each stream, each with its reason
MANIFESTS_PREFIX: Final = "manifests"
CURATED_SUPPORT_PREFIX: Final = "curated/support"  # run=<id>/batch=<id>/<table>/tenant_id=<id>/*.csv
HISTORY_SUPPORT_PREFIX: Final = "curated/support/history"  # <stream>/tenant_id=<id>/batch=<id>/*.parquet
GLUE_SCRIPTS_PREFIX: Final = "glue-scripts"

# --- state machine (hourly pipeline) ASL placeholders, filled by CDK and by the local runner ---
ASL_HOURLY: Final = "hourly_pipeline.asl.json"

# --- infrastructure names ---
# Env-var keys set by the CDK stacks beyond the ones settings.py reads today.
ENV_IDEMPOTENCY_TABLE: Final = "IDEMPOTENCY_TABLE"
ENV_CACHE_TABLE: Final = "QUERY_CACHE_TABLE"
# Table keys (the stacks create the tables with these attributes).
TENANTS_TABLE_KEY: Final = "tenant_id"
CURSORS_TABLE_KEY: Final = "tenant_id"
CURSORS_TABLE_SORT_KEY: Final = "stream"
IDEMPOTENCY_TABLE_KEY: Final = "id"  # Powertools idempotency layout
IDEMPOTENCY_TTL_ATTRIBUTE: Final = "expiration"
CACHE_TABLE_KEY: Final = "cache_key"
CACHE_TTL_ATTRIBUTE: Final = "expires_at"
# Analytics stores as named in the STORES env var.
AURORA_STORE_ID: Final = "aurora-1"
OPERATIONAL_STORE_ID: Final = AURORA_STORE_ID  # where Redshift tenants' top-level metrics are copied for reporting
OPERATIONAL_SCHEMA: Final = "operational"
OPERATIONAL_MODELS: Final[tuple[str, ...]] = ("tenant_daily",)  # models copied, by name
# A model without a successful refresh for this long stops holding back its inputs' change images (per store).
STALE_MODEL_AFTER_HOURS: Final = 24
# Where Redshift UNLOADs the operational export in the curated bucket: <prefix><model>/run=<id>/ (expired after days).
OPERATIONAL_EXPORT_PREFIX: Final = "exports/operational/"
REDSHIFT_STORE_ID: Final = "redshift-1"
# The database user the query function logs in as on Aurora, with an IAM token: a member of the query role only.
QUERY_LOGIN: Final = "ta_query_login"
ANALYTICS_DATABASE: Final = "analytics"
REDSHIFT_NAMESPACE: Final = "tenant-analytics-prod"
REDSHIFT_WORKGROUP: Final = "tenant-analytics-prod"
ANALYST_NAMESPACE: Final = "tenant-analytics-analysts"
ANALYST_WORKGROUP: Final = "tenant-analytics-analysts"
EMR_APPLICATION: Final = "tenant-analytics-spark"
# Custom CloudWatch metrics published by the pipeline.
METRICS_NAMESPACE: Final = "TenantAnalytics"
FRESHNESS_METRIC: Final = "FreshnessLagSeconds"
FAILED_TENANTS_METRIC: Final = "TenantsFailed"
MODEL_REFRESH_MINUTES: Final = 5  # the scheduled refresh's period
MODELS_REFRESHED_METRIC: Final = "ModelsRefreshed"  # per refresh run; the models-freshness alarm wants it steady
MODEL_REFRESH_FAILURES_METRIC: Final = "ModelRefreshFailures"  # stores whose refresh failed
PIPELINE_SERVICE: Final = "pipeline"  # Powertools service name of the pipeline functions (a metric dimension)
# S3 prefixes written by Firehose (change stream copy) and the Glue driver.
RAW_CDC_PREFIX: Final = "raw/cdc/"
RAW_CDC_ERRORS_PREFIX: Final = "raw/cdc-errors/"
GLUE_TEMP_PREFIX: Final = "glue-temp/"
# --- query API: data_version snapshots, usage plans, API keys ---
ENV_DATA_VERSION_MAX_AGE_MS: Final = "DATA_VERSION_MAX_AGE_MS"  # how old a cached tenant data_version may be
ENV_USAGE_PLAN_IDS: Final = "USAGE_PLAN_IDS"  # JSON: usage plan name -> API Gateway usage plan id
ENV_API_KEYS_REQUIRED: Final = "API_KEYS_REQUIRED"  # "true": the authorizer returns the tenant's API key
# Which usage plan a tenant's API key is attached to, by the tenant's tier.
USAGE_PLAN_BY_TIER: Final[dict[str, str]] = {"aurora": "standard", "redshift": "large"}
API_KEY_NAME_PREFIX: Final = "tenant-analytics-tenant-"  # + tenant id
AUTHORIZER_CACHE_SECONDS: Final = 300  # API Gateway caches an authorizer's decision per token this long
