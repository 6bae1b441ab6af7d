"""The validator: every construct that makes Redshift recompute a materialized view in full is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_analytics.models import validate_project

SRC = "{{ source('support.tickets') }}"
CONFIG = "{{ config(grain=['tenant_id', 'day']) }}\n"
DAY = "DATE_TRUNC('day', t.created_at)"


def model(measure: str, tail: str = "", source: str = f"{SRC} AS t") -> str:
    return CONFIG + f"SELECT t.tenant_id, {DAY} AS day, {measure} AS m FROM {source} {tail} GROUP BY 1, 2"


# One model per forbidden construct, and the words the finding must name.
CASES = {
    "left_join": (
        model("COUNT(*)", source=f"{SRC} AS t LEFT JOIN {SRC} AS u ON u.tenant_id = t.tenant_id"),
        "LEFT OUTER JOIN",
    ),
    "full_join": (
        model("COUNT(*)", source=f"{SRC} AS t FULL JOIN {SRC} AS u ON u.tenant_id = t.tenant_id"),
        "FULL OUTER JOIN",
    ),
    "count_distinct": (model("COUNT(DISTINCT t.assignee_id)"), "DISTINCT aggregate"),
    "window": (model("SUM(COUNT(*)) OVER (PARTITION BY t.tenant_id)"), "window function"),
    "median": (model("MEDIAN(t.ticket_id)"), "MEDIAN"),
    "percentile": (model("PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY t.ticket_id)"), "PERCENTILE_CONT"),
    "listagg": (model("LISTAGG(t.status, ',')"), "LISTAGG"),
    "string_agg": (model("STRING_AGG(t.status, ',')"), "LISTAGG"),
    "stddev": (model("STDDEV(t.ticket_id)"), "STDDEV"),
    "variance": (model("VARIANCE(t.ticket_id)"), "VARIANCE"),
    "approximate": (model("APPROX_COUNT_DISTINCT(t.assignee_id)"), "APPROXIMATE COUNT"),
    "scalar_subquery": (model("COUNT(*)", tail="WHERE t.ticket_id > (SELECT 1)"), "subquery"),
    "in_subquery": (model("COUNT(*)", tail=f"WHERE t.ticket_id IN (SELECT u.ticket_id FROM {SRC} AS u)"), "subquery"),
    "from_subquery": (model("COUNT(*)", source=f"(SELECT * FROM {SRC}) AS t"), "subquery"),
    "now": (model("COUNT(*)", tail="WHERE t.created_at < NOW()"), "mutable function"),
    "current_date": (model("COUNT(*)", tail="WHERE t.created_at < CURRENT_DATE"), "mutable function CURRENT_DATE"),
    "random": (model("SUM(RANDOM())"), "mutable function RANDOM"),
    "getdate": (model("COUNT(*)", tail="WHERE t.created_at < GETDATE()"), "mutable function GETDATE"),
    "union": (
        CONFIG + f"SELECT t.tenant_id, {DAY} AS day FROM {SRC} AS t GROUP BY 1, 2 "
        f"UNION SELECT t.tenant_id, {DAY} AS day FROM {SRC} AS t GROUP BY 1, 2",
        "set operation UNION",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_forbidden_construct_is_named_with_the_model(tmp_path: Path, case: str) -> None:
    # Given a project whose one model uses a construct Redshift cannot refresh incrementally
    text, construct = CASES[case]
    path = tmp_path / "support" / f"{case}.sql"
    path.parent.mkdir()
    path.write_text(text)

    # When the project is validated
    findings = validate_project(tmp_path)

    # Then a finding names the file, the model and the construct
    assert findings, f"{case}: no finding"
    assert any(construct in f.construct or construct in f.message for f in findings), findings
    assert all(f.file == str(path) and f.model == case for f in findings)
    assert any(str(path) in f.message for f in findings)


def test_the_packaged_models_have_no_findings() -> None:
    # Given the shipped model files; When validated; Then the build passes
    assert validate_project() == []


def test_every_problem_of_a_project_is_reported_not_just_the_first(tmp_path: Path) -> None:
    # Given one model with two forbidden constructs and another with an unknown ref
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "two.sql").write_text(model("MEDIAN(t.ticket_id) + COUNT(DISTINCT t.status)"))
    (tmp_path / "support" / "orphan.sql").write_text(model("COUNT(*)", source="{{ ref('nowhere') }} AS t"))

    # When validated
    constructs = sorted(f.construct for f in validate_project(tmp_path))

    # Then all three are reported
    assert constructs == ["DISTINCT aggregate COUNT(DISTINCT ...)", "aggregate MEDIAN", "unknown ref"]
