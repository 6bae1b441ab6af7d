"""Model files: parsing, grain checks and the dependency graph computed from ``ref`` and ``source`` calls.

A model file is ``<domain>/<name>.sql``: a first line ``{{ config(grain=['tenant_id', ...]) }}`` and one
``SELECT ... GROUP BY`` in PostgreSQL-flavoured SQL that names its inputs as ``{{ ref('model') }}`` or
``{{ source('schema.table') }}``. The parsed query is kept in a canonical form (inputs resolved to table names,
GROUP BY listing the grain expressions in grain order) that both compilers start from.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from tenant_analytics.errors import InvalidInput
from tenant_analytics.models.sources import SOURCES

MODEL_SCHEMA = "models"
PACKAGED_SQL = Path(__file__).resolve().parent / "sql"

_CONFIG = re.compile(r"^\s*\{\{\s*config\((?P<args>.*)\)\s*\}\}\s*(--.*)?$")
_CALL = re.compile(r"\{\{-?\s*(?P<kind>ref|source)\(\s*(?P<quote>['\"])(?P<arg>[^'\"]+)(?P=quote)\s*\)\s*-?\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED_PREFIX = "__"  # the engine's own aliases and columns start with it (see delta.py, postgres.py)
# Unqualified words that sqlglot reads as columns but the databases evaluate per session or per statement.
SESSION_VALUES = frozenset({"sysdate", "user", "current_role", "current_user_id"})
# PostgreSQL's system columns, which every table has: they change when a row is updated or moved, or differ per
# table, and Redshift has none (OID, a system column before PostgreSQL 12, is a reserved word there).
SYSTEM_COLUMNS = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid"})


class ModelError(InvalidInput):
    """A model file cannot be used; the message names the file and the problem."""

    code = "invalid_model"

    def __init__(self, file: Path | str, problem: str, *, construct: str = "model") -> None:
        super().__init__(f"{file}: {problem}")
        self.file = str(file)
        self.problem = problem
        self.construct = construct


@dataclass(frozen=True)
class Model:
    """One parsed model file.

    ``sql`` is the SELECT as written (with its ``ref``/``source`` calls); ``query`` is the canonical parsed form
    with inputs resolved to tables (``models.<name>`` for refs) and GROUP BY equal to ``grain_expressions``.
    ``group_by_names`` are the output columns the SELECT's GROUP BY named by a bare name (``GROUP BY day``).
    """

    name: str
    domain: str
    path: Path
    grain: tuple[str, ...]
    columns: tuple[str, ...]
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    sql: str
    query: exp.Select = field(compare=False, repr=False)
    grain_expressions: tuple[exp.Expression, ...] = field(compare=False, repr=False)
    group_by_names: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Names of everything the model reads: refs (model names) then sources (``schema.table``)."""
        return self.refs + self.sources

    def select(self) -> exp.Select:
        """Return a copy of the canonical query, safe to rewrite."""
        return self.query.copy()


@dataclass(frozen=True)
class ModelProject:
    """All models of a directory, in topological order (every model after the models it refs)."""

    directory: Path
    models: tuple[Model, ...]

    def get(self, name: str) -> Model:
        """Return the model called ``name``; raises InvalidInput naming the known models."""
        for model in self.models:
            if model.name == name:
                return model
        raise InvalidInput(f"unknown model '{name}'; known models: {', '.join(m.name for m in self.models)}")

    def children(self, name: str) -> tuple[Model, ...]:
        """Return the models that ref ``name`` directly."""
        return tuple(m for m in self.models if name in m.refs)

    def descendants(self, name: str) -> tuple[Model, ...]:
        """Return every model that depends on ``name``, directly or not, in topological order."""
        found: set[str] = {name}
        for model in self.models:
            if found.intersection(model.refs):
                found.add(model.name)
        return tuple(m for m in self.models if m.name in found and m.name != name)


def input_table(input_name: str) -> exp.Table:
    """Return the table an input name stands for: ``models.<name>`` for a model, the source's table otherwise."""
    if "." in input_name:
        schema, table = input_name.split(".", 1)
        return exp.table_(table, db=schema)
    return exp.table_(input_name, db=MODEL_SCHEMA)


def input_name_of(table: exp.Table) -> str:
    """Return the input name of a resolved table reference (inverse of ``input_table``)."""
    return table.name if table.db == MODEL_SCHEMA else f"{table.db}.{table.name}"


def parse_model(path: Path, domain: str | None = None) -> Model:
    """Parse one model file; raises ModelError naming the file and the problem."""
    try:
        return _parse_model(path, domain)
    except RecursionError:
        # sqlglot parses and rewrites recursively: a few dozen nested calls exhaust Python's stack
        raise ModelError(path, "the SQL is nested too deeply to be checked; simplify it", construct="syntax") from None


