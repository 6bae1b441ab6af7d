"""Delta maintenance of a model: apply the changed rows' contributions to the stored aggregates.

A model qualifies when every output column is a grain column, a bare ``COUNT(*)``, ``COUNT(x)``, ``SUM(x)``
(``x`` never NULL, exact numeric result), ``MIN(x)`` or ``MAX(x)``, or an expression over those aggregates only
(a rate ``CAST(SUM(a) AS DOUBLE PRECISION) / NULLIF(SUM(b), 0)`` whose sums are output columns too); it has no
HAVING; its grain starts with an input's ``tenant_id`` and every input is joined to the others on
``tenant_id``, so one tenant's changes only ever meet that tenant's rows.

The changed rows of the join are found by inclusion-exclusion over the changed references: with signed change
images (+1 new image, -1 old image) and current rows at the refresh snapshot,
``Δ(R ⋈ S) = ΔR ⋈ S + R ⋈ ΔS - ΔR ⋈ ΔS``, and likewise for more references. Per group the engine sums the signed
contributions; a group is then updated in place, inserted, deleted (its ``COUNT(*)`` reaches 0) or, when the
delta cannot decide, recomputed from its rows: a MIN/MAX whose stored extreme was removed without a surely
present value beyond it (see ``_extreme_undecided``), a net removal of rows from a model without ``COUNT(*)``
(the group may have emptied).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlglot import exp
from sqlglot.errors import ParseError

from tenant_analytics.models.project import Model, input_name_of, input_table
from tenant_analytics.models.sources import SOURCES

AggregateKind = Literal["count_star", "count", "sum", "min", "max"]
SIGN = "__sign"
REMOVED = "__r"  # contributions: the extreme of the removed values of a MIN/MAX column
COUNT = "__n"
ACTION = "__action"
TID = "__tid"  # the stored row's ctid, NULL for a group not stored yet
# The planned groups' alias in the statement computing derived columns, which holds the model's own expressions:
# a model cannot use it (names starting with "__" are reserved, see project.RESERVED_PREFIX).
PLANNED = "__planned"
EXACT_TYPES = ("smallint", "integer", "bigint", "numeric")


@dataclass(frozen=True)
class Aggregate:
    """One output column that is a bare aggregate."""

    column: str
    kind: AggregateKind
    argument: exp.Expression | None
    expression: exp.Expression


@dataclass(frozen=True)
class DeltaPlan:
    """How a model's changed groups are updated from signed contributions."""

    model: Model
    aggregates: tuple[Aggregate, ...]
    derived: tuple[tuple[str, exp.Expr], ...]  # output column, expression over the columns of aggregates
    count_column: str | None

    @property
    def has_extremes(self) -> bool:
        return any(a.kind in ("min", "max") for a in self.aggregates)


def _aggregate_kind(expression: exp.Expression) -> AggregateKind | None:
    if isinstance(expression, exp.Count):
        if isinstance(expression.this, exp.Distinct):
            return None
        return "count_star" if expression.this is None or isinstance(expression.this, exp.Star) else "count"
    if isinstance(expression, exp.Sum):
        return "sum"
    if isinstance(expression, exp.Max) and not expression.expressions:
        return "max"
    if isinstance(expression, exp.Min) and not expression.expressions:
        return "min"
    return None


def _unaliased(projection: exp.Expression) -> exp.Expression:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _aliases(model: Model) -> dict[str, str]:
    """Table alias -> input name, for every input reference of the model."""
    return {(t.alias or t.name): input_name_of(t) for t in model.query.find_all(exp.Table) if t.db}


def never_null(expression: exp.Expression, model: Model, lookup: Callable[[str], Model]) -> bool:
    """Whether ``expression`` (in ``model``'s FROM context, over non-empty groups) can never be NULL."""
    if isinstance(expression, exp.Paren | exp.Cast):
        return never_null(expression.this, model, lookup)
    if isinstance(expression, exp.Literal):
        return True
    if isinstance(expression, exp.Case):
        default = expression.args.get("default")
        return (
            default is not None
            and all(never_null(branch.args["true"], model, lookup) for branch in expression.args.get("ifs") or [])
            and never_null(default, model, lookup)
        )
    if isinstance(expression, exp.Coalesce):
        return any(never_null(e, model, lookup) for e in [expression.this, *expression.expressions])
    if isinstance(expression, exp.Add | exp.Sub | exp.Mul):
        return never_null(expression.this, model, lookup) and never_null(expression.expression, model, lookup)
    if isinstance(expression, exp.Count):
        return True
    if isinstance(expression, exp.Sum | exp.Max | exp.Min):
        return never_null(expression.this, model, lookup)
    if isinstance(expression, exp.Column):
        aliases = _aliases(model)
        if expression.table:
            name = aliases.get(expression.table)
        else:
            name = next(iter(aliases.values())) if len(aliases) == 1 else None
        if name is None:
            return False
        if name in SOURCES:
            return expression.name in SOURCES[name].primary_key
        parent = lookup(name)
        if expression.name in parent.grain:
            return True  # primary-key column of the parent's summary table
        for column, projection in zip(parent.columns, parent.query.expressions, strict=True):
            if column == expression.name:
                return never_null(_unaliased(projection), parent, lookup)
    return False


