"""Opening stores: how long a PostgreSQL store keeps change images for a failing model, validated and passed on;
which opens ensure a store's schema."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from tenant_analytics import constants as c
from tenant_analytics.constants import QUERY_LOGIN
from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import StoreConfig, get_settings
from tenant_analytics.stores import factory


@pytest.fixture(autouse=True)
def fresh_settings() -> Any:
    get_settings.cache_clear()
    factory.close_all()
    yield
    get_settings.cache_clear()
    factory.close_all()


def stores_env(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    store = {"engine": "postgres", "tier": "aurora", "dsn": "postgresql://localhost/analytics", **extra}
    monkeypatch.setenv(c.ENV_STORES, json.dumps({"aurora-1": store}))


def test_a_limit_that_is_not_positive_is_rejected_naming_the_store_and_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store whose change images would be dropped at once
    stores_env(monkeypatch, stale_model_after_hours=0)

    # When the settings are read, then the error names the store's field and what is allowed
    with pytest.raises(
        InvalidInput, match=r"STORES \(at 'aurora-1\.stale_model_after_hours'\) is invalid: .*greater than 0"
    ):
        get_settings()


def test_the_store_limit_reaches_the_model_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store that keeps images for a failing model for six hours (the default is a day)
    stores_env(monkeypatch, stale_model_after_hours=6)
    opened: dict[str, Any] = {}

    class RecordingStore:
        def __init__(self, store_id: str, conninfo: str, **options: Any) -> None:
            opened.update(options, store_id=store_id)

        def ensure_schema(self) -> None:
            pass

    monkeypatch.setattr(factory, "PostgresStore", RecordingStore)

    # When the store is opened
    factory.open_store("aurora-1", get_settings())

    # Then the engine is given that limit
    assert opened["store_id"] == "aurora-1" and opened["stale_model_after"] == timedelta(hours=6)


def test_without_the_field_a_store_keeps_images_for_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    stores_env(monkeypatch)
    assert get_settings().stores["aurora-1"].stale_model_after_hours == 24


class CountingStore:
    """Counts the schema migrations it is asked for; the first one fails when told to."""

    def __init__(self, *args: Any, fail_first: bool = False, **options: Any) -> None:
        self.migrations = 0
        self._fail_first = fail_first

    def ensure_schema(self) -> None:
        self.migrations += 1
        if self._fail_first and self.migrations == 1:
            raise RuntimeError("connection reset")


def test_a_store_opened_without_migrating_is_migrated_once_by_the_first_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store the query path opens first (it reads Redshift as a user that cannot create tables)
    stores_env(monkeypatch)
    monkeypatch.setattr(factory, "PostgresStore", CountingStore)
    store = factory.open_store("aurora-1", get_settings(), migrate=False)
    assert isinstance(store, CountingStore) and store.migrations == 0

    # When writers open it, twice, and the query path again
    again = [factory.open_store("aurora-1", get_settings()) for _ in range(2)]
    factory.open_store("aurora-1", get_settings(), migrate=False)

    # Then it is one adapter, migrated once
    assert all(s is store for s in again) and store.migrations == 1


def test_a_failed_migration_is_tried_again_at_the_next_open(monkeypatch: pytest.MonkeyPatch) -> None:
    stores_env(monkeypatch)
    monkeypatch.setattr(factory, "PostgresStore", lambda *a, **k: CountingStore(fail_first=True))
    with pytest.raises(RuntimeError, match="connection reset"):
        factory.open_store("aurora-1", get_settings())
    store = factory.open_store("aurora-1", get_settings())
    assert isinstance(store, CountingStore) and store.migrations == 2


def test_an_iam_login_signs_a_new_token_for_each_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the query function's Aurora entry: a host and the query login, no secret
    host = "analytics.cluster-abc.eu-west-1.rds.amazonaws.com"
    cfg = StoreConfig(engine="postgres", tier="aurora", host=host, database="analytics", iam_user=QUERY_LOGIN)

    # When a connection string is made (a real token, signed locally with the test credentials)
    conninfo = factory.postgres_conninfo(cfg)
    assert callable(conninfo)
    made = conninfo_to_dict(conninfo())

    # Then it logs in as the query login over TLS, with an rds-db:connect token for that user as the password
    assert (made["host"], made["port"], made["dbname"], made["user"]) == (host, "5432", "analytics", QUERY_LOGIN)
    assert made["sslmode"] == "require"
    token = str(made["password"])
    assert token.startswith(f"{host}:5432/?") and "Action=connect" in token and f"DBUser={QUERY_LOGIN}" in token

    # and every new connection gets a token of its own (they expire after 15 minutes)
    signed: list[str] = []

    class Signer:
        def generate_db_auth_token(self, **request: Any) -> str:
            signed.append(request["DBUsername"])
            return f"token-{len(signed)}"

    monkeypatch.setattr(factory.clients, "client", lambda service: Signer())
    assert [conninfo_to_dict(conninfo())["password"] for _ in range(2)] == ["token-1", "token-2"]
    assert signed == [QUERY_LOGIN, QUERY_LOGIN]


def test_a_postgres_store_without_any_way_to_log_in_is_refused() -> None:
    cfg = StoreConfig(engine="postgres", tier="aurora", host="db.example")
    with pytest.raises(InvalidInput, match="'host' with 'secret_arn' or 'iam_user'") as refused:
        factory.postgres_conninfo(cfg)
    assert refused.value.field == "stores"


def test_the_query_path_creates_no_tables_where_it_logs_in_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the stores the query function reaches as read-only identities (Redshift as its IAM role, Aurora as the
    # query login), and a PostgreSQL store reached with full credentials
    stores = {
        "redshift-1": {"engine": "redshift", "tier": "redshift", "workgroup_name": "wg", "database": "analytics"},
        "aurora-3": {"engine": "postgres", "tier": "aurora", "host": "db.example", "iam_user": QUERY_LOGIN},
        "aurora-2": {"engine": "postgres", "tier": "aurora", "dsn": "postgresql://localhost/analytics"},
    }
    monkeypatch.setenv(c.ENV_STORES, json.dumps(stores))
    opened: dict[str, bool] = {}

    def recording_open(store_id: str, settings: Any, *, migrate: bool = True) -> object:
        opened[store_id] = migrate
        return object()

    monkeypatch.setattr(factory, "open_store", recording_open)

    # When the query path opens each
    for store_id in stores:
        factory.open_query_store(store_id, get_settings())

    # Then it asks to create tables only where it has the credentials to
    assert opened == {"redshift-1": False, "aurora-3": False, "aurora-2": True}


def test_a_store_with_a_query_login_gets_an_adapter_of_its_own_for_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a local store whose tenant queries log in as the query login
    stores_env(monkeypatch, query_dsn="postgresql://ta_query_login@localhost/analytics")
    made: list[CountingStore] = []

    class RecordingStore(CountingStore):
        def __init__(self, store_id: str, conninfo: str, **options: Any) -> None:
            super().__init__()
            self.conninfo = conninfo
            made.append(self)

    monkeypatch.setattr(factory, "PostgresStore", RecordingStore)

    # When the writers and the query path open it, twice each
    writer = [factory.open_store("aurora-1", get_settings()) for _ in range(2)]
    reader = [factory.open_query_store("aurora-1", get_settings()) for _ in range(2)]

    # Then there are two adapters, one per login; only the writers' migrates
    assert writer[0] is writer[1] and reader[0] is reader[1] and writer[0] is not reader[0]
    assert [(s.conninfo, s.migrations) for s in made] == [
        ("postgresql://localhost/analytics", 1),
        ("postgresql://ta_query_login@localhost/analytics", 0),
    ]
