"""Redshift compilation of the packaged models: golden files, the Redshift grammar, DAG-ordered refreshes.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 pytest tests/unit/models/test_models_redshift.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from tenant_analytics.models import ModelError, compile_redshift, load_project, refresh_statements_redshift
from tenant_analytics.models.redshift import compile_redshift_model

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "models"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
PROJECT = load_project()


def golden_text() -> dict[str, str]:
    files = {m.name: ";\n\n".join(compile_redshift_model(m)) + ";\n" for m in PROJECT.models}
    files["_project"] = ";\n\n".join(compile_redshift(PROJECT)[:3]) + ";\n"
    files["_refresh"] = ";\n".join(refresh_statements_redshift(PROJECT)) + ";\n"
    return files


@pytest.mark.parametrize("name", [*(m.name for m in PROJECT.models), "_project", "_refresh"])
def test_redshift_ddl_matches_the_golden_file(name: str) -> None:
    # Given the compiled DDL of one model (or the project preamble, or the refresh order)
    text = golden_text()[name]
    path = GOLDEN / f"redshift_{name.lstrip('_')}.sql"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # When compared with the reviewed golden file; Then they are identical
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("model", PROJECT.models, ids=lambda m: m.name)
def test_each_view_parses_as_redshift_and_refreshes_on_demand(model) -> None:  # type: ignore[no-untyped-def]
    # Given the CREATE MATERIALIZED VIEW of a model
    create = compile_redshift_model(model)[0]

    # When parsed with the Redshift grammar
    tree = sqlglot.parse_one(create, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)

    # Then it is a materialized view over the model's query, with AUTO REFRESH NO
    assert isinstance(tree, exp.Create) and tree.kind == "VIEW"
    assert "MATERIALIZED VIEW" in tree.sql("redshift")
    assert "AUTO REFRESH NO AS SELECT" in create
    select = tree.expression
    assert isinstance(select, exp.Select)
    assert [s.alias_or_name for s in select.expressions] == list(model.columns)
    assert len(select.args["group"].expressions) == len(model.grain)


def test_rls_is_attached_to_every_view_for_the_query_role_and_never_to_base_tables() -> None:
    statements = compile_redshift(PROJECT)
    attached = [s for s in statements if s.startswith("ATTACH RLS POLICY")]
    # Then one attachment per view, each on a view of the models schema, for ta_query
    assert len(attached) == len(PROJECT.models)
    assert all(" ON models." in s and s.endswith("TO ROLE ta_query") for s in attached)
    assert not any("support.tickets" in s or "messaging." in s for s in attached)
    assert any("current_setting('app.tenant_id', FALSE)" in s for s in statements if s.startswith("CREATE RLS"))


def test_refreshes_run_parents_before_children() -> None:
    # When a subset is refreshed
    statements = refresh_statements_redshift(PROJECT, ["tenant_daily", "message_status", "campaign_daily"])
    # Then in DAG order
    assert statements == [
        "REFRESH MATERIALIZED VIEW models.message_status",
        "REFRESH MATERIALIZED VIEW models.campaign_daily",
        "REFRESH MATERIALIZED VIEW models.tenant_daily",
    ]


def test_a_model_that_would_be_recomputed_in_full_does_not_compile(tmp_path: Path) -> None:
    path = tmp_path / "support" / "m.sql"
    path.parent.mkdir()
    path.write_text(
        "{{ config(grain=['tenant_id']) }}\n"
        "SELECT t.tenant_id, COUNT(DISTINCT t.status) AS n FROM {{ source('support.tickets') }} AS t GROUP BY 1"
    )
    with pytest.raises(ModelError) as err:
        compile_redshift(load_project(tmp_path))
    assert str(path) in err.value.message and "DISTINCT aggregate" in err.value.message


def test_a_bucket_in_a_time_zone_compiles_to_what_redshift_spells(tmp_path: Path) -> None:
    # Given a model bucketing by day and by hour in Paris time (Redshift's DATE_TRUNC takes no time zone)
    path = tmp_path / "support" / "paris.sql"
    path.parent.mkdir()
    path.write_text(
        "{{ config(grain=['tenant_id', 'day', 'hour']) }}\n"
        "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at, 'Europe/Paris') AS day,\n"
        "    DATE_TRUNC('hour', t.created_at, 'Europe/Paris') AS hour, COUNT(*) AS n\n"
        "FROM {{ source('support.tickets') }} AS t GROUP BY 1, 2, 3"
    )

    # When it is compiled for Redshift
    [view, *_] = compile_redshift_model(load_project(tmp_path).get("paris"))

    # Then the day is cut in local time and made an instant again, the hour is the instant less the local time
    # elapsed in it, in the output and the GROUP BY alike; every DATE_TRUNC left has two arguments
    local = "t.created_at AT TIME ZONE 'Europe/Paris'"
    flat = " ".join(view.split()).replace("( ", "(").replace(" )", ")")  # the view is pretty-printed
    assert flat.count(f"DATE_TRUNC('DAY', {local}) AT TIME ZONE 'Europe/Paris'") == 2, view
    assert flat.count(f"(t.created_at - ({local} - DATE_TRUNC('HOUR', {local})))") == 2, view
    parsed = sqlglot.parse_one(view, read="redshift")
    assert all(t.args.get("zone") is None for t in parsed.find_all(exp.TimestampTrunc))
