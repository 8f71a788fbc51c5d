"""Substatus configuration services and the automatic transitions, called directly."""

import datetime as dt

import pytest
from django.utils import timezone

from crm.actor import Actor, Source
from crm.errors import ApplicationError, Conflict
from substatus.models import SubstatusConfig, SubstatusHistory
from substatus.services import (
    substatus_auto_transition,
    substatus_create,
    substatus_delete,
    substatus_reorder,
    substatus_update,
)
from tests.factories import ContactFactory, ProjectFactory
from tests.substatus.kinds import CONTACT, KINDS, PROJECT, Kind, config, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(tenant, admin_user) -> Actor:
    return Actor(tenant=tenant, user=admin_user, source=Source.ADMIN)


def keys(tenant, entity: str, status: str) -> list[str]:
    return list(
        SubstatusConfig.objects.filter(tenant=tenant, entity=entity, status=status)
        .order_by("position", "pk")
        .values_list("key", flat=True)
    )


def default_of(tenant, entity: str, status: str) -> str:
    return SubstatusConfig.objects.get(tenant=tenant, entity=entity, status=status, is_default=True).key


def error(raised: pytest.ExceptionInfo) -> tuple[str | None, str]:
    return raised.value.attr, raised.value.code


# Create and update -----------------------------------------------------------------------


def test_create_goes_last_in_its_status_and_records_the_creator(tenant, actor, admin_user):
    created = substatus_create(
        actor=actor, entity="project", status="estimate", key="drone_survey", label="Drone survey"
    )

    assert keys(tenant, "project", "estimate") == [
        "site_visit_pending",
        "measurements_taken",
        "quote_prepared",
        "drone_survey",
    ]
    assert (created.tenant, created.created_by, created.is_default, created.is_active) == (
        tenant,
        admin_user,
        False,
        True,
    )


def test_the_first_substatus_of_a_status_without_any_is_its_default(tenant, actor):
    SubstatusConfig.objects.filter(tenant=tenant, entity="project", status="scheduled").delete()

    created = substatus_create(
        actor=actor, entity="project", status="scheduled", key="on_calendar", label="On calendar"
    )

    assert created.is_default
    project = ProjectFactory(tenant=tenant, status="scheduled")
    project.refresh_from_db()
    assert project.substatus == created


@pytest.mark.parametrize("how", ["create", "update"])
def test_making_a_substatus_the_default_switches_in_one_go(tenant, actor, how):
    if how == "create":
        substatus_create(
            actor=actor, entity="project", status="estimate", key="inbound", label="Inbound", is_default=True
        )
        expected = "inbound"
    else:
        substatus_update(substatus=config(tenant, PROJECT, "quote_prepared"), actor=actor, is_default=True)
        expected = "quote_prepared"

    assert default_of(tenant, "project", "estimate") == expected
    assert (
        SubstatusConfig.objects.filter(tenant=tenant, entity="project", status="estimate", is_default=True).count() == 1
    )
    ProjectFactory(tenant=tenant)  # new records get the new default
    assert SubstatusHistory.objects.latest("id").to_substatus.key == expected


@pytest.mark.parametrize(
    ("key", "changes", "attr", "code"),
    [
        ("site_visit_pending", {"is_default": False}, "is_default", "substatus_configs_default_required"),
        ("site_visit_pending", {"is_active": False}, "is_active", "substatus_configs_default_active"),
        (
            "measurements_taken",
            {"is_default": True, "is_active": False},
            "is_active",
            "substatus_configs_default_active",
        ),
        ("measurements_taken", {"status": "approved"}, "status", "substatus_configs_parent_fixed"),
        ("measurements_taken", {"entity": "contact"}, "status", "substatus_configs_parent_fixed"),
        (
            "measurements_taken",
            {"auto_transition_delay_hours": 4},
            "auto_transition_delay_hours",
            "substatus_configs_auto_transition_delay",
        ),
        (
            "measurements_taken",
            {"auto_transition_to": "measurements_taken", "auto_transition_delay_hours": 4},
            "auto_transition_to",
            "substatus_configs_no_self_transition",
        ),
        (
            "measurements_taken",
            {"auto_transition_to": "deposit_received", "auto_transition_delay_hours": 4},
            "auto_transition_to",
            "substatus_configs_transition_target",
        ),
        (
            "measurements_taken",
            {"auto_transition_to": "quote_prepared"},
            "auto_transition_delay_hours",
            "substatus_configs_auto_transition_delay",
        ),
        (
            "measurements_taken",
            {"auto_transition_to": "quote_prepared", "auto_transition_delay_hours": 4, "is_terminal": True},
            "auto_transition_to",
            "substatus_configs_terminal_stays",
        ),
    ],
)
def test_update_refusals_name_the_field_and_change_nothing(tenant, actor, key, changes, attr, code):
    substatus = config(tenant, PROJECT, key)
    before = list(SubstatusConfig.objects.order_by("pk").values())
    if "auto_transition_to" in changes:
        changes = {**changes, "auto_transition_to": config(tenant, PROJECT, changes["auto_transition_to"])}

    with pytest.raises(ApplicationError) as refused:
        substatus_update(substatus=substatus, actor=actor, **changes)

    assert error(refused) == (attr, code)
    assert list(SubstatusConfig.objects.order_by("pk").values()) == before