def read_columns(model: Model, input_name: str) -> list[str]:
    """Return the columns of ``input_name`` that ``model`` reads, in order of first use."""
    aliases = _aliases(model)
    mine = {alias for alias, name in aliases.items() if name == input_name}
    found: list[str] = []
    for column in model.query.find_all(exp.Column):
        owner = column.table or (next(iter(aliases)) if len(aliases) == 1 else "")
        if owner in mine and column.name not in found:
            found.append(column.name)
    return found


def _tenant_connected(model: Model) -> bool:
    """Whether every input reference is joined to the others by equality of ``tenant_id`` columns."""
    aliases = list(_aliases(model))
    if len(aliases) == 1:
        return True
    linked: dict[str, str] = {a: a for a in aliases}

    def root(alias: str) -> str:
        while linked[alias] != alias:
            alias = linked[alias]
        return alias

    conditions = [j.args.get("on") for j in model.query.args.get("joins") or []]
    where = model.query.args.get("where")
    conditions.append(where.this if where is not None else None)
    for condition in conditions:
        for part in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            if not isinstance(part, exp.EQ):
                continue
            left, right = part.this, part.expression
            if (
                isinstance(left, exp.Column)
                and isinstance(right, exp.Column)
                and left.name == right.name == "tenant_id"
                and left.table in linked
                and right.table in linked
            ):
                linked[root(left.table)] = root(right.table)
    return len({root(a) for a in aliases}) == 1


def delta_plan(model: Model, lookup: Callable[[str], Model], column_types: dict[str, str]) -> DeltaPlan | None:
    """Return how ``model`` is maintained by deltas, or None when its groups must be recomputed.

    ``lookup`` returns a parent model by name (to prove a summed parent column is never NULL);
    ``column_types`` maps the summary table's columns to their types (a SUM must be exact to be inverted).
    """
    query = model.query
    if query.args.get("having") is not None or query.args.get("distinct") is not None:
        return None
    first = model.grain_expressions[0]
    if not (isinstance(first, exp.Column) and first.name == "tenant_id" and _tenant_connected(model)):
        return None
    for join in query.args.get("joins") or []:
        if join.args.get("side") or join.args.get("kind") not in (None, "", "INNER") or join.args.get("on") is None:
            return None
    aggregates: list[Aggregate] = []
    others: list[tuple[str, exp.Expression]] = []
    for column, projection in zip(model.columns, query.expressions, strict=True):
        if column in model.grain:
            continue
        expression = _unaliased(projection)
        kind = _aggregate_kind(expression)
        if kind is None:
            others.append((column, expression))
            continue
        argument = None if kind == "count_star" else expression.this
        if argument is not None and argument.find(exp.AggFunc) is not None:
            return None
        if kind == "sum" and (
            argument is None
            or not never_null(argument, model, lookup)
            or column_types.get(column, "").split("(")[0] not in EXACT_TYPES
        ):
            return None
        aggregates.append(Aggregate(column, kind, argument, expression))
    derived: list[tuple[str, exp.Expr]] = []
    for column, expression in others:
        rewritten: exp.Expr = expression.copy()
        for node in list(rewritten.find_all(exp.AggFunc)):
            match = next((a for a in aggregates if a.expression == node), None)
            if match is None:
                return None  # an aggregate that no output column stores
            if node is rewritten:
                rewritten = exp.column(match.column, table=PLANNED)
            else:
                node.replace(exp.column(match.column, table=PLANNED))
        if any(c.table != PLANNED for c in rewritten.find_all(exp.Column)):
            return None  # a column outside any aggregate
        derived.append((column, rewritten))
    for aggregate in aggregates:
        try:
            exp.DataType.build(column_types[aggregate.column], dialect="postgres")
        except (KeyError, ValueError, ParseError):
            return None  # the new value is cast to the stored column's type
    count_column = next((a.column for a in aggregates if a.kind == "count_star"), None)
    return DeltaPlan(model, tuple(aggregates), tuple(derived), count_column)


