"""The landed tables the model loader knows (``models.sources.SOURCES``) are the tables the stores create."""

from __future__ import annotations

import psycopg
import sqlglot
from sqlglot import exp

from tenant_analytics.local.postgres import ensure_database
from tenant_analytics.models import SOURCES
from tenant_analytics.stores.messaging import REDSHIFT_SCHEMA_SQL
from tenant_analytics.stores.postgres import PostgresStore
from tenant_analytics.stores.redshift import SCHEMA_SQL

KNOWN = {source.name: (source.columns, source.primary_key) for source in SOURCES.values()}

_CATALOG = """
SELECT c.table_schema || '.' || c.table_name, c.column_name, k.ordinal_position
FROM information_schema.columns AS c
LEFT JOIN information_schema.table_constraints AS p
    ON p.table_schema = c.table_schema AND p.table_name = c.table_name AND p.constraint_type = 'PRIMARY KEY'
LEFT JOIN information_schema.key_column_usage AS k
    ON k.constraint_schema = p.constraint_schema AND k.constraint_name = p.constraint_name
    AND k.column_name = c.column_name
WHERE c.table_schema || '.' || c.table_name = ANY(%s)
ORDER BY c.ordinal_position
"""


def landed_tables(url: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Each source table of the database at ``url``: its columns in table order and its primary key."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(_CATALOG, (sorted(SOURCES),)).fetchall()
    created: dict[str, tuple[list[str], list[tuple[int, str]]]] = {name: ([], []) for name in SOURCES}
    for table, column, key_position in rows:
        created[table][0].append(column)
        if key_position is not None:
            created[table][1].append((key_position, column))
    return {name: (tuple(columns), tuple(c for _, c in sorted(key))) for name, (columns, key) in created.items()}


def test_every_source_has_the_columns_and_primary_key_of_the_postgresql_stores_table(
    pg_admin: str, db_prefix: str
) -> None:
    # Given a fresh database whose schema the PostgreSQL store created
    url = ensure_database(pg_admin, f"{db_prefix}_store")
    store = PostgresStore("aurora-1", url)
    try:
        store.ensure_schema()
    finally:
        store.close()

    # When the landed tables' columns (in table order) and primary keys are read from the catalog
    created = landed_tables(url)

    # Then the loader knows exactly those columns, in that order, and the same keys
    assert created == KNOWN


def test_every_source_has_the_columns_and_primary_key_of_the_redshift_stores_table() -> None:
    # Given the CREATE TABLE statements the Redshift store runs (support tables, then messaging tables)
    statements = [sqlglot.parse_one(s, read="redshift") for s in (*SCHEMA_SQL, *REDSHIFT_SCHEMA_SQL)]

    # When the landed tables' columns and primary keys are read from them
    created: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for statement in statements:
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            schema = statement.this
            table = schema.this
            columns = tuple(c.name for c in schema.expressions if isinstance(c, exp.ColumnDef))
            keys = [c for c in schema.expressions if isinstance(c, exp.PrimaryKey)]
            created[f"{table.db}.{table.name}"] = (columns, tuple(k.name for k in keys[0].expressions) if keys else ())

    # Then the loader knows exactly those columns, in that order, and the same keys
    assert {name: created.get(name) for name in SOURCES} == KNOWN


def test_the_engine_tests_stand_in_tables_have_the_sources_columns_and_keys(models_db: str) -> None:
    # Given the landed tables the engine's tests create (tests/integration/models/conftest.py)
    # When their columns and keys are read from the catalog
    created = landed_tables(models_db)

    # Then they are the tables the loader knows, so a model the loader accepts runs in those tests too
    assert created == KNOWN
