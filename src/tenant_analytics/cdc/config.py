"""Which metric each change feeds, with which dimensions: data (a JSON file), validated with pydantic.

The shipped default is ``metrics.json`` beside this module. A rule matches a change when its op is listed and,
for a rule on a ``column``, that column changed (its value before differs from its value after), its new value
is in ``becomes`` (when given) and its old value in ``was`` (when given). Every matching rule adds one increment.
Snapshot rows (Maxwell bootstrap-insert, Debezium op ``r``) feed no metric unless a rule sets
``include_snapshots``: they restate existing rows, they are not new events.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tenant_analytics.errors import InvalidInput

DEFAULT_CONFIG_PATH = Path(__file__).with_name("metrics.json")

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class MetricRule(BaseModel):
    """One metric fed by changes of a table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    ops: tuple[Literal["insert", "update", "delete"], ...] = Field(min_length=1)
    column: str | None = None
    becomes: tuple[str, ...] | None = None
    was: tuple[str, ...] | None = None
    dimensions: tuple[str, ...] | None = Field(default=None, description="overrides the table's dimensions")
    include_snapshots: bool = False

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"metric name '{value}' must match {_NAME.pattern}")
        return value

    @model_validator(mode="after")
    def _column_needed(self) -> MetricRule:
        if (self.becomes is not None or self.was is not None) and self.column is None:
            raise ValueError(f"rule '{self.metric}': 'becomes'/'was' need a 'column'")
        return self


class TableConfig(BaseModel):
    """A source table whose changes feed metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_column: str
    primary_key: tuple[str, ...] = Field(min_length=1)
    dimensions: tuple[str, ...] = ()
    rules: tuple[MetricRule, ...] = Field(min_length=1)

    @field_validator("tenant_column", "primary_key", "dimensions")
    @classmethod
    def _columns(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        for name in (value,) if isinstance(value, str) else value:
            if not _COLUMN.match(name):
                raise ValueError(f"column name '{name}' is not a plain identifier")
        return value


class CdcConfig(BaseModel):
    """Metric mapping of every table the aggregator knows; other tables are ignored (and counted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tables: dict[str, TableConfig]

    @model_validator(mode="after")
    def _metric_dimensions_consistent(self) -> CdcConfig:
        seen: dict[str, tuple[str, ...]] = {}
        for table_name, table in self.tables.items():
            for rule in table.rules:
                dims = rule.dimensions if rule.dimensions is not None else table.dimensions
                if seen.setdefault(rule.metric, dims) != dims:
                    raise ValueError(f"metric '{rule.metric}' has different dimensions in table '{table_name}'")
        return self

    def metric_dimensions(self) -> dict[str, tuple[str, ...]]:
        """Return every metric with the dimensions it is split by."""
        out: dict[str, tuple[str, ...]] = {}
        for table in self.tables.values():
            for rule in table.rules:
                out[rule.metric] = rule.dimensions if rule.dimensions is not None else table.dimensions
        return out


def parse_config(text: str, *, source: str = "<config>") -> CdcConfig:
    """Validate a JSON metric mapping; raise InvalidInput naming the first problem."""
    try:
        return CdcConfig.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"CDC metric config {source} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"CDC metric config {source} is invalid at '{where}': {first['msg']}", field=where) from exc


@cache
def load_config(path: Path | None = None) -> CdcConfig:
    """Load (once per path) the metric mapping from ``path``, or the default shipped with the package."""
    target = path or DEFAULT_CONFIG_PATH
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"CDC metric config {target} cannot be read: {exc.strerror}") from exc
    return parse_config(text, source=str(target))
