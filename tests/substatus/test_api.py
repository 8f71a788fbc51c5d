"""/api/v1/substatuses/, the records' substatus fields and history, and the analytics endpoint's
input rules (its figures are in test_analytics.py)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from crm.models import Role
from substatus.models import SubstatusConfig, SubstatusHistory
from tests.api import ROLE_PERSONAS, api_errors, app_queries, assert_error, assert_invalid, persona, role_client
from tests.conftest import client_for
from tests.factories import ContactFactory, ProjectFactory
from tests.substatus.kinds import CONTACT, KINDS, PROJECT, Kind, config, state

pytestmark = pytest.mark.django_db

URL = "/api/v1/substatuses/"


def configs() -> list[dict]:
    return [dict(row) for row in SubstatusConfig.objects.order_by("pk").values()]


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# Reading the configuration ---------------------------------------------------------------


@pytest.mark.parametrize("role", ROLE_PERSONAS)
def test_everyone_in_the_tenant_reads_its_substatuses_only(request, tenant, other_tenant, role):
    listed = results(role_client(request, role).get(URL, {"entity": "project", "status": "estimate"}))

    assert [(item["key"], item["position"], item["is_default"]) for item in listed] == [
        ("site_visit_pending", 0, True),
        ("measurements_taken", 1, False),
        ("quote_prepared", 2, False),
    ]
    assert {item["id"] for item in listed} <= set(
        SubstatusConfig.objects.filter(tenant=tenant).values_list("pk", flat=True)
    )


def test_a_substatus_reads_as_every_field(tenant, viewer):
    substatus = config(tenant, PROJECT, "measurements_taken")

    body = client_for(viewer).get(f"{URL}{substatus.pk}/").json()

    assert body == {
        "id": substatus.pk,
        "entity": "project",
        "status": "estimate",
        "key": "measurements_taken",
        "label": "Measurements taken",
        "description": "",
        "color": "#64748b",
        "icon": "",
        "position": 1,
        "is_default": False,
        "is_terminal": False,
        "auto_transition_to": None,
        "auto_transition_delay_hours": None,
        "is_active": True,
        "created_by": None,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


def test_filters(tenant, viewer):
    SubstatusConfig.objects.filter(tenant=tenant, key="price").update(is_active=False)

    inactive = results(client_for(viewer).get(URL, {"is_active": "false"}))
    contact_new = results(client_for(viewer).get(URL, {"entity": "contact", "status": ["new", "lost"]}))

    assert [item["key"] for item in inactive] == ["price"]
    assert [item["key"] for item in contact_new] == [
        "no_reason_given",
        "price",
        "went_with_competitor",
        "no_response",
        "insurance_denied",
        "uncontacted",
        "attempting_contact",
    ]


@pytest.mark.parametrize("query", [{"entity": "lead"}, {"status": "sleeping"}, {"is_active": "maybe"}])
def test_bad_filters_are_400s(viewer, query):
    (name,) = query
    assert api_errors(client_for(viewer).get(URL, query), 400, type="validation_error")[0]["attr"] == name


def test_another_tenants_substatus_is_a_404_and_stays_as_it_was(tenant, other_tenant, owner):
    theirs = config(other_tenant, PROJECT, "measurements_taken")
    before = configs()
    client = client_for(owner)

    for response in (
        client.get(f"{URL}{theirs.pk}/"),
        client.patch(f"{URL}{theirs.pk}/", {"label": "Mine now"}),
        client.put(f"{URL}{theirs.pk}/", {"entity": "project", "status": "estimate", "key": "k", "label": "L"}),
        client.delete(f"{URL}{theirs.pk}/"),
    ):
        assert response.status_code == 404
    assert configs() == before


def test_unauthenticated_is_a_401(anonymous_client, tenant):
    assert anonymous_client.get(URL).status_code == 401


# Changing the configuration --------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MEMBER, Role.VIEWER])
def test_only_admins_and_owners_change_substatuses(request, tenant, role):
    client = role_client(request, role)
    substatus = config(tenant, PROJECT, "measurements_taken")
    estimate = [
        config(tenant, PROJECT, key).pk for key in ("quote_prepared", "measurements_taken", "site_visit_pending")
    ]
    before = configs()

    for response in (
        client.post(URL, {"entity": "project", "status": "estimate", "key": "drone", "label": "Drone"}),
        client.patch(f"{URL}{substatus.pk}/", {"label": "Measured"}),
        client.post(f"{URL}reorder/", {"ids": estimate}),
        client.delete(f"{URL}{substatus.pk}/"),
    ):
        assert response.status_code == 403, response.content
    assert configs() == before


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_admins_and_owners_create_edit_reorder_and_delete(request, tenant, role):
    client = role_client(request, role)
    user = persona(request, role)

    created = client.post(
        URL, {"entity": "project", "status": "estimate", "key": "drone_survey", "label": "Drone survey"}
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert (created.json()["position"], created.json()["created_by"]) == (3, user.pk)

    changed = client.patch(f"{URL}{pk}/", {"label": "Drone flight", "color": "#112233", "is_default": True})
    assert changed.status_code == 200, changed.content
    assert SubstatusConfig.objects.get(tenant=tenant, entity="project", status="estimate", is_default=True).pk == pk

    client.patch(f"{URL}{config(tenant, PROJECT, 'site_visit_pending').pk}/", {"is_default": True})
    order = [
        pk,
        *(config(tenant, PROJECT, key).pk for key in ("quote_prepared", "measurements_taken", "site_visit_pending")),
    ]
    reordered = client.post(f"{URL}reorder/", {"ids": order})
    assert reordered.status_code == 200, reordered.content
    assert [item["id"] for item in reordered.json()] == order
    assert [item["position"] for item in reordered.json()] == [0, 1, 2, 3]

    assert client.delete(f"{URL}{pk}/").status_code == 204
    assert not SubstatusConfig.objects.filter(pk=pk).exists()


def test_refusals_name_the_field(tenant, other_tenant, admin_client_):
    substatus = config(tenant, PROJECT, "measurements_taken")
    before = configs()

    assert_invalid(
        admin_client_.patch(
            f"{URL}{substatus.pk}/",
            {
                "auto_transition_to": config(other_tenant, PROJECT, "quote_prepared").pk,
                "auto_transition_delay_hours": 3,
            },
        ),
        attr="auto_transition_to",
        code="does_not_exist",
        detail=f'Invalid pk "{config(other_tenant, PROJECT, "quote_prepared").pk}" - object does not exist.',
    )
    assert_invalid(
        admin_client_.patch(f"{URL}{substatus.pk}/", {"status": "approved"}),
        attr="status",
        code="substatus_configs_parent_fixed",
        detail="A substatus stays under its status: create a new one for another status.",
    )
    assert_invalid(
        admin_client_.patch(f"{URL}{config(tenant, PROJECT, 'site_visit_pending').pk}/", {"is_active": False}),
        attr="is_active",
        code="substatus_configs_default_active",
        detail="The default substatus must stay active: make another one the default first.",
    )
    assert_invalid(
        admin_client_.post(URL, {"entity": "project", "status": "estimate", "key": "quote_prepared", "label": "Q"}),
        attr="key",
        code="substatus_configs_key_unique",
        detail="Another substatus of this status has this key.",
    )
    assert_invalid(
        admin_client_.post(URL, {"entity": "project", "status": "estimate", "key": "Bad Key", "label": "Q"}),
        attr="key",
        code="invalid",
        detail="Use lowercase letters, digits and underscores.",
    )
    assert configs() == before


def test_deleting_a_substatus_in_use_is_a_409_saying_how_many_use_it(tenant, admin_client_):
    substatus = config(tenant, CONTACT, "attempting_contact")
    ContactFactory.create_batch(3, tenant=tenant, substatus=substatus)

    assert_error(
        admin_client_.delete(f"{URL}{substatus.pk}/"),
        409,
        code="in_use",
        detail="3 contacts use this substatus: move them to another one, or deactivate it instead.",
    )
    assert SubstatusConfig.objects.filter(pk=substatus.pk).exists()


def test_a_deactivated_substatus_keeps_its_history_readable(tenant, admin_client_, member_user):
    substatus = config(tenant, CONTACT, "attempting_contact")
    contact = ContactFactory(tenant=tenant, substatus=substatus)
    Contact.objects.filter(pk=contact.pk).update(substatus=config(tenant, CONTACT, "uncontacted"))

    assert admin_client_.patch(f"{URL}{substatus.pk}/", {"is_active": False}).status_code == 200

    entries = results(client_for(member_user).get(f"/api/v1/contacts/{contact.pk}/substatus-history/"))
    assert [entry["from_substatus"] for entry in entries] == [
        {
            "id": substatus.pk,
            "key": "attempting_contact",
            "label": "Attempting contact",
            "color": "#64748b",
            "is_active": False,
        },
        None,
    ]


@pytest.mark.parametrize(
    ("ids", "attr"),
    [([], "ids"), (["x"], "ids"), ([0], "ids")],
)
def test_reorder_input_is_checked(admin_client_, ids, attr):
    assert api_errors(admin_client_.post(f"{URL}reorder/", {"ids": ids}), 400, type="validation_error")[0][
        "attr"
    ].startswith(attr)


# Records: substatus, substatus_since, reason ----------------------------------------------


@pytest.fixture(params=KINDS, ids=str)
def kind(request) -> Kind:
    return request.param


def make(kind: Kind, tenant, **fields):
    return (ContactFactory if kind is CONTACT else ProjectFactory)(tenant=tenant, **fields)


def test_a_status_change_through_the_api_answers_the_new_substatus_and_keeps_the_reason(kind, tenant, member_user):
    record = make(kind, tenant)

    response = client_for(member_user).patch(
        f"{kind.url}{record.pk}/", {kind.status_field: kind.second, "reason": "Signed at the kitchen table"}
    )

    assert response.status_code == 200, response.content
    record.refresh_from_db()
    body = response.json()
    assert (body["substatus"], body["substatus_since"]) == (
        config(tenant, kind, kind.defaults[kind.second]).pk,
        record.substatus_since.isoformat().replace("+00:00", "Z"),
    )
    assert "reason" not in body
    row = SubstatusHistory.objects.latest("id")
    assert (row.reason, row.source, row.changed_by_id) == ("Signed at the kitchen table", "api", member_user.pk)


def test_substatus_since_cannot_be_written(kind, tenant, member_user):
    record = make(kind, tenant)
    record.refresh_from_db()

    response = client_for(member_user).patch(f"{kind.url}{record.pk}/", {"substatus_since": "2020-01-01T00:00:00Z"})

    assert response.status_code == 200
    assert kind.model._default_manager.get(pk=record.pk).substatus_since == record.substatus_since


def test_records_filter_by_substatus(kind, tenant, member_user):
    other = config(tenant, kind, kind.others[kind.first])
    wanted = make(kind, tenant, substatus=other)
    make(kind, tenant)

    listed = results(client_for(member_user).get(kind.url, {"substatus": other.pk}))

    assert [item["id"] for item in listed] == [wanted.pk]


def test_an_invalid_substatus_is_a_400_naming_it_and_the_reason(kind, tenant, member_user):
    record = make(kind, tenant)
    other_status = SubstatusConfig.objects.filter(tenant=tenant, entity=kind.entity).exclude(status=kind.first)[0]
    before = state(kind, record.pk)

    response = client_for(member_user).patch(f"{kind.url}{record.pk}/", {"substatus": other_status.pk})

    noun = {"contact": "stage", "project": "status"}[kind.entity]
    assert_invalid(
        response,
        attr="substatus",
        code=f"{kind.table}_substatus_other_{noun}",
        detail=f"This substatus belongs to another {noun} than the {kind.entity}'s {noun}.",
    )
    assert state(kind, record.pk) == before


# History -------------------------------------------------------------------------------


def history_url(kind: Kind, pk: int) -> str:
    return f"{kind.url}{pk}/substatus-history/"


def test_history_lists_newest_first_with_who_and_why(kind, tenant, manager, viewer):
    record = make(kind, tenant)
    client_for(manager).patch(f"{kind.url}{record.pk}/", {kind.status_field: kind.second, "reason": "Ready"})

    entries = results(client_for(viewer).get(history_url(kind, record.pk)))

    first_default = config(tenant, kind, kind.defaults[kind.first])
    second_default = config(tenant, kind, kind.defaults[kind.second])
    assert [(entry["from_status"], entry["to_status"]) for entry in entries] == [
        (kind.first, kind.second),
        (None, kind.first),
    ]
    latest = entries[0]
    assert latest == {
        "id": latest["id"],
        "from_status": kind.first,
        "to_status": kind.second,
        "from_substatus": {
            "id": first_default.pk,
            "key": first_default.key,
            "label": first_default.label,
            "color": first_default.color,
            "is_active": True,
        },
        "to_substatus": {
            "id": second_default.pk,
            "key": second_default.key,
            "label": second_default.label,
            "color": second_default.color,
            "is_active": True,
        },
        "before": {kind.status_field: kind.first, "substatus": first_default.pk},
        "after": {kind.status_field: kind.second, "substatus": second_default.pk},
        "changed_by": {
            "id": manager.pk,
            "username": manager.username,
            "email": manager.email,
            "first_name": manager.first_name,
            "last_name": manager.last_name,
        },
        "impersonated_by": None,
        "reason": "Ready",
        "source": "api",
        "changed_at": latest["changed_at"],
    }


def test_history_of_another_tenants_or_a_deleted_record_is_a_404(kind, tenant, other_tenant, member_user):
    theirs = make(kind, other_tenant)
    deleted = make(kind, tenant, is_deleted=True)

    for pk in (theirs.pk, deleted.pk, 10**9):
        assert_error(
            client_for(member_user).get(history_url(kind, pk)),
            404,
            code="not_found",
            detail="Not found.",
        )


def test_history_needs_authentication(kind, tenant, anonymous_client):
    assert anonymous_client.get(history_url(kind, make(kind, tenant).pk)).status_code == 401


def test_history_pages_cost_a_constant_number_of_queries(kind, tenant, member_user):
    record = make(kind, tenant)
    client = client_for(member_user)
    statuses = [kind.first, kind.second]

    def page() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(history_url(kind, record.pk), {"page_size": 200})
        return len(results(response)), len(app_queries(captured))

    for n in range(4):
        kind.model._default_manager.filter(pk=record.pk).update(**{kind.status_field: statuses[n % 2 - 1]})
    few = page()
    for n in range(45):
        kind.model._default_manager.filter(pk=record.pk).update(**{kind.status_field: statuses[(n + 1) % 2]})

    many = page()

    # Tenant resolution, the record's existence, the count, the page.
    assert (few, many) == ((5, 4), (50, 4))


def test_substatus_pages_cost_a_constant_number_of_queries(tenant, viewer):
    with CaptureQueriesContext(connection) as captured:
        listed = results(client_for(viewer).get(URL, {"page_size": 200}))

    assert (len(listed), len(app_queries(captured))) == (37, 3)


# Analytics input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ({}, "entity"),
        ({"entity": "lead"}, "entity"),
        ({"entity": "project", "from": "2026-02-30"}, "from"),
        ({"entity": "project", "to": "yesterday"}, "to"),
        ({"entity": "project", "from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"entity": "project", "from": "2999-01-01"}, "from"),
    ],
)
def test_analytics_input_errors_name_the_parameter(viewer, query, attr):
    errors = api_errors(client_for(viewer).get("/api/v1/substatus/analytics/", query), 400, type="validation_error")

    assert [error["attr"] for error in errors] == [attr]


def test_analytics_counts_only_the_tenants_records(tenant, viewer, anonymous_client, other_tenant_client):
    ProjectFactory(tenant=tenant)
    url = "/api/v1/substatus/analytics/"

    ours = client_for(viewer).get(url, {"entity": "project"}).json()["statuses"][0]
    theirs = other_tenant_client.get(url, {"entity": "project"}).json()["statuses"][0]

    assert (ours["status"], ours["current"], theirs["status"], theirs["current"]) == ("estimate", 1, "estimate", 0)
    assert anonymous_client.get(url, {"entity": "project"}).status_code == 401
