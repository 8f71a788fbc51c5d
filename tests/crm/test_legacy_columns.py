"""The old system's remaining columns of tenants, projects and activities."""

import pytest
from django.db import connection

from crm.actor import Actor
from crm.models import Activity, Project, Role, Tenant
from crm.services import activity_create, activity_update, project_update, tenant_update
from tests.admin import admin_url, post_page, staff_client
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


# Projects: QuickBooks ------------------------------------------------------------------


def test_a_project_keeps_its_quickbooks_id_and_sync_status(tenant, member_user):
    client = client_for(member_user)
    body = {
        "name": "N" * 255,
        "contact": ContactFactory(tenant=tenant).pk,
        "quickbooks_id": "QB-JOB-981",
        "quickbooks_sync_status": "synced",
    }

    response = client.post("/api/v1/projects/", body, format="json")

    assert response.status_code == 201, response.content
    assert {name: response.json()[name] for name in body} == body
    assert Project.objects.values_list("quickbooks_id", "quickbooks_sync_status").get() == ("QB-JOB-981", "synced")


def test_a_quickbooks_sync_status_past_the_old_width_is_a_400(tenant, member_user):
    project = ProjectFactory(tenant=tenant)

    response = client_for(member_user).patch(
        f"/api/v1/projects/{project.pk}/", {"quickbooks_sync_status": "s" * 51}, format="json"
    )

    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["quickbooks_sync_status"]
    assert Project.objects.values_list("quickbooks_sync_status", flat=True).get() is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"quickbooks_sync_status": "ERROR"}, ["failed"]),
        ({"quickbooks_sync_status": "synced"}, ["synced"]),
        ({"quickbooks_id": "QB-2"}, ["failed"]),
    ],
)
def test_the_project_list_filters_on_quickbooks(tenant, member_user, params, expected):
    rows = {
        "synced": ProjectFactory(tenant=tenant, quickbooks_id="QB-1", quickbooks_sync_status="synced"),
        "failed": ProjectFactory(tenant=tenant, quickbooks_id="QB-2", quickbooks_sync_status="error"),
        "never": ProjectFactory(tenant=tenant),
    }

    response = client_for(member_user).get("/api/v1/projects/", params)

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [rows[name].pk for name in expected]


def test_the_admin_edits_and_filters_the_quickbooks_fields(tenant):
    client, user = staff_client(tenant, Role.OWNER)
    project = ProjectFactory(tenant=tenant)
    ProjectFactory(tenant=tenant, quickbooks_sync_status="pending")

    response = post_page(
        client,
        admin_url("change", Project, project.pk),
        {"quickbooks_id": "QB-55", "quickbooks_sync_status": "error"},
    )
    listed = client.get(admin_url("changelist", Project), {"quickbooks_sync_status": "error"})

    assert response.status_code == 302
    assert Project.objects.values_list("quickbooks_id", "quickbooks_sync_status", "updated_by").get(pk=project.pk) == (
        "QB-55",
        "error",
        user.pk,
    )
    assert [row.pk for row in listed.context["cl"].result_list] == [project.pk]


# Tenants: the old widths ---------------------------------------------------------------


def test_a_tenant_takes_the_old_widths_of_name_and_subdomain(tenant, owner):
    domain = "d" * 251 + ".com"
    actor = Actor(tenant=tenant, user=owner)

    tenant_update(tenant=tenant, actor=actor, name="N" * 255, subdomain="s" * 100, custom_domain=domain)

    assert Tenant.objects.values_list("name", "subdomain", "custom_domain").get(pk=tenant.pk) == (
        "N" * 255,
        "s" * 100,
        domain,
    )


def test_a_project_name_longer_than_the_old_width_is_refused(tenant, member_user):
    project = ProjectFactory(tenant=tenant, name="Re-roof")

    response = client_for(member_user).patch(f"/api/v1/projects/{project.pk}/", {"name": "N" * 256}, format="json")

    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["name"]
    project_update(project=project, actor=Actor(tenant=tenant, user=member_user), name="N" * 255)
    assert len(Project.objects.values_list("name", flat=True).get()) == 255


# Activities: is_impersonated_action, kept by the database --------------------------------


@pytest.fixture
def support_admin(db):
    return UserFactory(username="support", is_staff=True)


def test_an_activity_done_while_impersonating_is_marked_and_answered_so(tenant, member_user, support_admin):
    contact = ContactFactory(tenant=tenant)
    impersonating = Actor(tenant=tenant, user=member_user, real_user=support_admin)

    activity = activity_create(actor=impersonating, type="note", contact=contact)
    own = activity_create(actor=Actor(tenant=tenant, user=member_user), type="note", contact=contact)

    assert (activity.on_behalf_of, activity.is_impersonated_action) == (support_admin, True)
    assert own.is_impersonated_action is False
    response = client_for(member_user).get(f"/api/v1/activities/{activity.pk}/")
    assert (response.json()["is_impersonated_action"], response.json()["on_behalf_of"]) == (True, support_admin.pk)


def test_callers_cannot_set_or_clear_the_flag(tenant, member_user, support_admin):
    contact = ContactFactory(tenant=tenant)
    client = client_for(member_user)

    response = client.post(
        "/api/v1/activities/", {"type": "note", "contact": contact.pk, "is_impersonated_action": True}, format="json"
    )
    flagged = ActivityFactory(tenant=tenant, contact=contact, on_behalf_of=support_admin)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE activities SET is_impersonated_action = false WHERE id = %s", [flagged.pk])
        cursor.execute(
            "INSERT INTO activities (tenant_id, contact_id, type, outcome_details, is_impersonated_action) "
            "VALUES (%s, %s, 'call', '{}', true) RETURNING is_impersonated_action",
            [tenant.pk, contact.pk],
        )
        inserted = cursor.fetchone()

    assert (response.status_code, response.json()["is_impersonated_action"]) == (201, False)
    assert Activity.objects.get(pk=response.json()["id"]).is_impersonated_action is False
    assert (flagged.is_impersonated_action, inserted) == (True, (False,))
    assert Activity.objects.get(pk=flagged.pk).is_impersonated_action is True


def test_the_flag_stays_when_the_admins_account_goes(tenant, member_user, support_admin):
    activity = activity_create(
        actor=Actor(tenant=tenant, user=member_user, real_user=support_admin),
        type="call",
        contact=ContactFactory(tenant=tenant),
    )

    support_admin.delete()
    activity_update(activity=Activity.objects.get(pk=activity.pk), actor=Actor(tenant=tenant, user=member_user))

    assert Activity.objects.values_list("on_behalf_of", "is_impersonated_action").get(pk=activity.pk) == (None, True)


def test_activities_filter_on_impersonation_in_the_api_and_the_admin(tenant, member_user, support_admin):
    contact = ContactFactory(tenant=tenant)
    flagged = ActivityFactory(tenant=tenant, contact=contact, on_behalf_of=support_admin)
    ActivityFactory(tenant=tenant, contact=contact)
    client, _ = staff_client(tenant, Role.OWNER)

    response = client_for(member_user).get("/api/v1/activities/", {"is_impersonated_action": "true"})
    listed = client.get(admin_url("changelist", Activity), {"is_impersonated_action__exact": "1"})

    assert [item["id"] for item in response.json()["results"]] == [flagged.pk]
    assert [row.pk for row in listed.context["cl"].result_list] == [flagged.pk]