def _parse_model(path: Path, domain: str | None) -> Model:
    name = path.stem
    if not _NAME.match(name):
        raise ModelError(path, f"model name '{name}' must be lower-case letters, digits and underscores")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark some editors write is not SQL
    except UnicodeDecodeError as exc:
        raise ModelError(path, f"is not UTF-8 text: {exc.reason} at byte {exc.start}", construct="file") from None
    except OSError as exc:
        raise ModelError(path, f"cannot be read: {exc.strerror or exc}", construct="file") from None
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip() and not line.strip().startswith("--")), None)
    match = _CONFIG.match(lines[first]) if first is not None else None
    if first is None or match is None:
        raise ModelError(path, "the first line must be {{ config(grain=['tenant_id', ...]) }}", construct="config")
    grain = _parse_grain(path, match.group("args"))
    body = "\n".join(lines[first + 1 :]).strip()

    refs: list[str] = []
    sources: list[str] = []

    def resolve(call: re.Match[str]) -> str:
        arg = call.group("arg")
        if call.group("kind") == "ref":
            if not _NAME.match(arg):
                raise ModelError(path, f"ref('{arg}') is not a model name", construct="ref")
            if arg not in refs:
                refs.append(arg)
            return f"{MODEL_SCHEMA}.{arg}"
        if arg not in SOURCES:
            raise ModelError(
                path, f"unknown source '{arg}'; known sources: {', '.join(sorted(SOURCES))}", construct="source"
            )
        if arg not in sources:
            sources.append(arg)
        return arg

    resolved = _CALL.sub(resolve, body)
    try:
        tokens = sqlglot.tokenize(resolved, read="postgres")
        _check_tokens(path, tokens)
        statements = [s for s in sqlglot.parse(resolved, read="postgres") if s is not None]
    except SqlglotError as exc:
        raise ModelError(path, f"SQL does not parse: {exc}", construct="syntax") from exc
    if len(statements) != 1:
        raise ModelError(path, f"a model holds one SELECT, found {len(statements)} statements", construct="syntax")
    # Names as PostgreSQL resolves them from here on: unquoted identifiers folded to lower case (T.Tenant_Id is
    # t.tenant_id), quoted ones kept as written.
    query = normalize_identifiers(statements[0], dialect="postgres")
    if isinstance(query, exp.SetOperation):
        kind = type(query).__name__.upper()
        raise ModelError(path, f"set operation {kind}: a model is one SELECT ... GROUP BY", construct="set operation")
    if not isinstance(query, exp.Select):
        raise ModelError(path, f"a model is one SELECT ... GROUP BY, found {query.key.upper()}", construct="syntax")
    _check_locks(path, query)  # first: FOR UPDATE OF t names the alias t as if it were a table
    _check_tables(path, query, refs, sources)
    _check_reserved_names(path, query)
    _check_system_columns(path, query)
    _check_parameters(path, query)
    columns = _output_columns(path, query)
    _qualify_columns(path, query, columns)
    _check_joins(path, query)
    _check_source_columns(path, query, columns)
    grain_expressions = _grain_expressions(path, query, grain, columns)
    _check_tenant_column(path, query, grain_expressions[0])
    _check_grouped(path, query, columns, grain, grain_expressions)
    _check_aggregates(path, query)
    _check_redshift_syntax(path, query)  # after: an aggregate in a FILTER is named as such
    group_by_names = _group_by_names(query, columns)
    query.set("group", exp.Group(expressions=[e.copy() for e in grain_expressions]))
    return Model(
        name=name,
        domain=domain or path.parent.name,
        path=path,
        grain=grain,
        columns=columns,
        refs=tuple(refs),
        sources=tuple(sources),
        sql=body,
        query=query,
        grain_expressions=grain_expressions,
        group_by_names=group_by_names,
    )


def load_project(directory: Path | None = None) -> ModelProject:
    """Parse every ``<domain>/<name>.sql`` under ``directory`` (default: the packaged models) into a project.

    Returns the models in topological order; raises ModelError for the first unusable file, an unknown ref, a column
    that a ref'd model does not have, an ambiguous GROUP BY name or a cycle, naming the file and the problem.
    """
    root = directory or PACKAGED_SQL
    models = [parse_model(path) for path in model_files(root)]
    return ModelProject(directory=root, models=order_models(models))


def model_files(directory: Path) -> list[Path]:
    """Return the model files under ``directory``, sorted; raises InvalidInput if there is none."""
    paths = sorted(directory.rglob("*.sql"))
    if not paths:
        raise InvalidInput(f"no model files (*.sql) under {directory}")
    return paths


