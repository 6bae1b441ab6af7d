"""Model files: parsing, the dependency graph computed from ref/source calls, and the errors a build reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_analytics.errors import InvalidInput
from tenant_analytics.models import ModelError, load_project, validate_project

GRAIN = "{{ config(grain=['tenant_id', 'day']) }}\n"


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def daily(source: str) -> str:
    return (
        GRAIN
        + f"SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, COUNT(*) AS n FROM {source} AS t GROUP BY 1, 2"
    )


def rollup(ref: str) -> str:
    """A model over a model of the ``daily`` columns (tenant_id, day, n), with the same columns."""
    return GRAIN + f"SELECT t.tenant_id, t.day, SUM(t.n) AS n FROM {{{{ ref('{ref}') }}}} AS t GROUP BY 1, 2"


def test_packaged_project_is_in_dependency_order_with_declared_grains() -> None:
    # Given the packaged model files
    # When the project is loaded
    project = load_project()

    # Then every model comes after the models it refs, and the messaging hierarchy is wired as documented
    names = [m.name for m in project.models]
    for model in project.models:
        assert all(names.index(ref) < names.index(model.name) for ref in model.refs)
    assert project.get("campaign_channel_hourly").refs == ("message_status",)
    assert project.get("failure_reasons_daily").sources == ("messaging.campaigns",)
    assert project.get("template_category_daily").sources == ("messaging.templates",)
    assert project.get("campaign_daily").refs == ("campaign_channel_hourly",)
    assert project.get("tenant_daily").refs == ("campaign_daily",)
    assert project.get("tickets_monthly").refs == ("tickets_daily",)
    assert project.get("tickets_daily").sources == ("support.tickets",)
    assert all(m.grain[0] == "tenant_id" and set(m.grain) <= set(m.columns) for m in project.models)
    assert {m.domain for m in project.models} == {"messaging", "support"}


def test_group_by_is_canonicalised_to_the_grain_expressions() -> None:
    # Given a model grouping by position
    # When it is parsed
    model = load_project().get("tickets_daily")

    # Then GROUP BY lists the grain expressions in grain order, refs resolved to tables
    group = model.query.sql("postgres", comments=False).split("GROUP BY ", 1)[1]
    assert group == (
        "t.tenant_id, DATE_TRUNC('DAY', t.created_at), COALESCE(t.channel, 'unknown'), COALESCE(t.priority, 'none')"
    )
    assert "FROM support.tickets AS t" in model.query.sql("postgres")


def test_descendants_follow_the_refs() -> None:
    project = load_project()
    # When asking which models depend on message_status
    found = [m.name for m in project.descendants("message_status")]
    # Then every model of the messaging hierarchy reading it directly or not is listed, none of support
    assert set(found) == {
        "campaign_channel_hourly",
        "campaign_daily",
        "tenant_daily",
        "failure_reasons_daily",
        "template_category_daily",
    }


def test_a_cycle_is_rejected_naming_the_file_and_the_cycle(tmp_path: Path) -> None:
    # Given two models that ref each other
    write(tmp_path, "support/a.sql", rollup("b"))
    write(tmp_path, "support/b.sql", rollup("a"))

    # When the project is loaded
    with pytest.raises(ModelError) as err:
        load_project(tmp_path)

    # Then the error names a file of the cycle and the cycle itself
    assert err.value.construct == "cycle"
    assert "support/a.sql" in err.value.message or "support/b.sql" in err.value.message
    assert "dependency cycle a -> b -> a" in err.value.message or "dependency cycle b -> a -> b" in err.value.message
    assert isinstance(err.value, InvalidInput)


def test_an_unknown_ref_is_rejected_naming_the_file_and_the_ref(tmp_path: Path) -> None:
    write(tmp_path, "support/a.sql", daily("{{ source('support.tickets') }}"))
    path = write(tmp_path, "support/b.sql", daily("{{ ref('missing_model') }}"))

    with pytest.raises(ModelError) as err:
        load_project(tmp_path)

    assert err.value.file == str(path)
    assert str(path) in err.value.message
    assert "unknown ref 'missing_model'" in err.value.message


def test_an_unknown_source_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "support/a.sql", daily("{{ source('support.nope') }}"))
    with pytest.raises(ModelError) as err:
        load_project(tmp_path)
    assert str(path) in err.value.message and "unknown source 'support.nope'" in err.value.message


@pytest.mark.parametrize(
    ("grain", "select", "problem"),
    [
        (
            "['tenant_id', 'day', 'channel']",
            "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, COUNT(*) AS n FROM {src} AS t GROUP BY 1, 2",
            "grain column 'channel' is not an output column",
        ),
        (
            "['tenant_id', 'day', 'n']",
            "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, COUNT(*) AS n FROM {src} AS t GROUP BY 1, 2",
            "grain column 'n' is not a GROUP BY key",
        ),
        (
            "['tenant_id']",
            "SELECT t.tenant_id, t.channel, COUNT(*) AS n FROM {src} AS t GROUP BY t.tenant_id, t.channel",
            "GROUP BY key 'channel' is not in the declared grain",
        ),
        (
            "['tenant_id']",
            "SELECT t.tenant_id, COUNT(*) AS n FROM {src} AS t GROUP BY t.tenant_id, t.channel",
            "GROUP BY expression 't.channel' is not an output column",
        ),
        (
            "['day', 'tenant_id']",
            "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, COUNT(*) AS n FROM {src} AS t GROUP BY 1, 2",
            "must start with 'tenant_id'",
        ),
        (
            "['tenant_id']",
            "SELECT t.tenant_id, COUNT(*) AS n FROM support.tickets AS t GROUP BY 1",
            "reads table 'support.tickets' directly",
        ),
        # a grain the database would refuse: an aggregate in it, a column neither grouped nor aggregated
        (
            "['tenant_id', 'n']",
            "SELECT t.tenant_id, COUNT(*) AS n FROM {src} AS t GROUP BY 1, 2",
            "grain column 'n' is an aggregate (COUNT(*)); the grain lists the columns the rows are grouped by",
        ),
        (
            "['tenant_id', 'day']",
            "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, t.channel AS channel, COUNT(*) AS n "
            "FROM {src} AS t GROUP BY 1, 2",
            "output column 'channel' uses t.channel outside an aggregate and it is not a GROUP BY key; aggregate it "
            "or add it to the grain",
        ),
        (
            "['tenant_id']",
            "SELECT t.tenant_id, COUNT(*) AS n FROM {src} AS t GROUP BY 1 HAVING MAX(t.status) > t.channel",
            "HAVING uses t.channel outside an aggregate and it is not a GROUP BY key; aggregate it or add it to the "
            "grain",
        ),
    ],
)
def test_a_model_whose_columns_do_not_match_its_grain_is_rejected(
    tmp_path: Path, grain: str, select: str, problem: str
) -> None:
    # Given a model whose output or GROUP BY disagrees with its declared grain
    path = write(
        tmp_path,
        "support/bad.sql",
        f"{{{{ config(grain={grain}) }}}}\n" + select.format(src="{{ source('support.tickets') }}"),
    )

    # When the project is loaded
    with pytest.raises(ModelError) as err:
        load_project(tmp_path)

    # Then the message names the file and the problem
    assert err.value.message.startswith(f"{path}: ")
    assert problem in err.value.message


def test_a_file_without_config_line_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "support/x.sql", "SELECT 1")
    with pytest.raises(ModelError) as err:
        load_project(tmp_path)
    assert str(path) in err.value.message and "config(grain=" in err.value.message


PLAIN = GRAIN + "SELECT t.tenant_id, t.day, SUM(t.n) AS n FROM {{ ref('daily') }} AS t GROUP BY t.tenant_id, t.day"
SPELLINGS = {
    "unqualified_select": GRAIN + "SELECT tenant_id, day, SUM(n) AS n FROM {{ ref('daily') }} AS t "
    "GROUP BY t.tenant_id, t.day",
    "aliased_as_itself": GRAIN + "SELECT t.tenant_id AS tenant_id, t.day AS day, SUM(t.n) AS n "
    "FROM {{ ref('daily') }} AS t GROUP BY t.tenant_id, t.day",
    "quoted_group_by": PLAIN.replace("GROUP BY t.tenant_id, t.day", 'GROUP BY t."tenant_id", t."day"'),
    "double_quoted_ref": PLAIN.replace("ref('daily')", 'ref("daily")'),
    "names_in_other_cases": GRAIN + "SELECT T.Tenant_Id, t.DAY, SUM(T.N) AS N FROM {{ ref('daily') }} AS T "
    "GROUP BY t.TENANT_ID, T.Day",
    "whitespace_control": PLAIN.replace("{{ ref('daily') }}", "{{- ref('daily') -}}"),
    "braces_in_comment": PLAIN.replace("SELECT", "-- the {{ ... }} calls name the inputs\nSELECT"),
    "byte_order_mark": "\ufeff" + PLAIN,
    "comment_after_config": PLAIN.replace("}}\n", "}} -- one row per tenant and day\n", 1),
}


@pytest.mark.parametrize("case", sorted(SPELLINGS))
def test_equivalent_spellings_of_a_model_load_as_the_plain_one(tmp_path: Path, case: str) -> None:
    # Given a model written the plain way and the same model spelled differently
    write(tmp_path, "support/daily.sql", daily("{{ source('support.tickets') }}"))
    write(tmp_path, "support/plain.sql", PLAIN)
    write(tmp_path, "support/spelled.sql", SPELLINGS[case])

    # When the project is loaded
    project = load_project(tmp_path)

    # Then both read the same input with the same columns and grain expressions (the bare ones qualified)
    plain, spelled = project.get("plain"), project.get("spelled")
    assert (spelled.refs, spelled.columns) == (plain.refs, plain.columns) == (("daily",), ("tenant_id", "day", "n"))
    assert [e.sql("postgres") for e in spelled.grain_expressions] == ["t.tenant_id", "t.day"]
    if case != "aliased_as_itself":  # whose output columns keep their AS
        assert spelled.query.sql("postgres", comments=False) == plain.query.sql("postgres", comments=False)


CHANNEL_DAILY = (
    "{{ config(grain=['tenant_id', 'day', 'channel']) }}\n"
    "SELECT t.tenant_id, DATE_TRUNC('day', t.created_at) AS day, COALESCE(t.channel, 'unknown') AS channel, "
    "COUNT(*) AS n FROM {{ source('support.tickets') }} AS t GROUP BY 1, 2, 3"
)


def test_a_group_by_name_that_is_also_a_column_of_the_model_read_is_rejected(tmp_path: Path) -> None:
    # Given a model grouping by the bare name of an output column that its parent model also outputs, unread here
    write(tmp_path, "support/channel_daily.sql", CHANNEL_DAILY)
    path = write(
        tmp_path,
        "support/relabelled.sql",
        "{{ config(grain=['tenant_id', 'channel']) }}\n"
        "SELECT d.tenant_id, UPPER(CAST(d.day AS TEXT)) AS channel, SUM(d.n) AS n FROM {{ ref('channel_daily') }} AS d "
        "GROUP BY d.tenant_id, channel",
    )

    # When the project is loaded
    with pytest.raises(ModelError) as err:
        load_project(tmp_path)

    # Then the file is rejected: PostgreSQL would group by the parent's channel, not by the relabelled day
    assert err.value.construct == "ambiguous GROUP BY"
    assert err.value.message == (
        f"{path}: GROUP BY channel is ambiguous: this model groups by its output column channel (UPPER(CAST(d.day AS "
        f"TEXT))), but PostgreSQL reads a bare GROUP BY name as an input column first, and d.channel is a column of "
        f"model channel_daily; group by the expression or its position, or rename the output column"
    )


def test_a_group_by_name_that_no_input_has_is_the_output_column(tmp_path: Path) -> None:
    # Given a model grouping by the bare name of an output column that the model it reads does not output
    write(tmp_path, "support/channel_daily.sql", CHANNEL_DAILY)
    write(
        tmp_path,
        "support/monthly.sql",
        "{{ config(grain=['tenant_id', 'month', 'channel']) }}\n"
        "SELECT d.tenant_id, DATE_TRUNC('month', d.day) AS month, d.channel, SUM(d.n) AS n "
        "FROM {{ ref('channel_daily') }} AS d GROUP BY d.tenant_id, month, channel",
    )

    # When the project is loaded
    model = load_project(tmp_path).get("monthly")

    # Then it groups by the output columns' expressions, as PostgreSQL does
    assert [e.sql("postgres") for e in model.grain_expressions] == [
        "d.tenant_id",
        "DATE_TRUNC('MONTH', d.day)",
        "d.channel",
    ]


def test_a_group_by_name_in_upper_case_names_the_output_column_as_postgresql_folds_it(tmp_path: Path) -> None:
    # Given a monthly model over a daily one, grouping by its output alias month written in upper case
    write(tmp_path, "support/daily.sql", daily("{{ source('support.tickets') }}"))
    write(
        tmp_path,
        "support/monthly.sql",
        "{{ config(grain=['tenant_id', 'month']) }}\n"
        "SELECT t.tenant_id, DATE_TRUNC('month', t.day) AS month, SUM(t.n) AS n FROM {{ ref('daily') }} AS t "
        "GROUP BY 1, MONTH",
    )

    # When the project is loaded
    monthly = load_project(tmp_path).get("monthly")

    # Then MONTH is the output column month (an unquoted name is folded to lower case), as PostgreSQL reads it
    assert [e.sql("postgres") for e in monthly.grain_expressions] == ["t.tenant_id", "DATE_TRUNC('MONTH', t.day)"]


# A column of a ref'd model that the model does not output, and the error naming it (``{path}``: the reader's file).
UNKNOWN_REF_COLUMNS = {
    "typo": (
        GRAIN + "SELECT t.tenant_id, t.day, SUM(t.nn) AS n FROM {{ ref('daily') }} AS t GROUP BY 1, 2",
        "{path}: column t.nn: model daily has no column nn; its columns are tenant_id, day, n",
    ),
    "source_column_the_model_does_not_output": (
        GRAIN + "SELECT t.tenant_id, t.day, COUNT(t.assignee_id) AS n FROM {{ ref('daily') }} AS t GROUP BY 1, 2",
        "{path}: column t.assignee_id: model daily has no column assignee_id; its columns are tenant_id, day, n",
    ),
    "output_alias_in_where": (
        "{{ config(grain=['tenant_id', 'month']) }}\n"
        "SELECT t.tenant_id, DATE_TRUNC('month', t.day) AS month, SUM(t.n) AS n FROM {{ ref('daily') }} AS t "
        "WHERE t.month >= DATE '2024-01-01' GROUP BY 1, 2",
        "{path}: column t.month: month is an output column of this model, not a column of model daily: repeat its "
        "expression (DATE_TRUNC('MONTH', t.day))",
    ),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_REF_COLUMNS))
def test_a_column_that_the_model_read_does_not_output_is_rejected(tmp_path: Path, case: str) -> None:
    # Given a model reading a column that the model it refs does not output
    write(tmp_path, "support/daily.sql", daily("{{ source('support.tickets') }}"))
    text, problem = UNKNOWN_REF_COLUMNS[case]
    path = write(tmp_path, "support/reader.sql", text)

    # When the project is loaded
    with pytest.raises(ModelError) as err:
        load_project(tmp_path)

    # Then the reader's file is rejected, naming the column and the model it reads (PostgreSQL would refuse it)
    assert (err.value.file, err.value.construct) == (str(path), "unknown column")
    assert err.value.message == problem.format(path=path)


def test_every_unknown_column_of_a_ref_is_a_finding(tmp_path: Path) -> None:
    # Given a model reading two columns its parent does not output, one of them twice
    write(tmp_path, "support/daily.sql", daily("{{ source('support.tickets') }}"))
    path = write(
        tmp_path,
        "support/reader.sql",
        GRAIN + "SELECT t.tenant_id, t.day, SUM(t.nn) + MAX(t.nn) + MIN(t.x) AS n FROM {{ ref('daily') }} AS t "
        "GROUP BY 1, 2",
    )

    # When the project is validated
    findings = validate_project(tmp_path)

    # Then each distinct column is reported once, against the reader
    assert [(f.file, f.model, f.construct) for f in findings] == [(str(path), "reader", "unknown column")] * 2
    assert [f.message.split(": ")[1] for f in findings] == ["column t.nn", "column t.x"]
