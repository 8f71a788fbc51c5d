"""Create the database and the application's role when they do not exist yet (run after
check_services).

The database is created by the owner (MIGRATE_DATABASE_URL, else DATABASE_URL). The role
DATABASE_APP_ROLE (default ridgeline_app) is the one the application connects as under
row-level security: it logs in, owns nothing, is no superuser and bypasses no policy
(docs/operations.md, "Database roles"); `migrate` grants it the tables.

Run from the repository root: `python -m scripts.ensure_database`. With `--run-env`, it
prints `MIGRATE_DATABASE_URL=<the owner's URL> DATABASE_URL=<the application role's URL>`
instead (the owner's URL, its user replaced), which `make run` starts the web, the worker
and beat with.
"""

import os
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql

from scripts.check_services import connect_server


def app_url(owner_url: str, role: str) -> str:
    parts = urlsplit(owner_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def ensure_role(connection: psycopg.Connection, role: str) -> bool:
    """Create the application's role when missing; True when this call created it."""
    exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    if exists:
        return False
    try:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE").format(sql.Identifier(role))
        )
    except errors.DuplicateObject:
        return False  # created by a concurrent run in the meantime
    return True


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    from django.conf import settings

    from crm.settings.base import database_from_url

    if argv == ["--run-env"]:
        owner = settings.MIGRATE_DATABASE_URL
        sys.stdout.write(f"MIGRATE_DATABASE_URL={owner} DATABASE_URL={app_url(owner, settings.DATABASE_APP_ROLE)}\n")
        return 0
    database = database_from_url(settings.MIGRATE_DATABASE_URL)
    with connect_server(database, autocommit=True) as connection:
        if ensure_role(connection, settings.DATABASE_APP_ROLE):
            sys.stdout.write(f"Created the application's database role {settings.DATABASE_APP_ROLE}.\n")
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone()
        if exists:
            return 0
        try:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"])))
        except errors.DuplicateDatabase:
            return 0  # created by a concurrent run in the meantime
    sys.stdout.write(f"Created database {database['NAME']}.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