def order_models(models: Sequence[Model]) -> tuple[Model, ...]:
    """Return ``models`` in topological order; raises ModelError on duplicate names, unknown refs, columns that a ref'd
    model does not have, ambiguous GROUP BY names and cycles."""
    ordered, errors = _dag(models, {})
    if errors:
        raise errors[0]
    return ordered


def dag_errors(models: Sequence[Model], unparsed: Mapping[str, Path]) -> list[ModelError]:
    """Return every DAG problem of ``models``: duplicate names, unknown refs, columns that a ref'd model does not
    have, GROUP BY names that an input's columns make ambiguous, and each cycle. A ref to a name in ``unparsed`` (model
    name -> file that failed to parse) is reported as a ref to a file with errors."""
    return _dag(models, unparsed)[1]


def _dag(models: Sequence[Model], unparsed: Mapping[str, Path]) -> tuple[tuple[Model, ...], list[ModelError]]:
    errors: list[ModelError] = []
    by_name: dict[str, Model] = {}
    for model in models:
        if model.name in by_name:
            errors.append(
                ModelError(model.path, f"model name '{model.name}' is also used by {by_name[model.name].path}")
            )
        else:
            by_name[model.name] = model
    for model in models:
        for ref in model.refs:
            if ref in by_name:
                continue
            if ref in unparsed:
                errors.append(ModelError(model.path, f"ref '{ref}': {unparsed[ref]} has errors", construct="ref"))
            else:
                errors.append(
                    ModelError(model.path, f"unknown ref '{ref}': no model file {ref}.sql", construct="unknown ref")
                )
        errors.extend(_ref_column_errors(model, by_name))
        errors.extend(_group_by_name_errors(model, by_name))
    ordered: list[Model] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(model: Model, path: list[str]) -> None:
        if state.get(model.name) == 2:
            return
        if state.get(model.name) == 1:
            cycle = [*path[path.index(model.name) :], model.name]
            errors.append(ModelError(model.path, f"dependency cycle {' -> '.join(cycle)}", construct="cycle"))
            return
        state[model.name] = 1
        for ref in sorted(r for r in model.refs if r in by_name):
            visit(by_name[ref], [*path, model.name])
        state[model.name] = 2
        ordered.append(model)

    for model in sorted(by_name.values(), key=lambda m: m.name):
        visit(model, [])
    return tuple(ordered), errors


def _parse_grain(path: Path, args: str) -> tuple[str, ...]:
    try:
        call = ast.parse(f"config({args})", mode="eval").body
        assert isinstance(call, ast.Call)
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, AssertionError) as exc:
        raise ModelError(path, f"config(...) is not valid: {exc}", construct="config") from exc
    unknown = set(kwargs) - {"grain"}
    if unknown or call.args:
        raise ModelError(path, f"config accepts only grain=[...], got {sorted(map(str, unknown))}", construct="config")
    grain = kwargs.get("grain")
    if not isinstance(grain, list | tuple) or not grain or not all(isinstance(g, str) for g in grain):
        raise ModelError(path, "config(grain=[...]) must list the grain columns as strings", construct="grain")
    if grain[0] != "tenant_id":
        raise ModelError(path, f"grain {list(grain)} must start with 'tenant_id'", construct="grain")
    if len(set(grain)) != len(grain):
        raise ModelError(path, f"grain {list(grain)} lists a column twice", construct="grain")
    return tuple(grain)


def _check_tables(path: Path, query: exp.Select, refs: Sequence[str], sources: Sequence[str]) -> None:
    for item in _from_items(query):
        if isinstance(item, exp.Subquery) or (isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier)):
            continue  # a named table, checked below; a subquery, which the validator reports
        raise ModelError(
            path,
            f"{item.sql('postgres', comments=False)} is not an input: a model reads rows only from {{{{ ref() }}}} and "
            f"{{{{ source() }}}} (a constant belongs in the SELECT list or a CASE)",
            construct="table",
        )
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if table.name in ctes and not table.db:
            continue
        named = table.name in refs if table.db == MODEL_SCHEMA else f"{table.db}.{table.name}" in sources
        if not named:
            shown = f"{table.db}.{table.name}" if table.db else table.name
            raise ModelError(
                path,
                f"reads table '{shown}' directly; name inputs with {{{{ ref() }}}} or {{{{ source() }}}}",
                construct="table",
            )


_TEMPLATE_TOKENS = {TokenType.L_BRACE, TokenType.R_BRACE, TokenType.BLOCK_START, TokenType.BLOCK_END}
_OUTER_JOIN_MARK = [TokenType.L_PAREN, TokenType.PLUS, TokenType.R_PAREN]


