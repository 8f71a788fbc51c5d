"""Row-level security on every tenant table (issue 17), proven as the application's role.

The tables come from the models (every concrete column `tenant_id`), and the catalog is
checked against them: a table added later is covered without anyone listing it here.
"""

import logging

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from psycopg import errors, sql

from crm.actor import Actor, publish_actor
from crm.models import Tenant
from crm.rls import cross_tenant
from tests.factories import TenantFactory
from tests.rls import app_role, app_role_ready

# A value of each type a NOT NULL column without a default may have in a tenant table; the
# n-th row's values differ from the others' (unique keys).
FILLERS = {
    "bool": "false",
    "date": "current_date + {n}",
    "float8": "{n}",
    "int4": "{n}",
    "int8": "{n}",
    "jsonb": "'{{}}'::jsonb",
    "numeric": "{n}",
    "text": "'rls{n}'",
    "varchar": "'rls{n}'",
    "timestamptz": "now() + interval '{n} seconds'",
    "uuid": "gen_random_uuid()",
}
ROWS = iter(range(1, 1_000_000))


def tenant_tables() -> list[str]:
    return sorted(
        {
            model._meta.db_table
            for model in apps.get_models()
            if not model._meta.proxy and any(field.column == "tenant_id" for field in model._meta.concrete_fields)
        }
    )


TABLES = tenant_tables()


def catalog_tenant_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
            "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
            "AND a.attname = 'tenant_id' AND NOT a.attisdropped"
        )
        return {name for (name,) in cursor.fetchall()}


def raw_row_sql(table: str, tenant_id: int) -> sql.Composed:
    """An INSERT of one row of `table` for `tenant_id`: every NOT NULL column without a
    default gets a value of its type (foreign keys are not checked, see `loose`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, udt_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s AND is_nullable = 'NO' AND column_default IS NULL AND is_generated = 'NEVER' "
            "AND identity_generation IS NULL AND column_name <> 'tenant_id'",
            [table],
        )
        columns = cursor.fetchall()
    names = [sql.Identifier("tenant_id"), *(sql.Identifier(name) for name, _ in columns)]
    n = next(ROWS)
    values = [sql.Literal(tenant_id), *(sql.SQL(FILLERS[udt].format(n=n)) for _, udt in columns)]
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(names), sql.SQL(", ").join(values)
    )


def loose(table: str) -> None:
    """For this test's transaction: no triggers or foreign key checks, no CHECK constraints on
    `table`, so that a row can be written from placeholders. The policies stay."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the fixtures' deferred checks, before ALTER TABLE
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'", [table])
        for (name,) in cursor.fetchall():
            cursor.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}")
                .format(sql.Identifier(table), sql.Identifier(name))
                .as_string(cursor.connection)
            )


def execute(statement: sql.Composable, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(cursor.connection) if isinstance(statement, sql.Composable) else statement, params
        )
        return cursor.fetchall() if cursor.description else []


def refused(statement: sql.Composable) -> str:
    """Run `statement` in a savepoint; the SQLSTATE it failed with."""
    try:
        with transaction.atomic():
            execute(statement)
    except DatabaseError as error:
        return getattr(error.__cause__, "sqlstate", "") or ""
    return "accepted"


@pytest.fixture
def two_tenants(db):
    app_role_ready()
    return TenantFactory(subdomain="rls-a"), TenantFactory(subdomain="rls-b")


def publish(tenant: Tenant | None) -> None:
    publish_actor(Actor(tenant=tenant, user=None))


def test_every_tenant_table_has_forced_row_security_and_the_tenant_policy(db):
    assert catalog_tenant_tables() == set(TABLES)  # no table with a tenant_id outside the models
    rows = execute(
        sql.SQL(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') "
            "FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)"
        ),
        [TABLES],
    )
    assert sorted(rows) == [(table, True, True, True) for table in TABLES]


def test_the_application_role_bypasses_nothing(db):
    app_role_ready()
    rows = execute(
        sql.SQL("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s"), [settings.DATABASE_APP_ROLE]
    )
    assert rows == [(False, False)]
    owned = execute(
        sql.SQL("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)"),
        [settings.DATABASE_APP_ROLE],
    )
    assert owned == [(0,)]


@pytest.mark.parametrize("table", TABLES)
def test_the_application_role_sees_and_writes_only_the_published_tenants_rows(table, two_tenants):
    a, b = two_tenants
    loose(table)
    execute(raw_row_sql(table, a.pk))
    execute(raw_row_sql(table, b.pk))
    # Rows without a tenant (campaign templates' defaults) are every tenant's to read.
    count = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id IS NOT NULL").format(sql.Identifier(table))
    tenants = sql.SQL("SELECT DISTINCT tenant_id FROM {} WHERE tenant_id IS NOT NULL").format(sql.Identifier(table))

    with app_role():
        assert execute(count) == [(0,)]  # nothing published: no row
        assert refused(raw_row_sql(table, a.pk)) == errors.InsufficientPrivilege.sqlstate

        publish(a)
        assert execute(tenants) == [(a.pk,)]
        assert refused(raw_row_sql(table, b.pk)) == errors.InsufficientPrivilege.sqlstate
        moved = sql.SQL("UPDATE {} SET tenant_id = %s").format(sql.Identifier(table))
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            execute(moved, [b.pk])
        # Its own tenant's row passes the policy (a unique key may still refuse the placeholder copy).
        assert refused(raw_row_sql(table, a.pk)) in {"accepted", errors.UniqueViolation.sqlstate}

        publish(b)
        assert execute(tenants) == [(b.pk,)]


def test_the_cross_tenant_path_sees_every_tenant_and_says_why(two_tenants, caplog):
    a, b = two_tenants
    loose("contacts")
    execute(raw_row_sql("contacts", a.pk))
    execute(raw_row_sql("contacts", b.pk))
    tenants = sql.SQL("SELECT DISTINCT tenant_id FROM contacts ORDER BY 1")

    with app_role():
        publish(a)
        with caplog.at_level(logging.INFO, logger="crm.rls"), cross_tenant("the test's scan"):
            assert execute(tenants) == [(a.pk,), (b.pk,)]
        assert "cross-tenant: the test's scan" in caplog.messages
        assert execute(tenants) == [(a.pk,)]  # the request's transaction is closed to others again


def test_the_cross_tenant_path_needs_a_reason(db):
    with pytest.raises(ValueError, match="must say why"), cross_tenant(" "):
        pass


def test_a_user_reads_their_own_memberships_before_a_tenant_is_published(two_tenants):
    from tests.factories import MembershipFactory, UserFactory

    a, b = two_tenants
    user = UserFactory()
    MembershipFactory(tenant=a, user=user)
    MembershipFactory(tenant=b, user=UserFactory())
    memberships = sql.SQL("SELECT tenant_id FROM tenant_users")

    with app_role():
        assert execute(memberships) == []
        publish_actor(Actor(tenant=None, user=user))
        assert execute(memberships) == [(a.pk,)]
        # Read, never written: an update finds no row to change.
        assert execute(sql.SQL("UPDATE tenant_users SET role = 'owner' RETURNING id")) == []


def test_the_merge_backups_are_the_owners_only(db):
    app_role_ready()
    execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS merge_backups"))
    execute(sql.SQL("CREATE TABLE IF NOT EXISTS merge_backups.rls_probe (id int)"))
    from crm.db import grant_app_role

    grant_app_role(connection)

    with app_role():
        assert refused(sql.SQL("SELECT * FROM merge_backups.rls_probe")) == errors.InsufficientPrivilege.sqlstate
