"""What PostgreSQL sees and keeps: the actor's settings, attribution, the append-only log."""

import threading
from datetime import timedelta

import pytest
from celery import shared_task
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import DatabaseError, connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from crm.actor import actor_from_ids
from crm.celery import app
from crm.models import Activity, Project
from impersonation.models import AppendOnly, ImpersonationLog
from tests.api import row
from tests.factories import ContactFactory, ProjectFactory
from tests.impersonation.conftest import started_token, token_client
from tests.impersonation.probe_urls import sql_actor

# The SQL functions ----------------------------------------------------------------------


@pytest.mark.urls("tests.impersonation.probe_urls")
def test_an_impersonated_request_publishes_both_users(tenant, owner, member_user):
    as_member = token_client(member_user, started_token(token_client(owner), member_user))

    body = as_member.get("/probe/").json()

    assert body["inside"] == [True, member_user.pk, owner.pk, tenant.pk]


@pytest.mark.urls("tests.impersonation.probe_urls")
def test_a_normal_request_publishes_the_user_as_both(tenant, owner):
    body = token_client(owner).get("/probe/").json()

    assert body["inside"] == [False, owner.pk, owner.pk, tenant.pk]


@pytest.mark.urls("tests.impersonation.probe_urls")
@pytest.mark.django_db(transaction=True)
def test_no_setting_is_left_on_the_reused_connection(tenant, owner, member_user):
    """Autocommit, one connection for the whole test (as a pooled one is reused)."""
    as_member = token_client(member_user, started_token(token_client(owner), member_user))

    body = as_member.get("/probe/").json()
    with transaction.atomic():
        inside_next_transaction = sql_actor()

    # The request's own transaction publishes the actor for its reads too (row-level security):
    # after the write's block it is still there, and gone once the request has ended.
    published = [True, member_user.pk, owner.pk, tenant.pk]
    assert body == {"inside": published, "after": published}
    assert sql_actor() == [False, None, None, None]
    assert inside_next_transaction == [False, None, None, None]
    assert token_client(owner).get("/probe/").json()["inside"] == [False, owner.pk, owner.pk, tenant.pk]


# Attribution of writes ------------------------------------------------------------------


def test_an_api_write_records_the_target_and_the_admin(tenant, owner, manager):
    contact = ContactFactory(tenant=tenant)
    project = ProjectFactory(tenant=tenant, contact=contact)
    as_manager = token_client(manager, started_token(token_client(owner), manager, allow_writes=True))

    created = as_manager.post("/api/v1/activities/", {"type": "call", "contact": contact.pk, "subject": "Hi"})
    changed = as_manager.patch(f"/api/v1/projects/{project.pk}/", {"status": Project.Status.APPROVED})

    assert (created.status_code, changed.status_code) == (201, 200)
    activity = Activity.objects.get()
    assert (
        activity.created_by_id,
        activity.performed_by_id,
        activity.on_behalf_of_id,
        activity.is_impersonated_action,
    ) == (manager.pk, manager.pk, owner.pk, True)
    assert created.json()["on_behalf_of"] == owner.pk
    project.refresh_from_db()
    assert project.updated_by_id == manager.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT changed_by_id, impersonated_by_id, to_status FROM substatus_history "
            "WHERE entity = 'project' AND record_id = %s AND to_status = 'approved'",
            [project.pk],
        )
        assert cursor.fetchall() == [(manager.pk, owner.pk, "approved")]


@shared_task(name="tests.impersonation.probe_task")
def probe_task(*, tenant_id: int, user_id: int, real_user_id: int) -> list:
    actor = actor_from_ids(tenant_id=tenant_id, user_id=user_id, real_user_id=real_user_id)
    with actor.atomic():
        return sql_actor()


@pytest.fixture
def worker_runs(transactional_db):
    """A Celery worker thread on Redis and the test database; yields what it ran."""
    runs: list[tuple[str, object]] = []
    finished = threading.Event()

    def record(task=None, retval=None, **kwargs):
        runs.append((task.name, retval))
        connections.close_all()
        finished.set()

    task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield runs, finished
    finally:
        task_postrun.disconnect(record)