def _check_tokens(path: Path, tokens: Sequence[Token]) -> None:
    """Reject template syntax left after resolving the calls, and the Oracle outer-join marker ``(+)`` (which
    PostgreSQL would read as a call; comments and strings are not tokens, so braces there are fine)."""
    if any(t.token_type in _TEMPLATE_TOKENS for t in tokens):
        raise ModelError(path, "only {{ ref('model') }} and {{ source('schema.table') }} may appear in the SELECT")
    kinds = [t.token_type for t in tokens]
    if any(kinds[i : i + 3] == _OUTER_JOIN_MARK for i in range(len(kinds))):
        raise ModelError(
            path,
            "uses the Oracle outer-join marker (+); write LEFT JOIN ... ON instead (an outer join, which is "
            "refreshed in full)",
            construct="outer join (+)",
        )


def _check_reserved_names(path: Path, query: exp.Select) -> None:
    for identifier in query.find_all(exp.Identifier):
        if identifier.name.startswith(RESERVED_PREFIX):
            raise ModelError(
                path,
                f"name '{identifier.name}' starts with '{RESERVED_PREFIX}', which the engine reserves for the "
                f"aliases and columns of the SQL it generates",
                construct="reserved name",
            )


def _check_locks(path: Path, query: exp.Select) -> None:
    lock = next(query.find_all(exp.Lock), None)
    if lock is not None:
        raise ModelError(
            path,
            f"{lock.sql('postgres')} locks the rows it reads: PostgreSQL refuses a locking clause with GROUP BY (in a "
            f"subquery it would block the input's writers during every refresh); remove it",
            construct="locking clause",
        )


def _check_system_columns(path: Path, query: exp.Select) -> None:
    for column in query.find_all(exp.Column):
        if isinstance(column.this, exp.Identifier) and column.name in SYSTEM_COLUMNS:
            raise ModelError(
                path,
                f"column {column.sql('postgres')} is the system column {column.name}, whose value "
                f"changes when a row is updated or moved, or differs per table, and which Redshift does not have; read "
                f"a column of the table instead",
                construct="system column",
            )


def _check_redshift_syntax(path: Path, query: exp.Select) -> None:
    """Aggregate syntax PostgreSQL runs and Redshift does not have: the model would not compile to a view there."""
    for node in query.find_all(exp.Filter, exp.Order, exp.Collate):
        if isinstance(node, exp.Collate):
            raise ModelError(
                path,
                f"{node.sql('postgres')}: Redshift has no COLLATE clause (its COLLATE is a function with other "
                f"collations), so the model's view could not be created there; remove it",
                construct="COLLATE clause",
            )
        if isinstance(node, exp.Filter):
            raise ModelError(
                path,
                f"{node.sql('postgres')}: Redshift has no FILTER clause on aggregates, so the model's view could not "
                f"be created there; aggregate a CASE instead: COUNT(CASE WHEN <condition> THEN 1 END), "
                f"SUM(CASE WHEN <condition> THEN <value> END)",
                construct="FILTER clause",
            )
        if isinstance(node.parent, exp.AggFunc) and node.arg_key == "this":
            raise ModelError(
                path,
                f"{node.parent.sql('postgres')}: Redshift has no ORDER BY inside an aggregate's arguments, so the "
                f"model's view could not be created there; remove the ORDER BY",
                construct="ordered aggregate",
            )


def _check_parameters(path: Path, query: exp.Select) -> None:
    parameter = next(query.find_all(exp.Parameter, exp.Placeholder), None)
    if parameter is not None:
        raise ModelError(
            path,
            f"parameter {parameter.sql('postgres')}: nothing binds a value to it when the model is refreshed; write "
            f"the value",
            construct="parameter",
        )


def _from_items(query: exp.Select) -> list[exp.Expression]:
    """The query's FROM item and joined items (tables, subqueries), in order."""
    found = query.args.get("from_")
    return ([found.this] if found is not None else []) + [j.this for j in query.args.get("joins") or []]


def _alias(item: exp.Expression) -> str:
    return item.alias_or_name if isinstance(item, exp.Table) else item.alias


def is_session_value(column: exp.Column) -> bool:
    """Whether ``column`` is a word such as SYSDATE that the databases evaluate, not a column."""
    return not column.table and not column.this.quoted and column.name.lower() in SESSION_VALUES


