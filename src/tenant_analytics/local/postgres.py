"""Embedded PostgreSQL: $DATABASE_URL when set, else a pgserver instance under the local home.

Each store gets a database of its own, so the Aurora tier and the Redshift stand-in never share tables.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tenant_analytics.constants import QUERY_LOGIN
from tenant_analytics.stores.roles import ROLES_SQL

_lock = threading.Lock()
_servers: dict[Path, Any] = {}


def admin_url(home: Path, database_url: str | None) -> str:
    """Return a superuser URL of the server: ``database_url`` if given, else the embedded server's."""
    if database_url:
        return database_url
    with warnings.catch_warnings():
        # pgserver picks its lock and socket folder when imported; without XDG_RUNTIME_DIR (CI, containers) that is
        # a folder under /tmp, which is fine: not worth a warning on every command's console
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver  # only needed for the embedded server

    pgdata = home / "pgdata"
    with _lock:
        server = _servers.get(pgdata)
        if server is None:
            pgdata.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
            _servers[pgdata] = server
    return str(server.get_uri("postgres"))


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database of the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def ensure_database(admin: str, database: str) -> str:
    """Create ``database`` if missing; return its URL."""
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            # another process may create it at the same moment
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return with_database(admin, database)


def drop_database(admin: str, database: str) -> None:
    """Drop ``database`` (tests' clean-up), closing other sessions first."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def query_login_url(database_url: str) -> str | None:
    """The URL of ``database_url``'s database for the query login (``ta_query_login``, created here if missing),
    as tenant queries log in on AWS; None when the server does not let it in (it has no password: a server that
    asks for one)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(ROLES_SQL)
    login = make_conninfo(database_url, user=QUERY_LOGIN)
    try:
        psycopg.connect(login, connect_timeout=10).close()
    except psycopg.OperationalError:
        return None
    return login
