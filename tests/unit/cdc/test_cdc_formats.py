"""Maxwell and Debezium records parsed into one change model; identities; malformed records refused with reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.config import load_config
from tenant_analytics.cdc.formats import MalformedChange, detect_format, parse_document
from tenant_analytics.cdc.model import Change, Ignored, Op, RejectCode, SourceFormat

CONFIG = load_config()
TS = 1_767_614_400  # 2026-01-05T12:00:00Z
TICKET = {"id": 7, "account_id": "acme", "status": "open", "channel": "email", "priority": "high"}


def parse(doc: object, fmt: SourceFormat = SourceFormat.AUTO) -> Change | Ignored:
    return parse_document(doc, fmt, CONFIG)


def test_maxwell_insert_becomes_a_change_with_commit_time_and_tenant() -> None:
    # Given a Maxwell insert of a ticket
    doc = syn.maxwell_change("tickets", "insert", TICKET, ts=TS, position="mysql-bin.000001:100", xid=5)

    # When it is parsed
    change = parse(doc)

    # Then every field of the change model is filled from the record
    assert isinstance(change, Change)
    assert change.op is Op.INSERT and change.source_table == "tickets" and change.tenant_id == "acme"
    assert change.after == TICKET and change.before is None
    assert change.committed_at == datetime(2026, 1, 5, 12, tzinfo=UTC)
    assert change.source_identity == "maxwell|app|tickets|mysql-bin.000001:100|(7,)"
    assert not change.snapshot


def test_maxwell_update_with_old_rebuilds_the_row_before_and_the_changed_columns() -> None:
    # Given a Maxwell update whose `old` holds only the changed column
    after = {**TICKET, "status": "solved"}
    doc = syn.maxwell_change("tickets", "update", after, ts=TS, position="b:1", old={"status": "open"})

    # When it is parsed
    change = parse(doc)

    # Then the before row is the after row overlaid with `old`, and only `status` changed
    assert isinstance(change, Change)
    assert change.op is Op.UPDATE
    assert change.before == TICKET and change.after == after
    assert change.changed == frozenset({"status"})


def test_maxwell_delete_keeps_the_deleted_row_as_before() -> None:
    doc = syn.maxwell_change("tickets", "delete", TICKET, ts=TS, position="b:2")

    change = parse(doc)

    assert isinstance(change, Change)
    assert change.op is Op.DELETE and change.after is None and change.row == TICKET


def test_maxwell_bootstrap_insert_is_a_snapshot_insert_and_start_complete_are_skipped() -> None:
    # Given the three bootstrap record types
    insert = syn.maxwell_change("tickets", "bootstrap-insert", TICKET, ts=TS, position=None, xid=9)
    start = {"database": "app", "table": "tickets", "type": "bootstrap-start", "ts": TS, "data": {}}
    complete = {**start, "type": "bootstrap-complete"}

    # When they are parsed
    parsed = [parse(d) for d in (insert, start, complete)]

    # Then the row counts as an insert for state, marked snapshot, and the markers are control events
    assert isinstance(parsed[0], Change) and parsed[0].op is Op.INSERT and parsed[0].snapshot
    assert parsed[1] == Ignored("control") and parsed[2] == Ignored("control")


def test_maxwell_identity_falls_back_to_xid_and_xoffset_without_a_position() -> None:
    a = parse(syn.maxwell_change("tickets", "insert", TICKET, ts=TS, position=None, xid=42, xoffset=0))
    b = parse(syn.maxwell_change("tickets", "insert", TICKET, ts=TS, position=None, xid=42, xoffset=1))

    assert isinstance(a, Change) and isinstance(b, Change)
    assert a.source_identity.endswith("|xid:42:0|(7,)")
    assert a.source_identity != b.source_identity


@pytest.mark.parametrize("wrapped", [False, True])
def test_debezium_update_is_parsed_with_or_without_the_schema_payload_wrapper(wrapped: bool) -> None:
    # Given a Debezium MySQL update, optionally inside {"schema": ..., "payload": ...}
    after = {**TICKET, "status": "solved"}
    doc = syn.debezium_change(
        "tickets", "u", before=TICKET, after=after, ts_ms=TS * 1000 + 250, file="bin.3", pos=77, row=2, wrapped=wrapped
    )

    # When it is parsed
    change = parse(doc)

    # Then the same change comes out either way, timed by source.ts_ms, identified by file:pos:row and key
    assert isinstance(change, Change)
    assert change.op is Op.UPDATE and change.tenant_id == "acme"
    assert change.before == TICKET and change.after == after and change.changed == frozenset({"status"})
    assert change.committed_at == datetime(2026, 1, 5, 12, 0, 0, 250_000, tzinfo=UTC)
    assert change.source_identity == "debezium|app|tickets|bin.3:77:2|(7,)"


def test_debezium_postgres_source_is_identified_by_lsn_and_snapshot_reads_are_marked() -> None:
    doc = syn.debezium_change("tickets", "r", before=None, after=TICKET, ts_ms=TS * 1000, lsn=123456)

    change = parse(doc)

    assert isinstance(change, Change)
    assert change.op is Op.INSERT and change.snapshot
    assert change.source_identity == "debezium|app|tickets|lsn:123456|(7,)"


def test_debezium_delete_and_tombstone() -> None:
    delete = syn.debezium_change("tickets", "d", before=TICKET, after=None, ts_ms=TS * 1000, file="f", pos=1)

    change = parse(delete)

    assert isinstance(change, Change) and change.op is Op.DELETE and change.row == TICKET
    assert parse({"schema": {}, "payload": None}) == Ignored("tombstone")


def test_same_change_published_twice_has_one_identity_and_different_rows_differ() -> None:
    # Given two rows changed by one binlog event (same position) and a republished copy of the first
    first = syn.maxwell_change("tickets", "insert", TICKET, ts=TS, position="b:5")
    second = syn.maxwell_change("tickets", "insert", {**TICKET, "id": 8}, ts=TS, position="b:5")

    # When they are parsed
    a, b, again = parse(first), parse(second), parse(dict(first))

    # Then the copy has the first's identity and the other row does not
    assert isinstance(a, Change) and isinstance(b, Change) and isinstance(again, Change)
    assert a.source_identity == again.source_identity != b.source_identity


def test_unknown_table_is_ignored_not_malformed() -> None:
    doc = syn.maxwell_change("audit_log", "insert", {"id": 1, "account_id": "x'; DROP"}, ts=TS, position="b:1")

    assert parse(doc) == Ignored("unknown_table")


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"hello": "world"}, RejectCode.UNKNOWN_FORMAT),
        ([1, 2, 3], RejectCode.UNKNOWN_FORMAT),
        ({"database": "app", "table": "tickets", "type": "upsert", "ts": TS, "data": {}}, RejectCode.UNKNOWN_FORMAT),
        ({"database": "app", "table": "tickets", "type": "insert", "ts": TS}, RejectCode.MISSING_FIELD),
        (
            {"database": "app", "table": "tickets", "type": "insert", "ts": "soon", "data": TICKET},
            RejectCode.BAD_TIMESTAMP,
        ),
        ({"database": "app", "table": "tickets", "type": "insert", "ts": -5, "data": TICKET}, RejectCode.BAD_TIMESTAMP),
        ({"database": "app", "table": "tickets", "type": "insert", "ts": TS, "data": TICKET}, RejectCode.MISSING_FIELD),
        ({"op": "c", "after": TICKET, "ts_ms": TS * 1000}, RejectCode.MISSING_FIELD),
        ({"op": "x", "source": {"table": "tickets"}}, RejectCode.UNKNOWN_FORMAT),
        ({"op": "c", "after": None, "source": {"table": "tickets", "ts_ms": 1, "lsn": 1}}, RejectCode.MISSING_FIELD),
    ],
    ids=[
        "no-format",
        "array",
        "maxwell-type",
        "no-data",
        "ts-text",
        "ts-negative",
        "no-position",
        "dbz-no-source",
        "dbz-op",
        "dbz-no-after",
    ],
)
def test_malformed_records_are_refused_with_a_code(doc: object, code: RejectCode) -> None:
    with pytest.raises(MalformedChange) as caught:
        parse(doc)

    assert caught.value.code is code
    assert caught.value.reason


@pytest.mark.parametrize(
    ("tenant", "code"),
    [
        (None, RejectCode.MISSING_TENANT),
        ("x'; DROP TABLE realtime.bins; --", RejectCode.INVALID_TENANT),
        ("Acme", RejectCode.INVALID_TENANT),
        ("a", RejectCode.INVALID_TENANT),
        ("a" * 64, RejectCode.INVALID_TENANT),
        ("acme\n", RejectCode.INVALID_TENANT),
        (True, RejectCode.INVALID_TENANT),
        ({"id": 1}, RejectCode.INVALID_TENANT),
    ],
)
def test_missing_or_hostile_tenant_ids_are_refused(tenant: object, code: RejectCode) -> None:
    # Given a ticket whose tenant column is missing, hostile or not a valid tenant id
    row = {**TICKET, "account_id": tenant} if tenant is not None else {"id": 7}
    doc = syn.maxwell_change("tickets", "insert", row, ts=TS, position="b:1")

    # When it is parsed, Then it is refused with the tenant code
    with pytest.raises(MalformedChange) as caught:
        parse(doc)
    assert caught.value.code is code


def test_numeric_tenant_ids_are_taken_as_text() -> None:
    change = parse(syn.maxwell_change("tickets", "insert", {**TICKET, "account_id": 12345}, ts=TS, position="b:1"))

    assert isinstance(change, Change) and change.tenant_id == "12345"


def test_missing_primary_key_is_refused() -> None:
    row = {k: v for k, v in TICKET.items() if k != "id"}

    with pytest.raises(MalformedChange) as caught:
        parse(syn.maxwell_change("tickets", "insert", row, ts=TS, position="b:1"))

    assert caught.value.code is RejectCode.MISSING_PRIMARY_KEY


def test_format_detection_and_forced_format() -> None:
    maxwell = syn.maxwell_change("tickets", "insert", TICKET, ts=TS, position="b:1")
    debezium = syn.debezium_change("tickets", "c", before=None, after=TICKET, ts_ms=TS * 1000, lsn=1)

    assert detect_format(maxwell) is SourceFormat.MAXWELL
    assert detect_format(debezium) is SourceFormat.DEBEZIUM
    with pytest.raises(MalformedChange):
        parse(debezium, SourceFormat.MAXWELL)