def _qualify_columns(path: Path, query: exp.Select, columns: Sequence[str]) -> None:
    """Qualify the columns of a one-input model with its alias, so that every rewrite may add a relation to its
    FROM; reject unqualified columns in a model with more than one input (which input they read is unknown)."""
    group = query.args.get("group")
    parts = [*query.expressions, query.args.get("where"), query.args.get("having")]
    parts += [j.args.get("on") for j in query.args.get("joins") or []]
    for key in group.expressions if group is not None else []:
        bare = isinstance(key, exp.Column) and not key.table and isinstance(key.this, exp.Identifier)
        if not (bare and key.name in columns):  # not an output alias (GROUP BY DAY is day)
            parts.append(key)
    unqualified = [
        column
        for part in parts
        if part is not None
        for column in part.find_all(exp.Column)
        if not column.table and not is_session_value(column) and column.find_ancestor(exp.Select) is query
    ]
    items = _from_items(query)
    if not unqualified or not items:
        return
    if len(items) > 1:
        column = unqualified[0]
        raise ModelError(
            path,
            f"column '{column.sql('postgres')}' does not name its input: in a model with more than one input, "
            f"qualify every column with its table's alias (such as {_alias(items[0])}.{column.name})",
            construct="unqualified column",
        )
    alias = items[0].args.get("alias")
    identifier = alias.this if alias is not None else items[0].this
    if isinstance(identifier, exp.Identifier):
        for column in unqualified:
            column.set("table", identifier.copy())


def _reference(column: exp.Column) -> tuple[str, str] | None:
    """``(alias, name)`` of a column ``alias.name`` as PostgreSQL resolves them; None for ``name`` and ``alias.*``."""
    table = column.args.get("table")
    if isinstance(table, exp.Identifier) and isinstance(column.this, exp.Identifier):
        return table.name, column.name
    return None


def _qualified_columns(query: exp.Select) -> list[tuple[exp.Column, tuple[str, str]]]:
    """The columns ``alias.name`` of ``query`` itself (not of its subqueries) in the order they are written, each
    with its ``(alias, name)``."""
    found = []
    for column in query.find_all(exp.Column, bfs=False):
        reference = _reference(column)
        if reference is not None and _at_level(column, query):
            found.append((column, reference))
    return found


def _check_source_columns(path: Path, query: exp.Select, columns: Sequence[str]) -> None:
    """Reject a column of an alias that names no input, and a column that its source does not have (a ref's columns
    are checked with the dependency graph, where its model is known)."""
    items = {_alias(item): item for item in _from_items(query)}
    for column, (alias, _) in _qualified_columns(query):
        if alias not in items:
            raise ModelError(
                path,
                f"column {column.sql('postgres')}: this model has no input called {column.table}; its inputs are "
                f"{', '.join(_alias(item) for item in items.values()) or 'none'}",
                construct="unknown column",
            )
    inputs = {
        alias: (input_name_of(item), SOURCES[input_name_of(item)].columns)
        for alias, item in items.items()
        if isinstance(item, exp.Table) and item.db != MODEL_SCHEMA and input_name_of(item) in SOURCES
    }
    errors = _unknown_column_errors(path, query, columns, inputs)
    if errors:
        raise errors[0]


def _ref_column_errors(model: Model, by_name: Mapping[str, Model]) -> list[ModelError]:
    """One error per distinct column ``alias.name`` read from a ref'd model that is not an output column of it."""
    inputs = {
        _alias(item): (f"model {item.name}", by_name[item.name].columns)
        for item in _from_items(model.query)
        if isinstance(item, exp.Table) and item.db == MODEL_SCHEMA and item.name in by_name
    }
    return _unknown_column_errors(model.path, model.query, model.columns, inputs)


def _unknown_column_errors(
    path: Path, query: exp.Select, outputs: Sequence[str], inputs: Mapping[str, tuple[str, Sequence[str]]]
) -> list[ModelError]:
    """One error per distinct column ``alias.name`` of ``query`` itself whose input does not have it. ``inputs`` maps
    an alias as PostgreSQL resolves it to the input as messages show it and its columns; other aliases (subqueries,
    inputs checked elsewhere) are left alone, and so are the columns of subqueries."""
    projections = dict(zip(outputs, query.expressions, strict=True))
    errors: list[ModelError] = []
    seen: set[tuple[str, str]] = set()
    for column, (alias, name) in _qualified_columns(query):
        if alias not in inputs or name in inputs[alias][1] or (alias, name) in seen:
            continue
        seen.add((alias, name))
        shown, known = inputs[alias]
        projection = projections.get(name)
        if isinstance(projection, exp.Alias) and all(  # an output alias, not the very column it reads
            _reference(c) != (alias, name) for c in projection.this.find_all(exp.Column)
        ):
            problem = (
                f"{name} is an output column of this model, not a column of {shown}: repeat its expression "
                f"({projection.this.sql('postgres')})"
            )
        else:
            problem = f"{shown} has no column {name}; its columns are {', '.join(known)}"
        errors.append(ModelError(path, f"column {column.sql('postgres')}: {problem}", construct="unknown column"))
    return errors


