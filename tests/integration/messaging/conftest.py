"""Fixtures of the messaging integration tests: fresh databases on the test PostgreSQL, autocommit connections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tenant_analytics.local.postgres import ensure_database
from tenant_analytics.stores.messaging import ensure_messaging_schema


@pytest.fixture
def messaging_conn(pg_admin: str, db_prefix: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a fresh database holding the messaging schema."""
    with psycopg.connect(ensure_database(pg_admin, f"{db_prefix}_msg"), autocommit=True) as conn:
        ensure_messaging_schema(conn)
        yield conn


@pytest.fixture
def source_conn(pg_admin: str, db_prefix: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a fresh database standing in for the Redshift tier."""
    with psycopg.connect(ensure_database(pg_admin, f"{db_prefix}_src"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def target_conn(pg_admin: str, db_prefix: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a fresh database standing in for an Aurora cluster."""
    with psycopg.connect(ensure_database(pg_admin, f"{db_prefix}_dst"), autocommit=True) as conn:
        yield conn
