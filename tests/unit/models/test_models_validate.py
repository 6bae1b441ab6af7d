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


def rollup(source: str) -> str:
    """A model over a model of ``model()``'s columns (tenant_id, day, m), with the same columns."""
    return CONFIG + f"SELECT t.tenant_id, t.day, SUM(t.m) AS m FROM {source} AS t GROUP BY 1, 2"


# One model per forbidden construct, and the words the finding must name.
CASES = {
    "left_join": (
        model(
            "COUNT(*)",
            source=f"{SRC} AS t LEFT JOIN {SRC} AS u ON u.tenant_id = t.tenant_id AND u.ticket_id = t.ticket_id",
        ),
        "LEFT OUTER JOIN",
    ),
    "full_join": (
        model(
            "COUNT(*)",
            source=f"{SRC} AS t FULL JOIN {SRC} AS u ON u.tenant_id = t.tenant_id AND u.ticket_id = t.ticket_id",
        ),
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
    "tenant_only": (
        model("COUNT(*)", source=f"{TWO} ON u.tenant_id = t.tenant_id"),
        "cross join",
        "JOIN support.tickets AS u ON u.tenant_id = t.tenant_id equates only tenant_id: every row of u would meet "
        "every row of its tenant in the other input; join on the key columns as well",
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
        path.write_text(model("COUNT(*)", source=f"{source} AS t") if source == SRC else rollup(source))

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


def for_update(clause: str) -> str:
    return model("COUNT(*)") + f" {clause}"


# Constructs that PostgreSQL or Redshift refuse when the model runs, or that read values no row holds, which the loader
# used to let through: the file is rejected, naming the construct and the problem.
REFUSED = {
    "filter_clause": (
        model("COUNT(*) FILTER (WHERE t.status = 'open')"),
        "FILTER clause",
        "COUNT(*) FILTER(WHERE t.status = 'open'): Redshift has no FILTER clause on aggregates, so the model's view "
        "could not be created there; aggregate a CASE instead",
    ),
    "collate_clause": (
        model('MAX(t.status COLLATE "C")'),
        "COLLATE clause",
        't.status COLLATE "C": Redshift has no COLLATE clause',
    ),
    "ordered_aggregate": (
        model("MAX(t.status ORDER BY t.updated_at)"),
        "ordered aggregate",
        "MAX(t.status ORDER BY t.updated_at): Redshift has no ORDER BY inside an aggregate's arguments",
    ),
    "for_update": (
        for_update("FOR UPDATE"),
        "locking clause",
        "FOR UPDATE locks the rows it reads: PostgreSQL refuses a locking clause with GROUP BY (in a subquery it would "
        "block the input's writers during every refresh); remove it",
    ),
    "for_share": (for_update("FOR SHARE"), "locking clause", "FOR SHARE locks the rows it reads"),
    "for_no_key_update": (for_update("FOR NO KEY UPDATE"), "locking clause", "FOR NO KEY UPDATE locks the rows"),
    "for_key_share_of": (for_update("FOR KEY SHARE OF t NOWAIT"), "locking clause", "FOR KEY SHARE OF t NOWAIT locks"),
    "for_update_in_subquery": (
        model("COUNT(*)", source=f"(SELECT * FROM {SRC} AS u FOR UPDATE) AS t"),
        "locking clause",
        "FOR UPDATE locks the rows it reads",
    ),
    "sum_of_count": (
        model("SUM(COUNT(t.ticket_id))"),
        "nested aggregate",
        "aggregate SUM(COUNT(t.ticket_id)) contains the aggregate COUNT(t.ticket_id): PostgreSQL and Redshift refuse "
        "aggregates inside an aggregate; aggregate once here, and aggregate this model's column again in a model that "
        "refs it",
    ),
    "max_of_sum": (
        model("MAX(SUM(t.ticket_id))"),
        "nested aggregate",
        "aggregate MAX(SUM(t.ticket_id)) contains the aggregate SUM(t.ticket_id)",
    ),
    "nested_in_having": (
        model("COUNT(*)") + " HAVING SUM(MAX(t.ticket_id)) > 0",
        "nested aggregate",
        "aggregate SUM(MAX(t.ticket_id)) contains the aggregate MAX(t.ticket_id)",
    ),
    "aggregate_in_filter": (
        model("COUNT(*) FILTER (WHERE COUNT(*) > 1)"),
        "nested aggregate",
        "aggregate COUNT(*) FILTER(WHERE COUNT(*) > 1) contains the aggregate COUNT(*)",
    ),
    "window_in_aggregate": (
        model("SUM(SUM(t.ticket_id) OVER ())"),
        "nested window function",
        "aggregate SUM(SUM(t.ticket_id) OVER ()) contains the window function SUM(t.ticket_id) OVER ()",
    ),
    "aggregate_in_where": (
        model("COUNT(*)", tail="WHERE COUNT(*) > 1"),
        "aggregate in WHERE",
        "WHERE uses the aggregate COUNT(*), which PostgreSQL and Redshift refuse there: rows are joined and filtered "
        "before they are grouped; filter groups with HAVING instead",
    ),
    "aggregate_in_join": (
        model(
            "COUNT(*)",
            source=f"{TWO} ON u.tenant_id = t.tenant_id AND u.requester_id = t.requester_id "
            "AND MAX(u.ticket_id) = t.ticket_id",
        ),
        "aggregate in JOIN",
        "the ON condition of the join of u uses the aggregate MAX(u.ticket_id), which PostgreSQL and Redshift refuse",
    ),
    "window_in_where": (
        model("COUNT(*)", tail="WHERE ROW_NUMBER() OVER () > 1"),
        "window function in WHERE",
        "WHERE uses the window function ROW_NUMBER() OVER (), which PostgreSQL and Redshift refuse there",
    ),
    "ctid": (
        model("MAX(t.ctid::text)"),
        "system column",
        "column t.ctid is the system column ctid, whose value changes when a row is updated or moved, or differs per "
        "table, and which Redshift does not have; read a column of the table instead",
    ),
    "xmin_unqualified": (model("MAX(xmin::text)"), "system column", "column xmin is the system column xmin"),
    "xmax_upper_case": (
        model("COUNT(*)", tail="WHERE t.XMAX::text <> '0'"),
        "system column",
        "column t.xmax is the system column xmax",
    ),
    "cmin_quoted": (model('MAX(t."cmin"::text)'), "system column", 'column t."cmin" is the system column cmin'),
    "cmax": (model("MAX(t.cmax::text)"), "system column", "column t.cmax is the system column cmax"),
    "tableoid": (model("COUNT(DISTINCT t.tableoid)"), "system column", "column t.tableoid is the system column"),
    "oid_in_join": (
        model("COUNT(*)", source=f"{TWO} ON u.tenant_id = t.tenant_id AND u.oid = t.oid"),
        "system column",
        "column u.oid is the system column oid",
    ),
    "system_column_output": (
        CONFIG + f"SELECT t.tenant_id, {DAY} AS day, COUNT(*) AS xmin FROM {SRC} AS t GROUP BY 1, 2",
        "system column",
        "output column 'xmin' has the name of a system column, which a PostgreSQL table cannot have as a column (and "
        "OID is a reserved word on Redshift); rename it",
    ),
    "parameter": (
        model("COUNT(*)", tail="WHERE t.status = $1"),
        "parameter",
        "parameter $1: nothing binds a value to it when the model is refreshed; write the value",
    ),
    "placeholder": (model("COUNT(*)", tail="WHERE t.status = %(status)s"), "parameter", "parameter %(status)s"),
    "values_input": (
        model("COUNT(*)", source=f"{SRC} AS t JOIN (VALUES (1, 'a')) AS v(n, s) ON v.n = t.ticket_id"),
        "table",
        "(VALUES (1, 'a')) AS v(n, s) is not an input: a model reads rows only from {{ ref() }} and {{ source() }}",
    ),
    "function_input": (
        model("COUNT(*)", source=f"{SRC} AS t JOIN generate_series(1, 3) AS g(n) ON g.n = t.ticket_id"),
        "table",
        "GENERATE_SERIES(1, 3) AS g(n) is not an input: a model reads rows only from",
    ),
    "unnest_input": (
        model("COUNT(*)", source=f"{SRC} AS t JOIN UNNEST(ARRAY[1, 2]) AS u(n) ON u.n = t.ticket_id"),
        "table",
        "UNNEST(ARRAY[1, 2]) AS u(n) is not an input: a model reads rows only from",
    ),
    "alias_twice": (
        model("COUNT(*)", source=f"{SRC} AS t JOIN {SRC} AS T ON T.tenant_id = t.tenant_id AND T.status = t.status"),
        "join",
        "two inputs are called t (a name without double quotes is not case-sensitive); give each input its own alias",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_constructs_the_databases_refuse_or_that_read_no_row_value_are_rejected(tmp_path: Path, case: str) -> None:
    # Given a model that PostgreSQL or Redshift would refuse when refreshing it, or that reads system columns
    text, construct, problem = REFUSED[case]

    # When the project is validated
    path, finding = only_finding(tmp_path, case, text)

    # Then the file is rejected, naming the construct and the problem
    assert finding.construct == construct
    assert finding.message.startswith(f"{path}: {problem}"), finding.message


CREATED_DAY = "{{ config(grain=['tenant_id', 'created_at']) }}\n"
# A GROUP BY key written as a bare name that is both an output column and (maybe) a column of an input: PostgreSQL
# groups by the input column, the loader used to group by the output column's expression.
AMBIGUOUS = {
    "truncated_timestamp": (
        CREATED_DAY + f"SELECT DATE_TRUNC('day', e.created_at) AS created_at, e.tenant_id, COUNT(*) AS n "
        f"FROM {SRC} AS e GROUP BY e.tenant_id, created_at",
        "GROUP BY created_at is ambiguous: this model groups by its output column created_at (DATE_TRUNC('DAY', "
        "e.created_at)), but PostgreSQL reads a bare GROUP BY name as an input column first, and e.created_at is a "
        "column of support.tickets; group by the expression or its position, or rename the output column",
    ),
    "unqualified": (
        CREATED_DAY + f"SELECT tenant_id, DATE_TRUNC('day', created_at) AS created_at, COUNT(*) AS n "
        f"FROM {SRC} AS e GROUP BY 1, created_at",
        "GROUP BY created_at is ambiguous: this model groups by its output column created_at (DATE_TRUNC('DAY', "
        "e.created_at)), but PostgreSQL reads a bare GROUP BY name as an input column first, and e.created_at is a "
        "column of support.tickets;",
    ),
    "coalesced": (
        "{{ config(grain=['tenant_id', 'channel']) }}\n"
        f"SELECT e.tenant_id, COALESCE(e.channel, 'unknown') AS channel, COUNT(*) AS n FROM {SRC} AS e "
        "GROUP BY 1, channel",
        "GROUP BY channel is ambiguous: this model groups by its output column channel (COALESCE(e.channel, "
        "'unknown')), but PostgreSQL reads a bare GROUP BY name as an input column first, and e.channel is a column "
        "of support.tickets;",
    ),
    "source_column_the_model_does_not_read": (
        "{{ config(grain=['tenant_id', 'status']) }}\n"
        f"SELECT t.tenant_id, COALESCE(t.priority, 'none') AS status, COUNT(*) AS n FROM {SRC} AS t "
        "GROUP BY 1, status",
        "GROUP BY status is ambiguous: this model groups by its output column status (COALESCE(t.priority, "
        "'none')), but PostgreSQL reads a bare GROUP BY name as an input column first, and t.status is a column of "
        "support.tickets; group by the expression or its position, or rename the output column",
    ),
    "two_inputs": (
        model("COUNT(*)", source=f"{TWO} ON u.tenant_id = t.tenant_id AND u.ticket_id = t.ticket_id").replace(
            "GROUP BY 1, 2", "GROUP BY tenant_id, 2"
        ),
        "GROUP BY tenant_id is ambiguous: this model groups by its output column tenant_id (t.tenant_id), but "
        "PostgreSQL reads a bare GROUP BY name as an input column first, and t.tenant_id is a column of "
        "support.tickets and u.tenant_id is a column of support.tickets (PostgreSQL refuses a name that two inputs "
        "have);",
    ),
}


@pytest.mark.parametrize("case", sorted(AMBIGUOUS))
def test_a_group_by_name_that_postgresql_reads_as_an_input_column_is_rejected(tmp_path: Path, case: str) -> None:
    # Given a model grouping by a bare name that is an output column and may be an input column as well
    text, problem = AMBIGUOUS[case]

    # When the project is validated
    path, finding = only_finding(tmp_path, case, text)

    # Then the file is rejected: the model would group by something else on PostgreSQL than the loader compiles
    assert finding.construct == "ambiguous GROUP BY"
    assert finding.message.startswith(f"{path}: {problem}"), finding.message


# Close relatives of the rejected constructs that the databases accept and that mean the same to the loader.
ACCEPTED = {
    "window_over_an_aggregate": (model("SUM(COUNT(*)) OVER (PARTITION BY t.tenant_id)"), ["window function"]),
    "aggregate_in_a_subquery_of_where": (
        model("COUNT(*)", tail=f"WHERE t.ticket_id > (SELECT MAX(u.ticket_id) FROM {SRC} AS u)"),
        ["subquery"],
    ),
    "system_column_name_in_text": (model("COUNT(*)", tail="WHERE t.status <> 'xmin'"), []),
    "group_by_a_name_that_is_the_same_column": (
        "{{ config(grain=['tenant_id', 'channel']) }}\n"
        f"SELECT e.tenant_id, e.channel AS channel, COUNT(*) AS n FROM {SRC} AS e GROUP BY tenant_id, channel",
        [],
    ),
    # support.tickets has no column day, so PostgreSQL reads the bare name as the output column
    "group_by_an_alias_that_no_input_has": (model("COUNT(*)").replace("GROUP BY 1, 2", "GROUP BY 1, day"), []),
    "group_by_an_alias_in_upper_case": (model("COUNT(*)").replace("GROUP BY 1, 2", "GROUP BY 1, DAY"), []),
    "columns_in_upper_case": (
        CONFIG + f"SELECT t.tenant_id, DATE_TRUNC('day', T.CREATED_AT) AS day, COUNT(t.ASSIGNEE_ID) AS m "
        f"FROM {SRC} AS t WHERE T.\"status\" <> 'spam' GROUP BY 1, 2",
        [],
    ),
    "unknown_column_inside_a_subquery": (
        model("COUNT(*)", tail=f"WHERE t.ticket_id IN (SELECT u.nope FROM {SRC} AS u WHERE u.x = t.y)"),
        ["subquery"],
    ),
    "column_of_a_subquery_in_from": (model("MAX(t.anything)", source=f"(SELECT * FROM {SRC}) AS t"), ["subquery"]),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_what_the_databases_accept_is_not_rejected_as_a_refused_construct(tmp_path: Path, case: str) -> None:
    # Given a model close to a rejected construct that PostgreSQL runs as the loader reads it
    text, constructs = ACCEPTED[case]
    (tmp_path / "support").mkdir()
    (tmp_path / "support" / f"{case}.sql").write_text(text)

    # When the project is validated
    findings = validate_project(tmp_path)

    # Then only the findings it had anyway are reported
    assert [f.construct for f in findings] == constructs


SOURCE_COLUMNS = (
    "tenant_id, ticket_id, created_at, updated_at, status, priority, channel, requester_id, assignee_id, group_id, "
    "organization_id, requester_name, assignee_name, group_name, organization_name, loaded_at"
)
# A column reference that PostgreSQL would refuse at refresh because its input has no such column.
UNKNOWN_COLUMNS = {
    "typo": (
        model("MAX(t.creatd_at)"),
        f"column t.creatd_at: support.tickets has no column creatd_at; its columns are {SOURCE_COLUMNS}",
    ),
    "typo_in_messaging_events": (
        CONFIG + "SELECT e.tenant_id, DATE_TRUNC('day', e.evnt_at) AS day, COUNT(*) AS n "
        "FROM {{ source('messaging.events') }} AS e GROUP BY 1, 2",
        "column e.evnt_at: messaging.events has no column evnt_at; its columns are tenant_id, message_id, "
        "event_type, event_at, campaign_id, template_id, channel, error_code, loaded_at",
    ),
    "typo_in_join": (
        model("COUNT(*)", source=f"{TWO} ON u.tenant_id = t.tenant_id AND u.tickt_id = t.ticket_id"),
        "column u.tickt_id: support.tickets has no column tickt_id;",
    ),
    "output_alias_in_where": (
        model("COUNT(*)", tail="WHERE t.day >= DATE '2024-01-01'"),
        "column t.day: day is an output column of this model, not a column of support.tickets: repeat its "
        "expression (DATE_TRUNC('DAY', t.created_at))",
    ),
    "unqualified_output_alias_in_where": (
        model("COUNT(*)", tail="WHERE day >= DATE '2024-01-01'"),
        "column t.day: day is an output column of this model, not a column of support.tickets: repeat its "
        "expression (DATE_TRUNC('DAY', t.created_at))",
    ),
    "output_alias_in_another_output_column": (
        model("COUNT(CASE WHEN t.updated_at < day + INTERVAL '1 day' THEN 1 END)"),
        "column t.day: day is an output column of this model, not a column of support.tickets: repeat its "
        "expression (DATE_TRUNC('DAY', t.created_at))",
    ),
    "output_column_reading_the_missing_column_itself": (
        CONFIG + f"SELECT t.tenant_id, t.day AS day, COUNT(*) AS m FROM {SRC} AS t GROUP BY 1, 2",
        f"column t.day: support.tickets has no column day; its columns are {SOURCE_COLUMNS}",
    ),
    "quoted_upper_case_is_not_a_system_column": (
        model('MAX(t."XMIN")'),
        'column t."XMIN": support.tickets has no column XMIN;',
    ),
    "alias_of_no_input": (
        model("MAX(x.status)"),
        "column x.status: this model has no input called x; its inputs are t",
    ),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN_COLUMNS))
def test_a_column_that_its_source_does_not_have_is_rejected(tmp_path: Path, case: str) -> None:
    # Given a model reading a column that its landed table does not have
    text, problem = UNKNOWN_COLUMNS[case]

    # When the project is validated
    path, finding = only_finding(tmp_path, case, text)

    # Then the file is rejected, naming the column and the input, instead of failing at refresh
    assert finding.construct == "unknown column"
    assert finding.message.startswith(f"{path}: {problem}"), finding.message
