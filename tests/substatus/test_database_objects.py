"""The database holds what substatus/triggers.py declares; the catalog trigger on tenants;
the rules on the configuration table itself."""

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from contacts.models import Contact
from crm.models import Tenant
from substatus.catalog import DEFAULT_CATALOG
from substatus.models import STATUSES, SubstatusConfig
from substatus.triggers import FUNCTIONS, TRIGGERS, Trigger
from tests.factories import ContactFactory, ProjectFactory, TenantFactory
from tests.substatus.kinds import CONTACT, PROJECT, config

pytestmark = pytest.mark.django_db


def trigger_definition(trigger: Trigger) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = %s AND tgrelid = %s::regclass",
            [trigger.name, trigger.table],
        )
        found = cursor.fetchone()
    return found[0] if found else None


@pytest.mark.parametrize("trigger", TRIGGERS, ids=lambda trigger: f"{trigger.table}.{trigger.name}")
def test_each_declared_trigger_is_installed_as_declared(trigger):
    installed = trigger_definition(trigger)
    assert installed is not None
    with transaction.atomic(), connection.cursor() as cursor:
        # Installing the declaration afresh gives exactly what the migrations installed.
        cursor.execute(trigger.uninstall)
        cursor.execute(trigger.install)
        declared = trigger_definition(trigger)
        transaction.set_rollback(True)
    assert installed == declared


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda function: function.name)
def test_each_declared_function_is_installed_as_declared(function):
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function.name])
        assert cursor.fetchall() == [(function.body,)]


def test_no_substatus_trigger_is_installed_that_is_not_declared():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE tgname LIKE 'substatus%%' ORDER BY 1, 2"
        )
        installed = cursor.fetchall()
    assert installed == sorted((trigger.table, trigger.name) for trigger in TRIGGERS)


# The default catalog ---------------------------------------------------------------------


def catalog(tenant: Tenant) -> list[tuple]:
    return list(
        SubstatusConfig.objects.filter(tenant=tenant)
        .order_by("entity", "status", "position")
        .values_list("entity", "status", "key", "label", "is_default", "is_terminal", "is_active")
    )


EXPECTED = sorted(
    (entry.entity, entry.status, entry.key, entry.label, entry.is_default, entry.is_terminal, True)
    for entry in DEFAULT_CATALOG
)


@pytest.mark.parametrize(
    "create",
    [
        pytest.param(lambda: [TenantFactory()], id="ORM"),
        pytest.param(
            lambda: Tenant.objects.bulk_create([Tenant(name=f"Co {n}", subdomain=f"co-{n}") for n in range(3)]),
            id="bulk_create",
        ),
        pytest.param(
            lambda: [
                Tenant.objects.get(pk=pk)
                for pk in _raw_tenants(
                    "INSERT INTO tenants (name, subdomain) VALUES ('A', 'a'), ('B', 'b') RETURNING id"
                )
            ],
            id="raw SQL",
        ),
    ],
)
def test_every_new_tenant_gets_the_default_catalog(create):
    tenants = create()

    for tenant in tenants:
        assert sorted(catalog(tenant)) == EXPECTED


