"""From Kinesis records (base64, possibly KPL-aggregated) to user-record payloads, and from payloads to changes.

KPL aggregation is undone with the maintained ``aws-kinesis-agg`` package. Every failure here is permanent
(retrying cannot fix the bytes), so it becomes a ``Rejection`` and never an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from tenant_analytics.cdc.config import CdcConfig
from tenant_analytics.cdc.formats import MalformedChange, parse_document
from tenant_analytics.cdc.model import Change, Ignored, RejectCode, Rejection, SourceFormat, StreamRecord

try:  # optional: four times faster than the standard library, and parsing JSON is most of the work
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None  # type: ignore[assignment]

MAX_RECORD_BYTES = 1024 * 1024
# base64 of MAX_RECORD_BYTES (rounded up to whole quanta), so oversized input is refused before decoding it.
_MAX_B64_CHARS = 4 * ((MAX_RECORD_BYTES + 2) // 3)
_PREVIEW_BYTES = 16 * 1024
KPL_MAGIC = b"\xf3\x89\x9a\xc2"


@dataclass(slots=True)
class Parsed:
    """What one user record became: a change, or the reason it is ignored or rejected."""

    sequence: int
    sequence_number: str
    sub_sequence_number: int | None
    result: Change | Ignored | Rejection


@cache
def _deaggregator() -> Any:
    # The package puts its own folder on sys.path when imported; keep the interpreter's path as it was.
    saved = list(sys.path)
    try:
        from aws_kinesis_agg import deaggregator
    finally:
        sys.path[:] = saved
    return deaggregator


def user_records(record: StreamRecord) -> list[tuple[int | None, bytes]] | Rejection:
    """Decode one Kinesis record into its user records ``(sub-sequence number or None, payload)``."""
    if len(record.data) > _MAX_B64_CHARS:
        return _reject(record, None, RejectCode.OVERSIZED, f"record is larger than {MAX_RECORD_BYTES} bytes", b"")
    try:
        payload = base64.b64decode(record.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        return _reject(record, None, RejectCode.BAD_BASE64, f"record data is not valid base64: {exc}", b"")
    if len(payload) > MAX_RECORD_BYTES:
        return _reject(record, None, RejectCode.OVERSIZED, f"record is larger than {MAX_RECORD_BYTES} bytes", payload)
    if not payload.startswith(KPL_MAGIC):
        return [(None, payload)]
    envelope = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "sequenceNumber": record.sequence_number,
            "approximateArrivalTimestamp": 0,
            "partitionKey": record.partition_key,
            "data": record.data,
        }
    }
    out: list[tuple[int | None, bytes]] = []
    try:
        for sub in _deaggregator().iter_deaggregate_records([envelope]):
            if not sub["kinesis"].get("aggregated"):
                # the package hands the record back unchanged when its digest or protobuf body is invalid
                return _reject(record, None, RejectCode.BAD_KPL, "KPL-aggregated record is corrupt", payload)
            out.append((int(sub["kinesis"]["subSequenceNumber"]), base64.b64decode(sub["kinesis"]["data"])))
    except Exception as exc:  # the package raises whatever protobuf raises
        return _reject(record, None, RejectCode.BAD_KPL, f"KPL-aggregated record is corrupt: {exc}", payload)
    return out


def parse_record(
    record: StreamRecord,
    seq: int,
    config: CdcConfig,
    fmt: SourceFormat,
    *,
    not_after: datetime,
) -> list[Parsed]:
    """Decode and parse every user record of one Kinesis record (``seq``: its sequence number as an int).

    Changes committed after ``not_after`` are rejected.
    """
    decoded = user_records(record)
    if isinstance(decoded, Rejection):
        return [Parsed(seq, record.sequence_number, None, decoded)]
    out: list[Parsed] = []
    for sub, payload in decoded:
        out.append(
            Parsed(seq, record.sequence_number, sub, _parse_payload(record, sub, payload, config, fmt, not_after))
        )
    return out


def _parse_payload(
    record: StreamRecord,
    sub: int | None,
    payload: bytes,
    config: CdcConfig,
    fmt: SourceFormat,
    not_after: datetime,
) -> Change | Ignored | Rejection:
    if len(payload) > MAX_RECORD_BYTES:
        return _reject(record, sub, RejectCode.OVERSIZED, f"record is larger than {MAX_RECORD_BYTES} bytes", payload)
    try:
        doc = loads(payload)
    except ValueError as exc:  # includes UnicodeDecodeError
        return _reject(record, sub, RejectCode.BAD_JSON, f"record is not valid JSON: {exc}", payload)
    except RecursionError:
        return _reject(record, sub, RejectCode.BAD_JSON, "record nests too deeply to be a change", payload)
    try:
        result = parse_document(doc, fmt, config)
    except MalformedChange as exc:
        return _reject(record, sub, exc.code, exc.reason, payload)
    if isinstance(result, Change) and result.committed_at > not_after:
        reason = (
            f"change committed at {result.committed_at.isoformat()} lies in the future"
            f" (latest accepted commit time is {not_after.isoformat()})"
        )
        return _reject(record, sub, RejectCode.FUTURE_CHANGE, reason, payload)
    return result


def loads(payload: bytes) -> Any:
    """Decode JSON with orjson when installed, else (or when orjson refuses, e.g. integers beyond 64 bits) json."""
    if _orjson is not None:
        try:
            return _orjson.loads(payload)
        except _orjson.JSONDecodeError:
            pass
    return json.loads(payload)


def _reject(record: StreamRecord, sub: int | None, code: RejectCode, reason: str, payload: bytes) -> Rejection:
    preview = base64.b64encode(payload[:_PREVIEW_BYTES]).decode() if payload else record.data[:_PREVIEW_BYTES]
    return Rejection(
        sequence_number=record.sequence_number,
        sub_sequence_number=sub,
        code=code,
        reason=reason,
        data_preview=preview,
        data_size=len(payload) if payload else len(record.data),
    )
