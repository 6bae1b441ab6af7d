"""The PostgreSQL engine's query rewrites, checked without a database (the integration tests run them)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from tenant_analytics.models import load_project
from tenant_analytics.models.postgres import affected_keys_query, parent_index_columns, recompute_query

PROJECT = load_project()


def test_keys_of_a_join_read_each_changed_side_against_the_other_sides_old_and_new_rows() -> None:
    # Given changes to both inputs of failure_reasons_daily
    model = PROJECT.get("failure_reasons_daily")

    # When the affected-keys query is built
    tree = sqlglot.parse_one(
        affected_keys_query(model, {"message_status": "_delta_0", "messaging.campaigns": "_delta_1"}), read="postgres"
    )

    # Then it is the union of one DISTINCT grain projection per changed reference
    assert isinstance(tree, exp.Union) and tree.args.get("distinct")
    parts = [tree.this, tree.expression]
    for part in parts:
        assert part.args.get("distinct") and [e.alias for e in part.expressions] == list(model.grain)
        assert part.args.get("group") is None
    first, second = (p.sql("postgres") for p in parts)
    # the changed messages against current campaigns plus the campaigns' old images, and vice versa
    assert "FROM _delta_0 AS m JOIN (SELECT * FROM messaging.campaigns UNION ALL SELECT * FROM _delta_1) AS c" in first
    assert (
        "FROM (SELECT * FROM models.message_status UNION ALL SELECT * FROM _delta_0) AS m JOIN _delta_1 AS c" in second
    )
    assert all("WHERE m.failed_at IS NOT NULL AND m.sent_at IS NOT NULL" in p for p in (first, second))


def test_keys_of_an_unchanged_input_read_its_current_rows_only() -> None:
    model = PROJECT.get("failure_reasons_daily")
    text = affected_keys_query(model, {"messaging.campaigns": "_delta_1"})
    assert "UNION" not in text
    assert "FROM models.message_status AS m JOIN _delta_1 AS c" in text


def test_recomputation_joins_the_keys_with_equality_and_a_range_on_the_bucketed_column() -> None:
    model = PROJECT.get("campaign_daily")
    text = recompute_query(model, "_keys")
    # the grain of the model is kept, and the keys restrict it
    assert "INNER JOIN _keys AS __keys ON __keys.tenant_id = h.tenant_id AND __keys.campaign_id = h.campaign_id" in text
    assert "__keys.day = DATE_TRUNC('DAY', h.hour)" in text
    assert "h.hour >= __keys.day AND h.hour < __keys.day + INTERVAL '1 DAY'" in text
    assert text.endswith("GROUP BY h.tenant_id, h.campaign_id, DATE_TRUNC('DAY', h.hour)")


def test_parent_indexes_lead_with_the_tenant_and_end_with_the_bucketed_column() -> None:
    assert parent_index_columns(PROJECT.get("campaign_channel_hourly")) == [
        ("message_status", ("tenant_id", "campaign_id", "sent_at")),
    ]
    assert parent_index_columns(PROJECT.get("template_category_daily")) == [
        ("message_status", ("tenant_id", "sent_at")),
        ("message_status", ("tenant_id", "template_id")),
    ]
    assert parent_index_columns(PROJECT.get("tickets_daily")) == []


def test_the_project_creates_no_index_that_another_one_already_serves() -> None:
    from tenant_analytics.models.postgres import project_indexes

    # Given the shipped project; When its indexes are listed; Then (tenant_id, campaign_id), which
    # campaign_channel_hourly's join probes, is left to the longer index with the same prefix
    assert project_indexes(PROJECT) == [
        ("message_status", ("tenant_id", "campaign_id", "sent_at")),
        ("campaign_channel_hourly", ("tenant_id", "campaign_id", "hour")),
        ("message_status", ("tenant_id", "sent_at")),
        ("message_status", ("tenant_id", "template_id")),
        ("campaign_daily", ("tenant_id", "day")),
        ("tickets_daily", ("tenant_id", "channel", "priority", "day")),
    ]
