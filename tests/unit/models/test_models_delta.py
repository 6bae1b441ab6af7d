"""Which models the PostgreSQL engine maintains by deltas, and the SQL it builds for them, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from tenant_analytics.models import Model, ModelError, load_project, parse_model
from tenant_analytics.models.delta import contributions_query, delta_plan, never_null, read_columns

PROJECT = load_project()
# Column types as the engine reads them from the catalog: counts are bigint, sums of bigint numeric.
TYPES = {
    "message_status": {},
    "campaign_channel_hourly": {f"latency_le_{n}s": "bigint" for n in (1, 5, 30, 60, 300, 3600)},
    "campaign_daily": {
        c: "numeric"
        for c in ["sent", "delivered", "opened", "failed", *(f"latency_le_{n}s" for n in (1, 5, 30, 60, 300, 3600))]
    },
    "tenant_daily": {
        c: "numeric"
        for c in ["sent", "delivered", "opened", "failed", *(f"latency_le_{n}s" for n in (1, 5, 30, 60, 300, 3600))]
    },
    "tickets_daily": {"tickets_solved": "bigint", "tickets_unresolved": "bigint"},
    "tickets_monthly": {c: "numeric" for c in ("tickets_created", "tickets_solved", "tickets_unresolved")}
    | {"tickets_assigned": "numeric"},
}


def types_of(model: Model) -> dict[str, str]:
    defaults = {c: "bigint" for c in model.columns} | {"campaign_name": "text", "delivery_rate": "double precision"}
    return defaults | TYPES.get(model.name, {})


def model_file(tmp_path: Path, name: str, text: str) -> Model:
    path = tmp_path / "support" / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return parse_model(path)


def test_every_shipped_level_is_maintained_by_deltas() -> None:
    # Given the shipped models and their column types; When each is planned
    plans = {m.name: delta_plan(m, PROJECT.get, types_of(m)) for m in PROJECT.models}

    # Then none needs its groups recomputed as a rule
    assert all(plan is not None for plan in plans.values()), [n for n, p in plans.items() if p is None]
    status = plans["message_status"]
    assert status is not None and status.has_extremes and status.count_column is None
    assert [c for c, _ in status.derived] == ["status"]  # from the stored MAX columns
    hourly = plans["campaign_channel_hourly"]
    assert hourly is not None and hourly.count_column == "sent"
    assert [c for c, _ in hourly.derived] == ["delivery_rate", "read_rate"]
    daily = plans["campaign_daily"]
    assert daily is not None and daily.count_column is None  # no COUNT(*): a group losing rows is recomputed
    failures = plans["failure_reasons_daily"]
    assert failures is not None and failures.has_extremes  # MAX(c.name)


def test_a_sum_of_a_nullable_or_inexact_value_and_an_unstored_aggregate_are_not_maintained(tmp_path: Path) -> None:
    header = "{{ config(grain=['tenant_id', 'day']) }}\nSELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, "
    footer = " FROM {{ source('support.tickets') }} AS t GROUP BY 1, 2"
    nullable = model_file(tmp_path, "a", header + "SUM(t.assignee_id) AS n" + footer)
    exact = model_file(tmp_path, "b", header + "SUM(CASE WHEN t.status = 'open' THEN 2 ELSE 0 END) AS n" + footer)
    average = model_file(tmp_path, "c", header + "AVG(t.requester_id) AS n" + footer)
    hidden = model_file(tmp_path, "d", header + "COUNT(*) AS n, COUNT(*) + COUNT(t.status) AS m" + footer)
    having = model_file(tmp_path, "e", header + "COUNT(*) AS n" + footer + " HAVING COUNT(*) > 1")

    assert delta_plan(nullable, PROJECT.get, {"n": "numeric"}) is None  # SUM of NULLs is NULL, not 0
    assert delta_plan(exact, PROJECT.get, {"n": "bigint"}) is not None
    assert delta_plan(exact, PROJECT.get, {"n": "double precision"}) is None  # adding and subtracting floats drifts
    assert delta_plan(average, PROJECT.get, {"n": "numeric"}) is None
    assert delta_plan(hidden, PROJECT.get, {"n": "bigint", "m": "bigint"}) is None  # COUNT(t.status) is not stored
    assert delta_plan(having, PROJECT.get, {"n": "bigint"}) is None


def test_a_join_that_does_not_match_tenants_is_rejected_and_one_that_does_is_maintained_by_deltas(
    tmp_path: Path,
) -> None:
    # Given a join on the requester only: one tenant's change could meet another tenant's rows
    with pytest.raises(ModelError, match=r"does not equate o\.tenant_id with the tenant_id of the input it joins"):
        model_file(
            tmp_path,
            "pairs",
            "{{ config(grain=['tenant_id', 'ticket_id']) }}\n"
            "SELECT t.tenant_id, t.ticket_id, COUNT(*) AS n FROM {{ source('support.tickets') }} AS t "
            "JOIN {{ source('support.tickets') }} AS o ON o.requester_id = t.requester_id GROUP BY 1, 2",
        )
    tenant_matched = model_file(
        tmp_path,
        "pairs2",
        "{{ config(grain=['tenant_id', 'ticket_id']) }}\n"
        "SELECT t.tenant_id, t.ticket_id, COUNT(*) AS n FROM {{ source('support.tickets') }} AS t "
        "JOIN {{ source('support.tickets') }} AS o ON o.tenant_id = t.tenant_id AND o.requester_id = t.requester_id "
        "GROUP BY 1, 2",
    )
    assert delta_plan(tenant_matched, PROJECT.get, {"n": "bigint"}) is not None


def test_a_summed_parent_column_is_never_null_when_the_parent_counts_or_sums_non_null_values() -> None:
    daily = PROJECT.get("campaign_daily")
    assert never_null(sqlglot.parse_one("h.sent", read="postgres"), daily, PROJECT.get)  # COUNT(*) upstream
    assert never_null(sqlglot.parse_one("h.latency_le_5s", read="postgres"), daily, PROJECT.get)
    assert not never_null(sqlglot.parse_one("h.read_rate", read="postgres"), daily, PROJECT.get)


def test_contributions_of_a_join_add_each_changed_side_and_subtract_both_changed_together() -> None:
    # Given changes to both inputs of template_category_daily
    model = PROJECT.get("template_category_daily")
    plan = delta_plan(model, PROJECT.get, types_of(model))
    assert plan is not None

    # When its contributions query is built
    text = contributions_query(plan, {"message_status": "_delta_0", "messaging.templates": "_delta_1"})
    tree = sqlglot.parse_one(text, read="postgres")

    # Then three terms (Δm ⋈ t, m ⋈ Δt, -Δm ⋈ Δt) summed per group, signed by the images they read
    terms = [s.sql("postgres") for s in tree.find_all(exp.Select) if s is not tree]
    assert len(terms) == 3
    by_source = {
        source: next(t for t in terms if source in t)
        for source in (
            "FROM _delta_0 AS m JOIN messaging.templates AS t",
            "FROM models.message_status AS m JOIN _delta_1 AS t",
            "FROM _delta_0 AS m JOIN _delta_1 AS t",
        )
    }
    signs = [text.split(" AS __sign")[0].rsplit(", ", 1)[1] for text in by_source.values()]
    assert signs == ["1 * m.__sign", "1 * t.__sign", "-1 * m.__sign * t.__sign"]
    assert tree.args["group"].sql("postgres") == "GROUP BY u.tenant_id, u.category, u.day"


def test_only_the_columns_a_model_reads_are_extracted_from_change_images() -> None:
    model = PROJECT.get("failure_reasons_daily")
    assert read_columns(model, "message_status") == ["tenant_id", "campaign_id", "sent_at", "error_code", "failed_at"]
    assert read_columns(model, "messaging.campaigns") == ["name", "tenant_id", "campaign_id"]
