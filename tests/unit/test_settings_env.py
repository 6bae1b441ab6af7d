"""Settings read from the environment: a bad value is refused naming the environment variable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tenant_analytics import constants as c
from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import database_url, get_settings, home_dir


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            c.ENV_CLUSTER_BUDGETS,
            '{"tenants_per_cluster": -1}',
            "environment variable CLUSTER_BUDGETS (at 'tenants_per_cluster') is invalid: Input should be greater"
            " than 0 (got -1)",
        ),
        (
            c.ENV_DATA_VERSION_MAX_AGE_MS,
            "abc",
            "environment variable DATA_VERSION_MAX_AGE_MS is invalid: Input should be a valid integer",
        ),
        (c.ENV_CLUSTER_BUDGETS, "{not json", "environment variable CLUSTER_BUDGETS is not valid JSON"),
        (
            c.ENV_STORES,
            '{"aurora-1": {"engine": "mysql", "tier": "aurora"}}',
            "environment variable STORES (at 'aurora-1.engine') is invalid",
        ),
        (c.ENV_USAGE_PLAN_IDS, "[1]", "environment variable USAGE_PLAN_IDS is invalid: Input should be an object"),
    ],
)
def test_a_bad_setting_names_its_environment_variable(
    key: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(InvalidInput) as err:
        get_settings()
    assert err.value.message.startswith(message)
    assert err.value.field == key


def test_an_object_in_a_bad_store_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    # A store's object may hold a password; the error names the store, not its contents
    dsn = "postgresql://etl:s3cret@db/analytics"
    store = f'{{"engine": "postgres", "tier": "aurora", "dsn": "{dsn}", "s3_import": "aws_s3"}}'
    monkeypatch.setenv(c.ENV_STORES, f'{{"aurora-1": {store}}}')
    with pytest.raises(InvalidInput, match=r"STORES \(at 'aurora-1'\) is invalid: .*needs s3_import_region") as err:
        get_settings()
    assert "s3cret" not in err.value.message


def test_a_home_that_is_a_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given TENANT_ANALYTICS_HOME naming a regular file, or a folder inside one
    afile = tmp_path / "afile"
    afile.write_text("")
    for home in (afile, afile / "home"):
        monkeypatch.setenv(c.ENV_HOME, str(home))
        # Then the variable and the file are named
        with pytest.raises(
            InvalidInput, match=f"^environment variable {c.ENV_HOME} must name a folder .*{afile} is a file"
        ):
            home_dir()
    # while a folder that does not exist yet is fine
    monkeypatch.setenv(c.ENV_HOME, str(tmp_path / "new" / "home"))
    assert home_dir() == tmp_path / "new" / "home"


@pytest.mark.parametrize("value", ["garbage", "host=db user=etl", "postgresql://db/analytics?nosuchoption=1"])
def test_a_database_url_that_is_not_a_postgresql_url_is_named_without_its_value(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c.ENV_DATABASE_URL, value)
    with pytest.raises(InvalidInput, match=r"^environment variable DATABASE_URL ") as err:
        database_url()
    assert err.value.field == "DATABASE_URL"
    assert value not in err.value.message


def test_a_postgresql_url_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c.ENV_DATABASE_URL, "postgresql://u:p@localhost:5432/db")
    assert database_url() == "postgresql://u:p@localhost:5432/db"
    monkeypatch.delenv(c.ENV_DATABASE_URL)
    assert database_url() is None
