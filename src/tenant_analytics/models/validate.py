"""Build-time checks of a model project: unusable files, DAG errors, and constructs that defeat incremental refresh.

The construct list follows Amazon Redshift's "limitations for incremental refresh" of materialized views: a
model using any of them would be recomputed in full on every REFRESH, silently. The PostgreSQL engine derives
the changed groups for exactly the same class of queries (SELECT, FROM, inner JOIN, WHERE, GROUP BY, HAVING over
deterministic expressions), so the same findings tell which models it refreshes in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlglot import exp

from tenant_analytics.models.project import (
    Model,
    ModelError,
    dag_errors,
    is_session_value,
    model_files,
    parse_model,
)

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
    exp.Localtimestamp: "LOCALTIMESTAMP",
    exp.Localtime: "LOCALTIME",
    exp.Rand: "RANDOM",
    exp.Uuid: "GEN_RANDOM_UUID",
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
    "NEXTVAL",
    "CURRVAL",
    "LASTVAL",
    "SETVAL",
    "SETSEED",
    "UUID_GENERATE_V4",
}
# Built-in functions both compilers know that give the same result for the same arguments (time zone fixed to
# UTC); any other function (user-defined, session, catalog) may change a result without any row changing.
_IMMUTABLE: frozenset[type] = frozenset(
    {
        *(exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg),
        *(exp.Case, exp.If, exp.Cast, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least),
        *(exp.Abs, exp.Round, exp.Floor, exp.Ceil, exp.Sign, exp.Pow, exp.Sqrt, exp.Ln, exp.Exp),
        *(exp.Lower, exp.Upper, exp.Trim, exp.Length, exp.Substring, exp.Left, exp.Right, exp.Replace),
        *(exp.SplitPart, exp.StrPosition, exp.RegexpLike),
        *(exp.TimestampTrunc, exp.DateTrunc, exp.Extract),
    }
)
_IMMUTABLE_NAMES = {"AGE"}  # AGE(a, b), which sqlglot has no class for (AGE(a) is mutable)
# Strings PostgreSQL reads as the time of the statement when they become a date or timestamp ('now'::timestamptz,
# TIMESTAMP 'today', or compared with a timestamp column): rejected wherever they appear whole ('buy now' is text).
_TIME_WORDS = re.compile(r"\s*(now|today|tomorrow|yesterday)\s*", re.IGNORECASE)


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
            elif name == "AGE" and len(node.expressions) == 1:
                add("mutable function AGE with one argument (the age at the current date)")
            elif name in _AGGREGATE_NAMES or name.startswith("APPROX"):
                add(f"aggregate {name}")
            elif name not in _IMMUTABLE_NAMES:
                schema = f"{node.parent.this.name}." if isinstance(node.parent, exp.Dot) else ""
                add(f"function {schema}{name} (not a known immutable built-in)")
        elif isinstance(node, exp.Column) and is_session_value(node):
            add(f"mutable function {node.name.upper()}")
        elif isinstance(node, exp.Literal) and node.is_string and _TIME_WORDS.fullmatch(node.this):
            add(f"time-dependent literal '{node.this}'")
        elif isinstance(node, exp.TableSample):
            add("TABLESAMPLE")
        elif isinstance(node.parent, exp.Window) or isinstance(node, exp.Connector) or type(node) in _IMMUTABLE:
            continue  # a window function is reported as such; AND and OR are functions to sqlglot
        elif isinstance(node, exp.AggFunc):
            add(f"aggregate {_function_name(node)}")
        elif isinstance(node, exp.Func):
            add(f"function {_function_name(node)} (not a known immutable built-in)")
    return found


def _function_name(node: exp.Func) -> str:
    """The function's name as PostgreSQL spells it (sqlglot's class names differ: TO_CHAR is TimeToStr)."""
    spelled = re.match(r"[A-Za-z_][\w.]*", node.sql("postgres"))
    return spelled.group().upper() if spelled else node.sql_name()


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
    unparsed: dict[str, Path] = {}
    for path in model_files(root):
        try:
            models.append(parse_model(path))
        except ModelError as exc:
            findings.append(Finding(exc.file, path.stem, exc.construct, exc.message))
            unparsed.setdefault(path.stem, path)
    for error in dag_errors(models, unparsed):
        findings.append(Finding(error.file, Path(error.file).stem, error.construct, error.message))
    for model in models:
        findings.extend(model_findings(model))
    return findings
