"""Which metric a change feeds is configuration: the shipped mapping, rule semantics and config validation."""

from __future__ import annotations

import json

import pytest

from tenant_analytics.cdc import synthetic as syn
from tenant_analytics.cdc.config import load_config, parse_config
from tenant_analytics.cdc.formats import parse_document
from tenant_analytics.cdc.mapping import increment_keys, increments_for
from tenant_analytics.cdc.model import Change, SourceFormat
from tenant_analytics.errors import InvalidInput

CONFIG = load_config()
TS = 1_767_614_407  # 2026-01-05T12:00:07Z, bin 12:00:00
TICKET = {"id": 7, "account_id": "acme", "status": "new", "channel": "email", "priority": "high"}
MESSAGE = {"id": 3, "account_id": "globex", "status": "sent", "channel": "chat"}


def change(table: str, kind: str, row: dict[str, object], old: dict[str, object] | None = None) -> Change:
    doc = syn.maxwell_change(table, kind, row, ts=TS, position="b:1", old=old)
    parsed = parse_document(doc, SourceFormat.MAXWELL, CONFIG)
    assert isinstance(parsed, Change)
    return parsed


def metrics(c: Change) -> list[str]:
    return [metric for metric, _, _ in increment_keys(c, CONFIG)]


def test_ticket_insert_feeds_tickets_created_split_by_channel_and_priority() -> None:
    # Given a ticket insert
    # When its increments are computed
    keys = increment_keys(change("tickets", "insert", TICKET), CONFIG)

    # Then one tickets_created increment in the 10-second bin, with both dimensions
    assert keys == (("tickets_created", '{"channel":"email","priority":"high"}', TS - 7),)


@pytest.mark.parametrize(
    ("old_status", "new_status", "expected"),
    [
        ("open", "solved", ["tickets_solved"]),
        ("solved", "open", ["tickets_reopened"]),
        ("closed", "pending", ["tickets_reopened"]),
        ("solved", "hold", ["tickets_reopened"]),
        ("open", "pending", []),
        ("solved", "closed", []),
        ("new", "open", []),
    ],
)
def test_ticket_status_transitions(old_status: str, new_status: str, expected: list[str]) -> None:
    c = change("tickets", "update", {**TICKET, "status": new_status}, old={"status": old_status})

    assert metrics(c) == expected


def test_update_that_does_not_change_status_feeds_nothing() -> None:
    # Given a solved ticket whose subject changes (status absent from `old`)
    c = change("tickets", "update", {**TICKET, "status": "solved"}, old={"subject": "before"})

    # Then it is not counted as solved again
    assert metrics(c) == []


@pytest.mark.parametrize(
    ("new_status", "expected"),
    [("delivered", ["messages_delivered"]), ("read", ["messages_read"]), ("failed", ["messages_failed"]), ("x", [])],
)
def test_message_status_changes(new_status: str, expected: list[str]) -> None:
    c = change("messages", "update", {**MESSAGE, "status": new_status}, old={"status": "sent"})

    assert metrics(c) == expected


def test_message_insert_feeds_messages_sent_split_by_channel_only() -> None:
    incs = increments_for(change("messages", "insert", MESSAGE), CONFIG)

    assert [(i.tenant_id, i.metric, i.dimensions) for i in incs] == [
        ("globex", "messages_sent", (("channel", "chat"),))
    ]


def test_snapshot_rows_feed_no_metric_by_default() -> None:
    c = change("tickets", "bootstrap-insert", TICKET)

    assert c.snapshot and metrics(c) == []


def test_debezium_update_without_before_image_claims_no_status_transition() -> None:
    # Given a Debezium update without `before` (PostgreSQL without REPLICA IDENTITY FULL)
    doc = syn.debezium_change("tickets", "u", before=None, after={**TICKET, "status": "solved"}, ts_ms=TS * 1000, lsn=9)
    c = parse_document(doc, SourceFormat.DEBEZIUM, CONFIG)

    # Then nothing is claimed: the ticket may have been solved already
    assert isinstance(c, Change) and metrics(c) == []


def test_numeric_dimension_values_are_text_so_formats_agree() -> None:
    c = change("messages", "insert", {**MESSAGE, "channel": 5})

    assert increment_keys(c, CONFIG)[0][1] == '{"channel":"5"}'


def test_a_custom_config_adds_metrics_without_code() -> None:
    # Given a config with a delete rule and include_snapshots
    text = json.dumps(
        {
            "tables": {
                "tickets": {
                    "tenant_column": "account_id",
                    "primary_key": ["id"],
                    "dimensions": ["channel"],
                    "rules": [
                        {"metric": "tickets_deleted", "ops": ["delete"]},
                        {"metric": "tickets_seen", "ops": ["insert"], "include_snapshots": True},
                    ],
                }
            }
        }
    )
    config = parse_config(text)

    # When a delete and a bootstrap row are mapped with it
    delete_doc = syn.maxwell_change("tickets", "delete", TICKET, ts=TS, position="b:1")
    boot_doc = syn.maxwell_change("tickets", "bootstrap-insert", TICKET, ts=TS, position=None)
    deleted = parse_document(delete_doc, SourceFormat.MAXWELL, config)
    boot = parse_document(boot_doc, SourceFormat.MAXWELL, config)

    # Then both feed their metrics
    assert isinstance(deleted, Change) and isinstance(boot, Change)
    assert [k[0] for k in increment_keys(deleted, config)] == ["tickets_deleted"]
    assert [k[0] for k in increment_keys(boot, config)] == ["tickets_seen"]


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"tables": {"t": {"tenant_column": "a", "primary_key": ["id"], "rules": []}}}, "tables.t.rules"),
        (
            {
                "tables": {
                    "t": {
                        "tenant_column": "a; DROP",
                        "primary_key": ["id"],
                        "rules": [{"metric": "m", "ops": ["insert"]}],
                    }
                }
            },
            "tables.t.tenant_column",
        ),
        (
            {
                "tables": {
                    "t": {
                        "tenant_column": "a",
                        "primary_key": ["id"],
                        "rules": [{"metric": "Bad Name", "ops": ["insert"]}],
                    }
                }
            },
            "tables.t.rules.0.metric",
        ),
        (
            {
                "tables": {
                    "t": {"tenant_column": "a", "primary_key": ["id"], "rules": [{"metric": "m", "ops": ["upsert"]}]}
                }
            },
            "tables.t.rules.0.ops.0",
        ),
        (
            {
                "tables": {
                    "t": {
                        "tenant_column": "a",
                        "primary_key": ["id"],
                        "rules": [{"metric": "m", "ops": ["update"], "becomes": ["x"]}],
                    }
                }
            },
            "tables.t.rules.0",
        ),
    ],
    ids=["no-rules", "bad-column", "bad-metric", "bad-op", "becomes-without-column"],
)
def test_invalid_configs_are_refused_naming_the_place(doc: dict[str, object], where: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_config(json.dumps(doc))

    assert caught.value.field == where


def test_shipped_config_lists_every_metric_with_its_dimensions() -> None:
    assert CONFIG.metric_dimensions() == {
        "tickets_created": ("channel", "priority"),
        "tickets_solved": ("channel", "priority"),
        "tickets_reopened": ("channel", "priority"),
        "messages_sent": ("channel",),
        "messages_delivered": ("channel",),
        "messages_read": ("channel",),
        "messages_failed": ("channel",),
    }
