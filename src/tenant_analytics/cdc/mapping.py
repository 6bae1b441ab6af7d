"""Turn a change into the metric increments the configuration says it feeds (see config.py for rule semantics)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from tenant_analytics.cdc.config import CdcConfig
from tenant_analytics.cdc.model import BIN_SECONDS, Change, Increment, Op


@dataclass(frozen=True, slots=True)
class _Rule:
    metric: str
    column: str | None
    becomes: frozenset[str] | None
    was: frozenset[str] | None
    dimensions: tuple[str, ...]
    include_snapshots: bool


# Rules indexed by table and op, per config object (configs are immutable; a process holds one or two).
_COMPILED: dict[int, tuple[CdcConfig, dict[tuple[str, Op], tuple[_Rule, ...]]]] = {}


def _rules(config: CdcConfig) -> dict[tuple[str, Op], tuple[_Rule, ...]]:
    hit = _COMPILED.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    index: dict[tuple[str, Op], tuple[_Rule, ...]] = {}
    for name, table in config.tables.items():
        for op in Op:
            index[(name, op)] = tuple(
                _Rule(
                    metric=r.metric,
                    column=r.column,
                    becomes=frozenset(r.becomes) if r.becomes is not None else None,
                    was=frozenset(r.was) if r.was is not None else None,
                    dimensions=r.dimensions if r.dimensions is not None else table.dimensions,
                    include_snapshots=r.include_snapshots,
                )
                for r in table.rules
                if op.value in r.ops
            )
    if len(_COMPILED) > 16:
        _COMPILED.clear()
    _COMPILED[id(config)] = (config, index)
    return index


def increments_for(change: Change, config: CdcConfig) -> list[Increment]:
    """Return one increment per matching rule of the change's table (none for an unknown table)."""
    return [
        Increment(
            tenant_id=change.tenant_id,
            metric=metric,
            dimensions=tuple(json.loads(dims).items()),
            bin_start=datetime.fromtimestamp(bin_epoch, UTC),
        )
        for metric, dims, bin_epoch in increment_keys(change, config)
    ]


def increment_keys(change: Change, config: CdcConfig) -> tuple[tuple[str, str, int], ...]:
    """Return ``(metric, canonical dimensions JSON, bin start in epoch seconds)`` per matching rule (hot path)."""
    rules = _rules(config).get((change.source_table, change.op))
    if not rules:
        return ()
    out: list[tuple[str, str, int]] = []
    row = change.row
    for rule in rules:
        if change.snapshot and not rule.include_snapshots:
            continue
        if rule.column is not None and not _column_matches(rule, rule.column, change):
            continue
        if not out:
            epoch = int(change.committed_at.timestamp())
            bin_epoch = epoch - epoch % BIN_SECONDS
        values = tuple(_text(row.get(name)) for name in rule.dimensions)
        out.append((rule.metric, dimensions_json(rule.dimensions, values), bin_epoch))
    return tuple(out)


@lru_cache(maxsize=65536)
def dimensions_json(names: tuple[str, ...], values: tuple[str | None, ...]) -> str:
    """Return the canonical JSON text of a bin's dimension values (keys sorted, no spaces)."""
    return json.dumps(dict(zip(names, values, strict=True)), sort_keys=True, separators=(",", ":"))


def _column_matches(rule: _Rule, column: str, change: Change) -> bool:
    if change.op is Op.UPDATE:
        # The column must have changed; when the format cannot say (no before image) nothing is claimed.
        if change.changed is None or column not in change.changed or change.before is None:
            return False
        old, new = _text(change.before.get(column)), _text(_get(change.after, column))
        if old == new:
            return False
    elif change.op is Op.INSERT:
        old, new = None, _text(_get(change.after, column))
    else:
        old, new = _text(_get(change.before, column)), None
    if rule.was is not None and old not in rule.was:
        return False
    return rule.becomes is None or new in rule.becomes


def _get(row: Mapping[str, Any] | None, column: str) -> Any:
    return row.get(column) if row is not None else None


def _text(value: Any) -> str | None:
    # Formats disagree on types (Maxwell 1 vs Debezium "1"); dimension values are compared and stored as text.
    return None if value is None else value if isinstance(value, str) else str(value)