def test_a_task_started_during_the_session_acts_as_both(worker_runs, tenant, owner, manager, member_user):
    """The reassign task of the API, enqueued while impersonating, then a probe of the SQL actor."""
    runs, finished = worker_runs
    moving = ContactFactory.create_batch(2, tenant=tenant, assigned_to=member_user)
    as_manager = token_client(manager, started_token(token_client(owner), manager, allow_writes=True))

    response = as_manager.post("/api/v1/contacts/reassign/", {"from_user": member_user.pk, "to_user": manager.pk})

    assert response.status_code == 202
    assert finished.wait(timeout=60), "the worker never ran the task"
    assert runs == [("contacts.tasks.contacts_reassign_task", 2)]
    assert sorted((contact.pk, row(contact)["updated_by_id"]) for contact in moving) == sorted(
        (contact.pk, manager.pk) for contact in moving
    )
    finished.clear()
    probe_task.delay(tenant_id=tenant.pk, user_id=manager.pk, real_user_id=owner.pk)
    assert finished.wait(timeout=60), "the worker never ran the probe"
    assert runs[-1] == ("tests.impersonation.probe_task", [True, manager.pk, owner.pk, tenant.pk])


# The log is append-only -----------------------------------------------------------------


@pytest.fixture
def log(owner, member_user):
    started_token(token_client(owner), member_user)
    return ImpersonationLog.objects.get()


def test_the_orm_refuses_to_edit_or_delete_a_log(log):
    before = row(log)

    with pytest.raises(AppendOnly):
        log.save()
    with pytest.raises(AppendOnly):
        log.delete()
    with pytest.raises(AppendOnly):
        ImpersonationLog.objects.filter(pk=log.pk).delete()

    assert row(log) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE impersonation_logs SET reason = 'nothing to see' WHERE id = %s",
        "UPDATE impersonation_logs SET impersonated_user_id = admin_user_id + 0 * id WHERE id = %s",
        "UPDATE impersonation_logs SET expires_at = expires_at + interval '1 day' WHERE id = %s",
        "UPDATE impersonation_logs SET allow_writes = true WHERE id = %s",
        "UPDATE impersonation_logs SET request_count = request_count - 0 - 1 WHERE id = %s AND request_count > 0",
        "DELETE FROM impersonation_logs WHERE id = %s",
    ],
    ids=["reason", "target", "expiry", "allow-writes", "counter-down", "delete"],
)
def test_the_database_refuses_other_edits_and_deletes(log, sql):
    ImpersonationLog.objects.filter(pk=log.pk).update(request_count=3)
    before = row(log)

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [log.pk])

    assert row(log) == before


def test_the_database_refuses_to_reopen_an_ended_session(log):
    ImpersonationLog.objects.filter(pk=log.pk).update(status="ended", end_reason="stopped", ended_at=log.expires_at)
    before = row(log)

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE impersonation_logs SET status = 'active', end_reason = NULL, ended_at = NULL WHERE id = %s",
            [log.pk],
        )

    assert row(log) == before


def test_the_database_refuses_self_impersonation(owner, tenant):
    with pytest.raises(DatabaseError, match="impersonation_logs_not_self"), transaction.atomic():
        ImpersonationLog.objects.create(
            tenant=tenant,
            admin_user=owner,
            impersonated_user=owner,
            reason="x" * 20,
            expires_at=timezone.now() + timedelta(minutes=5),
            admin_session_key="k",
        )


# Migrations -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migrations_forwards_backwards_and_forwards_again():
    def migrate(targets) -> None:
        MigrationExecutor(connection).migrate(targets)

    def tables() -> set[str]:
        return set(connection.introspection.table_names())

    def triggers() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'impersonation_logs%%'")
            return [name for (name,) in cursor.fetchall()]

    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    assert "impersonation_logs" in tables()
    assert triggers() == ["impersonation_logs_append_only"]

    migrate([("impersonation", "0001_initial")])
    assert triggers() == []
    migrate([("impersonation", None)])
    assert "impersonation_logs" not in tables()

    migrate(leaves)
    assert "impersonation_logs" in tables()
    assert triggers() == ["impersonation_logs_append_only"]
