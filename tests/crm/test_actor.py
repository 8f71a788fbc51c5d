"""The actor: who acted is recorded on rows and published to PostgreSQL inside write transactions."""

import pytest
from django.db import connection, transaction

from contacts.services import contact_create
from crm.actor import Actor, Source, actor_from_ids, publish_actor
from crm.models import Activity
from crm.services import activity_create
from tests.api import CONTACTS, PROJECTS
from tests.conftest import client_for
from tests.factories import ContactFactory, UserFactory

ACTOR_SQL = "SELECT app_effective_user_id(), app_real_user_id(), app_tenant_id(), app_is_impersonating()"


def published():
    with connection.cursor() as cursor:
        cursor.execute(ACTOR_SQL)
        return cursor.fetchone()


@pytest.mark.parametrize("resource", [CONTACTS, PROJECTS], ids=str)
def test_created_by_and_updated_by_come_from_the_request_user(resource, tenant, member_user, manager):
    created = client_for(member_user).post(resource.url, resource.payload(tenant)).json()

    record = resource.model.objects.get(pk=created["id"])
    assert (record.created_by, record.updated_by) == (member_user, member_user)
    assert (created["created_by"], created["updated_by"]) == (member_user.pk, member_user.pk)

    updated = client_for(manager).patch(resource.detail(record.pk), resource.change).json()

    record.refresh_from_db()
    assert (record.created_by, record.updated_by) == (member_user, manager)
    assert (updated["created_by"], updated["updated_by"]) == (member_user.pk, manager.pk)


@pytest.mark.parametrize("resource", [CONTACTS, PROJECTS], ids=str)
def test_clients_cannot_claim_another_author(resource, tenant, member_user, viewer):
    body = {**resource.payload(tenant), "created_by": viewer.pk, "updated_by": viewer.pk}

    created = client_for(member_user).post(resource.url, body).json()

    record = resource.model.objects.get(pk=created["id"])
    assert (record.created_by, record.updated_by) == (member_user, member_user)


def test_activities_are_performed_by_the_request_user(tenant, member_user, viewer):
    contact = ContactFactory(tenant=tenant)
    body = {"type": "call", "contact": contact.pk, "performed_by": viewer.pk, "on_behalf_of": viewer.pk}

    response = client_for(member_user).post("/api/v1/activities/", body)

    activity = Activity.objects.get()
    assert (activity.created_by, activity.performed_by, activity.on_behalf_of) == (member_user, member_user, None)
    assert (response.json()["performed_by"], response.json()["on_behalf_of"]) == (member_user.pk, None)


def test_a_service_publishes_its_actor_inside_its_transaction(tenant, member_user):
    actor = Actor(tenant=tenant, user=member_user)

    with transaction.atomic():
        # The service's own transaction is a savepoint here; its settings last until ours ends.
        contact_create(actor=actor, first_name="Dana")
        assert published() == (member_user.pk, member_user.pk, tenant.pk, False)


def test_actor_atomic_publishes_source_and_reason(tenant, member_user):
    actor = Actor(tenant=tenant, user=member_user, source=Source.TASK)

    with actor.atomic(reason="nightly import"), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.change_source'), current_setting('app.change_reason')")
        assert cursor.fetchone() == ("task", "nightly import")


def test_an_impersonating_actor_is_published_and_recorded(tenant, member_user, admin_user):
    actor = Actor(tenant=tenant, user=member_user, real_user=admin_user)
    contact = ContactFactory(tenant=tenant)

    with transaction.atomic():
        activity = activity_create(actor=actor, type="note", contact=contact)
        assert published() == (member_user.pk, admin_user.pk, tenant.pk, True)

    assert (activity.created_by, activity.performed_by, activity.on_behalf_of) == (member_user, member_user, admin_user)
    stored = Activity.objects.get(pk=activity.pk)
    assert (stored.performed_by, stored.on_behalf_of) == (member_user, admin_user)


def test_an_actor_without_a_user_publishes_nulls(tenant):
    with Actor(tenant=tenant, user=None, source=Source.SQL).atomic():
        assert published() == (None, None, tenant.pk, False)


def test_publishing_outside_a_transaction_is_refused(transactional_db, tenant, member_user):
    with pytest.raises(RuntimeError, match=r"publish_actor\(\) must run inside transaction.atomic\(\)"):
        publish_actor(Actor(tenant=tenant, user=member_user))


def test_nothing_is_published_outside_a_write_transaction(transactional_db, tenant, member_user):
    assert published() == (None, None, None, False)

    with Actor(tenant=tenant, user=member_user).atomic():
        assert published() == (member_user.pk, member_user.pk, tenant.pk, False)

    assert published() == (None, None, None, False)


def test_the_api_publishes_the_request_user(transactional_db, tenant, member_user):
    """A request's writes carry its user to PostgreSQL: a trigger sees who wrote the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TABLE actor_probe (contact_id bigint, user_id bigint, real_user_id bigint, tenant_id bigint);
            CREATE FUNCTION actor_probe_record() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO actor_probe VALUES (NEW.id, app_effective_user_id(), app_real_user_id(), app_tenant_id());
                RETURN NEW;
            END $$;
            CREATE TRIGGER actor_probe AFTER INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION actor_probe_record();
            """
        )
    try:
        created = client_for(member_user).post("/api/v1/contacts/", {"first_name": "Dana"}).json()
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM actor_probe")
            assert cursor.fetchall() == [(created["id"], member_user.pk, member_user.pk, tenant.pk)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER actor_probe ON contacts; DROP FUNCTION actor_probe_record(); DROP TABLE actor_probe;"
            )


def test_actor_from_ids_rebuilds_the_actor(tenant, member_user, admin_user):
    actor = Actor(tenant=tenant, user=member_user, real_user=admin_user)

    rebuilt = actor_from_ids(**actor.ids())

    assert rebuilt == Actor(tenant=tenant, user=member_user, real_user=admin_user, source=Source.TASK)
    assert rebuilt.on_behalf_of == admin_user


def test_an_actor_acting_as_themselves_is_not_impersonating(tenant):
    user = UserFactory()

    actor = Actor(tenant=tenant, user=user)

    assert (actor.real_user, actor.is_impersonating, actor.on_behalf_of) == (user, False, None)
