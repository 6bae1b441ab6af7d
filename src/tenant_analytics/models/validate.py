"""Build-time checks of a model project: unusable files, DAG errors, and constructs that defeat incremental refresh.

The construct list follows Amazon Redshift's "limitations for incremental refresh" of materialized views: a
model using any of them would be recomputed in full on every REFRESH, silently. The PostgreSQL engine derives
the changed groups for exactly the same class of queries (SELECT, FROM, inner JOIN, WHERE, GROUP BY, HAVING over
deterministic expressions), so the same findings tell which models it refreshes in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from tenant_analytics.models.project import Model, ModelError, model_files, order_models, parse_model

# Aggregates Redshift cannot maintain incrementally (and which are not decomposable over groups of changes).
_AGGREGATES: dict[type, str] = {
    exp.Median: "MEDIAN",
    exp.PercentileCont: "PERCENTILE_CONT",
    exp.PercentileDisc: "PERCENTILE_DISC",
    exp.GroupConcat: "LISTAGG",
    exp.ArrayAgg: "ARRAY_AGG",
    exp.Stddev: "STDDEV",
    exp.StddevSamp: "STDDEV_SAMP",
    exp.StddevPop: "STDDEV_POP",
    exp.Variance: "VARIANCE",
    exp.VariancePop: "VAR_POP",
    exp.ApproxDistinct: "APPROXIMATE COUNT",
    exp.ApproxQuantile: "APPROXIMATE PERCENTILE",
    exp.BitwiseAndAgg: "BIT_AND",
    exp.BitwiseOrAgg: "BIT_OR",
    exp.LogicalAnd: "BOOL_AND",
    exp.LogicalOr: "BOOL_OR",
}
_AGGREGATE_NAMES = {"MEDIAN", "PERCENTILE_CONT", "PERCENTILE_DISC", "LISTAGG", "STRING_AGG", "APPROXIMATE"}
_MUTABLE: dict[type, str] = {
    exp.CurrentTimestamp: "CURRENT_TIMESTAMP",
    exp.CurrentDate: "CURRENT_DATE",
    exp.CurrentTime: "CURRENT_TIME",
    exp.Rand: "RANDOM",
}
_MUTABLE_NAMES = {
    "NOW",
    "GETDATE",
    "SYSDATE",
    "CLOCK_TIMESTAMP",
    "STATEMENT_TIMESTAMP",
    "TRANSACTION_TIMESTAMP",
    "TIMEOFDAY",
    "LOCALTIMESTAMP",
    "RANDOM",
    "GEN_RANDOM_UUID",
    "CURRENT_SETTING",
    "TXID_CURRENT",
}


@dataclass(frozen=True)
class Finding:
    """One problem of one model file; ``construct`` is the offending SQL construct or the kind of error."""

    file: str
    model: str
    construct: str
    message: str


def incremental_blockers(query: exp.Expression) -> list[str]:
    """Return the constructs of ``query`` that rule out incremental refresh, in the order they occur (unique)."""
    found: list[str] = []

    def add(construct: str) -> None:
        if construct not in found:
            found.append(construct)

    for node in query.walk():
        if isinstance(node, exp.Join) and node.side in {"LEFT", "RIGHT", "FULL"}:
            add(f"{node.side} OUTER JOIN")
        elif isinstance(node, exp.Join) and node.kind in {"CROSS"}:
            add("CROSS JOIN")
        elif isinstance(node, exp.SetOperation):
            add(f"set operation {type(node).__name__.upper()}")
        elif isinstance(node, exp.Window):
            add("window function")
        elif isinstance(node, exp.Distinct) and isinstance(node.parent, exp.AggFunc):
            add(f"DISTINCT aggregate {node.parent.sql_name()}(DISTINCT ...)")
        elif isinstance(node, exp.Distinct):
            add("SELECT DISTINCT")
        elif isinstance(node, exp.Subquery | exp.Exists) or (
            isinstance(node, exp.Select) and node is not query and not isinstance(node.parent, exp.Subquery)
        ):
            add("subquery")
        elif isinstance(node, exp.With):
            add("WITH (common table expression)")
        elif isinstance(node, exp.Order) and node.parent is query:
            add("ORDER BY")
        elif isinstance(node, exp.Limit | exp.Offset | exp.Fetch):
            add("LIMIT/OFFSET")
        elif type(node) in _AGGREGATES:
            add(f"aggregate {_AGGREGATES[type(node)]}")
        elif type(node) in _MUTABLE:
            add(f"mutable function {_MUTABLE[type(node)]}")
        elif isinstance(node, exp.Anonymous):
            name = node.name.upper()
            if name in _MUTABLE_NAMES:
                add(f"mutable function {name}")
            elif name in _AGGREGATE_NAMES or name.startswith("APPROX"):
                add(f"aggregate {name}")
    return found


def model_findings(model: Model) -> list[Finding]:
    """Return one finding per construct of ``model`` that rules out incremental refresh."""
    return [
        Finding(
            file=str(model.path),
            model=model.name,
            construct=construct,
            message=(
                f"{model.path}: model '{model.name}' uses {construct}; Redshift would recompute the whole "
                f"materialized view on every refresh (and the PostgreSQL engine refreshes it in full)"
            ),
        )
        for construct in incremental_blockers(model.query)
    ]


def validate_project(directory: Path | None = None) -> list[Finding]:
    """Check every model file under ``directory`` (default: the packaged models).

    Returns every finding: files that do not parse or break the grain rule, unknown refs and cycles, and
    constructs that rule out incremental refresh. An empty list means the project builds.
    """
    from tenant_analytics.models.project import PACKAGED_SQL

    root = directory or PACKAGED_SQL
    findings: list[Finding] = []
    models: list[Model] = []
    for path in model_files(root):
        try:
            models.append(parse_model(path))
        except ModelError as exc:
            findings.append(Finding(exc.file, path.stem, exc.construct, exc.message))
    try:
        order_models(models)
    except ModelError as exc:
        findings.append(Finding(exc.file, Path(exc.file).stem, exc.construct, exc.message))
    for model in models:
        findings.extend(model_findings(model))
    return findings
