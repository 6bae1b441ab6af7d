"""Planner: a validated semantic query -> one SQL statement for the tenant's store, values as parameters.

SQL is built as sqlglot expressions from catalog identifiers; caller values only ever become placeholders.
The tenant predicate is always added, on top of the store's row-level security.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlglot
from sqlglot import exp

from tenant_analytics.constants import OPERATIONAL_MODELS, OPERATIONAL_SCHEMA
from tenant_analytics.errors import InvalidQuery
from tenant_analytics.query.catalog import CATALOG, Dataset, Dimension, Measure, Rollup, TimeDimension
from tenant_analytics.query.contract import Query

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TEXT_VALUE = 1000  # characters of one text filter value

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


# Which requested granularities a rollup's time grain can be rolled up to exactly (UTC buckets).
_DERIVABLE: dict[str, frozenset[str]] = {
    "hour": frozenset({"hour", "day", "week", "month"}),
    "day": frozenset({"day", "week", "month"}),
    "week": frozenset({"week"}),
    "month": frozenset({"month"}),
}


def _aligned(moment: datetime, grain: str) -> bool:
    """Whether ``moment`` starts a ``grain`` bucket (UTC), so a range from or to it cuts no bucket in two."""
    t = moment.astimezone(UTC)
    if (t.minute, t.second, t.microsecond) != (0, 0, 0):
        return False
    if grain == "hour":
        return True
    if t.hour != 0:
        return False
    if grain == "day":
        return True
    if grain == "week":
        return t.weekday() == 0
    return grain == "month" and t.day == 1


def _additive_parts(ds: Dataset, name: str) -> tuple[str, ...]:
    """The additive measures a measure is computed from (itself, or a ratio's two parts); () if none."""
    measure = ds.measures[name]
    if measure.ratio is not None:
        return measure.ratio
    return (name,) if measure.additive and measure.aggregation in ("count", "sum") else ()


def choose_rollup(ds: Dataset, query: Query) -> Rollup | None:
    """The first (smallest) rollup of ``ds`` that answers ``query`` exactly, or None for the base table."""
    for rollup in ds.rollups:
        if any(d not in rollup.dimensions for d in query.dimensions):
            continue
        if any(f.dimension not in rollup.dimensions for f in query.filters):
            continue
        parts = [p for m in query.measures for p in (_additive_parts(ds, m) or ("",))]
        if any(p not in rollup.measures for p in parts):
            continue
        if query.time is not None:
            if query.time.granularity is not None and query.time.granularity not in _DERIVABLE[rollup.granularity]:
                continue
            bounds = [b for b in (query.time.from_, query.time.to) if b is not None]
            if not all(_aligned(b, rollup.granularity) for b in bounds):
                continue
        return rollup
    return None


def _count_expr(measure: Measure) -> exp.Expr:
    if measure.condition is None:
        return exp.Count(this=exp.Star())
    matches = sqlglot.parse_one(measure.condition, read="postgres")  # catalog text, never caller input
    counted = exp.Case().when(matches, exp.Literal.number(1)).else_(exp.Literal.number(0))
    return _whole(exp.func("coalesce", exp.Sum(this=counted), exp.Literal.number(0)))


def _whole(value: exp.Expr) -> exp.Expr:
    """A count as BIGINT (a SUM of bigints is numeric in PostgreSQL), so answers carry integers."""
    return exp.Cast(this=value, to=exp.DataType.build("bigint"))


def _base_measure_expr(ds: Dataset, measure: Measure) -> exp.Expr:
    if measure.metric is not None and ds.metric_column is not None:
        matches = exp.column(ds.metric_column).eq(exp.Literal.string(measure.metric))
        value = exp.Case().when(matches, exp.column(measure.column or "")).else_(exp.Literal.number(0))
        return exp.Sum(this=value)
    if measure.aggregation == "count":
        return _count_expr(measure)
    column = exp.column(measure.column or "")
    if measure.aggregation == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[column]))
    return {"sum": exp.Sum, "min": exp.Min, "max": exp.Max}[measure.aggregation](this=column)


