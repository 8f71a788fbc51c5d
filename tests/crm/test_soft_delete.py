"""Soft delete, restore and purge of contacts and projects through the API."""

import pytest

from contacts.models import Contact
from crm.models import Activity, Project
from tests.api import PROJECTS, SOFT_DELETE_RESOURCES, assert_error, make_deleted, row
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory


def make_deleted_contact(tenant, **fields):
    return ContactFactory(tenant=tenant, is_deleted=True, **fields)


def listed(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


@pytest.mark.parametrize("resource", SOFT_DELETE_RESOURCES, ids=str)
def test_delete_hides_the_row_and_restore_brings_it_back(resource, tenant, manager):
    record, kept = resource.make(tenant), resource.make(tenant)
    client = client_for(manager)

    assert client.delete(resource.detail(record.pk)).status_code == 204

    stored = resource.model.objects.get(pk=record.pk)
    assert (stored.is_deleted, stored.updated_by) == (True, manager)
    assert listed(client, resource.url) == [kept.pk]
    assert_error(client.get(resource.detail(record.pk)), 404, code="not_found", detail="Not found.")
    assert listed(client, resource.url + "?deleted=true") == [record.pk]
    assert client.get(resource.detail(record.pk) + "?deleted=true").json()["is_deleted"] is True

    response = client.post(resource.detail(record.pk) + "restore/")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["is_deleted"]) == (record.pk, False)
    assert resource.model.objects.get(pk=record.pk).is_deleted is False
    assert sorted(listed(client, resource.url)) == sorted([record.pk, kept.pk])
    assert listed(client, resource.url + "?deleted=true") == []


@pytest.mark.parametrize("resource", SOFT_DELETE_RESOURCES, ids=str)
@pytest.mark.parametrize(("method", "body"), [("get", None), ("put", "payload"), ("patch", "change"), ("delete", None)])
@pytest.mark.parametrize("suffix", ["", "?deleted=true"], ids=["plain", "deleted-flag"])
def test_deleted_rows_cannot_be_changed_without_restoring_them(resource, method, body, suffix, tenant, manager):
    record = make_deleted(resource, tenant)
    before = row(record)
    data = {"payload": resource.payload(tenant), "change": resource.change}.get(body)

    response = getattr(client_for(manager), method)(resource.detail(record.pk) + suffix, data)

    if method == "get" and suffix:
        assert response.status_code == 200
    else:
        assert_error(response, 404, code="not_found", detail="Not found.")
    assert row(record) == before


@pytest.mark.parametrize("resource", SOFT_DELETE_RESOURCES, ids=str)
def test_restoring_a_live_row_changes_nothing(resource, tenant, manager):
    record = resource.make(tenant)
    before = row(record)

    response = client_for(manager).post(resource.detail(record.pk) + "restore/")

    assert response.status_code == 200
    assert row(record) == before


def test_restoring_a_contact_whose_email_is_taken_again_is_409(tenant, manager):
    deleted = make_deleted_contact(tenant, email="dana@example.com")
    ContactFactory(tenant=tenant, email="DANA@example.com")
    before = row(deleted)

    response = client_for(manager).post(f"/api/v1/contacts/{deleted.pk}/restore/")

    assert_error(
        response,
        409,
        code="restore_conflict",
        detail="Cannot restore: Another person of this tenant has this email.",
        attr="email",
    )
    assert row(deleted) == before


def test_a_deleted_contacts_email_can_be_used_again(tenant, member_user):
    make_deleted_contact(tenant, email="dana@example.com")

    response = client_for(member_user).post("/api/v1/contacts/", {"email": "dana@example.com"})

    assert response.status_code == 201
    assert Contact.objects.filter(email="dana@example.com").count() == 2


@pytest.mark.parametrize("resource", SOFT_DELETE_RESOURCES, ids=str)
def test_purging_a_live_row_is_409(resource, tenant, admin_user):
    record = resource.make(tenant)
    before = row(record)
    name = resource.model._meta.verbose_name

    response = client_for(admin_user).delete(resource.detail(record.pk) + "?purge=true")

    assert_error(
        response,
        409,
        code="not_deleted",
        detail=f"{name} {record.pk} is not deleted: delete it before purging it.",
    )
    assert row(record) == before


def test_purging_a_contact_removes_it_and_its_activities(tenant, admin_user):
    contact = make_deleted_contact(tenant)
    project = ProjectFactory(tenant=tenant, contact=contact)
    ActivityFactory(tenant=tenant, contact=contact)

    response = client_for(admin_user).delete(f"/api/v1/contacts/{contact.pk}/?purge=true")

    assert response.status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert not Activity.objects.exists()
    assert Project.objects.get(pk=project.pk).contact is None


def test_purging_a_project_removes_it(tenant, owner):
    project = make_deleted(PROJECTS, tenant)

    response = client_for(owner).delete(f"/api/v1/projects/{project.pk}/?purge=true")

    assert response.status_code == 204
    assert row(project) is None


@pytest.mark.parametrize("flag", ["maybe", "2"])
def test_flags_must_be_true_or_false(tenant, admin_user, flag):
    record = ContactFactory(tenant=tenant)

    deleted = client_for(admin_user).get(f"/api/v1/contacts/?deleted={flag}")
    purge = client_for(admin_user).delete(f"/api/v1/contacts/{record.pk}/?purge={flag}")

    for response, name in ((deleted, "deleted"), (purge, "purge")):
        assert_error(
            response,
            400,
            type="validation_error",
            code="invalid",
            detail=f"{name} must be true or false; got {flag!r}.",
            attr=name,
        )
    assert row(record)["is_deleted"] is False
