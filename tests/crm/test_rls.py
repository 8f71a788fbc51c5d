"""Row-level security on every tenant table (issue 17), proven as the application's role.

The tables come from the models (every concrete column `tenant_id`), and the catalog is
checked against them: a table added later is covered without anyone listing it here.
"""

import datetime as dt
import logging
import uuid

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import errors, sql

from contacts.models import Contact
from contacts.tasks import contacts_reassign_task
from crm.actor import Actor, publish_actor
from crm.models import Role, Tenant
from crm.rls import cross_tenant
from filters.models import FilterUsageLog
from filters.tasks import filter_usage_prune_task
from tests.admin import admin_url, staff_client
from tests.conftest import client_for
from tests.factories import ContactFactory, TenantFactory, UserFactory
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
    from tests.factories import MembershipFactory

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


# The application's paths as the application role -------------------------------------------


def test_a_request_publishes_its_actor_twice_in_its_own_transaction(owner, tenant):
    with CaptureQueriesContext(connection) as captured:
        response = client_for(owner).get("/api/v1/contacts/")

    assert response.status_code == 200
    statements = [query["sql"] for query in captured.captured_queries]
    published = [sql for sql in statements if sql.startswith("SELECT set_config(")]
    assert [f"'app.tenant_id', '{tenant.pk}'" in sql for sql in published] == [False, True]  # the user, then the tenant
    assert statements[0].startswith("SAVEPOINT")
    assert statements[-1].startswith("RELEASE")


def test_a_task_with_a_tenant_reads_and_writes_that_tenants_rows(tenant, owner, member_user, other_tenant):
    app_role_ready()
    mine = ContactFactory.create_batch(2, tenant=tenant, assigned_to=member_user)
    theirs = ContactFactory(tenant=other_tenant)
    ids = Actor(tenant=tenant, user=owner).ids()

    with app_role():
        moved = contacts_reassign_task.apply(kwargs={**ids, "from_user_id": member_user.pk, "to_user_id": owner.pk})

    assert moved.get() == 2
    assert {contact.assigned_to_id for contact in Contact.objects.filter(pk__in=[c.pk for c in mine])} == {owner.pk}
    assert Contact.objects.get(pk=theirs.pk).assigned_to_id == theirs.assigned_to_id


def test_a_beat_scan_works_across_tenants_and_says_why(tenant, other_tenant, caplog):
    app_role_ready()
    old = timezone.now() - dt.timedelta(days=settings.FILTER_USAGE_RETENTION_DAYS + 1)
    for owner_tenant in (tenant, other_tenant):
        FilterUsageLog.objects.create(
            request_id=uuid.uuid4(),
            tenant=owner_tenant,
            entity_type="contacts",
            filter_field="stage",
            operator="eq",
            results_count=1,
            duration_ms=1.0,
            used_at=old,
        )

    with app_role(), caplog.at_level(logging.INFO, logger="crm.rls"):
        pruned = filter_usage_prune_task.apply()

    assert pruned.get() == 2
    assert not FilterUsageLog.objects.exists()
    assert "cross-tenant: task filters.tasks.filter_usage_prune_task" in caplog.messages


def test_the_admin_shows_a_tenant_staff_user_their_tenants_rows(tenant, other_tenant, app_role_requests):
    ContactFactory(tenant=tenant, first_name="Mine")
    ContactFactory(tenant=other_tenant, first_name="Theirs")
    client, _ = staff_client(tenant, Role.MANAGER)

    page = client.get(admin_url("changelist", Contact))

    assert page.status_code == 200
    assert "Mine" in page.text
    assert "Theirs" not in page.text


def test_the_admin_shows_a_superuser_every_tenant_and_says_why(tenant, other_tenant, app_role_requests, caplog):
    ContactFactory(tenant=tenant, first_name="Mine")
    ContactFactory(tenant=other_tenant, first_name="Theirs")
    client = Client()
    client.force_login(UserFactory(username="ops", is_staff=True, is_superuser=True))

    with caplog.at_level(logging.INFO, logger="crm.rls"):
        page = client.get(admin_url("changelist", Contact))

    assert page.status_code == 200
    assert "Mine" in page.text
    assert "Theirs" in page.text
    assert "cross-tenant: admin: superuser ops GET /admin/contacts/contact/" in caplog.messages
