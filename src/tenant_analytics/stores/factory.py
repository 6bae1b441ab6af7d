"""Open the store a tenant lives in, from the store configuration in Settings."""

from __future__ import annotations

import functools
import json
from datetime import timedelta
from typing import Any

from psycopg.conninfo import make_conninfo

from tenant_analytics.aws import clients
from tenant_analytics.errors import InvalidInput
from tenant_analytics.settings import Settings, StoreConfig
from tenant_analytics.stores.base import AnalyticsStore, Conninfo
from tenant_analytics.stores.operational_export import AwsS3ExtensionImport, S3CopyImport, S3FileImporter
from tenant_analytics.stores.postgres import PostgresStore

_open: dict[str, AnalyticsStore] = {}
_migrated: set[str] = set()  # stores whose schema this process has ensured
_open_for_queries: dict[str, AnalyticsStore] = {}  # stores opened with a query_dsn, apart from the writers'


def postgres_conninfo(cfg: StoreConfig) -> Conninfo:
    """How to connect to a PostgreSQL store: its dsn; or host with a new IAM authentication token for ``iam_user``
    at each connection (tokens last 15 minutes); or host with the Secrets Manager credentials."""
    if cfg.dsn:
        return cfg.dsn
    if cfg.host and cfg.iam_user:
        return functools.partial(_iam_conninfo, cfg.host, cfg.port, cfg.database, cfg.iam_user)
    if not cfg.host or not cfg.secret_arn:
        raise InvalidInput(
            "a postgres store needs either 'dsn', or 'host' with 'secret_arn' or 'iam_user'", field="stores"
        )
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


def _iam_conninfo(host: str, port: int, database: str, user: str) -> str:
    # Signed locally with the function's credentials; Aurora accepts it only over TLS.
    token = clients.client("rds").generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
    return make_conninfo(host=host, port=port, dbname=database, user=user, password=token, sslmode="require")


def s3_importer(cfg: StoreConfig) -> S3FileImporter:
    """How a PostgreSQL store imports unloaded files, as its ``s3_import`` says: Aurora's ``aws_s3`` extension,
    or COPY of objects fetched with the (lazily created) S3 client."""
    if cfg.s3_import == "aws_s3":
        if not cfg.s3_import_region:
            raise InvalidInput("a store with s3_import 'aws_s3' needs 's3_import_region'", field="stores")
        return AwsS3ExtensionImport(cfg.s3_import_region)
    return S3CopyImport(lambda: clients.client("s3"))


def open_store(store_id: str, settings: Settings, *, migrate: bool = True) -> AnalyticsStore:
    """Return the (cached) store adapter for ``store_id``.

    With ``migrate`` its schema is ensured, once per process (by the first open that asks, again after a failed
    attempt). The query path opens without the stores it logs in to as a user that can only read.
    """
    store = _open.get(store_id)
    if store is None:
        cfg = settings.stores.get(store_id)
        if cfg is None:
            raise InvalidInput(f"store '{store_id}' is not configured (configured: {sorted(settings.stores)})")
        if cfg.engine == "postgres" or cfg.dsn:
            store = PostgresStore(
                store_id,
                postgres_conninfo(cfg),
                s3_import=s3_importer(cfg),
                stale_model_after=timedelta(hours=cfg.stale_model_after_hours),
            )
        else:
            from tenant_analytics.stores.redshift import RedshiftDataStore

            store = RedshiftDataStore(store_id, cfg, clients.client("redshift-data"), s3=clients.client("s3"))
        _open[store_id] = store
    if migrate and store_id not in _migrated:
        store.ensure_schema()
        _migrated.add(store_id)
    return store


def open_query_store(store_id: str, settings: Settings) -> AnalyticsStore:
    """Return the store adapter tenant queries run through, logged in as the settings say tenant queries log in.

    A store with a ``query_dsn`` (local stores) gets an adapter of its own on that login. Otherwise it is the
    store's adapter, without migrating the stores the query path reaches as a user that can only read: Redshift
    (the function's IAM identity) and PostgreSQL with an ``iam_user``. The functions that write a store create
    its tables.
    """
    cfg = settings.stores.get(store_id)
    if cfg is not None and cfg.query_dsn:
        store = _open_for_queries.get(store_id)
        if store is None:
            store = PostgresStore(store_id, cfg.query_dsn)
            _open_for_queries[store_id] = store
        return store
    read_only = cfg is not None and (cfg.engine == "redshift" or cfg.iam_user is not None)
    return open_store(store_id, settings, migrate=not read_only)


def close_all() -> None:
    """Close every open store (tests, the local runner between sessions)."""
    for store in [*_open.values(), *_open_for_queries.values()]:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    _open.clear()
    _open_for_queries.clear()
    _migrated.clear()
