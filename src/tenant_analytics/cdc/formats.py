"""Maxwell and Debezium JSON change records parsed into one ``Change``.

Source identity (equal when the same change is published twice, different for different changes):

* Maxwell: ``maxwell|<database>|<table>|<position>|<primary key>`` where position is the binlog
  ``file:offset`` (``output_binlog_position``). Rows of one multi-row binlog event share a position, so the
  primary key tells them apart. Without a position it falls back to ``xid:<xid>:<xoffset>`` (the row's offset
  in its transaction) and, lacking both, to the bare xid (then two changes of one row in one transaction are
  counted once: configure ``output_binlog_position`` to avoid that).
* Debezium: ``debezium|<db>|<table>|<file>:<pos>:<row>|<primary key>`` for MySQL (``row`` is the row's index
  in the binlog event) and ``...|lsn:<lsn>|<primary key>`` for PostgreSQL. Snapshot rows share one position,
  so the primary key is always part of the identity.

The commit timestamp is Maxwell's ``ts`` (seconds) and Debezium's ``source.ts_ms`` (falling back to the
envelope's ``ts_ms``, the connector's processing time, only when the source has none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tenant_analytics.cdc.config import CdcConfig, TableConfig
from tenant_analytics.cdc.model import Change, Ignored, Op, RejectCode, SourceFormat
from tenant_analytics.tenants.models import TENANT_ID_PATTERN, is_tenant_id

_MAXWELL_OPS = {"insert": Op.INSERT, "update": Op.UPDATE, "delete": Op.DELETE, "bootstrap-insert": Op.INSERT}
_MAXWELL_CONTROL = frozenset(
    {
        "bootstrap-start",
        "bootstrap-complete",
        "table-create",
        "table-alter",
        "table-drop",
        "database-create",
        "database-alter",
        "database-drop",
        "heartbeat",
    }
)
_DEBEZIUM_OPS = {"c": Op.INSERT, "u": Op.UPDATE, "d": Op.DELETE, "r": Op.INSERT}
_DEBEZIUM_CONTROL = frozenset({"t", "m"})  # truncate, logical-decoding message
# Latest commit time accepted as a number at all (year 9999); anything past it is garbage, not "the future".
_MAX_EPOCH_SECONDS = 253_402_300_799


class MalformedChange(Exception):
    """A record that can never be turned into a change; carries the reject code and a reason."""

    def __init__(self, code: RejectCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def detect_format(doc: Any) -> SourceFormat:
    """Recognise a decoded JSON document as Maxwell or Debezium; raise MalformedChange otherwise."""
    if isinstance(doc, dict):
        if "op" in doc or ("payload" in doc and "schema" in doc):
            return SourceFormat.DEBEZIUM
        if "type" in doc and "table" in doc and "database" in doc:
            return SourceFormat.MAXWELL
        if "type" in doc and doc.get("type") in _MAXWELL_CONTROL:
            return SourceFormat.MAXWELL
    raise MalformedChange(RejectCode.UNKNOWN_FORMAT, "record is neither a Maxwell nor a Debezium change")


def parse_document(doc: Any, fmt: SourceFormat, config: CdcConfig) -> Change | Ignored:
    """Parse one decoded JSON change record; return the Change, or why it is ignored; raise MalformedChange."""
    if doc is None:
        return Ignored("tombstone")  # a Debezium delete's follow-up (JSON null), whatever the configured format
    if fmt is SourceFormat.AUTO:
        fmt = detect_format(doc)
    if fmt is SourceFormat.MAXWELL:
        return parse_maxwell(doc, config)
    return parse_debezium(doc, config)


def parse_maxwell(doc: Any, config: CdcConfig) -> Change | Ignored:
    """Parse a Maxwell JSON record (see the module docstring for identity and time)."""
    if not isinstance(doc, dict):
        raise MalformedChange(RejectCode.UNKNOWN_FORMAT, "Maxwell record is not a JSON object")
    kind = doc.get("type")
    if kind in _MAXWELL_CONTROL:
        return Ignored("control")
    op = _MAXWELL_OPS.get(kind) if isinstance(kind, str) else None
    if op is None:
        raise MalformedChange(RejectCode.UNKNOWN_FORMAT, f"Maxwell record has unknown type {_short(kind)}")
    table_name = _required_str(doc, "table", "Maxwell")
    table = config.tables.get(table_name)
    if table is None:
        return Ignored("unknown_table")
    database = _required_str(doc, "database", "Maxwell")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise MalformedChange(RejectCode.MISSING_FIELD, "Maxwell record has no 'data' object")
    committed_at = _epoch(doc.get("ts"), 1.0, "Maxwell 'ts'")
    after: dict[str, Any] | None = data
    before: dict[str, Any] | None = None
    changed: frozenset[str] | None = None
    if op is Op.UPDATE:
        old = doc.get("old", {})
        if not isinstance(old, dict):
            raise MalformedChange(RejectCode.MISSING_FIELD, "Maxwell update has an 'old' that is not an object")
        before = {**data, **old}
        changed = frozenset(old)
    elif op is Op.DELETE:
        after, before = None, data
    position = doc.get("position")
    if isinstance(position, str) and position:
        where = position
    elif doc.get("xid") is not None:
        where = f"xid:{doc['xid']}:{doc['xoffset']}" if doc.get("xoffset") is not None else f"xid:{doc['xid']}"
    else:
        raise MalformedChange(RejectCode.MISSING_FIELD, "Maxwell record has neither 'position' nor 'xid'")
    row = data
    return Change(
        source_table=table_name,
        op=op,
        tenant_id=tenant_of(row, table),
        after=after,
        before=before,
        changed=changed,
        committed_at=committed_at,
        source_identity=f"maxwell|{database}|{table_name}|{where}|{_primary_key(row, table)}",
        source_database=database,
        snapshot=kind == "bootstrap-insert",
    )


def parse_debezium(doc: Any, config: CdcConfig) -> Change | Ignored:
    """Parse a Debezium JSON change event, with or without the ``schema``/``payload`` wrapper."""
    if isinstance(doc, dict) and "payload" in doc and "op" not in doc:
        doc = doc["payload"]
    if doc is None:
        return Ignored("tombstone")
    if not isinstance(doc, dict):
        raise MalformedChange(RejectCode.UNKNOWN_FORMAT, "Debezium payload is not a JSON object")
    code = doc.get("op")
    if code in _DEBEZIUM_CONTROL:
        return Ignored("control")
    op = _DEBEZIUM_OPS.get(code) if isinstance(code, str) else None
    if op is None:
        raise MalformedChange(RejectCode.UNKNOWN_FORMAT, f"Debezium event has unknown op {_short(code)}")
    source = doc.get("source")
    if not isinstance(source, dict):
        raise MalformedChange(RejectCode.MISSING_FIELD, "Debezium event has no 'source' object")
    table_name = _required_str(source, "table", "Debezium source")
    table = config.tables.get(table_name)
    if table is None:
        return Ignored("unknown_table")
    database = str(source.get("db") or "")
    before, after = doc.get("before"), doc.get("after")
    if before is not None and not isinstance(before, dict):
        raise MalformedChange(RejectCode.MISSING_FIELD, "Debezium 'before' is not an object")
    if after is not None and not isinstance(after, dict):
        raise MalformedChange(RejectCode.MISSING_FIELD, "Debezium 'after' is not an object")
    row = before if op is Op.DELETE else after
    if row is None:
        side = "before" if op is Op.DELETE else "after"
        raise MalformedChange(RejectCode.MISSING_FIELD, f"Debezium '{code}' event has no '{side}' row")
    changed: frozenset[str] | None = None
    if op is Op.UPDATE and before is not None and after is not None:
        changed = frozenset(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
    ts = source.get("ts_ms")
    committed_at = _epoch(ts if ts is not None else doc.get("ts_ms"), 0.001, "Debezium 'source.ts_ms'")
    if source.get("lsn") is not None:
        where = f"lsn:{source['lsn']}"
    elif source.get("file") is not None and source.get("pos") is not None:
        where = f"{source['file']}:{source['pos']}:{source.get('row', 0)}"
    else:
        raise MalformedChange(RejectCode.MISSING_FIELD, "Debezium source has neither 'lsn' nor 'file'/'pos'")
    return Change(
        source_table=table_name,
        op=op,
        tenant_id=tenant_of(row, table),
        after=after if op is not Op.DELETE else None,
        before=before,
        changed=changed,
        committed_at=committed_at,
        source_identity=f"debezium|{database}|{table_name}|{where}|{_primary_key(row, table)}",
        source_database=database,
        snapshot=code == "r" or source.get("snapshot") in (True, "true", "last", "first"),
    )


def tenant_of(row: Mapping[str, Any], table: TableConfig) -> str:
    """Return the tenant id (the tenant column's value as text); raise MalformedChange if absent or invalid."""
    value = row.get(table.tenant_column)
    if value is None:
        raise MalformedChange(RejectCode.MISSING_TENANT, f"row has no tenant column '{table.tenant_column}'")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedChange(RejectCode.INVALID_TENANT, f"tenant column '{table.tenant_column}' is not text")
    tenant = str(value)
    if not is_tenant_id(tenant):
        raise MalformedChange(
            RejectCode.INVALID_TENANT,
            f"tenant id {_short(tenant)} does not match {TENANT_ID_PATTERN.pattern}",
        )
    return tenant


def _primary_key(row: Mapping[str, Any], table: TableConfig) -> str:
    try:
        # repr keeps types apart (1 vs "1") and is cheap; identities are compared within one format only
        return repr(tuple(row[c] for c in table.primary_key))
    except KeyError as exc:
        raise MalformedChange(RejectCode.MISSING_PRIMARY_KEY, f"row has no primary-key column {exc}") from exc


def _epoch(value: Any, scale: float, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedChange(RejectCode.BAD_TIMESTAMP, f"{what} is missing or not a number")
    seconds = value * scale
    if not math.isfinite(seconds) or not 0 <= seconds <= _MAX_EPOCH_SECONDS:
        raise MalformedChange(RejectCode.BAD_TIMESTAMP, f"{what} = {_short(value)} is not a valid time")
    return datetime.fromtimestamp(seconds, UTC)


def _required_str(doc: Mapping[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedChange(RejectCode.MISSING_FIELD, f"{what} has no '{key}'")
    return value


def _short(value: Any, limit: int = 80) -> str:
    """Quote a value for a reason message, truncated (it may be hostile and long)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