def _measure_expr(ds: Dataset, measure: Measure, rollup: Rollup | None) -> exp.Expr:
    """The aggregate answering ``measure``: over the base table, or a sum of a rollup's column."""
    if measure.ratio is not None:
        numerator, denominator = (_measure_expr(ds, ds.measures[m], rollup) for m in measure.ratio)
        as_float = exp.Cast(this=numerator, to=exp.DataType.build("double precision"))
        return exp.Div(this=as_float, expression=exp.func("nullif", denominator, exp.Literal.number(0)))
    if rollup is None:
        return _base_measure_expr(ds, measure)
    column = exp.column(rollup.measures[measure.name])
    total = exp.func("coalesce", exp.Sum(this=column), exp.Literal.number(0))
    return _whole(total) if measure.aggregation == "count" else total


def resolve_dataset(query: Query) -> Dataset:
    dataset = CATALOG.get(query.dataset)
    if dataset is None:
        raise InvalidQuery(f"unknown dataset '{query.dataset}'; known datasets: {sorted(CATALOG)}", field="dataset")
    return dataset


def _validate_members(ds: Dataset, query: Query) -> TimeDimension | None:
    """Raise InvalidQuery naming the first unknown member or impossible time spec; return the time dimension."""
    td: TimeDimension | None = None
    if query.time is not None:
        td = ds.time_dimensions.get(query.time.dimension)
        if td is None:
            raise InvalidQuery(
                f"unknown time dimension '{query.time.dimension}' in dataset '{ds.name}'; "
                f"allowed: {sorted(ds.time_dimensions)}",
                field="time.dimension",
            )
        if query.time.granularity is not None and query.time.granularity not in td.granularities:
            raise InvalidQuery(
                f"granularity '{query.time.granularity}' is not available for '{td.name}'; "
                f"allowed: {list(td.granularities)}",
                field="time.granularity",
            )
        lo, hi = query.time.from_, query.time.to
        if lo is not None and hi is not None and lo >= hi:
            raise InvalidQuery(
                f"time range is empty or inverted: 'from' {lo.isoformat()} is not before 'to' {hi.isoformat()}",
                field="time.from",
            )
    for listed, names in (("measures", query.measures), ("dimensions", query.dimensions)):
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidQuery(f"'{name}' is listed twice in '{listed}'", field=f"{listed}[{i}]")
    for i, name in enumerate(query.dimensions):
        if name not in ds.dimensions:
            raise InvalidQuery(
                f"unknown dimension '{name}' in dataset '{ds.name}'; allowed: {sorted(ds.dimensions)}",
                field=f"dimensions[{i}]",
            )
    for i, name in enumerate(query.measures):
        if name not in ds.measures:
            raise InvalidQuery(
                f"unknown measure '{name}' in dataset '{ds.name}'; allowed: {sorted(ds.measures)}",
                field=f"measures[{i}]",
            )
    for i, flt in enumerate(query.filters):
        if flt.dimension not in ds.dimensions:
            raise InvalidQuery(
                f"unknown filter dimension '{flt.dimension}'; allowed: {sorted(ds.dimensions)}",
                field=f"filters[{i}].dimension",
            )
    return td


