"""The PostgreSQL engine's query rewrites, checked without a database (the integration tests run them)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from tenant_analytics.models import Model, load_project
from tenant_analytics.models.delta import delta_plan
from tenant_analytics.models.postgres import (
    ParentIndex,
    affected_keys_query,
    critical_paths,
    may_recompute,
    parent_indexes,
    project_indexes,
    recompute_query,
)

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


def test_a_model_that_recomputes_groups_gets_a_grain_index_partial_on_what_it_reads() -> None:
    # Given failure_reasons_daily, which recomputes a group when a campaign's name no longer holds its MAX
    model = PROJECT.get("failure_reasons_daily")

    # When its parent indexes are listed
    indexes = parent_indexes(model, recomputes=True)

    # Then one index finds a group's failed messages (the join columns are its prefix), partial on what it reads
    assert indexes == [
        ParentIndex("message_status", ("tenant_id", "campaign_id", "sent_at"), ("failed_at", "sent_at")),
    ]
    # named with the engine's prefix for its table, within PostgreSQL's 63 bytes
    assert indexes[0].name.startswith("message_status__tenant_id_campaign_id_sent_at__") and len(indexes[0].name) <= 63


def test_a_model_kept_by_deltas_alone_needs_only_the_index_its_join_probes() -> None:
    template_category = PROJECT.get("template_category_daily")
    assert parent_indexes(template_category, recomputes=False) == [
        ParentIndex("message_status", ("tenant_id", "template_id"), ("sent_at",)),
    ]
    assert parent_indexes(template_category, recomputes=True) == [
        ParentIndex("message_status", ("tenant_id", "sent_at"), ("sent_at",)),
        ParentIndex("message_status", ("tenant_id", "template_id"), ("sent_at",)),
    ]
    assert parent_indexes(PROJECT.get("campaign_channel_hourly"), recomputes=False) == []
    assert parent_indexes(PROJECT.get("tickets_daily"), recomputes=True) == []  # it reads a source, not a model


def test_the_shipped_project_indexes_only_what_its_refreshes_probe() -> None:
    # Given the shipped project with its models' delta plans; When its indexes are listed
    def recomputes(model: Model) -> bool:
        types = {c: "bigint" for c in model.columns} | {"campaign_name": "text", "delivery_rate": "double precision"}
        return may_recompute(delta_plan(model, PROJECT.get, types))

    indexes = project_indexes(PROJECT, recomputes)

    # Then message_status keeps its primary key and two more indexes, one of them on its failed messages only
    assert set(indexes) == {
        ParentIndex("message_status", ("tenant_id", "campaign_id", "sent_at"), ("failed_at", "sent_at")),
        ParentIndex("message_status", ("tenant_id", "template_id"), ("sent_at",)),
        # campaign_daily has no COUNT(*): a group whose rows all left is found by recomputing it
        ParentIndex("campaign_channel_hourly", ("tenant_id", "campaign_id", "hour")),
    }
    assert len(indexes) == 3


def test_critical_paths_add_the_longest_chain_of_descendants_to_each_models_duration() -> None:
    # Given the messaging models and the durations of their last refreshes (one model never refreshed)
    models = [m for m in PROJECT.models if m.domain == "messaging"]
    durations = {
        "message_status": 1.5,
        "campaign_channel_hourly": 0.2,
        "campaign_daily": 0.05,
        "tenant_daily": 0.05,
        "template_category_daily": 0.3,
    }

    # When the critical paths are computed
    paths = critical_paths(models, durations)

    # Then a leaf costs its own duration, the unknown one the mean of the known, and a parent adds its longest child
    mean = sum(durations.values()) / len(durations)
    assert paths["tenant_daily"] == 0.05
    assert abs(paths["failure_reasons_daily"] - mean) < 1e-9
    assert abs(paths["campaign_channel_hourly"] - 0.3) < 1e-9  # 0.2 + campaign_daily 0.05 + tenant_daily 0.05
    assert abs(paths["message_status"] - (1.5 + max(0.3, mean, 0.3))) < 1e-9
    # so the hour level, with two levels after it, starts before the template categories it ties with
    assert paths["campaign_channel_hourly"] >= paths["template_category_daily"]


def test_critical_paths_without_history_count_the_models_on_the_longest_chain() -> None:
    models = [m for m in PROJECT.models if m.domain == "messaging"]
    paths = critical_paths(models, {})
    assert paths["message_status"] == 4.0  # message_status, hourly, campaign daily, tenant daily
    assert paths["template_category_daily"] == 1.0
