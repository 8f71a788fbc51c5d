"""The two database roles (issue 17, docs/operations.md "Database roles").

The application connects as `DATABASE_APP_ROLE` (DATABASE_URL): it owns nothing, is not a
superuser and bypasses no row-level security policy, so it sees only the rows of the tenant
a transaction published. The tables' owner (MIGRATE_DATABASE_URL) runs the migrations and
the owner-level commands: `migrate`, `seed_demo`, `adopt_database`, `import_legacy`,
`merge_backups`, `schema_check` call `use_owner_credentials()` first.
"""

import logging
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql

from crm.settings.base import database_from_url

logger = logging.getLogger("crm.rls")

# The settings of a connection that name who connects where; the database name stays the
# connection's own (a test database keeps its test_ prefix).
CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")
# Tables with personal or staging data that only the owner-level commands read: never granted.
OWNER_ONLY_TABLES = ("legacy_import_checkpoints", "legacy_import_project_organizations")
# Schemas the application role gets nothing in (the organizations merge's backups).
OWNER_ONLY_SCHEMAS = ("merge_backups",)


def owner_credentials() -> dict[str, Any]:
    owner = database_from_url(settings.MIGRATE_DATABASE_URL)
    return {key: owner.get(key) for key in CREDENTIALS}


def use_owner_credentials(command: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Connect `using` as the tables' owner from now on, for an owner-level command.

    Nothing changes when MIGRATE_DATABASE_URL names the same role as the connection. Otherwise
    the connection is closed and reopened as the owner, with `app.cross_tenant` on for its
    session: the owner's work (migrations, the import, the merge) spans tenants by nature, and
    a FORCE policy would hide every row from an owner that is not a superuser. The switch is
    logged with the command's name.
    """
    connection = connections[using]
    wanted = owner_credentials()
    current = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
    if wanted == current:
        return
    if connection.in_atomic_block:
        raise RuntimeError(f"{command}: cannot switch to the owner's credentials inside a transaction.")
    connection.close()
    connection.settings_dict.update(wanted)
    options = dict(connection.settings_dict.get("OPTIONS") or {})
    options["options"] = f"{options.get('options', '')} -c app.cross_tenant=on".strip()
    connection.settings_dict["OPTIONS"] = options
    logger.info("cross-tenant: %s connects as the owner %s", command, wanted["USER"])


def app_role_exists(connection: Any, role: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        return cursor.fetchone() is not None


def grant_app_role(connection: Any, role: str | None = None) -> bool:
    """Grant the application role what it uses, idempotently: the tables and sequences of the
    public schema but the owner-only ones, and nothing in the merge's backups. False when the
    role does not exist (nothing to grant)."""
    role = role or settings.DATABASE_APP_ROLE
    if not app_role_exists(connection, role):
        return False
    name = sql.Identifier(role)
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(name),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY(%s)",
            [list(OWNER_ONLY_TABLES)],
        )
        statements.extend(
            sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), name) for (table,) in cursor.fetchall()
        )
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(OWNER_ONLY_SCHEMAS)])
        for (schema,) in cursor.fetchall():
            statements.append(
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM PUBLIC, {}").format(sql.Identifier(schema), name)
            )
            statements.append(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC, {}").format(sql.Identifier(schema), name))
        for statement in statements:
            cursor.execute(statement.as_string(cursor.connection))
    return True


def grant_after_migrate(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate (sent by `migrate` and by the test database's creation): the grants."""
    grant_app_role(connections[using])