def _equalities(condition: exp.Expr | None, alias: str, others: set[str]) -> list[tuple[exp.Column, exp.Column]]:
    """The conjuncts of ``condition`` equating a column of ``alias`` with a column of one of ``others``, as
    (column of ``alias``, other column)."""
    if condition is None:
        return []
    condition = condition.unnest()
    found = []
    for part in condition.flatten() if isinstance(condition, exp.And) else [condition]:
        part = part.unnest()
        if isinstance(part, exp.EQ) and isinstance(part.this, exp.Column) and isinstance(part.expression, exp.Column):
            for own, other in ((part.this, part.expression), (part.expression, part.this)):
                if own.table == alias and other.table in others:
                    found.append((own, other))
    return found


def _check_joins(path: Path, query: exp.Select) -> None:
    """Every join must equate a column of the joined input with one of another input, and the inputs must all be
    joined on ``tenant_id`` (a comma join's condition is the WHERE clause)."""
    aliases = [_alias(item) for item in _from_items(query)]
    for position, alias in enumerate(aliases):
        if alias in aliases[:position]:
            raise ModelError(
                path,
                f"two inputs are called {alias} (a name without double quotes is not case-sensitive); give each "
                f"input its own alias",
                construct="join",
            )
    linked = {alias: alias for alias in aliases}  # union-find of the inputs equated on tenant_id

    def root(alias: str) -> str:
        while linked[alias] != alias:
            alias = linked[alias]
        return alias

    where = query.args.get("where")
    joins: list[exp.Join] = query.args.get("joins") or []
    for join, alias in zip(joins, aliases[1:], strict=True):
        shown = join.sql("postgres", comments=False).lstrip(", ")
        if join.args.get("method") or join.args.get("using"):
            problem = f"{shown}: write the join condition with ON (NATURAL and USING are not supported)"
            raise ModelError(path, problem, construct="join")
        comma = not (join.args.get("kind") or join.side or join.args.get("on"))
        condition = where.this if comma and where is not None else join.args.get("on")
        equalities = _equalities(condition, alias, set(aliases) - {alias})
        if not equalities:
            raise ModelError(
                path,
                f"{'the comma join of ' if comma else ''}{shown} is a cross join: no equality between a column of "
                f"{alias} and a column of another input; join on {alias}.tenant_id = {aliases[0]}.tenant_id and the "
                f"key columns",
                construct="cross join",
            )
        if all(own.name == other.name == "tenant_id" for own, other in equalities):
            raise ModelError(
                path,
                f"{'the comma join of ' if comma else ''}{shown} equates only tenant_id: every row of {alias} would "
                f"meet every row of its tenant in the other input; join on the key columns as well",
                construct="cross join",
            )
        for own, other in equalities:
            if own.name == other.name == "tenant_id":
                linked[root(alias)] = root(other.table)
    for join, alias in zip(joins, aliases[1:], strict=True):
        if root(alias) != root(aliases[0]):
            raise ModelError(
                path,
                f"{join.sql('postgres', comments=False).lstrip(', ')} does not equate {alias}.tenant_id with the "
                f"tenant_id of the input it joins, so rows of different tenants would meet; add {alias}.tenant_id = "
                f"{aliases[0]}.tenant_id to its condition",
                construct="tenant isolation",
            )


def _check_tenant_column(path: Path, query: exp.Select, expression: exp.Expression) -> None:
    aliases = [_alias(item) for item in _from_items(query)]
    if isinstance(expression, exp.Column) and expression.name == "tenant_id" and expression.table in aliases:
        return
    raise ModelError(
        path,
        f"output column 'tenant_id' is {expression.sql('postgres')}, not the tenant_id column of an input (such as "
        f"{aliases[0] if aliases else 'e'}.tenant_id): every row must belong to the tenant whose rows it sums",
        construct="tenant isolation",
    )


# Subtrees whose columns need not be grouped (aggregated, windowed, in a subquery), or that the validator reports
# for themselves (unknown functions).
_NOT_GROUPED = (
    exp.AggFunc,
    exp.Anonymous,
    exp.Window,
    exp.Filter,
    exp.WithinGroup,
    exp.Subquery,
    exp.Select,
    exp.Exists,
)


def _ungrouped_columns(expression: exp.Expression, keys: Sequence[exp.Expression]) -> list[exp.Column]:
    """The columns of ``expression`` outside aggregates and outside any subtree equal to one of ``keys``."""
    types = {type(k) for k in keys}
    found: list[exp.Column] = []
    stack = [expression]
    while stack:  # not recursive: a long chain of a + b + ... is deep
        node = stack.pop()
        if isinstance(node, _NOT_GROUPED) or (type(node) in types and any(_same(node, k) for k in keys)):
            continue
        if isinstance(node, exp.Column):
            found.append(node)
        else:
            stack.extend(reversed(list(node.iter_expressions())))
    return found


