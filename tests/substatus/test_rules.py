"""The four substatus rules, on every write path, INSERT and UPDATE tested apart.

1. INSERT without a substatus: the status's default; with a valid one: kept.
2. UPDATE of the status without naming a substatus: the new status's default; named: kept.
3. UPDATE touching neither status nor substatus: untouched, no history row; re-saving the
   same status keeps the substatus.
4. A substatus of another status, entity or tenant, or an inactive one: refused, nothing changes.

(The admin path is in test_admin.py.)
"""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from substatus.models import SubstatusConfig, SubstatusHistory
from tests.conftest import client_for
from tests.substatus.kinds import CONTACT, KINDS, PATHS, PROJECT, Kind, Path, Refused, config, history, state

pytestmark = pytest.mark.django_db


@pytest.fixture(params=PATHS, ids=str)
def path(request, tenant, member_user) -> Path:
    return request.param(tenant, client_for(member_user))


@pytest.fixture(params=KINDS, ids=str)
def kind(request) -> Kind:
    return request.param


def snapshot(kind: Kind) -> tuple[list[dict], list[dict]]:
    records = list(kind.model._default_manager.order_by("pk").values())
    return records, [dict(row) for row in SubstatusHistory.objects.values()]


# 1. INSERT ---------------------------------------------------------------------------


def test_insert_without_substatus_gets_the_status_default(path, kind, tenant):
    pk = path.insert(kind, kind.second)

    assert state(kind, pk) == (kind.second, kind.defaults[kind.second])
    assert history(kind, pk) == [(None, kind.second, None, kind.defaults[kind.second])]


def test_insert_with_a_valid_substatus_keeps_it(path, kind, tenant):
    pk = path.insert(kind, kind.second, config(tenant, kind, kind.others[kind.second]))

    assert state(kind, pk) == (kind.second, kind.others[kind.second])
    assert history(kind, pk) == [(None, kind.second, None, kind.others[kind.second])]


def test_insert_sets_substatus_since(path, kind, tenant):
    pk = path.insert(kind, kind.first)

    record = kind.model._default_manager.get(pk=pk)
    assert record.substatus_since == SubstatusHistory.objects.get(record_id=pk, entity=kind.entity).changed_at


# 2. UPDATE of the status ---------------------------------------------------------------


@pytest.fixture
def record(kind, tenant) -> int:
    """A record in the first status, in its non-default substatus (history: its insert)."""
    return PATHS[0](tenant, APIClient()).insert(kind, kind.first, config(tenant, kind, kind.others[kind.first]))


def test_status_change_without_substatus_gets_the_new_default(path, kind, tenant, record):
    path.update(kind, record, **{kind.status_field: kind.second})

    assert state(kind, record) == (kind.second, kind.defaults[kind.second])
    assert history(kind, record)[1:] == [(kind.first, kind.second, kind.others[kind.first], kind.defaults[kind.second])]


def test_status_change_naming_a_substatus_of_the_new_status_keeps_it(path, kind, tenant, record):
    path.update(
        kind, record, **{kind.status_field: kind.second, "substatus": config(tenant, kind, kind.others[kind.second])}
    )

    assert state(kind, record) == (kind.second, kind.others[kind.second])
    assert history(kind, record)[1:] == [(kind.first, kind.second, kind.others[kind.first], kind.others[kind.second])]


def test_substatus_change_within_the_status(path, kind, tenant, record):
    path.update(kind, record, substatus=config(tenant, kind, kind.defaults[kind.first]))

    assert state(kind, record) == (kind.first, kind.defaults[kind.first])
    assert history(kind, record)[1:] == [(kind.first, kind.first, kind.others[kind.first], kind.defaults[kind.first])]


def test_clearing_the_substatus_gives_back_the_status_default(path, kind, tenant, record):
    path.update(kind, record, substatus=None)

    assert state(kind, record) == (kind.first, kind.defaults[kind.first])


def test_status_change_moves_substatus_since(path, kind, tenant, record):
    before = kind.model._default_manager.get(pk=record).substatus_since
    with connection.cursor() as cursor:  # make "now" visibly later than the insert
        cursor.execute(f"UPDATE {kind.table} SET substatus_since = substatus_since - interval '1 day'")  # noqa: S608

    path.update(kind, record, **{kind.status_field: kind.second})

    after = kind.model._default_manager.get(pk=record).substatus_since
    assert after > before
    assert after == SubstatusHistory.objects.filter(record_id=record, entity=kind.entity).latest("id").changed_at


# 3. UPDATE touching neither, or re-saving the same status -------------------------------


