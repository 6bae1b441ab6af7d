"""Synthetic Maxwell and Debezium change records (tests, benchmark, local demo): deterministic for a seed."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from tenant_analytics.cdc.model import StreamRecord

TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
MESSAGE_STATUSES = ("queued", "sent", "delivered", "read", "failed")
CHANNELS = ("email", "web", "chat", "voice", "api")
PRIORITIES = ("low", "normal", "high", "urgent")


def maxwell_change(
    table: str,
    kind: str,
    data: Mapping[str, Any],
    *,
    ts: float,
    position: str | None,
    xid: int = 1,
    xoffset: int | None = None,
    old: Mapping[str, Any] | None = None,
    database: str = "app",
) -> dict[str, Any]:
    """Return a Maxwell JSON record (``kind``: insert, update, delete, bootstrap-insert, ...)."""
    doc: dict[str, Any] = {"database": database, "table": table, "type": kind, "ts": ts, "xid": xid, "data": dict(data)}
    if xoffset is not None:
        doc["xoffset"] = xoffset
    else:
        doc["commit"] = True
    if position is not None:
        doc["position"] = position
    if old is not None:
        doc["old"] = dict(old)
    return doc


def debezium_change(
    table: str,
    op: Literal["c", "u", "d", "r"],
    *,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    ts_ms: int,
    file: str | None = None,
    pos: int | None = None,
    row: int = 0,
    lsn: int | None = None,
    database: str = "app",
    wrapped: bool = False,
) -> dict[str, Any]:
    """Return a Debezium change event (MySQL source with ``file``/``pos``, PostgreSQL with ``lsn``)."""
    source: dict[str, Any] = {"connector": "mysql" if lsn is None else "postgresql", "db": database, "table": table}
    source["ts_ms"] = ts_ms
    source["snapshot"] = "true" if op == "r" else "false"
    if lsn is not None:
        source.update(schema="public", lsn=lsn, txId=lsn // 10)
    else:
        source.update(file=file, pos=pos, row=row)
    payload: dict[str, Any] = {
        "before": dict(before) if before is not None else None,
        "after": dict(after) if after is not None else None,
        "source": source,
        "op": op,
        "ts_ms": ts_ms + 250,
    }
    if wrapped:
        return {
            "schema": {"type": "struct", "name": f"{database}.{table}.Envelope", "optional": False},
            "payload": payload,
        }
    return payload


def encode(doc: Any) -> str:
    """Return the base64 Kinesis data of one JSON document."""
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def stream_records(payloads: Iterable[str], *, first_sequence: int = 1, step: int = 1) -> list[StreamRecord]:
    """Number base64 payloads as consecutive records of one shard (sequence numbers as decimal strings)."""
    return [
        StreamRecord(sequence_number=str(first_sequence + i * step), data=data, partition_key=f"pk-{i % 16}")
        for i, data in enumerate(payloads)
    ]


def ticket_changes(
    count: int,
    *,
    start: datetime,
    tenants: tuple[str, ...] = ("acme", "globex", "initech"),
    seconds: float = 600.0,
    seed: int = 7,
    fmt: Literal["maxwell", "debezium"] = "maxwell",
) -> list[dict[str, Any]]:
    """Return ``count`` ticket and message changes (inserts, then status updates of rows inserted before)."""
    rng = random.Random(seed)
    base = start.timestamp()
    rows: list[tuple[str, dict[str, Any]]] = []
    out: list[dict[str, Any]] = []
    for i in range(count):
        ts = base + seconds * i / max(count, 1)
        if rows and rng.random() < 0.5:
            table, row = rows[rng.randrange(len(rows))]
            statuses = TICKET_STATUSES if table == "tickets" else MESSAGE_STATUSES
            new_row = {**row, "status": rng.choice(statuses)}
            if new_row["status"] == row["status"]:
                new_row["status"] = statuses[(statuses.index(row["status"]) + 1) % len(statuses)]
            out.append(_change(fmt, table, "update", row, new_row, ts, i))
            row.update(new_row)
        else:
            table = "tickets" if rng.random() < 0.6 else "messages"
            row = {"id": i + 1, "account_id": rng.choice(tenants), "channel": rng.choice(CHANNELS)}
            if table == "tickets":
                row.update(status="new", priority=rng.choice(PRIORITIES), subject=f"ticket {i + 1}")
            else:
                row.update(status="sent", body="hello " * rng.randrange(1, 8))
            rows.append((table, row))
            out.append(_change(fmt, table, "insert", None, dict(row), ts, i))
    return out


def _change(
    fmt: str, table: str, kind: str, before: dict[str, Any] | None, after: dict[str, Any], ts: float, i: int
) -> dict[str, Any]:
    if fmt == "maxwell":
        old = {k: v for k, v in (before or {}).items() if after.get(k) != v} if kind == "update" else None
        return maxwell_change(
            table, kind, after, ts=int(ts), position=f"mysql-bin.000042:{4 + 160 * i}", xid=1000 + i, old=old
        )
    op: Literal["c", "u"] = "c" if kind == "insert" else "u"
    return debezium_change(
        table,
        op,
        before=before and dict(before),
        after=after,
        ts_ms=int(ts * 1000),
        file="mysql-bin.000042",
        pos=4 + 160 * i,
    )