def _check_grouped(
    path: Path,
    query: exp.Select,
    columns: Sequence[str],
    grain: Sequence[str],
    grain_expressions: Sequence[exp.Expression],
) -> None:
    for column, expression in zip(grain, grain_expressions, strict=True):
        if expression.find(exp.AggFunc) is not None:
            raise ModelError(
                path,
                f"grain column '{column}' is an aggregate ({expression.sql('postgres')}); the grain lists the "
                f"columns the rows are grouped by",
                construct="grain",
            )
    having = query.args.get("having")
    checked: list[tuple[str, exp.Expression | None]] = [
        (f"output column '{c}'", _unaliased(p)) for c, p in zip(columns, query.expressions, strict=True)
    ]
    checked.append(("HAVING", having.this if having is not None else None))
    for place, value in checked:
        if value is None or value in grain_expressions:
            continue
        ungrouped = _ungrouped_columns(value, grain_expressions)
        if ungrouped:
            raise ModelError(
                path,
                f"{place} uses {ungrouped[0].sql('postgres')} outside an aggregate and it is not a GROUP BY key; "
                f"aggregate it or add it to the grain",
                construct="grain",
            )


def _at_level(node: exp.Expr, query: exp.Select) -> bool:
    """Whether ``node`` belongs to ``query`` itself rather than to a subquery of it."""
    return node.find_ancestor(exp.Select) is query


def _aggregate_call(aggregate: exp.AggFunc) -> exp.Expr:
    """The whole call of an aggregate: with its FILTER (WHERE ...) and WITHIN GROUP (ORDER BY ...), if any."""
    call: exp.Expr = aggregate
    while isinstance(call.parent, exp.Filter | exp.WithinGroup) and call.arg_key == "this":
        call = call.parent
    return call


def _check_aggregates(path: Path, query: exp.Select) -> None:
    """Reject what PostgreSQL and Redshift refuse when the query runs: an aggregate or window function in WHERE or
    in a JOIN condition, and one inside an aggregate's arguments, FILTER or WITHIN GROUP."""
    where = query.args.get("where")
    places = [("WHERE", where.this if where is not None else None)]
    for join, item in zip(query.args.get("joins") or [], _from_items(query)[1:], strict=True):
        places.append((f"the ON condition of the join of {_alias(item)}", join.args.get("on")))
    for place, condition in places:
        for node in condition.find_all(exp.AggFunc, exp.Window) if condition is not None else []:
            if _at_level(node, query):
                kind, advice = (
                    ("window function", "window functions are computed after grouping; remove it")
                    if isinstance(node, exp.Window)
                    else ("aggregate", "filter groups with HAVING instead")
                )
                raise ModelError(
                    path,
                    f"{place} uses the {kind} {node.sql('postgres')}, which PostgreSQL and Redshift refuse there: "
                    f"rows are joined and filtered before they are grouped; {advice}",
                    construct=f"{kind} in WHERE" if place == "WHERE" else f"{kind} in JOIN",
                )
    for aggregate in query.find_all(exp.AggFunc):
        call = _aggregate_call(aggregate)
        if not _at_level(aggregate, query) or isinstance(call.parent, exp.Window):
            continue  # a subquery's own, or a window function (SUM(COUNT(*)) OVER (...) sums the groups' counts)
        for inner in call.find_all(exp.AggFunc, exp.Window):
            if inner is not aggregate and _at_level(inner, query):
                kind = "window function" if isinstance(inner, exp.Window) else "aggregate"
                raise ModelError(
                    path,
                    f"aggregate {call.sql('postgres')} contains the {kind} {inner.sql('postgres')}: PostgreSQL and "
                    f"Redshift refuse {kind}s inside an aggregate; aggregate once here, and aggregate this model's "
                    f"column again in a model that refs it",
                    construct=f"nested {kind}",
                )


def _normalised(expression: exp.Expression) -> exp.Expression:
    """A copy with identifiers as PostgreSQL resolves them: unquoted ones folded to lower case, quotes dropped
    where they change nothing (``e."tenant_id"`` is ``e.tenant_id``)."""
    copy = expression.copy()
    for identifier in copy.find_all(exp.Identifier):
        if not identifier.quoted or identifier.name == identifier.name.lower():
            identifier.set("this", identifier.name.lower())
            identifier.set("quoted", False)
    return copy


def _same(left: exp.Expression, right: exp.Expression) -> bool:
    return _normalised(left) == _normalised(right)


