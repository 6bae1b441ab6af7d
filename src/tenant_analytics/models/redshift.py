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


# Units shorter than a day: PostgreSQL truncates them keeping the instant's own UTC offset (which matters in the
# repeated hour when summer time ends); from a day up it finds the offset in force at the local start of the bucket.
_SUB_DAY_UNITS = frozenset({"HOUR", "MINUTE", "SECOND", "MILLISECOND", "MILLISECONDS", "MICROSECOND", "MICROSECONDS"})


def redshift_time_bucket(node: exp.Expression) -> exp.Expression:
    """``DATE_TRUNC(unit, ts, zone)`` as Redshift spells it (its DATE_TRUNC takes no zone), meaning what PostgreSQL's
    three-argument form returns: below a day, ``ts`` less the local time elapsed since the local bucket began; from a
    day up, the bucket cut in local time (``ts AT TIME ZONE zone``) and made an instant again (``AT TIME ZONE zone``).
    """
    zone = node.args.get("zone") if isinstance(node, exp.TimestampTrunc) else None
    if zone is None:
        return node
    unit = node.args["unit"]
    local = exp.AtTimeZone(this=node.this.copy(), zone=zone.copy())
    start = exp.TimestampTrunc(this=local.copy(), unit=unit.copy())
    if unit.name.upper() in _SUB_DAY_UNITS:
        elapsed = exp.Paren(this=exp.Sub(this=local, expression=start))
        return exp.Paren(this=exp.Sub(this=node.this.copy(), expression=elapsed))
    return exp.AtTimeZone(this=start, zone=zone.copy())


def model_query_redshift(model: Model) -> str:
    """Return the model's SELECT in Redshift SQL."""
    return model.query.copy().transform(redshift_time_bucket).sql("redshift", comments=False, pretty=True)


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
