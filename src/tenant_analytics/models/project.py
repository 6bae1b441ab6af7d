"""Model files: parsing, grain checks and the dependency graph computed from ``ref`` and ``source`` calls.

A model file is ``<domain>/<name>.sql``: a first line ``{{ config(grain=['tenant_id', ...]) }}`` and one
``SELECT ... GROUP BY`` in PostgreSQL-flavoured SQL that names its inputs as ``{{ ref('model') }}`` or
``{{ source('schema.table') }}``. The parsed query is kept in a canonical form (inputs resolved to table names,
GROUP BY listing the grain expressions in grain order) that both compilers start from.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from tenant_analytics.errors import InvalidInput
from tenant_analytics.models.sources import SOURCES

MODEL_SCHEMA = "models"
PACKAGED_SQL = Path(__file__).resolve().parent / "sql"

_CONFIG = re.compile(r"^\s*\{\{\s*config\((?P<args>.*)\)\s*\}\}\s*$")
_CALL = re.compile(r"\{\{\s*(?P<kind>ref|source)\(\s*'(?P<arg>[^']+)'\s*\)\s*\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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
    text = path.read_text()
    name = path.stem
    if not _NAME.match(name):
        raise ModelError(path, f"model name '{name}' must be lower-case letters, digits and underscores")
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
    if "{{" in resolved or "{%" in resolved:
        raise ModelError(path, "only {{ ref('model') }} and {{ source('schema.table') }} may appear in the SELECT")
    try:
        statements = [s for s in sqlglot.parse(resolved, read="postgres") if s is not None]
    except ParseError as exc:
        raise ModelError(path, f"SQL does not parse: {exc}", construct="syntax") from exc
    if len(statements) != 1:
        raise ModelError(path, f"a model holds one SELECT, found {len(statements)} statements", construct="syntax")
    query = statements[0]
    if isinstance(query, exp.SetOperation):
        kind = type(query).__name__.upper()
        raise ModelError(path, f"set operation {kind}: a model is one SELECT ... GROUP BY", construct="set operation")
    if not isinstance(query, exp.Select):
        raise ModelError(path, f"a model is one SELECT ... GROUP BY, found {query.key.upper()}", construct="syntax")
    _check_tables(path, query, refs, sources)
    columns = _output_columns(path, query)
    grain_expressions = _grain_expressions(path, query, grain, columns)
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
    )


def load_project(directory: Path | None = None) -> ModelProject:
    """Parse every ``<domain>/<name>.sql`` under ``directory`` (default: the packaged models) into a project.

    Returns the models in topological order; raises ModelError for the first unusable file, an unknown ref or a
    cycle, naming the file and the problem.
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
    """Return ``models`` in topological order; raises ModelError on duplicate names, unknown refs and cycles."""
    by_name: dict[str, Model] = {}
    for model in models:
        if model.name in by_name:
            raise ModelError(model.path, f"model name '{model.name}' is also used by {by_name[model.name].path}")
        by_name[model.name] = model
    for model in models:
        for ref in model.refs:
            if ref not in by_name:
                raise ModelError(model.path, f"unknown ref '{ref}': no model file {ref}.sql", construct="unknown ref")
    ordered: list[Model] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(model: Model, path: list[str]) -> None:
        if state.get(model.name) == 2:
            return
        if state.get(model.name) == 1:
            cycle = [*path[path.index(model.name) :], model.name]
            raise ModelError(model.path, f"dependency cycle {' -> '.join(cycle)}", construct="cycle")
        state[model.name] = 1
        for ref in sorted(model.refs):
            visit(by_name[ref], [*path, model.name])
        state[model.name] = 2
        ordered.append(model)

    for model in sorted(models, key=lambda m: m.name):
        visit(model, [])
    return tuple(ordered)


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
        if expression == key:
            return name
    if isinstance(key, exp.Column) and not key.table and key.name in projections:
        return key.name
    return None
