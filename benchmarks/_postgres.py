"""A fresh database on the benchmarks' PostgreSQL server (embedded under .local/bench, or $DATABASE_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tenant_analytics.local.postgres import admin_url, drop_database, ensure_database
from tenant_analytics.settings import database_url
from tenant_analytics.stores.postgres import PostgresStore


@contextmanager
def benchmark_store(name: str) -> Iterator[tuple[PostgresStore, str]]:
    """A PostgresStore with its schema (support, messaging, models) on a new database, and the database's URL;
    the database is dropped afterwards."""
    admin = admin_url(Path(".local/bench"), database_url())
    database = f"{name}_{os.getpid()}"
    url = ensure_database(admin, database)
    store = PostgresStore("aurora-1", url)
    try:
        store.ensure_schema()
        yield store, url
    finally:
        store.close()
        drop_database(admin, database)
