"""The validator: every construct that makes Redshift recompute a materialized view in full is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_analytics.models import Finding, validate_project

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


def only_finding(root: Path, name: str, text: str) -> tuple[Path, Finding]:
    """Write one model file under ``root`` and return its path and the project's one finding."""
    path = root / "support" / f"{name}.sql"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    findings = validate_project(root)
    assert len(findings) == 1, findings
    assert findings[0].file == str(path) and findings[0].model == name
    return path, findings[0]


def refreshed_in_full(path: Path, name: str, construct: str) -> str:
    return (
        f"{path}: model '{name}' uses {construct}; Redshift would recompute the whole materialized view on every "
        f"refresh (and the PostgreSQL engine refreshes it in full)"
    )


# Time-dependent, random and sequence functions that the validator used to let through, and their finding.
MUTABLE = {
    "sysdate": (model("COUNT(*)", tail="WHERE t.created_at < SYSDATE"), "mutable function SYSDATE"),
    "localtimestamp": (
        model("COUNT(*)", tail="WHERE t.created_at < LOCALTIMESTAMP"),
        "mutable function LOCALTIMESTAMP",
    ),
    "localtime": (model("COUNT(*)", tail="WHERE t.created_at::time < LOCALTIME"), "mutable function LOCALTIME"),
    "gen_random_uuid": (model("MAX(GEN_RANDOM_UUID()::text)"), "mutable function GEN_RANDOM_UUID"),
    "now_literal": (model("COUNT(*)", tail="WHERE t.created_at < 'now'::timestamptz"), "time-dependent literal 'now'"),
    "timestamp_now": (model("COUNT(*)", tail="WHERE t.created_at < TIMESTAMP 'now'"), "time-dependent literal 'now'"),
    "today": (model("COUNT(*)", tail="WHERE t.created_at::date = 'today'::date"), "time-dependent literal 'today'"),
    "tomorrow": (model("COUNT(*)", tail="WHERE t.created_at < 'tomorrow'"), "time-dependent literal 'tomorrow'"),
    "yesterday": (model("COUNT(*)", tail="WHERE t.created_at > 'Yesterday'"), "time-dependent literal 'Yesterday'"),
    "nextval": (model("MAX(NEXTVAL('ticket_seq'))"), "mutable function NEXTVAL"),
    "age": (
        model("COUNT(*)", tail="WHERE AGE(t.created_at) < INTERVAL '7 days'"),
        "mutable function AGE with one argument (the age at the current date)",
    ),
    "tablesample": (model("COUNT(*)", source=f"{SRC} AS t TABLESAMPLE SYSTEM (10)"), "TABLESAMPLE"),
    "udf": (model("SUM(f_ticket_cost(t.channel))"), "function F_TICKET_COST (not a known immutable built-in)"),
    "schema_udf": (
        model("SUM(public.f_ticket_cost(t.channel))"),
        "function public.F_TICKET_COST (not a known immutable built-in)",
    ),
    "session_function": (model("MAX(CURRENT_USER)"), "function CURRENT_USER (not a known immutable built-in)"),
}


@pytest.mark.parametrize("case", sorted(MUTABLE))
def test_functions_that_are_not_known_immutable_built_ins_are_named(tmp_path: Path, case: str) -> None:
    # Given a model using a function or value whose result changes without any row changing, or may
    text, construct = MUTABLE[case]

    # When the project is validated
    path, finding = only_finding(tmp_path, case, text)

    # Then the finding names the model and the construct
    assert (finding.construct, finding.message) == (construct, refreshed_in_full(path, case, construct))


def test_an_immutable_function_of_two_arguments_and_text_literals_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / "ok.sql").write_text(
        model(
            "SUM(CASE WHEN AGE(t.updated_at, t.created_at) < INTERVAL '1 day' AND t.status <> 'known' THEN 1 END)",
            tail="WHERE t.status <> 'buy now' AND t.status <> 'nowhere'",  # text that merely contains a time word
        )
    )
    assert validate_project(tmp_path) == []


