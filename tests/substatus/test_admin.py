"""The admin: the substatus catalog, the history, and the substatus rules through the contact
and project pages (INSERT and UPDATE), with refusals shown on the form."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from contacts.models import Contact
from crm.models import Project, Role
from substatus.models import SubstatusConfig, SubstatusHistory
from tests.factories import ContactFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.substatus.kinds import CONTACT, PROJECT, config, history, state

pytestmark = pytest.mark.django_db


def staff(tenant, role: str, username: str = "office") -> tuple[Client, object]:
    user = UserFactory.create(username=username, is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def url(name: str, model, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def contact_form(tenant, **overrides) -> dict:
    return {
        "tenant": tenant.pk,
        "first_name": "Dana",
        "last_name": "Whitfield",
        "email": "dana@example.com",
        "type": "lead",
        "stage": "new",
        "priority": "normal",
        "lead_score": "40",
        "source_details": "{}",
        "custom_fields": "{}",
        "tags": "",
        "contact_category": "homeowner",
        **overrides,
    }


def project_form(tenant, **overrides) -> dict:
    return {
        "tenant": tenant.pk,
        "name": "Tear-off",
        "status": "estimate",
        "materials_list": "[]",
        "supplements": "[]",
        "crew_assigned": "[]",
        "custom_fields": "{}",
        "weather_delays": "0",
        # the project's parties (an inline), none here
        "parties-TOTAL_FORMS": "0",
        "parties-INITIAL_FORMS": "0",
        **overrides,
    }


def errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return response.context["adminform"].form.errors


# The rules through the contact and project pages -------------------------------------------


def test_adding_without_a_substatus_gives_the_default_and_history_says_admin(tenant):
    client, user = staff(tenant, Role.MEMBER)

    response = client.post(url("add", Contact), contact_form(tenant, stage="qualified", reason="Walk-in"))

    assert response.status_code == 302, errors(response)
    contact = Contact.objects.get()
    assert state(CONTACT, contact.pk) == ("qualified", "decision_maker_identified")
    row = SubstatusHistory.objects.get()
    assert (row.source, row.changed_by_id, row.reason) == ("admin", user.pk, "Walk-in")


def test_adding_with_a_substatus_keeps_it(tenant):
    client, _ = staff(tenant, Role.MEMBER)
    measured = config(tenant, PROJECT, "measurements_taken")

    response = client.post(url("add", Project), project_form(tenant, substatus=measured.pk))

    assert response.status_code == 302, errors(response)
    assert state(PROJECT, Project.objects.get().pk) == ("estimate", "measurements_taken")


def test_adding_with_a_substatus_of_another_status_is_a_form_error(tenant):
    client, _ = staff(tenant, Role.MEMBER)
    deposit = config(tenant, PROJECT, "deposit_received")  # approved, not estimate

    response = client.post(url("add", Project), project_form(tenant, substatus=deposit.pk))

    assert errors(response)["substatus"] == ["This substatus belongs to another status than the project's status."]
    assert not Project.objects.exists()
    assert not SubstatusHistory.objects.exists()


def test_changing_the_status_gives_its_default_and_keeps_the_reason(tenant):
    client, user = staff(tenant, Role.MEMBER)
    project = ProjectFactory(tenant=tenant, name="Tear-off", substatus=config(tenant, PROJECT, "measurements_taken"))

    response = client.post(
        url("change", Project, project.pk),
        project_form(tenant, status="approved", substatus=project.substatus_id, reason="Signed"),
    )

    assert response.status_code == 302, errors(response)
    assert state(PROJECT, project.pk) == ("approved", "contract_signed")
    row = SubstatusHistory.objects.latest("id")
    assert (row.from_substatus.key, row.to_substatus.key, row.source, row.reason, row.changed_by_id) == (
        "measurements_taken",
        "contract_signed",
        "admin",
        "Signed",
        user.pk,
    )


def test_changing_the_substatus_within_the_status(tenant):
    client, _ = staff(tenant, Role.MEMBER)
    project = ProjectFactory(tenant=tenant, name="Tear-off")

    response = client.post(
        url("change", Project, project.pk), project_form(tenant, substatus=config(tenant, PROJECT, "quote_prepared").pk)
    )

    assert response.status_code == 302, errors(response)
    assert state(PROJECT, project.pk) == ("estimate", "quote_prepared")


def test_changing_something_else_keeps_the_substatus_and_writes_no_history(tenant):
    client, _ = staff(tenant, Role.MEMBER)
    contact = ContactFactory(
        tenant=tenant,
        email="dana@example.com",
        first_name="Dana",
        last_name="Whitfield",
        tags=[],
        substatus=config(tenant, CONTACT, "attempting_contact"),
    )

    response = client.post(
        url("change", Contact, contact.pk),
        contact_form(tenant, first_name="Danielle", substatus=contact.substatus_id),
    )

    assert response.status_code == 302, errors(response)
    assert state(CONTACT, contact.pk) == ("new", "attempting_contact")
    assert len(history(CONTACT, contact.pk)) == 1


def test_the_substatus_choices_are_those_of_the_current_status(tenant, other_tenant):
    client, _ = staff(tenant, Role.MEMBER)
    project = ProjectFactory(tenant=tenant, name="Tear-off")
    SubstatusConfig.objects.filter(tenant=tenant, key="quote_prepared").update(is_active=False)

    form = client.get(url("change", Project, project.pk)).context["adminform"].form

    assert [label for _, label in form.fields["substatus"].choices] == [
        "---------",
        "Estimate: Site visit pending",
        "Estimate: Measurements taken",
    ]


def test_a_substatus_outside_the_choices_is_refused_and_nothing_changes(tenant):
    client, _ = staff(tenant, Role.MEMBER)
    project = ProjectFactory(tenant=tenant, name="Tear-off")

    response = client.post(
        url("change", Project, project.pk),
        project_form(tenant, substatus=config(tenant, PROJECT, "deposit_received").pk),
    )

    # The database's answer, as the API gives it.
    assert errors(response) == {"substatus": ["This substatus belongs to another status than the project's status."]}
    assert state(PROJECT, project.pk) == ("estimate", "site_visit_pending")
    assert len(history(PROJECT, project.pk)) == 1


def test_the_record_page_shows_since_and_recent_history(tenant):
    client, _ = staff(tenant, Role.VIEWER)
    project = ProjectFactory(tenant=tenant, name="Tear-off")
    Project.objects.filter(pk=project.pk).update(status="approved")

    page = client.get(url("change", Project, project.pk)).content.decode()

    assert "Substatus history" in page
    assert "Contract signed" in page
    assert "Site visit pending" in page
    assert f"?entity=project&amp;record_id={project.pk}" in page


# The catalog -----------------------------------------------------------------------------


def test_staff_see_their_tenants_catalog_in_order(tenant, other_tenant):
    client, _ = staff(tenant, Role.VIEWER)

    listed = list(
        client.get(url("changelist", SubstatusConfig), {"entity": "project", "status": "estimate"})
        .context["cl"]
        .result_list
    )

    assert [(row.tenant_id, row.key) for row in listed] == [
        (tenant.pk, "site_visit_pending"),
        (tenant.pk, "measurements_taken"),
        (tenant.pk, "quote_prepared"),
    ]
    theirs = config(other_tenant, PROJECT, "quote_prepared")
    assert client.get(url("change", SubstatusConfig, theirs.pk)).status_code == 302  # "does not exist"


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MEMBER])
def test_only_admins_and_owners_change_the_catalog(tenant, role):
    client, _ = staff(tenant, role)
    substatus = config(tenant, PROJECT, "quote_prepared")

    response = client.post(url("change", SubstatusConfig, substatus.pk), {"key": "q", "label": "Q", "position": 2})

    assert response.status_code == 403
    substatus.refresh_from_db()
    assert substatus.label == "Quote prepared"


def catalog_form(tenant, **overrides) -> dict:
    return {
        "tenant": tenant.pk,
        "entity": "project",
        "status": "estimate",
        "key": "drone_survey",
        "label": "Drone survey",
        "description": "",
        "color": "",
        "icon": "",
        "position": "3",
        "is_terminal": "",
        "is_active": "on",
        "auto_transition_to": "",
        "auto_transition_delay_hours": "",
        **overrides,
    }


def test_admins_add_a_substatus_through_the_service(tenant):
    client, user = staff(tenant, Role.ADMIN)

    response = client.post(url("add", SubstatusConfig), catalog_form(tenant))

    assert response.status_code == 302, errors(response)
    created = SubstatusConfig.objects.get(tenant=tenant, key="drone_survey")
    assert (created.created_by, created.position, created.is_default) == (user, 3, False)


def test_make_default_switches_in_one_action(tenant):
    client, _ = staff(tenant, Role.OWNER)
    quote = config(tenant, PROJECT, "quote_prepared")

    client.post(url("changelist", SubstatusConfig), {"action": "make_default", "_selected_action": [quote.pk]})

    assert list(
        SubstatusConfig.objects.filter(tenant=tenant, entity="project", status="estimate", is_default=True).values_list(
            "key", flat=True
        )
    ) == ["quote_prepared"]


def test_deactivating_the_default_is_a_form_error(tenant):
    client, _ = staff(tenant, Role.ADMIN)
    default = config(tenant, PROJECT, "site_visit_pending")
    data = catalog_form(tenant, key=default.key, label=default.label, position="0", is_active="")

    response = client.post(url("change", SubstatusConfig, default.pk), data)

    assert errors(response)["is_active"] == [
        "The default substatus must stay active: make another one the default first."
    ]
    default.refresh_from_db()
    assert default.is_active


def test_deleting_a_substatus_in_use_is_refused_with_the_reason(tenant):
    client, _ = staff(tenant, Role.ADMIN)
    measured = config(tenant, PROJECT, "measurements_taken")
    project = ProjectFactory(tenant=tenant, substatus=measured)
    Project.objects.filter(pk=project.pk).update(substatus=config(tenant, PROJECT, "quote_prepared"))

    response = client.post(url("delete", SubstatusConfig, measured.pk), {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [
        "Records have been in this substatus: deactivate it instead, so their history stays readable."
    ]
    assert SubstatusConfig.objects.filter(pk=measured.pk).exists()


# The history -----------------------------------------------------------------------------


def test_history_is_read_only_and_scoped_to_the_tenant(tenant, other_tenant):
    client, _ = staff(tenant, Role.OWNER)
    ours, theirs = ProjectFactory(tenant=tenant), ProjectFactory(tenant=other_tenant)
    row = SubstatusHistory.objects.get(record_id=ours.pk, entity="project")

    listed = list(client.get(url("changelist", SubstatusHistory)).context["cl"].result_list)

    assert [entry.record_id for entry in listed if entry.entity == "project"] == [ours.pk]
    assert theirs.pk not in {entry.record_id for entry in listed if entry.entity == "project"}
    model_admin = admin.site._registry[SubstatusHistory]
    request = client.get(url("changelist", SubstatusHistory)).wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, row)
    assert not model_admin.has_delete_permission(request, row)
    assert client.post(url("change", SubstatusHistory, row.pk), {"reason": "rewritten"}).status_code == 403
