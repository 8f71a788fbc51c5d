"""The admin after the organizations merge: companies vs people, a company's people and
projects, and a project's parties edited inline through the services."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contacts.models import Contact
from crm.models import ProjectContact, Role
from tests.api import table
from tests.crm.test_admin import change_url, changelist, staff_client
from tests.factories import CompanyFactory, ContactFactory, ProjectContactFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"is_organization": "1"}, {"Front Range PM", "Ridge Realty"}),
        ({"is_organization": "0"}, {"Ana Adjuster", "Hal Homeowner"}),
        ({"contact_category__exact": "adjuster"}, {"Ana Adjuster"}),
        ({"is_organization": "1", "contact_category__exact": "real_estate_agent"}, {"Ridge Realty"}),
    ],
)
def test_the_contact_list_filters_companies_people_and_categories(tenant, params, expected):
    client, _ = staff_client(tenant, Role.VIEWER, "office")
    CompanyFactory(tenant=tenant, company="Front Range PM", contact_category="property_manager")
    CompanyFactory(tenant=tenant, company="Ridge Realty", contact_category="real_estate_agent")
    ContactFactory(tenant=tenant, first_name="Ana", last_name="Adjuster", contact_category="adjuster")
    ContactFactory(tenant=tenant, first_name="Hal", last_name="Homeowner")

    response = client.get(changelist(Contact), params)

    assert response.status_code == 200
    assert {contact.display_name for contact in response.context["cl"].result_list} == expected


def test_a_company_page_lists_its_people_and_projects_with_links(tenant):
    client, _ = staff_client(tenant, Role.VIEWER, "office")
    company = CompanyFactory(tenant=tenant, company="Ridge Realty")
    employee = ContactFactory(tenant=tenant, first_name="Mia", last_name="Lopez", company_contact=company)
    own = ProjectFactory(tenant=tenant, contact=company, name="Office roof")
    party = ProjectContactFactory(tenant=tenant, contact=company, role="organization", project__name="Rental on Elm")
    ProjectFactory(tenant=tenant, name="Unrelated")

    page = client.get(change_url(company)).content.decode()

    assert f'<a href="{change_url(employee)}">Mia Lopez</a>' in page
    assert f'<a href="{change_url(own)}">Office roof</a>' in page
    assert f'<a href="{change_url(party.project)}">Rental on Elm</a>' in page
    assert "Unrelated" not in page


def test_a_company_page_lists_twenty_of_each_and_links_to_all_in_bounded_queries(tenant):
    client, _ = staff_client(tenant, Role.VIEWER, "office")
    company = CompanyFactory(tenant=tenant)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(change_url(company)).status_code == 200
        return len(captured)

    ContactFactory.create_batch(2, tenant=tenant, company_contact=company)
    ProjectFactory.create_batch(2, tenant=tenant, contact=company)
    queries()  # warms the caches a first request fills
    few = queries()
    ContactFactory.create_batch(25, tenant=tenant, company_contact=company)
    ProjectFactory.create_batch(25, tenant=tenant, contact=company)

    assert queries() == few
    page = client.get(change_url(company)).content.decode()
    people = reverse("admin:contacts_contact_changelist") + f"?company_contact={company.pk}"
    projects = reverse("admin:crm_project_changelist") + f"?contact_or_party={company.pk}"
    assert f'<a href="{people}">All 27</a>' in page
    assert f'<a href="{projects}">All 27</a>' in page
    listed = client.get(projects).context["cl"].result_list
    assert len(listed) == 27


def test_the_company_contact_autocomplete_offers_companies_only(tenant):
    client, _ = staff_client(tenant, Role.MEMBER, "office")
    company = CompanyFactory(tenant=tenant, company="Garcia Holdings")
    ContactFactory(tenant=tenant, last_name="Garcia")

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "contacts", "model_name": "contact", "field_name": "company_contact", "term": "garc"},
    )

    assert [row["id"] for row in response.json()["results"]] == [str(company.pk)]


def project_form(project, parties: list[dict], initial: int) -> dict:
    data = {
        "tenant": project.tenant_id,
        "name": project.name,
        "status": project.status,
        "contact": project.contact_id or "",
        "materials_list": "[]",
        "supplements": "[]",
        "crew_assigned": "[]",
        "custom_fields": "{}",
        "weather_delays": "0",
        "parties-TOTAL_FORMS": str(len(parties)),
        "parties-INITIAL_FORMS": str(initial),
        "parties-MIN_NUM_FORMS": "0",
        "parties-MAX_NUM_FORMS": "1000",
    }
    for index, party in enumerate(parties):
        data.update({f"parties-{index}-{key}": value for key, value in party.items()})
    return data


def test_project_parties_are_added_changed_and_removed_inline_through_the_services(tenant):
    client, user = staff_client(tenant, Role.MEMBER, "office")
    project = ProjectFactory(tenant=tenant)
    adjuster, gutters, company = (
        ContactFactory(tenant=tenant),
        ContactFactory(tenant=tenant),
        CompanyFactory(tenant=tenant),
    )
    kept = ProjectContactFactory(tenant=tenant, project=project, contact=company, role="organization")
    removed = ProjectContactFactory(tenant=tenant, project=project, contact=gutters, role="sub_contractor")
    changed = ProjectContactFactory(tenant=tenant, project=project, contact=adjuster, role="other")

    response = client.post(
        change_url(project),
        project_form(
            project,
            [
                {"id": kept.pk, "project": project.pk, "contact": company.pk, "role": "organization"},
                {
                    "id": removed.pk,
                    "project": project.pk,
                    "contact": gutters.pk,
                    "role": "sub_contractor",
                    "DELETE": "on",
                },
                {"id": changed.pk, "project": project.pk, "contact": adjuster.pk, "role": "adjuster"},
                {"project": project.pk, "contact": gutters.pk, "role": "sub_contractor"},
            ],
            initial=3,
        ),
    )

    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    assert set(ProjectContact.objects.values_list("contact_id", "role", "created_by_id")) == {
        (company.pk, "organization", None),
        (adjuster.pk, "adjuster", None),
        (gutters.pk, "sub_contractor", user.pk),  # added again, by the service, with the actor
    }
    assert not ProjectContact.objects.filter(pk=removed.pk).exists()


def test_a_party_of_another_tenant_is_a_form_error_and_changes_nothing(tenant, other_tenant):
    client, _ = staff_client(tenant, Role.MEMBER, "office", also=[other_tenant])
    project = ProjectFactory(tenant=tenant)
    stranger = ContactFactory(tenant=other_tenant)
    before = table(ProjectContact)

    response = client.post(
        change_url(project),
        project_form(project, [{"project": project.pk, "contact": stranger.pk, "role": "adjuster"}], initial=0),
    )

    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.errors == [
        {"contact": [f'Invalid pk "{stranger.pk}" - object does not exist.']}
    ]
    assert table(ProjectContact) == before


def test_viewers_see_parties_but_cannot_change_them(tenant):
    client, _ = staff_client(tenant, Role.VIEWER, "office")
    party = ProjectContactFactory(tenant=tenant, role="adjuster")

    formset = client.get(change_url(party.project)).context["inline_admin_formsets"][0]

    assert (formset.has_add_permission, formset.has_change_permission, formset.has_delete_permission) == (
        False,
        False,
        False,
    )
    assert [form.instance for form in formset.formset.forms] == [party]