def contributions_query(plan: DeltaPlan, deltas: dict[str, str]) -> str:
    """Return SQL of the per-group sums of signed contributions of the changes in ``deltas``.

    ``deltas`` maps an input name to a table of its change images with a ``__sign`` column (+1 new, -1 old).
    Columns: the grain, ``__n`` (net rows entering the group) and per aggregate ``__a<i>``: the signed sum for
    COUNT and SUM; for MIN and MAX the extreme of the positive contributions, with ``__r<i>`` the extreme of the
    negative ones (values removed).
    """
    model = plan.model
    references = [t for t in model.query.find_all(exp.Table) if t.db]
    changed = [i for i, t in enumerate(references) if input_name_of(t) in deltas]
    terms: list[exp.Select] = []
    for size in range(1, len(changed) + 1):
        for subset in itertools.combinations(changed, size):
            query = model.select()
            signs: list[exp.Expr] = [exp.Literal.number(1 if size % 2 else -1)]
            for index, reference in enumerate([t for t in query.find_all(exp.Table) if t.db]):
                if index not in subset:
                    continue
                alias = reference.alias or reference.name
                reference.replace(exp.to_table(deltas[input_name_of(reference)]).as_(alias))
                signs.append(exp.column(SIGN, table=alias))
            sign: exp.Expr = signs[0]
            for factor in signs[1:]:
                sign = exp.Mul(this=sign, expression=factor)
            projections: list[exp.Expr] = [
                e.copy().as_(g) for e, g in zip(model.grain_expressions, model.grain, strict=True)
            ]
            projections.append(exp.alias_(sign, SIGN))
            for number, aggregate in enumerate(plan.aggregates):
                if aggregate.kind == "count_star":
                    value: exp.Expr = exp.Literal.number(1)
                elif aggregate.kind == "count":
                    assert aggregate.argument is not None
                    value = exp.Case(
                        ifs=[
                            exp.If(
                                this=exp.Not(this=exp.Is(this=aggregate.argument.copy(), expression=exp.Null())),
                                true=exp.Literal.number(1),
                            )
                        ],
                        default=exp.Literal.number(0),
                    )
                else:
                    assert aggregate.argument is not None
                    value = aggregate.argument.copy()
                projections.append(exp.alias_(value, f"__a{number}"))
            query.set("expressions", projections)
            query.set("group", None)
            terms.append(query)
    union: exp.Query = terms[0]
    for term in terms[1:]:
        union = exp.union(union, term, distinct=False)
    sums: list[exp.Expr] = [exp.column(g, table="u") for g in model.grain]
    sums.append(exp.alias_(exp.Sum(this=exp.column(SIGN, table="u")), COUNT))
    zero = exp.Literal.number(0)
    for number, aggregate in enumerate(plan.aggregates):
        value = exp.column(f"__a{number}", table="u")
        sign = exp.column(SIGN, table="u")
        if aggregate.kind in ("max", "min"):
            extreme = exp.Max if aggregate.kind == "max" else exp.Min
            # FILTER rather than a CASE per row: the rows of the other sign skip the aggregate altogether
            for side, prefix in ((exp.GT, "__a"), (exp.LT, REMOVED)):
                only = exp.Where(this=side(this=sign.copy(), expression=zero))
                filtered = exp.Filter(this=extreme(this=value.copy()), expression=only)
                sums.append(exp.alias_(filtered, f"{prefix}{number}"))
        else:
            sums.append(exp.alias_(exp.Sum(this=exp.Mul(this=sign, expression=value)), f"__a{number}"))
    outer = exp.select(*sums).from_(union.subquery("u")).group_by(*[exp.column(g, table="u") for g in model.grain])
    return outer.sql("postgres", comments=False)


