"""Planner: a validated semantic query -> one SQL statement for the tenant's store, values as parameters.

SQL is built as sqlglot expressions from catalog identifiers; caller values only ever become placeholders.
The tenant predicate is always added, on top of the store's row-level security.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlglot import exp

from tenant_analytics.errors import InvalidQuery
from tenant_analytics.query.catalog import CATALOG, Dataset, Dimension, Measure
from tenant_analytics.query.contract import Query

_COMPARISONS: dict[str, type[exp.Binary]] = {
    "eq": exp.EQ,
    "ne": exp.NEQ,
    "gt": exp.GT,
    "gte": exp.GTE,
    "lt": exp.LT,
    "lte": exp.LTE,
}


@dataclass(frozen=True)
class Plan:
    """A statement ready to run: SQL text, its parameters, the answer's column names and the answering table."""

    sql: str
    params: list[Any]
    columns: list[str]
    answered_by: str
    time_granularity: str | None


def _measure_expr(measure: Measure, metric_column: str | None) -> exp.Expr:
    if measure.metric is not None and metric_column is not None:
        matches = exp.column(metric_column).eq(exp.Literal.string(measure.metric))
        value = exp.Case().when(matches, exp.column(measure.column or "")).else_(exp.Literal.number(0))
        return exp.Sum(this=value)
    if measure.aggregation == "count":
        return exp.Count(this=exp.Star())
    column = exp.column(measure.column or "")
    if measure.aggregation == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[column]))
    return {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[measure.aggregation](this=column)


def resolve_dataset(query: Query) -> Dataset:
    dataset = CATALOG.get(query.dataset)
    if dataset is None:
        raise InvalidQuery(f"unknown dataset '{query.dataset}'; known datasets: {sorted(CATALOG)}", field="dataset")
    return dataset


def plan_query(query: Query, tenant_id: str, dialect: str = "postgres") -> Plan:
    """Validate ``query`` against the catalog and return the statement that answers it for ``tenant_id``.

    Placeholders are ``%s`` for PostgreSQL (psycopg) and ``:p1, :p2, ...`` for Redshift (the Data API).
    """
    ds = resolve_dataset(query)
    params: list[Any] = []

    def bind(value: Any) -> exp.Expr:
        params.append(value)
        if dialect == "redshift":
            return exp.Var(this=f":p{len(params)}")
        return exp.Placeholder()

    selects: list[exp.Expr] = []
    group: list[exp.Expr] = []
    columns: list[str] = []
    granularity: str | None = None
    # Bound first: placeholders are numbered in the order they appear in the statement, tenant first.
    tenant_predicate = exp.EQ(this=exp.column(ds.tenant_column), expression=bind(tenant_id))
    where: list[exp.Expr] = []

    if query.time is not None:
        td = ds.time_dimensions.get(query.time.dimension)
        if td is None:
            raise InvalidQuery(
                f"unknown time dimension '{query.time.dimension}' in dataset '{ds.name}'; "
                f"allowed: {sorted(ds.time_dimensions)}",
                field="time.dimension",
            )
        if query.time.granularity is not None:
            if query.time.granularity not in td.granularities:
                raise InvalidQuery(
                    f"granularity '{query.time.granularity}' is not available for '{td.name}'; "
                    f"allowed: {list(td.granularities)}",
                    field="time.granularity",
                )
            granularity = query.time.granularity
            if granularity == "10s":  # the finest grain: a 10-second bin is its own bucket
                bucket: exp.Expr = exp.column(td.column)
            else:
                bucket = exp.func("date_trunc", exp.Literal.string(granularity), exp.column(td.column))
            name = f"{td.name}.{granularity}"
            selects.append(exp.alias_(bucket, name, quoted=True))
            group.append(bucket)
            columns.append(name)
        lo, hi = query.time.from_, query.time.to
        if lo is not None and hi is not None and lo >= hi:
            raise InvalidQuery(
                f"time range is empty or inverted: 'from' {lo.isoformat()} is not before 'to' {hi.isoformat()}",
                field="time.from",
            )
        if lo is not None:
            where.append(exp.GTE(this=exp.column(td.column), expression=bind(lo)))
        if hi is not None:
            where.append(exp.LT(this=exp.column(td.column), expression=bind(hi)))

    for i, name in enumerate(query.dimensions):
        dim = ds.dimensions.get(name)
        if dim is None:
            raise InvalidQuery(
                f"unknown dimension '{name}' in dataset '{ds.name}'; allowed: {sorted(ds.dimensions)}",
                field=f"dimensions[{i}]",
            )
        selects.append(exp.alias_(_dimension_expr(dim), name, quoted=True))
        group.append(_dimension_expr(dim))
        columns.append(name)

    for i, name in enumerate(query.measures):
        measure = ds.measures.get(name)
        if measure is None:
            raise InvalidQuery(
                f"unknown measure '{name}' in dataset '{ds.name}'; allowed: {sorted(ds.measures)}",
                field=f"measures[{i}]",
            )
        selects.append(exp.alias_(_measure_expr(measure, ds.metric_column), name, quoted=True))
        columns.append(name)

    for i, flt in enumerate(query.filters):
        dim = ds.dimensions.get(flt.dimension)
        if dim is None:
            raise InvalidQuery(
                f"unknown filter dimension '{flt.dimension}'; allowed: {sorted(ds.dimensions)}",
                field=f"filters[{i}].dimension",
            )
        where.append(_filter_expr(_dimension_expr(dim), flt.op, flt.values, bind, f"filters[{i}]"))
    if ds.metric_column is not None:  # only the rows of the requested metrics (names from the catalog)
        wanted = [exp.Literal.string(ds.measures[m].metric or m) for m in query.measures]
        where.append(exp.In(this=exp.column(ds.metric_column), expressions=wanted))

    order: list[exp.Ordered] = []
    for i, o in enumerate(query.order):
        if o.by not in columns:
            raise InvalidQuery(
                f"cannot order by '{o.by}': not among the answer's columns {columns}", field=f"order[{i}].by"
            )
        order.append(exp.Ordered(this=exp.column(o.by, quoted=True), desc=o.desc))
    if not order and granularity is not None:
        order.append(exp.Ordered(this=exp.column(columns[0], quoted=True), desc=False))

    condition: exp.Expr = tenant_predicate
    for w in where:
        condition = exp.and_(condition, w)
    statement = exp.select(*selects).from_(exp.table_(ds.table, db=ds.schema)).where(condition)
    if group:
        statement = statement.group_by(*group)
    if order:
        statement = statement.order_by(*order)
    statement = statement.limit(bind(query.limit + 1))  # one more than allowed: detects an over-limit result
    return Plan(
        sql=statement.sql(dialect=dialect),
        params=params,
        columns=columns,
        answered_by=ds.table,
        time_granularity=granularity,
    )


def _dimension_expr(dim: Dimension) -> exp.Expr:
    if dim.json_key is not None:
        return exp.JSONExtractScalar(this=exp.column(dim.column), expression=exp.Literal.string(dim.json_key))
    return exp.column(dim.column)


def _filter_expr(column: exp.Expr, op: str, values: list[Any], bind: Any, field: str) -> exp.Expr:
    if op == "is_null":
        if values:
            raise InvalidQuery("operator 'is_null' takes no values", field=f"{field}.values")
        return exp.Is(this=column, expression=exp.Null())
    if op in ("in", "not_in"):
        if not values:
            raise InvalidQuery(f"operator '{op}' needs at least one value", field=f"{field}.values")
        inside = exp.In(this=column, expressions=[bind(v) for v in values])
        return exp.Not(this=inside) if op == "not_in" else inside
    if len(values) != 1:
        raise InvalidQuery(f"operator '{op}' needs exactly one value, got {len(values)}", field=f"{field}.values")
    return _COMPARISONS[op](this=column, expression=bind(values[0]))


def format_cell(value: Any, granularity: str | None, is_time: bool) -> Any:
    """JSON-ready cell: time buckets as ISO text (a date for day and coarser), numbers as numbers."""
    if is_time and isinstance(value, str):  # the Data API returns timestamps as text
        value = datetime.fromisoformat(value.replace(" ", "T"))
    if is_time and isinstance(value, datetime):
        if granularity in ("day", "week", "month"):
            return value.date().isoformat()
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