def _output_columns(path: Path, query: exp.Select) -> tuple[str, ...]:
    names: list[str] = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
            raise ModelError(path, "SELECT * is not allowed: name every output column", construct="grain")
        name = projection.alias_or_name
        if not name or not _NAME.match(name):
            raise ModelError(
                path,
                f"output column '{projection.sql('postgres')}' needs an alias of lower-case letters and digits",
                construct="grain",
            )
        if name in names:
            raise ModelError(path, f"output column '{name}' appears twice", construct="grain")
        if name in SYSTEM_COLUMNS:
            raise ModelError(
                path,
                f"output column '{name}' has the name of a system column, which a PostgreSQL table cannot have as a "
                f"column (and OID is a reserved word on Redshift); rename it",
                construct="system column",
            )
        names.append(name)
    return tuple(names)


def _unaliased(projection: exp.Expression) -> exp.Expression:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _grain_expressions(
    path: Path, query: exp.Select, grain: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[exp.Expression, ...]:
    group = query.args.get("group")
    keys: Iterable[exp.Expression] = group.expressions if group is not None else []
    projections = {name: _unaliased(p) for name, p in zip(columns, query.expressions, strict=True)}
    grouped: list[str] = []
    for key in keys:
        name = _group_key_name(key, projections)
        if name is None:
            raise ModelError(
                path,
                f"GROUP BY expression '{key.sql('postgres')}' is not an output column; "
                f"select it under a grain column name",
                construct="grain",
            )
        grouped.append(name)
    for column in grain:
        if column not in columns:
            raise ModelError(path, f"grain column '{column}' is not an output column of the SELECT", construct="grain")
        if column not in grouped:
            raise ModelError(path, f"grain column '{column}' is not a GROUP BY key", construct="grain")
    for name in grouped:
        if name not in grain:
            raise ModelError(
                path, f"GROUP BY key '{name}' is not in the declared grain {list(grain)}", construct="grain"
            )
    return tuple(projections[column].copy() for column in grain)


def _group_key_name(key: exp.Expression, projections: dict[str, exp.Expression]) -> str | None:
    if isinstance(key, exp.Literal) and key.is_int:
        position = int(key.this)
        names = list(projections)
        return names[position - 1] if 1 <= position <= len(names) else None
    for name, expression in projections.items():
        if _same(expression, key):
            return name
    if isinstance(key, exp.Column) and not key.table and key.name in projections:
        return key.name  # GROUP BY DAY names the output column day
    return None


def _group_by_names(query: exp.Select, columns: Sequence[str]) -> tuple[str, ...]:
    """The output columns that the query's GROUP BY names by a bare name (which ``_qualify_columns`` left alone)."""
    group = query.args.get("group")
    keys = group.expressions if group is not None else []
    named = (k.name for k in keys if isinstance(k, exp.Column) and not k.table)
    return tuple(name for name in named if name in columns)


def _group_by_name_errors(model: Model, by_name: Mapping[str, Model]) -> list[ModelError]:
    """A GROUP BY key written as a bare name that is both an output column and an input column.

    The loader groups by the output column's expression; PostgreSQL reads a bare GROUP BY name as an input column
    first (and refuses it when two inputs have one). A ref's columns are its model's output columns (an unknown ref
    is reported as such), a source's those of ``SOURCES``; any other input (a subquery) may have a column of any name.
    """
    errors: list[ModelError] = []
    items = _from_items(model.query)
    for name in model.group_by_names:
        expression = _unaliased(model.query.expressions[model.columns.index(name)])
        candidates: list[tuple[str, str]] = []  # (input alias, why it has or may have a column of that name)
        for item in items:
            alias = _alias(item)
            if isinstance(item, exp.Table) and item.db == MODEL_SCHEMA:
                parent = by_name.get(item.name)
                if parent is not None and name in parent.columns:
                    candidates.append((alias, f"{alias}.{name} is a column of model {item.name}"))
            elif isinstance(item, exp.Table) and input_name_of(item) in SOURCES:
                if name in SOURCES[input_name_of(item)].columns:
                    candidates.append((alias, f"{alias}.{name} is a column of {input_name_of(item)}"))
            else:
                candidates.append((alias, f"{alias} may have a column {name}"))
        if not candidates:
            continue
        (alias, _), *others = candidates
        same = isinstance(expression, exp.Column) and expression.table == alias and expression.name == name
        if same and not others:
            continue  # the same column either way
        reasons = " and ".join(reason for _, reason in candidates)
        refused = " (PostgreSQL refuses a name that two inputs have)" if others else ""
        errors.append(
            ModelError(
                model.path,
                f"GROUP BY {name} is ambiguous: this model groups by its output column {name} "
                f"({expression.sql('postgres')}), but PostgreSQL reads a bare GROUP BY name as an input column first, "
                f"and {reasons}{refused}; group by the expression or its position, or rename the output column",
                construct="ambiguous GROUP BY",
            )
        )
    return errors