def test_an_auto_transition_to_another_tenants_substatus_does_not_exist(tenant, other_tenant, actor):
    with pytest.raises(ApplicationError) as refused:
        substatus_update(
            substatus=config(tenant, PROJECT, "measurements_taken"),
            actor=actor,
            auto_transition_to=config(other_tenant, PROJECT, "quote_prepared"),
            auto_transition_delay_hours=2,
        )

    assert error(refused) == ("auto_transition_to", "does_not_exist")


def test_create_refuses_a_status_of_the_other_entity(tenant, actor):
    with pytest.raises(ApplicationError) as refused:
        substatus_create(actor=actor, entity="contact", status="estimate", key="x", label="X")

    assert error(refused) == ("status", "substatus_configs_status_valid")
    assert refused.value.message == "This status does not exist for this kind of record."


def test_create_refuses_a_key_already_used_in_the_status(tenant, actor):
    with pytest.raises(ApplicationError) as refused:
        substatus_create(actor=actor, entity="project", status="estimate", key="quote_prepared", label="Again")

    assert error(refused) == ("key", "substatus_configs_key_unique")


# Reorder -------------------------------------------------------------------------------


def test_reorder_sets_every_position(tenant, actor):
    order = [config(tenant, PROJECT, key).pk for key in ("quote_prepared", "site_visit_pending", "measurements_taken")]

    result = substatus_reorder(actor=actor, ids=order)

    assert [substatus.pk for substatus in result] == order
    assert keys(tenant, "project", "estimate") == ["quote_prepared", "site_visit_pending", "measurements_taken"]
    assert [substatus.position for substatus in result] == [0, 1, 2]


@pytest.mark.parametrize(
    ("ids", "code"),
    [
        (["quote_prepared", "quote_prepared", "site_visit_pending", "measurements_taken"], "duplicate"),
        (["quote_prepared", "site_visit_pending"], "incomplete"),
        (["quote_prepared", "site_visit_pending", "measurements_taken", "deposit_received"], "several_statuses"),
        (["quote_prepared", "site_visit_pending", "measurements_taken", "other-tenant"], "does_not_exist"),
    ],
)
def test_reorder_refusals(tenant, other_tenant, actor, ids, code):
    pks = [
        config(other_tenant, PROJECT, "tear_off").pk if key == "other-tenant" else config(tenant, PROJECT, key).pk
        for key in ids
    ]
    before = list(SubstatusConfig.objects.order_by("pk").values())

    with pytest.raises(ApplicationError) as refused:
        substatus_reorder(actor=actor, ids=pks)

    assert error(refused) == ("ids", code)
    assert list(SubstatusConfig.objects.order_by("pk").values()) == before


# Delete --------------------------------------------------------------------------------


def test_an_unused_substatus_is_deleted(tenant, actor):
    created = substatus_create(actor=actor, entity="project", status="estimate", key="spare", label="Spare")

    substatus_delete(substatus=created, actor=actor)

    assert not SubstatusConfig.objects.filter(pk=created.pk).exists()


def test_deleting_a_substatus_in_use_says_how_many_records_use_it(tenant, actor):
    used = config(tenant, PROJECT, "measurements_taken")
    ProjectFactory.create_batch(2, tenant=tenant, substatus=used)

    with pytest.raises(Conflict) as refused:
        substatus_delete(substatus=used, actor=actor)

    assert refused.value.code == "in_use"
    assert refused.value.message == "2 projects use this substatus: move them to another one, or deactivate it instead."
    assert SubstatusConfig.objects.filter(pk=used.pk).exists()


@pytest.mark.parametrize("case", ["default", "transition target", "history"])
def test_deleting_a_substatus_others_depend_on_is_refused(tenant, actor, case):
    substatus = config(tenant, CONTACT, "attempting_contact")
    expected = {"history": "substatus_configs_in_history", "transition target": "in_use", "default": "is_default"}[case]
    if case == "default":
        substatus = config(tenant, CONTACT, "uncontacted")
    elif case == "transition target":
        substatus_update(
            substatus=config(tenant, CONTACT, "uncontacted"),
            actor=actor,
            auto_transition_to=substatus,
            auto_transition_delay_hours=48,
        )
    else:
        contact = ContactFactory(tenant=tenant, substatus=substatus)
        contact.__class__.objects.filter(pk=contact.pk).update(substatus=config(tenant, CONTACT, "uncontacted"))

    with pytest.raises(Conflict) as refused:
        substatus_delete(substatus=substatus, actor=actor)

    assert refused.value.code == expected
    assert SubstatusConfig.objects.filter(pk=substatus.pk).exists()


