"""Every migration applies forwards and backwards on PostgreSQL, and the models match them."""

import pytest
from django.core.management import call_command
from django.db import connection

from contacts.models import Contact
from crm.search import prefix_search_query
from tests.factories import ContactFactory

ACTOR_FUNCTIONS = {
    "app_setting_bigint",
    "app_tenant_id",
    "app_effective_user_id",
    "app_real_user_id",
    "app_is_impersonating",
}
# What unapplying each app removes: crm's projects and activities depend on contacts.
REMOVED = {
    "crm": {"users", "tenants", "tenant_users", "projects", "activities", "contacts", "organizations"},
    "contacts": {"projects", "activities", "contacts", "organizations"},
}


def tables() -> set[str]:
    return set(connection.introspection.table_names())


def functions() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname FROM pg_proc JOIN pg_namespace ns ON ns.oid = pronamespace "
            "WHERE nspname = current_schema() AND proname LIKE %s",
            ["app\\_%"],
        )
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("app", ["crm", "contacts"])
def test_app_migrates_to_zero_and_up_again(app):
    """The test database was migrated up from zero; take the app back down and up once more."""
    try:
        call_command("migrate", app, "zero", verbosity=0)

        assert tables().isdisjoint(REMOVED[app])
        assert functions() == set()

        call_command("migrate", verbosity=0)

        assert REMOVED[app] <= tables()
        assert functions() == ACTOR_FUNCTIONS
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT app_effective_user_id(), app_real_user_id(), app_tenant_id(), app_is_impersonating()"
            )
            assert cursor.fetchone() == (None, None, None, False)
        contact = ContactFactory(phone="(555) 123-4567")
        assert list(Contact.objects.filter(search=prefix_search_query("555-123"))) == [contact]
    finally:
        call_command("migrate", verbosity=0)


def test_models_and_migrations_agree(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
