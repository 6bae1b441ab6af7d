"""The `tenant-analytics` console script, one process per call, state kept under TENANT_ANALYTICS_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tenant_analytics.sources.server import SourceServer
from tenant_analytics.sources.synthetic import TenantSpec, generate_dataset, latest_versions, parse_timestamp

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]

CLI = str(Path(sys.executable).with_name("tenant-analytics"))
END = datetime(2026, 8, 1, tzinfo=UTC)


def cli(home: Path, pg_admin: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a process of its own; ``env`` sets (or overrides) environment variables."""
    env = {**os.environ, "TENANT_ANALYTICS_HOME": str(home), "DATABASE_URL": pg_admin, **env}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the command was refused as bad input: exit 2 and one line on stderr, no traceback; return it.

    The embedded PostgreSQL's library may warn about XDG_RUNTIME_DIR first; that is not the command's output."""
    lines = [
        line for line in result.stderr.splitlines() if "XDG_RUNTIME_DIR" not in line and "user_runtime" not in line
    ]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_tenant_added_against_any_source_is_queryable_after_run_hour(tmp_path: Path, pg_admin: str) -> None:
    # Given a server speaking the export protocol, and a tenant registered with the CLI
    dataset = generate_dataset(3, [TenantSpec("zeta", 40)], datetime(2026, 7, 1, tzinfo=UTC), END)
    home = tmp_path / "home"
    with SourceServer(dataset, page_size=7, now=END) as source:
        added = cli(home, pg_admin, "tenants", "add", "--id", "zeta", "--source-url", source.base_url("zeta"))
        assert added.returncode == 0, added.stderr
        assert "registered tenant 'zeta' on aurora" in added.stdout

        # When an hour runs in another process
        ran = cli(home, pg_admin, "run-hour")
        assert ran.returncode == 0, ran.stderr

    # Then a third process answers the query with the tenant's numbers, computed here independently
    query = {
        "dataset": "tickets",
        "measures": ["tickets_created"],
        "time": {"dimension": "created_at", "granularity": "day"},
    }
    answered = cli(home, pg_admin, "query", "--tenant", "zeta", json.dumps(query))
    assert answered.returncode == 0, answered.stderr
    per_day = Counter(
        parse_timestamp(t["created_at"]).date().isoformat() for t in latest_versions(dataset["zeta"], END).values()
    )
    assert json.loads(answered.stdout)["rows"] == [[d, n] for d, n in sorted(per_day.items())]
    listed = cli(home, pg_admin, "tenants", "list")
    assert "zeta" in listed.stdout and "active" in listed.stdout
    suspended = cli(home, pg_admin, "tenants", "set-status", "--id", "zeta", "--status", "suspended")
    assert suspended.stdout.strip() == "tenant 'zeta' is now suspended"
    assert json.loads(cli(home, pg_admin, "tenants", "get", "--id", "zeta").stdout)["status"] == "suspended"


def test_bad_input_gets_one_line_errors(tmp_path: Path, pg_admin: str) -> None:
    home = tmp_path / "home"
    unknown = cli(
        home, pg_admin, "query", "--tenant", "nobody", '{"dataset": "tickets", "measures": ["tickets_created"]}'
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: tenant 'nobody' is not registered"

    malformed = cli(home, pg_admin, "query", "--tenant", "nobody", "{not json")
    assert malformed.returncode == 2 and malformed.stderr.startswith("error: the query is not valid JSON")

    bad_id = cli(home, pg_admin, "tenants", "add", "--id", "Has Spaces", "--source-url", "http://x")
    assert bad_id.returncode == 2 and "tenant id 'Has Spaces' is not allowed" in bad_id.stderr
    assert len(bad_id.stderr.strip().splitlines()) == 1


def test_models_validate_names_each_file_and_construct_that_would_not_refresh_incrementally(
    tmp_path: Path, pg_admin: str
) -> None:
    # Given a folder with one good model and one using constructs Redshift cannot refresh incrementally
    folder = tmp_path / "models" / "messaging"
    folder.mkdir(parents=True)
    (folder / "sent_daily.sql").write_text(
        "{{ config(grain=['tenant_id', 'campaign_id', 'day']) }}\n"
        "SELECT e.tenant_id, COALESCE(e.campaign_id, 0) AS campaign_id, DATE_TRUNC('day', e.event_at) AS day,\n"
        "    COUNT(*) AS sent\n"
        "FROM {{ source('messaging.events') }} AS e WHERE e.event_type = 'sent' GROUP BY 1, 2, 3\n"
    )
    (folder / "readers.sql").write_text(
        "{{ config(grain=['tenant_id', 'day']) }}\n"
        "SELECT s.tenant_id, s.day, COUNT(DISTINCT c.name) AS names, MEDIAN(s.sent) AS typical\n"
        "FROM {{ ref('sent_daily') }} AS s LEFT JOIN {{ source('messaging.campaigns') }} AS c\n"
        "ON c.tenant_id = s.tenant_id AND c.campaign_id = s.campaign_id GROUP BY 1, 2\n"
    )

    # When it is validated, and the packaged models are validated and listed
    bad = cli(tmp_path / "home", pg_admin, "models", "validate", "--dir", str(tmp_path / "models"))
    good = cli(tmp_path / "home", pg_admin, "models", "validate")
    listed = cli(tmp_path / "home", pg_admin, "models", "list")

    # Then the bad folder fails naming the file and each construct, and the packaged models pass
    assert bad.returncode == 1
    lines = bad.stderr.strip().splitlines()
    assert all("readers.sql" in line for line in lines)
    assert any("LEFT OUTER JOIN" in line for line in lines)
    assert any("COUNT(DISTINCT" in line for line in lines)
    assert any("MEDIAN" in line for line in lines)
    assert "sent_daily" not in bad.stderr
    assert good.returncode == 0 and "valid" in good.stdout
    assert listed.returncode == 0 and "tenant_daily" in listed.stdout and "tickets_daily" in listed.stdout


def test_a_command_that_changes_state_is_refused_while_another_uses_the_home(tmp_path: Path, pg_admin: str) -> None:
    from tenant_analytics.local.home_lock import hold_home

    # Given a long-running reader of the home (as `serve` holds it)
    home = tmp_path / "home"
    serve = f"pid {os.getpid()} (tenant-analytics serve)"
    with hold_home(home, exclusive=False, holder=serve):
        # When an hour is run in another process
        ran = cli(home, pg_admin, "run-hour")
        # Then it is refused at once, naming the reader, rather than saving over what the reader holds
        assert ran.returncode == 2
        assert f"in use by {serve};" in ran.stderr
        # while another reader runs alongside
        listed = cli(home, pg_admin, "tenants", "list")
        assert listed.returncode == 0, listed.stderr


def test_run_hour_refuses_bad_hours_and_tenant_lists_in_one_line_before_a_run_starts(
    tmp_path: Path, pg_admin: str
) -> None:
    # Given a registered tenant
    home = tmp_path / "home"
    assert (
        cli(home, pg_admin, "tenants", "add", "--id", "acme", "--source-url", "http://127.0.0.1:1/acme").returncode == 0
    )

    # When run-hour is given an unregistered tenant, an empty tenant list (an unset shell variable) or a bad hour
    unknown = cli(home, pg_admin, "run-hour", "--tenants", "nosuch")
    empty = cli(home, pg_admin, "run-hour", "--tenants", "")
    commas = cli(home, pg_admin, "run-hour", "--tenants", ",")
    no_hour = cli(home, pg_admin, "run-hour", "--hour", "")
    garbage = cli(home, pg_admin, "run-hour", "--hour", "garbage", "--tenants", "acme")
    future = cli(home, pg_admin, "run-hour", "--hour", "2999-01-01T00:00:00Z", "--tenants", "acme")

    # Then each is refused in one line saying what is wrong, and no state machine ran
    assert refused(unknown) == "error: tenant 'nosuch' is not registered"
    assert refused(empty).startswith("error: --tenants '' names no tenant: give comma-separated tenant ids")
    assert refused(commas).startswith("error: --tenants ',' names no tenant")
    assert refused(no_hour) == "error: 'hour' '' is not ISO-8601 (example: 2026-01-31T13:00:00Z)"
    assert refused(garbage) == "error: 'hour' 'garbage' is not ISO-8601 (example: 2026-01-31T13:00:00Z)"
    assert "has not completed yet; the latest allowed is" in refused(future)
    assert not (home / "logs" / "stepfunctions.log").exists()
    listed = cli(home, pg_admin, "tenants", "list")
    assert listed.returncode == 0 and "acme" in listed.stdout


def test_queries_tokens_and_model_commands_name_what_is_wrong(tmp_path: Path, pg_admin: str) -> None:
    home = tmp_path / "home"
    # A query that is not a JSON object, or nests past any parser, is refused without a traceback
    null = cli(home, pg_admin, "query", "--tenant", "acme", "null")
    deep = cli(home, pg_admin, "query", "--tenant", "acme", "[" * 5000)
    bad_id = cli(home, pg_admin, "query", "--tenant", "Bad!", "{}")
    assert refused(null) == (
        'error: the query must be a JSON object of the query contract (like {"dataset": ...}), got null'
    )
    assert refused(deep) == "error: the query nests too deeply: it must be a JSON object of the query contract"
    assert "argument --tenant: 'Bad!' is not a tenant id" in bad_id.stderr and bad_id.returncode == 2

    # A refresh scoped to a tenant that is not registered runs nothing
    refresh = cli(home, pg_admin, "models", "refresh", "--tenant", "nosuch")
    assert refused(refresh) == "error: tenant 'nosuch' is not registered"
    assert refresh.stdout == ""

    # Limits and lifetimes must be positive; a token needs a well-formed tenant id, registered or not
    assert (
        "argument --limit: '-1' is not a positive whole number"
        in cli(home, pg_admin, "models", "log", "--limit", "-1").stderr
    )
    assert (
        "argument --ttl: '0' is not a positive whole number"
        in cli(home, pg_admin, "token", "--tenant", "acme", "--ttl", "0").stderr
    )
    token = cli(home, pg_admin, "token", "--tenant", "not-yet-registered")
    assert token.returncode == 0 and token.stdout.count(".") == 2


def test_cdc_replay_sends_an_oversized_record_to_the_failure_queue_and_splits_large_puts(
    tmp_path: Path, pg_admin: str
) -> None:
    # Given a capture with one change over 1 MiB, 60 of 100 KB (6 MB: more than one PutRecords may carry) and
    # one line that is not JSON, for a tenant that is not registered
    def change(i: int, pad: int) -> str:
        data = {"id": i, "account_id": "ghost", "pad": "x" * pad}
        return json.dumps(
            {"database": "prod", "table": "tickets", "type": "insert", "ts": 1795700000, "xid": i, "data": data}
        )

    capture = tmp_path / "capture.jsonl"
    capture.write_text("\n".join([change(0, 1_100_000), *(change(i, 100_000) for i in range(1, 61)), "{not json"]))
    home = tmp_path / "home"

    # When it is replayed
    replayed = cli(home, pg_admin, "cdc", "replay", str(capture))

    # Then every record was replayed: the oversized one to the failure queue as the runbook says, the rest through
    # the stream to the aggregator (which rejects the unknown tenant's changes and the bad line)
    assert replayed.returncode == 0, replayed.stderr
    assert f"replayed 62 records from {capture}" in replayed.stdout
    assert "  1 record(s) to the failure queue: oversized" in replayed.stdout
    assert "  60 record(s) to the failure queue: unknown_tenant" in replayed.stdout
    assert "  1 record(s) to the failure queue: bad_json" in replayed.stdout


def test_cdc_replay_names_the_file_and_line_that_is_not_base64(tmp_path: Path, pg_admin: str) -> None:
    capture = tmp_path / "capture.b64"
    capture.write_text("eyJhIjogMX0=\nnot json\n")
    replayed = cli(tmp_path / "home", pg_admin, "cdc", "replay", "--kpl", str(capture))
    assert refused(replayed).startswith(f"error: {capture}:2: with --kpl each line must be the base64 data")


def test_environment_errors_name_the_variable(tmp_path: Path, pg_admin: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    home = tmp_path / "home"
    as_file = cli(afile, pg_admin, "tenants", "list")
    garbage = cli(home, pg_admin, "tenants", "list", DATABASE_URL="garbage")
    unreachable = cli(home, pg_admin, "tenants", "list", DATABASE_URL="postgresql://etl:s3cret@127.0.0.1:1/db")
    budgets = cli(home, pg_admin, "tenants", "list", CLUSTER_BUDGETS='{"tenants_per_cluster": -1}')
    max_age = cli(home, pg_admin, "tenants", "list", DATA_VERSION_MAX_AGE_MS="abc")

    assert refused(as_file) == (
        f"error: environment variable TENANT_ANALYTICS_HOME must name a folder (or where to create one), but {afile}"
        " is a file"
    )
    assert refused(garbage).startswith("error: environment variable DATABASE_URL must be a URL like postgresql://")
    assert refused(unreachable).startswith(
        "error: cannot connect to the PostgreSQL server of environment variable DATABASE_URL: connection failed"
    )
    assert "s3cret" not in unreachable.stderr
    assert refused(budgets) == (
        "error: environment variable CLUSTER_BUDGETS (at 'tenants_per_cluster') is invalid: Input should be greater"
        " than 0 (got -1)"
    )
    assert refused(max_age).startswith("error: environment variable DATA_VERSION_MAX_AGE_MS is invalid")


def test_tenants_add_refuses_a_registration_the_platform_could_not_serve(tmp_path: Path, pg_admin: str) -> None:
    home = tmp_path / "home"
    add = ("tenants", "add", "--id", "acme", "--source-url")
    future = cli(home, pg_admin, *add, "https://src/acme", "--since", "2999-01-01T00:00:00Z")
    no_host = cli(home, pg_admin, *add, "http://")
    secret = cli(home, pg_admin, *add, "https://src/acme", "--credentials-secret", "other/secret")
    assert "lies in the future" in refused(future)
    assert refused(no_host) == "error: source URL 'http://' names no host (e.g. https://source.example.com/api)"
    assert "name a secret under 'tenant-analytics/sources/'" in refused(secret)
    assert "acme" not in cli(home, pg_admin, "tenants", "list").stdout
