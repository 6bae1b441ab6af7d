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


def cli(home: Path, pg_admin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TENANT_ANALYTICS_HOME": str(home), "DATABASE_URL": pg_admin}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


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
        "{{ config(grain=['tenant_id', 'day']) }}\n"
        "SELECT e.tenant_id, DATE_TRUNC('day', e.event_at) AS day, COUNT(*) AS sent\n"
        "FROM {{ source('messaging.events') }} AS e WHERE e.event_type = 'sent' GROUP BY 1, 2\n"
    )
    (folder / "readers.sql").write_text(
        "{{ config(grain=['tenant_id', 'day']) }}\n"
        "SELECT s.tenant_id, s.day, COUNT(DISTINCT c.campaign_id) AS campaigns, MEDIAN(s.sent) AS typical\n"
        "FROM {{ ref('sent_daily') }} AS s LEFT JOIN {{ source('messaging.campaigns') }} AS c\n"
        "ON c.tenant_id = s.tenant_id GROUP BY 1, 2\n"
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