TWO = f"{SRC} AS t JOIN {SRC} AS u"
# Joins that are cross joins, or outer joins in disguise, or that let one tenant's rows meet another's.
JOINS = {
    "comma": (
        model("COUNT(*)", source=f"{SRC} AS t, {SRC} AS u"),
        "cross join",
        "the comma join of support.tickets AS u is a cross join: no equality between a column of u and a column "
        "of another input; join on u.tenant_id = t.tenant_id and the key columns",
    ),
    "on_true": (
        model("COUNT(*)", source=f"{TWO} ON TRUE"),
        "cross join",
        "JOIN support.tickets AS u ON TRUE is a cross join: no equality between a column of u and a column of "
        "another input; join on u.tenant_id = t.tenant_id and the key columns",
    ),
    "not_equal": (
        model("COUNT(*)", source=f"{TWO} ON u.created_at > t.created_at"),
        "cross join",
        "JOIN support.tickets AS u ON u.created_at > t.created_at is a cross join: no equality between a column of "
        "u and a column of another input; join on u.tenant_id = t.tenant_id and the key columns",
    ),
    "oracle_outer": (
        model("COUNT(*)", source=f"{SRC} AS t, {SRC} AS u", tail="WHERE u.tenant_id(+) = t.tenant_id"),
        "outer join (+)",
        "uses the Oracle outer-join marker (+); write LEFT JOIN ... ON instead (an outer join, which is refreshed "
        "in full)",
    ),
    "other_tenant": (
        model("COUNT(*)", source=f"{TWO} ON u.requester_id = t.requester_id"),
        "tenant isolation",
        "JOIN support.tickets AS u ON u.requester_id = t.requester_id does not equate u.tenant_id with the "
        "tenant_id of the input it joins, so rows of different tenants would meet; add u.tenant_id = t.tenant_id "
        "to its condition",
    ),
    "literal_tenant": (
        CONFIG + f"SELECT 'acme' AS tenant_id, {DAY} AS day, COUNT(*) AS m FROM {SRC} AS t GROUP BY 1, 2",
        "tenant isolation",
        "output column 'tenant_id' is 'acme', not the tenant_id column of an input (such as t.tenant_id): every "
        "row must belong to the tenant whose rows it sums",
    ),
    "unqualified": (
        model("SUM(CASE WHEN status = 'open' THEN 1 ELSE 0 END)", source=f"{TWO} ON u.tenant_id = t.tenant_id"),
        "unqualified column",
        "column 'status' does not name its input: in a model with more than one input, qualify every column with "
        "its table's alias (such as t.status)",
    ),
    "reserved_alias": (
        CONFIG + f"SELECT __keys.tenant_id, DATE_TRUNC('day', __keys.created_at) AS day, COUNT(*) AS m "
        f"FROM {SRC} AS __keys GROUP BY 1, 2",
        "reserved name",
        "name '__keys' starts with '__', which the engine reserves for the aliases and columns of the SQL it generates",
    ),
}


@pytest.mark.parametrize("case", sorted(JOINS))
def test_joins_and_names_the_engine_cannot_keep_within_one_tenant_are_rejected(tmp_path: Path, case: str) -> None:
    # Given a model whose join or names the engine cannot refresh correctly
    text, construct, problem = JOINS[case]

    # When the project is validated
    path, finding = only_finding(tmp_path, case, text)

    # Then the model's file is rejected, naming the construct
    assert (finding.construct, finding.message) == (construct, f"{path}: {problem}")