def _raw_tenants(sql: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [pk for (pk,) in cursor.fetchall()]


def test_the_catalog_has_one_default_for_every_status_and_ordered_positions(tenant):
    for entity, statuses in STATUSES.items():
        for status in statuses.values:
            group = list(
                SubstatusConfig.objects.filter(tenant=tenant, entity=entity, status=status).order_by("position")
            )
            assert [config.is_default for config in group].count(True) == 1, (entity, status)
            assert [config.position for config in group] == list(range(len(group)))


def test_a_contact_created_with_its_tenant_gets_a_substatus():
    contact = ContactFactory()

    contact.refresh_from_db()
    assert contact.substatus.key == "uncontacted"


# Rules on the configuration table ------------------------------------------------------------


def refused(sql: str, params: list) -> str | None:
    with pytest.raises(IntegrityError) as error, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    cause = error.value.__cause__
    assert isinstance(cause, psycopg.Error)
    return cause.diag.constraint_name


def test_an_auto_transition_goes_to_the_same_tenant_entity_and_status(tenant, other_tenant):
    rule = config(tenant, PROJECT, "site_visit_pending")
    sql = (
        "UPDATE status_substatus_configs SET auto_transition_to_id = %s, auto_transition_delay_hours = 24 WHERE id = %s"
    )

    for target in (
        config(tenant, PROJECT, "deposit_received"),  # another status
        config(tenant, CONTACT, "attempting_contact"),  # another entity
        config(other_tenant, PROJECT, "measurements_taken"),  # another tenant
    ):
        assert refused(sql, [target.pk, rule.pk]) == "substatus_configs_transition_target"

    with connection.cursor() as cursor:
        cursor.execute(sql, [config(tenant, PROJECT, "measurements_taken").pk, rule.pk])
    rule.refresh_from_db()
    assert rule.auto_transition_to.key == "measurements_taken"


@pytest.mark.parametrize(("column", "value"), [("status", "approved"), ("entity", "contact"), ("tenant_id", None)])
def test_a_substatus_stays_under_its_tenant_entity_and_status(tenant, other_tenant, column, value):
    substatus = config(tenant, PROJECT, "measurements_taken")

    name = refused(
        f"UPDATE status_substatus_configs SET {column} = %s WHERE id = %s",  # noqa: S608
        [other_tenant.pk if value is None else value, substatus.pk],
    )

    assert name == "substatus_configs_parent_fixed"


@pytest.mark.parametrize(
    ("assignments", "constraint"),
    [
        ("is_default = true", "substatus_configs_one_default"),
        (
            "is_terminal = true, auto_transition_to_id = {target}, auto_transition_delay_hours = 1",
            "substatus_configs_terminal_stays",
        ),
        ("auto_transition_to_id = {target}", "substatus_configs_auto_transition_delay"),
        ("auto_transition_delay_hours = 5", "substatus_configs_auto_transition_delay"),
        ("auto_transition_to_id = id, auto_transition_delay_hours = 1", "substatus_configs_no_self_transition"),
    ],
)
def test_configuration_constraints(tenant, assignments, constraint):
    substatus = config(tenant, PROJECT, "measurements_taken")
    target = config(tenant, PROJECT, "quote_prepared")

    name = refused(
        f"UPDATE status_substatus_configs SET {assignments.format(target=target.pk)} WHERE id = %s",  # noqa: S608
        [substatus.pk],
    )

    assert name == constraint


def test_the_status_belongs_to_the_entity(tenant):
    sql = "INSERT INTO status_substatus_configs (tenant_id, entity, status, key, label) VALUES (%s, %s, %s, 'x', 'X')"

    assert refused(sql, [tenant.pk, "contact", "estimate"]) == "substatus_configs_status_valid"
    assert refused(sql, [tenant.pk, "project", "won"]) == "substatus_configs_status_valid"
    assert refused(sql, [tenant.pk, "lead", "new"]) == "substatus_configs_entity_valid"


def test_the_default_cannot_be_deactivated(tenant):
    default = config(tenant, PROJECT, "site_visit_pending")

    assert refused("UPDATE status_substatus_configs SET is_active = false WHERE id = %s", [default.pk]) == (
        "substatus_configs_default_active"
    )


def test_a_substatus_in_the_history_cannot_be_deleted(tenant):
    used = config(tenant, CONTACT, "uncontacted")
    ContactFactory(tenant=tenant)
    Contact.objects.update(stage="contacted")  # nobody is in it any more; the history remembers

    assert refused("DELETE FROM status_substatus_configs WHERE id = %s", [used.pk]) == "substatus_configs_in_history"
    assert SubstatusConfig.objects.filter(pk=used.pk).exists()


def test_an_unused_substatus_can_be_deleted(tenant):
    unused = config(tenant, CONTACT, "attempting_contact")

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM status_substatus_configs WHERE id = %s", [unused.pk])

    assert not SubstatusConfig.objects.filter(pk=unused.pk).exists()


# At least one default: checked at the commit (made immediate here, inside the test's transaction)


def at_commit(sql: str, params: list) -> str | None:
    return refused(f"{sql}; SET CONSTRAINTS substatus_default_required IMMEDIATE", params)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE status_substatus_configs SET is_default = false WHERE id = %s",
        "DELETE FROM status_substatus_configs WHERE id = %s",
    ],
    ids=["cleared", "deleted"],
)
def test_a_status_with_substatuses_keeps_a_default(tenant, sql):
    default = config(tenant, PROJECT, "crew_assigned")

    assert at_commit(sql, [default.pk]) == "substatus_configs_default_required"
    default.refresh_from_db()
    assert default.is_default


def test_a_switch_of_default_in_two_statements_passes_the_check(tenant):
    old, new = config(tenant, PROJECT, "crew_assigned"), config(tenant, PROJECT, "permits_obtained")

    with connection.cursor() as cursor:
        cursor.execute("UPDATE status_substatus_configs SET is_default = false WHERE id = %s", [old.pk])
        cursor.execute("UPDATE status_substatus_configs SET is_default = true WHERE id = %s", [new.pk])
        cursor.execute("SET CONSTRAINTS substatus_default_required IMMEDIATE")

    assert SubstatusConfig.objects.get(tenant=tenant, entity="project", status="scheduled", is_default=True) == new


def test_a_status_without_any_substatus_gives_records_none(tenant):
    """The one documented state without a default: the status has no substatus at all."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM status_substatus_configs WHERE tenant_id = %s AND entity = 'project' AND status = 'scheduled'",
            [tenant.pk],
        )
        cursor.execute("SET CONSTRAINTS substatus_default_required IMMEDIATE")

    project = ProjectFactory(tenant=tenant, status="scheduled")

    project.refresh_from_db()
    assert (project.substatus, project.substatus_since) == (None, None)
