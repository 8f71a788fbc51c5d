"""Celery wiring, end to end: the API enqueues after commit, a real worker runs the service."""

import threading

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connections

from contacts.models import Contact
from contacts.tasks import contacts_reassign_task
from crm.celery import app
from tests.conftest import client_for
from tests.factories import ContactFactory

TASK = "contacts.tasks.contacts_reassign_task"


@pytest.fixture
def worker_runs(transactional_db):
    """A Celery worker thread on Redis and the test database; yields the (task, state, result) it ran."""
    runs: list[tuple[str, str, object]] = []
    finished = threading.Event()

    def record(task=None, state=None, retval=None, **kwargs):
        runs.append((task.name, state, retval))
        connections.close_all()  # the worker thread's connections, so the test database can be dropped
        finished.set()

    task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield runs, finished
    finally:
        task_postrun.disconnect(record)


def test_reassign_runs_in_a_real_worker_as_the_requesting_user(
    worker_runs, tenant, other_tenant, manager, member_user, admin_user
):
    runs, finished = worker_runs
    moving = ContactFactory.create_batch(3, tenant=tenant, assigned_to=member_user)
    deleted = ContactFactory(tenant=tenant, assigned_to=member_user, is_deleted=True)
    elsewhere = ContactFactory(tenant=other_tenant, assigned_to=member_user)

    response = client_for(manager).post(
        "/api/v1/contacts/reassign/", {"from_user": member_user.pk, "to_user": admin_user.pk}
    )

    assert response.status_code == 202
    assert response.json() == {"contacts": 3}
    assert finished.wait(timeout=60), "the worker never ran the task"
    assert runs == [(TASK, "SUCCESS", 3)]
    assert sorted(Contact.objects.filter(assigned_to=admin_user).values_list("pk", "updated_by")) == sorted(
        (contact.pk, manager.pk) for contact in moving
    )
    assert Contact.objects.filter(pk__in=[deleted.pk, elsewhere.pk], assigned_to=member_user).count() == 2
    assert Contact.objects.get(pk=deleted.pk).updated_by is None


@pytest.mark.django_db
def test_the_task_moves_nothing_when_a_user_was_deleted_after_the_request(tenant, manager, member_user, admin_user):
    """Moving to a user who no longer exists must not quietly unassign the contacts."""
    contact = ContactFactory(tenant=tenant, assigned_to=member_user)
    gone_id = admin_user.pk
    admin_user.delete()

    moved = contacts_reassign_task(
        tenant_id=tenant.pk,
        user_id=manager.pk,
        real_user_id=manager.pk,
        from_user_id=member_user.pk,
        to_user_id=gone_id,
    )

    assert moved == 0
    contact.refresh_from_db()
    assert contact.assigned_to == member_user
