"""The deployment's store setup (the setup function a CDK trigger runs): every store is set up, and one that
cannot be fails the invocation naming it, after the others were set up."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tenant_analytics import constants as c
from tenant_analytics.cdc import runtime as cdc_runtime
from tenant_analytics.errors import StoreUnavailable
from tenant_analytics.local.aws import LocalLambdaContext
from tenant_analytics.local.postgres import ensure_database
from tenant_analytics.settings import get_settings
from tenant_analytics.stores import factory


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    factory.close_all()
    cdc_runtime.reset()
    yield
    get_settings.cache_clear()
    factory.close_all()
    cdc_runtime.reset()


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema IN ('support', 'messaging', 'models', 'realtime')"
        ).fetchall()
    return {row[0] for row in rows}


def test_the_setup_function_sets_up_every_store_and_fails_naming_the_one_it_cannot(
    pg_admin: str, db_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.setup.handler import lambda_handler

    # Given two stores never opened, and a third on a server that is not there
    first = ensure_database(pg_admin, f"{db_prefix}_a")
    second = ensure_database(pg_admin, f"{db_prefix}_b")
    gone = make_conninfo(first, port=1, connect_timeout=2)
    stores = {
        "aurora-1": {"engine": "postgres", "tier": "aurora", "dsn": first},
        "aurora-2": {"engine": "postgres", "tier": "aurora", "dsn": gone},
        "aurora-3": {"engine": "postgres", "tier": "aurora", "dsn": second},
    }
    monkeypatch.setenv(c.ENV_STORES, json.dumps(stores))
    assert _tables(first) == set()

    # When the deployment runs the setup function (the trigger sends no payload)
    with pytest.raises(StoreUnavailable) as failed:
        lambda_handler({}, LocalLambdaContext(function_name=c.function_name("setup")))

    # Then the stores it could reach are set up, models included, and the failure names the other and why
    for url in (first, second):
        assert {"support.tickets", "messaging.events", "models.tenant_daily"} <= _tables(url)
    # the realtime bins too, in the store that holds them (CDC_STORE_ID, aurora-1 by default)
    assert "realtime.bins" in _tables(first) and "realtime.bins" not in _tables(second)
    assert failed.value.message.startswith("1 store(s) could not be set up: aurora-2: store 'aurora-2' is unreachable")
    assert failed.value.message.endswith("(set up: aurora-1, aurora-3, realtime bins)")

    # And once the store is back, the next deployment's setup succeeds
    stores["aurora-2"]["dsn"] = make_conninfo(first, dbname=conninfo_to_dict(second)["dbname"])
    monkeypatch.setenv(c.ENV_STORES, json.dumps(stores))
    get_settings.cache_clear()
    factory.close_all()  # a new release runs in new containers
    cdc_runtime.reset()
    result = lambda_handler({}, LocalLambdaContext(function_name=c.function_name("setup")))
    assert result == {"set_up": ["aurora-1", "aurora-2", "aurora-3", "realtime bins"]}
