"""Redshift compilation: each model becomes a native materialized view (AUTO REFRESH NO) refreshed in DAG order.

Row-level security sits on the views the query role reads, because Redshift cannot build a materialized view
on an RLS-protected table: base tables stay reachable by the ETL role only.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from tenant_analytics.models.project import MODEL_SCHEMA, Model, ModelError, ModelProject
from tenant_analytics.models.validate import incremental_blockers
from tenant_analytics.stores.roles import QUERY_ROLE

RLS_POLICY = "models_tenant_isolation"
TENANT_SETTING = "app.tenant_id"
# The schema of the views, readable by the query role, and the policy attached to every view for that role.
MODEL_SCHEMA_SQL: tuple[str, ...] = (
    f"CREATE SCHEMA IF NOT EXISTS {MODEL_SCHEMA}",
    f"GRANT USAGE ON SCHEMA {MODEL_SCHEMA} TO ROLE {QUERY_ROLE}",
)
POLICY_SQL = (
    f"CREATE RLS POLICY {RLS_POLICY} WITH (tenant_id VARCHAR(63)) "
    f"USING (tenant_id = current_setting('{TENANT_SETTING}', FALSE))"
)


def _ident(name: str) -> str:
    return exp.to_identifier(name).sql("redshift")


def view_name(model: Model) -> str:
    """Return the qualified materialized view name of ``model``."""
    return exp.table_(model.name, db=MODEL_SCHEMA).sql("redshift")


def model_query_redshift(model: Model) -> str:
    """Return the model's SELECT in Redshift SQL."""
    return model.query.sql("redshift", comments=False, pretty=True)


def compile_redshift_model(model: Model) -> list[str]:
    """Return the DDL of one model: the materialized view, RLS attached for the query role, and its grant.

    Raises ModelError when the model uses a construct that would make Redshift recompute it in full.
    """
    blockers = incremental_blockers(model.query)
    if blockers:
        raise ModelError(
            model.path,
            f"model '{model.name}' uses {', '.join(blockers)}; Redshift cannot refresh it incrementally",
            construct=blockers[0],
        )
    view = view_name(model)
    sortkey = ", ".join(_ident(c) for c in model.grain)
    return [
        f"CREATE MATERIALIZED VIEW {view} DISTKEY ({_ident('tenant_id')}) SORTKEY ({sortkey}) AUTO REFRESH NO AS "
        f"{model_query_redshift(model)}",
        f"ATTACH RLS POLICY {RLS_POLICY} ON {view} TO ROLE {QUERY_ROLE}",
        f"ALTER MATERIALIZED VIEW {view} ROW LEVEL SECURITY ON",
        f"GRANT SELECT ON {view} TO ROLE {QUERY_ROLE}",
    ]


def compile_redshift(project: ModelProject) -> list[str]:
    """Return the Redshift DDL of the whole project, in dependency order.

    The schema and the tenant policy come first; then every model's view, policy attachment and grant.
    Raises ModelError naming the first model that cannot be refreshed incrementally.
    """
    statements = [*MODEL_SCHEMA_SQL, POLICY_SQL]
    for model in project.models:
        statements += compile_redshift_model(model)
    return statements


def refresh_statements_redshift(project: ModelProject, models: Iterable[str] | None = None) -> list[str]:
    """Return ``REFRESH MATERIALIZED VIEW`` statements for ``models`` (default: all), parents before children."""
    wanted = set(models) if models is not None else None
    if wanted is not None:
        for name in wanted:
            project.get(name)  # raises on an unknown name
    return [f"REFRESH MATERIALIZED VIEW {view_name(m)}" for m in project.models if wanted is None or m.name in wanted]
