"""/api/v1/projects/{id}/contacts/: a job's other parties (adjuster, sub-contractors, the organization)."""

import pytest

from contacts.models import Contact
from crm.models import ProjectContact
from tests.api import assert_error, assert_invalid, table
from tests.conftest import client_for
from tests.factories import CompanyFactory, ContactFactory, ProjectContactFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def url(project) -> str:
    return f"/api/v1/projects/{project.pk}/contacts/"


def test_lists_the_projects_parties_by_role(tenant, viewer):
    project = ProjectFactory(tenant=tenant)
    company = CompanyFactory(tenant=tenant, company="Ridge Realty")
    adjuster = ProjectContactFactory(tenant=tenant, project=project, role="adjuster")
    organization = ProjectContactFactory(tenant=tenant, project=project, contact=company, role="organization")
    ProjectContactFactory(tenant=tenant)  # another project's party

    response = client_for(viewer).get(url(project))

    assert response.status_code == 200, response.content
    assert response.json()["results"] == [
        {
            "id": adjuster.pk,
            "contact": adjuster.contact_id,
            "contact_display_name": adjuster.contact.display_name,
            "role": "adjuster",
            "created_by": None,
            "created_at": response.json()["results"][0]["created_at"],
        },
        {
            "id": organization.pk,
            "contact": company.pk,
            "contact_display_name": "Ridge Realty",
            "role": "organization",
            "created_by": None,
            "created_at": response.json()["results"][1]["created_at"],
        },
    ]


@pytest.mark.parametrize("role", ["adjuster", "sub_contractor", "organization", "homeowner", "insurance_company"])
def test_a_member_adds_a_party(tenant, member_user, role):
    project = ProjectFactory(tenant=tenant)
    contact = ContactFactory(tenant=tenant)

    response = client_for(member_user).post(url(project), {"contact": contact.pk, "role": role})

    assert response.status_code == 201, response.content
    party = ProjectContact.objects.get()
    assert response.json()["id"] == party.pk
    assert (party.tenant, party.project, party.contact, party.role, party.created_by) == (
        tenant,
        project,
        contact,
        role,
        member_user,
    )


def test_the_same_contact_in_the_same_role_twice_is_400(tenant, member_user):
    party = ProjectContactFactory(tenant=tenant, role="adjuster")
    before = table(ProjectContact)

    response = client_for(member_user).post(url(party.project), {"contact": party.contact_id, "role": "adjuster"})

    assert_invalid(
        response,
        attr="contact",
        code="project_contacts_unique",
        detail="This contact already has this role on the project.",
    )
    assert table(ProjectContact) == before


@pytest.mark.parametrize(
    ("body", "attr", "code", "message"),
    [
        ({"role": "plumber"}, "role", "invalid_choice", '"plumber" is not a valid choice.'),
        ({"role": None}, "role", "null", "This field may not be null."),
        ({"contact": "other tenant"}, "contact", "does_not_exist", 'Invalid pk "{other}" - object does not exist.'),
        ({"contact": None}, "contact", "null", "This field may not be null."),
    ],
)
def test_bad_parties_are_400_and_change_nothing(tenant, other_tenant, member_user, body, attr, code, message):
    project = ProjectFactory(tenant=tenant)
    other = ContactFactory(tenant=other_tenant)
    payload = {"contact": ContactFactory(tenant=tenant).pk, "role": "adjuster", **body}
    if payload["contact"] == "other tenant":
        payload["contact"] = other.pk

    response = client_for(member_user).post(url(project), payload)

    assert_invalid(response, attr=attr, code=code, detail=message.format(other=other.pk))
    assert ProjectContact.objects.count() == 0


def test_a_member_removes_a_party(tenant, member_user):
    party = ProjectContactFactory(tenant=tenant)
    kept = ProjectContactFactory(tenant=tenant, project=party.project, role="sub_contractor")

    response = client_for(member_user).delete(f"{url(party.project)}{party.pk}/")

    assert response.status_code == 204, response.content
    assert list(ProjectContact.objects.all()) == [kept]


def test_a_viewer_reads_but_cannot_add_or_remove(tenant, viewer):
    party = ProjectContactFactory(tenant=tenant)
    client = client_for(viewer)
    before = table(ProjectContact)

    added = client.post(url(party.project), {"contact": party.contact_id, "role": "other"})
    removed = client.delete(f"{url(party.project)}{party.pk}/")

    for response in (added, removed):
        assert_error(
            response,
            403,
            code="permission_denied",
            detail="This needs the member role or above in Summit Roofing; your role is viewer.",
        )
    assert table(ProjectContact) == before


def test_another_tenants_project_or_party_is_404_and_nothing_changes(tenant, other_tenant, member_user):
    theirs = ProjectContactFactory(tenant=other_tenant)
    mine = ProjectContactFactory(tenant=tenant)
    client = client_for(member_user)
    before = table(ProjectContact)

    responses = {
        "list": client.get(url(theirs.project)),
        "add": client.post(url(theirs.project), {"contact": mine.contact_id, "role": "adjuster"}),
        "remove": client.delete(f"{url(theirs.project)}{theirs.pk}/"),
        "their party through my project": client.delete(f"{url(mine.project)}{theirs.pk}/"),
    }

    assert {name: response.status_code for name, response in responses.items()} == dict.fromkeys(responses, 404)
    assert table(ProjectContact) == before


def test_a_party_of_another_project_is_404_through_this_one(tenant, member_user):
    party = ProjectContactFactory(tenant=tenant)
    elsewhere = ProjectFactory(tenant=tenant)

    response = client_for(member_user).delete(f"{url(elsewhere)}{party.pk}/")

    assert response.status_code == 404
    assert ProjectContact.objects.filter(pk=party.pk).exists()


def test_a_deleted_project_has_no_parties_endpoint(tenant, member_user):
    project = ProjectFactory(tenant=tenant, is_deleted=True)

    assert client_for(member_user).get(url(project)).status_code == 404


def test_the_schema_documents_the_endpoint(member_user):
    paths = client_for(member_user).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    assert sorted(paths["/api/v1/projects/{project_pk}/contacts/"]) == ["get", "post"]
    assert sorted(paths["/api/v1/projects/{project_pk}/contacts/{id}/"]) == ["delete", "get"]
    parameters = paths["/api/v1/projects/{project_pk}/contacts/"]["get"]["parameters"]
    assert {"name": "project_pk", "in": "path", "schema": {"type": "integer"}} in [
        {key: parameter[key] for key in ("name", "in", "schema")} for parameter in parameters
    ]


def test_a_party_can_hold_every_contact_category_and_two_roles_more():
    """crm cannot import contacts' models (they import crm's): this keeps the two lists in step."""
    assert set(ProjectContact.Role.values) == {*Contact.Category.values, "organization", "insurance_company"}