def test_update_touching_neither_keeps_the_substatus_and_writes_no_history(path, kind, tenant, record):
    since = kind.model._default_manager.get(pk=record).substatus_since

    path.update(kind, record, **{kind.name_field: "Renamed"})

    assert state(kind, record) == (kind.first, kind.others[kind.first])
    assert kind.model._default_manager.get(pk=record).substatus_since == since
    assert len(history(kind, record)) == 1


def test_resaving_the_same_status_keeps_the_substatus(path, kind, tenant, record):
    path.update(kind, record, **{kind.status_field: kind.first})

    assert state(kind, record) == (kind.first, kind.others[kind.first])
    assert len(history(kind, record)) == 1


# 4. Refused substatuses ----------------------------------------------------------------


def invalid_substatus(reason: str, kind: Kind, tenant, other_tenant, status: str) -> SubstatusConfig:
    """A substatus that cannot go with `status` for `reason`."""
    other_kind = PROJECT if kind is CONTACT else CONTACT
    if reason == "other_status":  # neither the record's status before nor after
        return SubstatusConfig.objects.filter(tenant=tenant, entity=kind.entity).exclude(
            status__in=[kind.first, kind.second]
        )[0]
    if reason == "other_entity":
        return config(tenant, other_kind, other_kind.others[other_kind.first])
    if reason == "other_tenant":
        return config(other_tenant, kind, kind.others[status])
    return SubstatusConfig.objects.create(
        tenant=tenant, entity=kind.entity, status=status, key="retired", label="Retired", is_active=False
    )


REASONS = ["other_status", "other_entity", "other_tenant", "inactive"]


def constraint(kind: Kind, reason: str) -> str:
    if reason == "other_status":
        reason = f"other_{kind.status_field}"
    return f"{kind.table}_substatus_{reason}"


@pytest.mark.parametrize("reason", REASONS)
def test_insert_with_an_invalid_substatus_is_refused(path, kind, tenant, other_tenant, reason):
    substatus = invalid_substatus(reason, kind, tenant, other_tenant, kind.first)
    before = snapshot(kind)

    with pytest.raises(Refused) as refused:
        path.insert(kind, kind.first, substatus)

    assert refused.value.code == path.refusal(constraint(kind, reason))
    assert snapshot(kind) == before


@pytest.mark.parametrize("reason", REASONS)
def test_status_change_with_an_invalid_substatus_is_refused(path, kind, tenant, other_tenant, record, reason):
    substatus = invalid_substatus(reason, kind, tenant, other_tenant, kind.second)
    before = snapshot(kind)

    with pytest.raises(Refused) as refused:
        path.update(kind, record, **{kind.status_field: kind.second, "substatus": substatus})

    assert refused.value.code == path.refusal(constraint(kind, reason))
    assert snapshot(kind) == before


@pytest.mark.parametrize("reason", REASONS)
def test_substatus_change_to_an_invalid_one_is_refused(path, kind, tenant, other_tenant, record, reason):
    substatus = invalid_substatus(reason, kind, tenant, other_tenant, kind.first)
    before = snapshot(kind)

    with pytest.raises(Refused) as refused:
        path.update(kind, record, substatus=substatus)

    assert refused.value.code == path.refusal(constraint(kind, reason))
    assert snapshot(kind) == before


@pytest.mark.parametrize("path_class", [path_class for path_class in PATHS if path_class.name != "API"], ids=str)
def test_a_missing_substatus_is_refused_at_once(path_class, kind, tenant, record):
    path = path_class(tenant, None)
    missing = SubstatusConfig(pk=10**9)
    before = snapshot(kind)

    with pytest.raises(Refused) as refused:
        path.update(kind, record, substatus=missing)

    assert refused.value.code == f"{kind.table}_substatus_unknown"
    assert snapshot(kind) == before


# The old system's trigger read OLD on INSERT, and `status` on a table whose column is `stage`.


@pytest.mark.parametrize("path_class", PATHS, ids=str)
def test_regression_contacts_have_no_status_column_yet_insert_and_update_work(path_class, tenant, member_user):
    path = path_class(tenant, client_for(member_user))
    assert "status" not in {field.column for field in CONTACT.model._meta.concrete_fields}

    pk = path.insert(CONTACT, "new")
    path.update(CONTACT, pk, stage="contacted")
    path.update(CONTACT, pk, first_name="Still works")

    assert state(CONTACT, pk) == ("contacted", "follow_up_needed")


def test_regression_insert_trigger_never_reads_old():
    """Each table's INSERT function is its own, and mentions no OLD row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE proname IN "
            "('substatus_contacts_before_insert', 'substatus_projects_before_insert')"
        )
        functions = dict(cursor.fetchall())
    assert sorted(functions) == ["substatus_contacts_before_insert", "substatus_projects_before_insert"]
    for source in functions.values():
        assert "OLD." not in source
    assert ".status" not in functions["substatus_contacts_before_insert"]
