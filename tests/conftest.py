"""Shared fixtures: one embedded PostgreSQL per test session (or $DATABASE_URL), fresh databases per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenant_analytics.local.postgres import admin_url, drop_database
from tenant_analytics.settings import database_url

REPO = Path(__file__).resolve().parents[1]

# Fake credentials before anything creates a boto3 client: no test may reach real AWS.
for _key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ[_key] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def pg_admin() -> str:
    """Superuser URL of the test PostgreSQL server (shared by xdist workers)."""
    return admin_url(REPO / ".local" / "test", database_url())


@pytest.fixture
def db_prefix(pg_admin: str) -> Iterator[str]:
    """A unique database-name prefix for one test; its databases are dropped afterwards."""
    prefix = "t" + uuid.uuid4().hex[:10]
    yield prefix
    import psycopg

    with psycopg.connect(pg_admin, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",))]
    for name in names:
        drop_database(pg_admin, name)
