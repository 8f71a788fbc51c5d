"""What the history triggers write (snapshots, actor, impersonator, reason, source), and that
the history stays append-only."""

import pytest
from django.db import IntegrityError, connection, transaction

from contacts.services import contact_update
from crm.actor import Actor, Source
from crm.models import Project
from crm.services import project_update
from substatus.models import SubstatusHistory
from tests.factories import ContactFactory, ProjectFactory
from tests.substatus.kinds import CONTACT, PROJECT, config

pytestmark = pytest.mark.django_db


def latest() -> SubstatusHistory:
    return SubstatusHistory.objects.latest("id")


def fields(row: SubstatusHistory) -> dict:
    return {
        "tenant": row.tenant_id,
        "entity": row.entity,
        "record": row.record_id,
        "from_status": row.from_status,
        "to_status": row.to_status,
        "from_substatus": row.from_substatus_id,
        "to_substatus": row.to_substatus_id,
        "before": row.before,
        "after": row.after,
        "changed_by": row.changed_by_id,
        "impersonated_by": row.impersonated_by_id,
        "reason": row.reason,
        "source": row.source,
    }


def test_a_change_through_a_service_records_everything(tenant, manager, admin_user):
    contact = ContactFactory(tenant=tenant)
    uncontacted, follow_up = config(tenant, CONTACT, "uncontacted"), config(tenant, CONTACT, "follow_up_needed")
    # The admin acts as the manager (impersonation): the manager is who changed it.
    actor = Actor(tenant=tenant, user=manager, real_user=admin_user, source=Source.API)

    contact_update(contact=contact, actor=actor, reason="Reached her on the second try", stage="contacted")

    row = latest()
    assert fields(row) == {
        "tenant": tenant.pk,
        "entity": "contact",
        "record": contact.pk,
        "from_status": "new",
        "to_status": "contacted",
        "from_substatus": uncontacted.pk,
        "to_substatus": follow_up.pk,
        "before": {"stage": "new", "substatus": uncontacted.pk},
        "after": {"stage": "contacted", "substatus": follow_up.pk},
        "changed_by": manager.pk,
        "impersonated_by": admin_user.pk,
        "reason": "Reached her on the second try",
        "source": "api",
    }
    contact.refresh_from_db()
    assert row.changed_at == contact.substatus_since


def test_a_new_record_has_an_entry_without_before(tenant):
    project = ProjectFactory(tenant=tenant)

    row = latest()
    default = config(tenant, PROJECT, "site_visit_pending")
    assert fields(row) == {
        "tenant": tenant.pk,
        "entity": "project",
        "record": project.pk,
        "from_status": None,
        "to_status": "estimate",
        "from_substatus": None,
        "to_substatus": default.pk,
        "before": None,
        "after": {"status": "estimate", "substatus": default.pk},
        "changed_by": None,
        "impersonated_by": None,
        "reason": "",
        "source": "sql",
    }


@pytest.mark.parametrize("source", [Source.API, Source.ADMIN, Source.TASK])
def test_the_source_is_the_actors(tenant, manager, source):
    project = ProjectFactory(tenant=tenant)

    project_update(project=project, actor=Actor(tenant=tenant, user=manager, source=source), status="approved")

    row = latest()
    assert (row.source, row.changed_by_id, row.impersonated_by_id, row.reason) == (source, manager.pk, None, "")


def test_a_migration_publishes_its_source(tenant):
    project = ProjectFactory(tenant=tenant)

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.change_source', 'migration', true), "
            "set_config('app.change_reason', 'organizations merge', true)"
        )
        cursor.execute("UPDATE projects SET status = 'approved' WHERE id = %s", [project.pk])

    row = latest()
    assert (row.source, row.reason, row.changed_by_id, row.to_status) == (
        "migration",
        "organizations merge",
        None,
        "approved",
    )


@pytest.mark.django_db(transaction=True)
def test_raw_sql_without_an_actor_is_source_sql(tenant, manager):
    project = ProjectFactory(tenant=tenant)
    # An earlier transaction of the same connection published an actor: it must not leak.
    project_update(project=project, actor=Actor(tenant=tenant, user=manager), reason="earlier", status="approved")

    with connection.cursor() as cursor:
        cursor.execute("UPDATE projects SET status = 'scheduled' WHERE id = %s", [project.pk])

    row = latest()
    assert (row.source, row.reason, row.changed_by_id, row.to_status) == ("sql", "", None, "scheduled")


def test_one_statement_over_many_records_writes_one_row_each(tenant, manager):
    projects = ProjectFactory.create_batch(3, tenant=tenant)
    ProjectFactory(tenant=tenant, status="approved")  # not changed by the statement below
    actor = Actor(tenant=tenant, user=manager, source=Source.TASK)

    with actor.atomic(reason="season closed"):
        Project.objects.filter(status="estimate").update(status="cancelled")

    rows = SubstatusHistory.objects.filter(to_status="cancelled").order_by("record_id")
    assert [(row.record_id, row.from_status, row.reason, row.source) for row in rows] == [
        (project.pk, "estimate", "season closed", "task") for project in projects
    ]


# Append-only ---------------------------------------------------------------------------


def test_the_orm_cannot_change_or_delete_history(tenant):
    ProjectFactory(tenant=tenant)
    row = latest()

    with pytest.raises(TypeError, match="append-only"):
        SubstatusHistory.objects.filter(pk=row.pk).update(reason="rewritten")
    with pytest.raises(TypeError, match="append-only"):
        SubstatusHistory.objects.filter(pk=row.pk).delete()
    with pytest.raises(TypeError, match="append-only"):
        row.delete()
    row.reason = "rewritten"
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        row.save()
    assert refused.value.__cause__.diag.constraint_name == "substatus_history_append_only"
    assert latest().reason == ""


@pytest.mark.parametrize(
    "statement", ["UPDATE substatus_history SET reason = 'rewritten'", "DELETE FROM substatus_history"]
)
def test_the_database_refuses_to_change_or_delete_history(tenant, statement):
    ProjectFactory(tenant=tenant)
    before = list(SubstatusHistory.objects.values())

    with pytest.raises(IntegrityError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    assert refused.value.__cause__.diag.constraint_name == "substatus_history_append_only"
    assert list(SubstatusHistory.objects.values()) == before