def test_a_ref_to_a_file_that_does_not_load_says_that_file_has_errors(tmp_path: Path) -> None:
    # Given a model that does not parse and one that refs it
    (tmp_path / "support").mkdir()
    broken = tmp_path / "support" / "a.sql"
    broken.write_text(CONFIG + "SELECT garbage FROM WHERE (")
    reader = tmp_path / "support" / "b.sql"
    reader.write_text(model("COUNT(*)", source="{{ ref('a') }} AS t"))

    # When validated
    findings = validate_project(tmp_path)

    # Then the reader's finding points at the broken file rather than at a missing one
    assert [(f.file, f.construct) for f in findings] == [(str(broken), "syntax"), (str(reader), "ref")]
    assert findings[1].message == f"{reader}: ref 'a': {broken} has errors"


def test_every_dag_problem_is_reported(tmp_path: Path) -> None:
    # Given a duplicate model name, two cycles and an unknown ref
    for relative, source in [
        ("support/a.sql", "{{ ref('b') }}"),
        ("support/b.sql", "{{ ref('a') }}"),
        ("support/c.sql", "{{ ref('d') }}"),
        ("support/d.sql", "{{ ref('c') }}"),
        ("support/e.sql", "{{ ref('nowhere') }}"),
        ("messaging/e.sql", SRC),
    ]:
        path = tmp_path / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(model("COUNT(*)", source=f"{source} AS t"))

    # When validated
    findings = validate_project(tmp_path)

    # Then each one is reported
    support = tmp_path / "support"
    assert [f.message for f in findings] == [
        f"{support / 'e.sql'}: model name 'e' is also used by {tmp_path / 'messaging' / 'e.sql'}",
        f"{support / 'e.sql'}: unknown ref 'nowhere': no model file nowhere.sql",
        f"{support / 'a.sql'}: dependency cycle a -> b -> a",
        f"{support / 'c.sql'}: dependency cycle c -> d -> c",
    ]


def test_files_that_cannot_be_read_or_parsed_are_findings_and_the_other_files_are_still_checked(
    tmp_path: Path,
) -> None:
    # Given, beside a model with a forbidden construct, files that used to stop the validator with a traceback
    support = tmp_path / "support"
    support.mkdir()
    (support / "counted.sql").write_text(model("COUNT(DISTINCT t.status)"))
    (support / "open_string.sql").write_text(model("COUNT(*)", tail="WHERE t.status = 'open"))
    (support / "open_comment.sql").write_text(model("COUNT(*)", tail="/* unfinished"))
    (support / "nested.sql").write_text(model("COALESCE(" * 45 + "t.ticket_id" + ")" * 45))
    latin1 = model("COUNT(*)", tail="WHERE t.status = 'résolu'").encode("latin-1")
    (support / "latin1.sql").write_bytes(latin1)
    (support / "folder.sql").mkdir()
    (support / "dangling.sql").symlink_to(tmp_path / "nowhere.sql")

    # When the project is validated
    findings = {f.model: f for f in validate_project(tmp_path)}

    # Then each file is one finding naming it, and the valid file's construct is reported too
    bad_byte = latin1.index("é".encode("latin-1"))
    assert findings.pop("counted").construct == "DISTINCT aggregate COUNT(DISTINCT ...)"
    expected = {
        "dangling": ("file", "cannot be read: No such file or directory"),
        "folder": ("file", "cannot be read: Is a directory"),
        "latin1": ("file", f"is not UTF-8 text: invalid continuation byte at byte {bad_byte}"),
        "nested": ("syntax", "the SQL is nested too deeply to be checked; simplify it"),
        "open_comment": ("syntax", "SQL does not parse: Error tokenizing "),
        "open_string": ("syntax", "SQL does not parse: Error tokenizing "),
    }
    assert sorted(findings) == sorted(expected)
    for name, (construct, problem) in expected.items():
        path = support / f"{name}.sql"
        message = findings[name].message
        if name.startswith("open_"):  # then the tokenizer quotes the text around the unterminated token
            message = message[: len(f"{path}: {problem}")]
        assert (findings[name].file, findings[name].construct, message) == (str(path), construct, f"{path}: {problem}")