# Automatic transitions -------------------------------------------------------------------


@pytest.fixture(params=KINDS, ids=str)
def kind(request) -> Kind:
    return request.param


def make(kind: Kind, tenant, key: str, *, hours_ago: float, now: dt.datetime) -> int:
    factory = ContactFactory if kind is CONTACT else ProjectFactory
    substatus = config(tenant, kind, key)
    record = factory.create(tenant=tenant, **{kind.status_field: substatus.status, "substatus": substatus})
    kind.model._default_manager.filter(pk=record.pk).update(substatus_since=now - dt.timedelta(hours=hours_ago))
    return record.pk


def rule(tenant, kind: Kind, *, hours: int = 24, **changes) -> SubstatusConfig:
    """first status: others[first] -> defaults[first] after `hours`."""
    source = config(tenant, kind, kind.others[kind.first])
    SubstatusConfig.objects.filter(pk=source.pk).update(
        auto_transition_to=config(tenant, kind, kind.defaults[kind.first]),
        auto_transition_delay_hours=hours,
        **changes,
    )
    source.refresh_from_db()
    return source


def test_due_records_move_and_history_says_task_and_why(kind, tenant, other_tenant):
    now = timezone.now()
    rule(tenant, kind)
    due = make(kind, tenant, kind.others[kind.first], hours_ago=25, now=now)
    early = make(kind, tenant, kind.others[kind.first], hours_ago=23, now=now)
    elsewhere = make(kind, tenant, kind.others[kind.second], hours_ago=500, now=now)
    no_rule = make(kind, other_tenant, kind.others[kind.first], hours_ago=500, now=now)

    assert substatus_auto_transition(now=now) == 1

    assert state(kind, due) == (kind.first, kind.defaults[kind.first])
    assert state(kind, early) == (kind.first, kind.others[kind.first])
    assert state(kind, elsewhere) == (kind.second, kind.others[kind.second])
    assert state(kind, no_rule) == (kind.first, kind.others[kind.first])
    row = SubstatusHistory.objects.latest("id")
    assert (row.record_id, row.source, row.reason, row.changed_by_id, row.from_status, row.to_status) == (
        due,
        "task",
        "auto-transition after 24 h",
        None,
        kind.first,
        kind.first,
    )
    assert kind.model._default_manager.get(pk=due).substatus_since == row.changed_at


def test_running_twice_moves_nothing_more(kind, tenant):
    now = timezone.now()
    rule(tenant, kind)
    make(kind, tenant, kind.others[kind.first], hours_ago=30, now=now)

    assert substatus_auto_transition(now=now) == 1
    rows = SubstatusHistory.objects.count()
    assert substatus_auto_transition(now=now) == 0
    assert SubstatusHistory.objects.count() == rows


def test_batches_move_every_due_record(kind, tenant):
    now = timezone.now()
    rule(tenant, kind, hours=1)
    records = [make(kind, tenant, kind.others[kind.first], hours_ago=2, now=now) for _ in range(5)]

    assert substatus_auto_transition(now=now, batch_size=2) == 5

    assert {state(kind, pk) for pk in records} == {(kind.first, kind.defaults[kind.first])}
    assert SubstatusHistory.objects.filter(source="task").count() == 5


@pytest.mark.parametrize("inactive", ["target", "source"])
def test_an_inactive_target_or_rule_moves_nothing(kind, tenant, inactive):
    now = timezone.now()
    source = rule(tenant, kind)
    record = make(kind, tenant, kind.others[kind.first], hours_ago=100, now=now)
    if inactive == "target":
        # The default must stay active, and the status keeps one: the rule's source takes over.
        SubstatusConfig.objects.filter(pk=source.auto_transition_to_id).update(is_default=False, is_active=False)
        SubstatusConfig.objects.filter(pk=source.pk).update(is_default=True)
    else:
        SubstatusConfig.objects.filter(pk=source.pk).update(is_active=False)
    rows = SubstatusHistory.objects.count()

    assert substatus_auto_transition(now=now) == 0

    assert state(kind, record) == (kind.first, kind.others[kind.first])
    assert SubstatusHistory.objects.count() == rows


def test_a_terminal_substatus_never_transitions(tenant, actor):
    now = timezone.now()
    lost = config(tenant, CONTACT, "price")
    record = make(CONTACT, tenant, "price", hours_ago=10_000, now=now)
    rule(tenant, CONTACT)  # rules elsewhere do run

    with pytest.raises(ApplicationError) as refused:
        substatus_update(
            substatus=lost,
            actor=actor,
            auto_transition_to=config(tenant, CONTACT, "no_response"),
            auto_transition_delay_hours=1,
        )

    assert error(refused) == ("auto_transition_to", "substatus_configs_terminal_stays")
    assert substatus_auto_transition(now=now) == 0
    assert state(CONTACT, record) == ("lost", "price")
