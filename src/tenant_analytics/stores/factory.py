"""Open the store a tenant lives in, from the store configuration in Settings."""

from __future__ import annotations

import json
from typing import Any

from psycopg.conninfo import make_conninfo

from tenant_analytics.aws import clients
from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import Settings, StoreConfig
from tenant_analytics.stores.base import AnalyticsStore
from tenant_analytics.stores.postgres import PostgresStore

_open: dict[str, AnalyticsStore] = {}


def postgres_conninfo(cfg: StoreConfig) -> str:
    """libpq connection string of a PostgreSQL store: its dsn, or host + the Secrets Manager credentials."""
    if cfg.dsn:
        return cfg.dsn
    if not cfg.host or not cfg.secret_arn:
        raise InvalidInput("a postgres store needs either 'dsn' or both 'host' and 'secret_arn'", field="stores")
    secret: dict[str, Any] = json.loads(
        clients.client("secretsmanager").get_secret_value(SecretId=cfg.secret_arn)["SecretString"]
    )
    return make_conninfo(
        host=cfg.host,
        port=cfg.port,
        dbname=cfg.database,
        user=secret["username"],
        password=secret["password"],
        sslmode="require",
    )


def open_store(store_id: str, settings: Settings) -> AnalyticsStore:
    """Return the (cached) store adapter for ``store_id``; its schema is ensured on first open."""
    store = _open.get(store_id)
    if store is not None:
        return store
    cfg = settings.stores.get(store_id)
    if cfg is None:
        raise InvalidInput(f"store '{store_id}' is not configured (configured: {sorted(settings.stores)})")
    if cfg.engine == "postgres" or cfg.dsn:
        store = PostgresStore(store_id, postgres_conninfo(cfg))
    else:
        from tenant_analytics.stores.redshift import RedshiftDataStore

        store = RedshiftDataStore(store_id, cfg, clients.client("redshift-data"))
    store.ensure_schema()
    _open[store_id] = store
    return store


def close_all() -> None:
    """Close every open store (tests, the local runner between sessions)."""
    for store in _open.values():
        close = getattr(store, "close", None)
        if close is not None:
            close()
    _open.clear()
