"""Every migration applies forwards and backwards on PostgreSQL, and the models match them."""

from importlib import import_module

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from contacts.models import Contact
from crm.actor import Actor
from crm.models import Activity
from crm.schema.check import schema_check, snapshot
from crm.search import prefix_search_query
from crm.services import notice_send
from tests.factories import ContactFactory


def migrate_every_app_to_zero() -> None:
    executor = MigrationExecutor(connection)
    targets = [(app_label, None) for app_label in sorted({app_label for app_label, _ in executor.loader.graph.nodes})]
    executor.migrate(targets, plan=executor.migration_plan(targets))


def left_over() -> set[str]:
    """What the migrations left in the database besides their own bookkeeping."""
    return {
        obj.identifier
        for obj in snapshot(connection)
        if obj.kind in {"table", "view", "sequence", "function", "type"} and obj.name != "django_migrations"
    }


@pytest.mark.django_db(transaction=True)
def test_every_app_from_zero_to_latest_and_back_twice():
    """The test database was migrated up from zero: take every app down, up, down and up
    again; nothing may be left behind, and the result must be what the migrations say."""
    try:
        for _ in range(2):
            migrate_every_app_to_zero()
            assert left_over() == set()
            call_command("migrate", verbosity=0)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT app_effective_user_id(), app_real_user_id(), app_tenant_id(), app_is_impersonating()"
            )
            assert cursor.fetchone() == (None, None, None, False)
        contact = ContactFactory(phone="(555) 123-4567")
        assert list(Contact.objects.filter(search=prefix_search_query("555-123"))) == [contact]
        result = schema_check(alias=DEFAULT_DB_ALIAS)
        assert result.comparison.differences == []
        assert (result.applied_not_in_code, result.not_applied) == ([], [])
    finally:
        call_command("migrate", verbosity=0)


def test_models_and_migrations_agree(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def migrate_to(app_label: str, name: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([(app_label, name)])


@pytest.mark.django_db(transaction=True)
def test_activity_notices_forwards_keep_activities_and_backwards_refuse_while_notices_exist(tenant, member_user):
    """crm 0014/0015: existing activities stay as they are; going back refuses, changing nothing,
    while a notice exists (the old schema has no place for it), and goes once it is deleted."""
    refused = import_module("crm.migrations.0014_activity_notices").NoticesExist
    contact = ContactFactory(tenant=tenant)
    try:
        migrate_to("crm", "0013_membership_invitations")
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO activities (tenant_id, contact_id, type, subject) VALUES (%s, %s, 'call', 'Before')",
                [tenant.pk, contact.pk],
            )
        call_command("migrate", verbosity=0)
        before = Activity.objects.get()
        assert (before.type, before.contact, before.recipient, before.subject) == ("call", contact, None, "Before")
        notice = notice_send(
            actor=Actor(tenant=tenant, user=member_user), recipient=member_user, subject="Viewed", content="Why"
        )

        # `migrate` refuses before its plan undoes anything: crm 0015 is still applied.
        with pytest.raises(refused, match=r"1 notice\(s\) exist"):
            call_command("migrate", "crm", "0013_membership_invitations", verbosity=0)
        applied = MigrationRecorder(connection).migration_qs.filter(app="crm")
        assert applied.filter(name="0015_activity_notices_validate").exists()
        with pytest.raises(refused, match=rf"(?s)1 notice\(s\) exist.*activity {notice.pk} \(tenant {tenant.pk}\)"):
            migrate_to("crm", "0013_membership_invitations")
        call_command("migrate", verbosity=0)
        assert sorted(Activity.objects.values_list("pk", flat=True)) == [before.pk, notice.pk]

        notice.delete()
        migrate_to("crm", "0013_membership_invitations")
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, type FROM activities")
            assert cursor.fetchall() == [(before.pk, "call")]
            cursor.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'activities' AND column_name = 'recipient_id'"
            )
            assert cursor.fetchone() == (0,)
    finally:
        call_command("migrate", verbosity=0)
    assert schema_check(alias=DEFAULT_DB_ALIAS).comparison.differences == []
