"""Incremental models: SQL files with ``ref``/``source`` inputs, compiled to Redshift materialized views or
maintained as PostgreSQL summary tables that recompute only the groups touched by changed rows."""

from tenant_analytics.models.postgres import PostgresModelEngine, RefreshRecord, model_query_postgres
from tenant_analytics.models.project import Model, ModelError, ModelProject, load_project, parse_model
from tenant_analytics.models.redshift import compile_redshift, compile_redshift_model, refresh_statements_redshift
from tenant_analytics.models.sources import SOURCES, Source
from tenant_analytics.models.validate import Finding, incremental_blockers, validate_project

__all__ = [
    "SOURCES",
    "Finding",
    "Model",
    "ModelError",
    "ModelProject",
    "PostgresModelEngine",
    "RefreshRecord",
    "Source",
    "compile_redshift",
    "compile_redshift_model",
    "incremental_blockers",
    "load_project",
    "model_query_postgres",
    "parse_model",
    "refresh_statements_redshift",
    "validate_project",
]