def plan_query(plan: DeltaPlan, aggregated: str, summary: exp.Table, column_types: dict[str, str]) -> str:
    """Return SQL deciding, per group of ``aggregated`` (see ``contributions_query``), what to do and the new values.

    ``__action``: ``u`` upsert the new values, ``d`` delete the group, ``r`` recompute it from its rows,
    ``s`` nothing (no group before, none after); ``__tid``: the stored row's ``ctid`` (NULL when there is none), so
    that the writes find it without probing the primary key again.
    """
    model = plan.model
    stored = exp.column(model.grain[0], table="t")
    absent = exp.Is(this=stored, expression=exp.Null())
    net = exp.column(COUNT, table="a")
    zero = exp.Literal.number(0)
    recompute: list[exp.Expr] = [exp.and_(absent, exp.LT(this=net, expression=zero))]
    delete: exp.Expr = exp.false()
    if plan.count_column is None:
        recompute.append(exp.LT(this=net, expression=zero))
    else:
        after = exp.Add(this=exp.column(plan.count_column, table="t"), expression=net)
        recompute.append(exp.LT(this=after, expression=zero))
        delete = exp.EQ(this=after, expression=zero)
    for number, aggregate in enumerate(plan.aggregates):
        if aggregate.kind in ("max", "min"):
            recompute.append(_extreme_undecided(aggregate, number))
    action = exp.Case(
        ifs=[
            exp.If(this=exp.and_(absent, exp.EQ(this=net, expression=zero)), true=exp.Literal.string("s")),
            exp.If(this=exp.or_(*recompute), true=exp.Literal.string("r")),
            exp.If(this=delete, true=exp.Literal.string("d")),
        ],
        default=exp.Literal.string("u"),
    )
    projections: list[exp.Expr] = [exp.column(g, table="a") for g in model.grain]
    projections.append(exp.alias_(action, ACTION))
    projections.append(exp.alias_(exp.column("ctid", table="t"), TID))
    for number, aggregate in enumerate(plan.aggregates):
        old = exp.column(aggregate.column, table="t")
        change = exp.column(f"__a{number}", table="a")
        if aggregate.kind == "max":
            value: exp.Expr = exp.func("GREATEST", old, change)
        elif aggregate.kind == "min":
            value = exp.func("LEAST", old, change)
        else:
            value = exp.Add(this=exp.func("COALESCE", old, zero), expression=change)
        cast = exp.DataType.build(column_types[aggregate.column], dialect="postgres")
        projections.append(exp.alias_(exp.Cast(this=value, to=cast), aggregate.column))
    match = exp.and_(*[exp.EQ(this=exp.column(g, table="t"), expression=exp.column(g, table="a")) for g in model.grain])
    query = (
        exp.select(*projections)
        .from_(exp.to_table(aggregated).as_("a"))
        .join(summary.copy().as_("t"), on=match, join_type="left")
    )
    return query.sql("postgres", comments=False)


def _extreme_undecided(aggregate: Aggregate, number: int) -> exp.Expr:
    """Whether the contributions leave a group's MAX (MIN) unknown: a value at or beyond the stored extreme was
    removed and no greater (smaller) value was surely added.

    ``A`` (the extreme of the positive contributions) may be a value that was added and removed again within the
    change, but then it is also among the removed values: ``A`` beyond ``R`` (the extreme of the negative ones) is a
    value present now. With ``R`` short of the stored extreme ``S``, the rows holding ``S`` are all still there.
    In both cases the new extreme is the extreme of ``S`` and ``A``; otherwise the group is recomputed.
    """
    added = exp.column(f"__a{number}", table="a")
    removed = exp.column(f"{REMOVED}{number}", table="a")
    stored = exp.column(aggregate.column, table="t")
    not_beyond: type[exp.Binary] = exp.LTE if aggregate.kind == "max" else exp.GTE
    reaches: type[exp.Binary] = exp.GTE if aggregate.kind == "max" else exp.LTE
    return exp.and_(
        exp.Not(this=exp.Is(this=removed.copy(), expression=exp.Null())),
        exp.or_(exp.Is(this=added.copy(), expression=exp.Null()), not_beyond(this=added, expression=removed.copy())),
        exp.or_(exp.Is(this=stored.copy(), expression=exp.Null()), reaches(this=removed, expression=stored)),
    )


def upsert_source(plan: DeltaPlan, planned: str) -> str:
    """Return SQL selecting ``__tid`` and the model's output columns, in order, of the groups ``planned`` marks for
    upsert."""
    values: dict[str, exp.Expr] = {g: exp.column(g, table=PLANNED) for g in plan.model.grain}
    values.update({a.column: exp.column(a.column, table=PLANNED) for a in plan.aggregates})
    values.update({column: expression.copy() for column, expression in plan.derived})
    query = (
        exp.select(exp.column(TID, table=PLANNED), *[values[c].as_(c) for c in plan.model.columns])
        .from_(exp.to_table(planned).as_(PLANNED))
        .where(exp.EQ(this=exp.column(ACTION, table=PLANNED), expression=exp.Literal.string("u")))
    )
    return query.sql("postgres", comments=False)


def summary_table(model: Model) -> exp.Table:
    """The model's summary table as a sqlglot table."""
    return input_table(model.name)
