"""The organizations merge as the management commands see it: its migrations and its backups.

The merge's SQL lives in its migrations (contacts 0004-0007), which import no app code.
`merge_preflight` and `merge_backups` load those modules through Django's migration loader
and use their checks and constants, so what ops run by hand is exactly what `migrate` runs.
"""

import sys
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader

from crm.legacy import contacts_before_merge

DATA = ("contacts", "0006_merge_organizations")


def merge_module(connection: BaseDatabaseWrapper, key: tuple[str, str]) -> ModuleType:
    """The module of one of the merge's migrations."""
    migration = MigrationLoader(connection, ignore_no_migrations=True).get_migration(*key)
    return sys.modules[type(migration).__module__]


def merge_applied(connection: BaseDatabaseWrapper) -> bool:
    """Whether the merge's data migration has run on this database."""
    return DATA in MigrationLoader(connection, ignore_no_migrations=True).applied_migrations


def merge_reverse_command() -> str:
    """The command that reverses the merge: contacts back to the migration before it."""
    return f"manage.py migrate contacts {contacts_before_merge()}"


@dataclass(frozen=True)
class BackupTable:
    name: str
    rows: int
    size: str
    primary_key: str


@dataclass(frozen=True)
class Backups:
    schema: str
    created_at: datetime
    migration: str
    tables: list[BackupTable]


def merge_backups_get(connection: BaseDatabaseWrapper) -> Backups | None:
    """The merge's backups, or None when there are none (never taken, or dropped)."""
    schema = merge_module(connection, DATA).BACKUP_SCHEMA
    quoted = connection.ops.quote_name(schema)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        if cursor.fetchone() is None:
            return None
        cursor.execute(f"SELECT created_at, migration FROM {quoted}.info")  # noqa: S608 - our schema's name
        created_at, migration = cursor.fetchone()
        cursor.execute(
            """
            SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)), COALESCE(pg_get_constraintdef(k.oid), '')
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
            WHERE n.nspname = %s AND c.relkind = 'r'
            ORDER BY c.relname
            """,
            [schema],
        )
        tables = []
        for name, size, primary_key in cursor.fetchall():
            cursor.execute(f"SELECT count(*) FROM {quoted}.{connection.ops.quote_name(name)}")  # noqa: S608
            tables.append(BackupTable(name=name, rows=cursor.fetchone()[0], size=size, primary_key=primary_key))
    return Backups(schema=schema, created_at=created_at, migration=migration, tables=tables)


def merge_backups_drop(connection: BaseDatabaseWrapper) -> None:
    """Drop every backup table at once (one statement: never some of them)."""
    schema = merge_module(connection, DATA).BACKUP_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {connection.ops.quote_name(schema)} CASCADE")