def plan_query(
    query: Query, tenant_id: str, dialect: str = "postgres", *, use_rollups: bool = True, operational: bool = False
) -> Plan:
    """Validate ``query`` against the catalog and return the statement that answers it for ``tenant_id``.

    The statement reads the smallest rollup that answers the query exactly, else the dataset's base table
    (always the base table with ``use_rollups=False``). With ``operational``, a rollup copied to the operational
    store is read from its copy there (``operational.<model>``). Placeholders are ``%s`` for PostgreSQL
    (psycopg) and ``:p1, :p2, ...`` for Redshift (the Data API).
    """
    ds = resolve_dataset(query)
    td = _validate_members(ds, query)
    rollup = choose_rollup(ds, query) if use_rollups else None
    params: list[Any] = []

    def bind(value: Any) -> exp.Expr:
        params.append(value)
        if dialect == "redshift":
            return exp.Var(this=f":p{len(params)}")
        return exp.Placeholder()

    def dimension(name: str) -> exp.Expr:
        if rollup is not None:
            return exp.column(rollup.dimensions[name])
        return _dimension_expr(ds.dimensions[name])

    selects: list[exp.Expr] = []
    group: list[exp.Expr] = []
    columns: list[str] = []
    granularity: str | None = None
    # Bound first: placeholders are numbered in the order they appear in the statement, tenant first.
    where: list[exp.Expr] = [exp.EQ(this=exp.column(ds.tenant_column), expression=bind(tenant_id))]
    if rollup is None and ds.base_filter is not None:
        where.append(sqlglot.parse_one(ds.base_filter, read="postgres"))  # catalog text, never caller input

    if query.time is not None and td is not None:
        time_column = exp.column(rollup.time_column if rollup is not None else td.column)
        if query.time.granularity is not None:
            granularity = query.time.granularity
            if granularity == "10s" or (rollup is not None and granularity == rollup.granularity):
                bucket: exp.Expr = time_column  # already the bucket's start
            else:
                bucket = exp.func("date_trunc", exp.Literal.string(granularity), time_column)
            name = f"{td.name}.{granularity}"
            selects.append(exp.alias_(bucket, name, quoted=True))
            group.append(bucket)
            columns.append(name)
        if query.time.from_ is not None:
            where.append(exp.GTE(this=time_column, expression=bind(query.time.from_)))
        if query.time.to is not None:
            where.append(exp.LT(this=time_column, expression=bind(query.time.to)))

    for name in query.dimensions:
        selects.append(exp.alias_(dimension(name), name, quoted=True))
        group.append(dimension(name))
        columns.append(name)
    for name in query.measures:
        selects.append(exp.alias_(_measure_expr(ds, ds.measures[name], rollup), name, quoted=True))
        columns.append(name)
    for i, flt in enumerate(query.filters):
        field = f"filters[{i}]"
        for j, value in enumerate(flt.values):
            _check_value(ds.dimensions[flt.dimension], value, f"{field}.values[{j}]")
        where.append(_filter_expr(dimension(flt.dimension), flt.op, flt.values, bind, field))
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

    condition = where[0]
    for w in where[1:]:
        condition = exp.and_(condition, w)
    if rollup is None:
        source = exp.table_(ds.table, db=ds.schema)
    else:
        copied = operational and rollup.name in OPERATIONAL_MODELS
        source = exp.table_(rollup.name, db=OPERATIONAL_SCHEMA if copied else rollup.schema)
    statement = exp.select(*selects).from_(source).where(condition)
    if group:
        statement = statement.group_by(*group)
    if order:
        statement = statement.order_by(*order)
    statement = statement.limit(bind(query.limit + 1))  # one more than allowed: detects an over-limit result
    return Plan(
        sql=statement.sql(dialect=dialect),
        params=params,
        columns=columns,
        answered_by=rollup.name if rollup is not None else ds.table,
        time_granularity=granularity,
    )


def _dimension_expr(dim: Dimension) -> exp.Expr:
    if dim.json_key is not None:
        return exp.JSONExtractScalar(this=exp.column(dim.column), expression=exp.Literal.string(dim.json_key))
    if dim.null_as is not None:
        return exp.func("coalesce", exp.column(dim.column), exp.Literal.string(dim.null_as))
    return exp.column(dim.column)


def _check_value(dim: Dimension, value: str | int, field: str) -> None:
    """Refuse a filter value its dimension cannot hold, before it reaches the store as a parameter."""
    if dim.kind == "integer":
        if not isinstance(value, int) or not INT64_MIN <= value <= INT64_MAX:
            raise InvalidQuery(
                f"dimension '{dim.name}' holds integers from {INT64_MIN} to {INT64_MAX}; got {value!r}", field=field
            )
        return
    if not isinstance(value, str):
        raise InvalidQuery(f"dimension '{dim.name}' holds text: give the value as a string, got {value!r}", field=field)
    if len(value) > MAX_TEXT_VALUE:
        raise InvalidQuery(
            f"a value of dimension '{dim.name}' has at most {MAX_TEXT_VALUE} characters, got {len(value)}", field=field
        )
    if "\x00" in value:
        raise InvalidQuery(f"a value of dimension '{dim.name}' cannot contain the character NUL (\\u0000)", field=field)


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
