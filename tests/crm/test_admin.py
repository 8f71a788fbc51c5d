"""The tenant-scoped admin: what staff see, what their role lets them change, and that
every change goes through the services (actor, same-tenant references, rules)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contacts.models import Contact
from crm.models import Activity, Membership, Project, Role
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    ContactFactory,
    MembershipFactory,
    ProjectContactFactory,
    ProjectFactory,
    TenantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def staff_client(tenant, role: str, username: str, *, also=()) -> tuple[Client, object]:
    user = UserFactory.create(username=username, is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=role)
    for other in also:
        MembershipFactory(tenant=other, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def add_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


ROW_MAKERS = {
    "contact": lambda tenant, name: ContactFactory(tenant=tenant, last_name=name),
    "project": lambda tenant, name: ProjectFactory(tenant=tenant, name=name),
    "activity": lambda tenant, name: ActivityFactory(tenant=tenant, subject=name),
    "membership": lambda tenant, name: MembershipFactory(tenant=tenant, user=UserFactory(username=name)),
    "company contact": lambda tenant, name: CompanyFactory(tenant=tenant, company=name),
    "tenant": lambda tenant, name: tenant,
    "user": lambda tenant, name: MembershipFactory(tenant=tenant, user=UserFactory(username=name)).user,
}


@pytest.mark.parametrize("kind", sorted(ROW_MAKERS))
def test_staff_see_only_their_tenants_rows(tenant, other_tenant, kind):
    client, _ = staff_client(tenant, Role.MANAGER, "office")
    mine = ROW_MAKERS[kind](tenant, "mine")
    theirs = ROW_MAKERS[kind](other_tenant, "theirs")

    response = client.get(changelist(type(mine)))

    assert response.status_code == 200
    listed = set(response.context["cl"].result_list)
    assert mine in listed
    assert theirs not in listed
    # Another tenant's row "does not exist": the admin redirects to its index with a message.
    assert client.get(change_url(theirs)).status_code == 302
    assert client.get(change_url(mine)).status_code == 200


def test_superusers_see_every_tenant(tenant, other_tenant):
    superuser = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(superuser)
    mine, theirs = ContactFactory(tenant=tenant), ContactFactory(tenant=other_tenant)

    listed = set(client.get(changelist(Contact)).context["cl"].result_list)

    assert {mine, theirs} <= listed


def test_tenant_filter_and_related_filters_offer_only_visible_values(tenant, other_tenant):
    third = TenantFactory(name="Hidden Roofing")
    client, _ = staff_client(tenant, Role.MANAGER, "office", also=[other_tenant])
    stranger = MembershipFactory(tenant=third, user=UserFactory(username="stranger")).user
    ContactFactory(tenant=third, assigned_to=stranger)
    colleague = MembershipFactory(tenant=tenant, user=UserFactory(username="colleague")).user
    ContactFactory(tenant=tenant, assigned_to=colleague)

    response = client.get(changelist(Contact))

    filters = {spec.title: spec for spec in response.context["cl"].filter_specs}
    assert [name for _, name in filters["tenant"].lookup_choices] == ["Summit Roofing", "Valley Roofing"]
    assert [pk for pk, _ in filters["assigned to"].lookup_choices] == [colleague.pk]
    only_valley = client.get(changelist(Contact), {"tenant": other_tenant.pk}).context["cl"].result_list
    assert all(contact.tenant_id == other_tenant.pk for contact in only_valley)


def test_autocomplete_offers_only_the_users_tenants(tenant, other_tenant):
    client, _ = staff_client(tenant, Role.MEMBER, "office")
    mine = ContactFactory(tenant=tenant, last_name="Garcia")
    ContactFactory(tenant=other_tenant, last_name="Garcia")

    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": "crm", "model_name": "project", "field_name": "contact", "term": "garc"},
    )

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(mine.pk)]


def test_foreign_key_choices_are_limited_to_the_users_tenants(tenant, other_tenant):
    client, _ = staff_client(tenant, Role.MEMBER, "office")
    ContactFactory(tenant=other_tenant)

    form = client.get(add_url(Project)).context["adminform"].form

    assert list(form.fields["tenant"].queryset) == [tenant]
    assert set(form.fields["contact"].queryset.values_list("tenant_id", flat=True)) <= {tenant.pk}


def contact_form(tenant, **overrides) -> dict:
    data = {
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
        "tags": "hail-2024,insurance-claim",
        "contact_category": "homeowner",
    }
    data.update(overrides)
    return data


def test_adding_a_contact_goes_through_the_service_with_the_actor(tenant):
    client, user = staff_client(tenant, Role.MEMBER, "office")

    response = client.post(add_url(Contact), contact_form(tenant))

    assert response.status_code == 302, response.context["adminform"].form.errors
    contact = Contact.objects.get(email="dana@example.com")
    assert (contact.tenant, contact.created_by, contact.updated_by) == (tenant, user, user)
    assert contact.tags == ["hail-2024", "insurance-claim"]


def test_a_duplicate_email_is_a_form_error_not_a_500(tenant):
    client, _ = staff_client(tenant, Role.MEMBER, "office")
    ContactFactory(tenant=tenant, email="dana@example.com")

    response = client.post(add_url(Contact), contact_form(tenant, email="DANA@example.com"))

    assert response.status_code == 200
    assert "Another person of this tenant has this email." in str(response.context["adminform"].form.errors)
    assert Contact.objects.filter(email__iexact="dana@example.com").count() == 1


def test_a_row_cannot_point_at_another_tenants_row(tenant, other_tenant):
    client, _ = staff_client(tenant, Role.MEMBER, "office", also=[other_tenant])
    foreign_contact = ContactFactory(tenant=other_tenant)

    response = client.post(
        add_url(Project),
        {
            "tenant": tenant.pk,
            "name": "Tear-off",
            "status": "estimate",
            "contact": foreign_contact.pk,
            "materials_list": "[]",
            "supplements": "[]",
            "crew_assigned": "[]",
            "custom_fields": "{}",
            "weather_delays": "0",
            "parties-TOTAL_FORMS": "0",
            "parties-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 200
    # The service's own check, as the API says it.
    assert response.context["adminform"].form.errors["contact"] == [
        f'Invalid pk "{foreign_contact.pk}" - object does not exist.'
    ]
    assert not Project.objects.filter(name="Tear-off").exists()


def test_changing_records_updated_by_and_only_the_changed_fields(tenant):
    client, user = staff_client(tenant, Role.MEMBER, "office")
    contact = ContactFactory(tenant=tenant, email="dana@example.com", first_name="Dana", last_name="Whitfield")

    response = client.post(change_url(contact), contact_form(tenant, stage="contacted"))

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.stage, contact.updated_by) == ("contacted", user)


def test_viewers_can_look_but_not_change(tenant):
    client, _ = staff_client(tenant, Role.VIEWER, "office")
    contact = ContactFactory(tenant=tenant, stage="new")

    assert client.get(change_url(contact)).status_code == 200
    assert client.post(change_url(contact), contact_form(tenant, stage="won")).status_code == 403
    assert client.get(add_url(Contact)).status_code == 403
    contact.refresh_from_db()
    assert contact.stage == "new"


def action(client, model, name, rows, *, listing: str = "") -> None:
    """Run an admin action as staff do: on the list they are looking at (`?deleted=yes` shows deleted rows)."""
    response = client.post(changelist(model) + listing, {"action": name, "_selected_action": [row.pk for row in rows]})
    assert response.status_code == 302


@pytest.mark.parametrize(("role", "allowed"), [(Role.MEMBER, False), (Role.MANAGER, True), (Role.OWNER, True)])
def test_marking_deleted_and_restoring_need_a_manager(tenant, role, allowed):
    client, _ = staff_client(tenant, role, "office")
    contact = ContactFactory(tenant=tenant)

    action(client, Contact, "mark_deleted", [contact])
    contact.refresh_from_db()
    assert contact.is_deleted is allowed

    Contact.objects.filter(pk=contact.pk).update(is_deleted=True)
    action(client, Contact, "restore_selected", [contact], listing="?deleted=yes")
    contact.refresh_from_db()
    assert contact.is_deleted is not allowed


def test_deleted_rows_are_hidden_until_the_filter_asks(tenant):
    client, _ = staff_client(tenant, Role.MANAGER, "office")
    alive, deleted = ContactFactory(tenant=tenant), ContactFactory(tenant=tenant, is_deleted=True)

    assert list(client.get(changelist(Contact)).context["cl"].result_list) == [alive]
    assert list(client.get(changelist(Contact), {"deleted": "yes"}).context["cl"].result_list) == [deleted]
    assert set(client.get(changelist(Contact), {"deleted": "all"}).context["cl"].result_list) == {alive, deleted}


def purge(client, rows):
    return client.post(
        changelist(Contact) + "?deleted=all",
        {"action": "delete_selected", "_selected_action": [row.pk for row in rows], "post": "yes"},
    )


def test_admins_purge_deleted_rows(tenant):
    client, _ = staff_client(tenant, Role.ADMIN, "office")
    deleted = ContactFactory(tenant=tenant, is_deleted=True)
    ActivityFactory(tenant=tenant, contact=deleted)

    assert purge(client, [deleted]).status_code == 302

    assert not Contact.objects.filter(pk=deleted.pk).exists()
    assert not Activity.objects.filter(contact_id=deleted.pk).exists()


@pytest.mark.parametrize(
    ("role", "rows"),
    [(Role.MANAGER, ["deleted"]), (Role.ADMIN, ["alive"]), (Role.ADMIN, ["deleted", "alive"])],
)
def test_purge_is_refused_to_managers_and_for_rows_not_deleted(tenant, role, rows):
    client, _ = staff_client(tenant, role, "office")
    contacts = {"deleted": ContactFactory(tenant=tenant, is_deleted=True), "alive": ContactFactory(tenant=tenant)}

    response = purge(client, [contacts[name] for name in rows])

    assert response.status_code in (302, 403)  # managers are not offered the action; others are refused
    assert Contact.objects.filter(pk__in=[c.pk for c in contacts.values()]).count() == 2
    assert client.get(reverse("admin:contacts_contact_delete", args=[contacts["alive"].pk])).status_code == 403


def test_activities_added_in_the_admin_record_who_performed_them(tenant):
    client, user = staff_client(tenant, Role.MEMBER, "office")
    contact = ContactFactory(tenant=tenant)

    response = client.post(
        add_url(Activity),
        {
            "tenant": tenant.pk,
            "contact": contact.pk,
            "type": "call",
            "subject": "Storm damage",
            "outcome_details": "{}",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    activity = Activity.objects.get(subject="Storm damage")
    assert (activity.created_by, activity.performed_by, activity.on_behalf_of) == (user, user, None)


def test_the_last_owner_cannot_be_demoted_in_the_admin(tenant):
    client, owner = staff_client(tenant, Role.OWNER, "office")
    membership = Membership.objects.get(user=owner)

    response = client.post(change_url(membership), {"role": "admin", "status": "active"})

    assert response.status_code == 200
    assert "at least one active owner" in str(response.context["adminform"].form.errors)
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_admins_cannot_grant_a_role_above_their_own(tenant):
    client, _ = staff_client(tenant, Role.ADMIN, "office")
    newcomer = UserFactory(username="newcomer")

    response = client.post(add_url(Membership), {"tenant": tenant.pk, "email": newcomer.email, "role": "owner"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["role"] == ["You cannot grant the owner role: it is above yours."]
    assert not Membership.objects.filter(user=newcomer).exists()


def test_admins_add_members_by_email(tenant):
    client, _ = staff_client(tenant, Role.ADMIN, "office")
    newcomer = UserFactory(username="newcomer")

    response = client.post(
        add_url(Membership), {"tenant": tenant.pk, "email": newcomer.email.upper(), "role": "member"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(user=newcomer).role == Role.MEMBER


@pytest.mark.parametrize("model", [Contact, Project, Activity, Membership])
def test_list_pages_use_a_bounded_number_of_queries(tenant, model):
    client, user = staff_client(tenant, Role.MANAGER, "office")
    colleague = MembershipFactory(tenant=tenant, user=UserFactory(username="colleague")).user
    make = {
        Contact: lambda: ContactFactory(tenant=tenant, assigned_to=colleague),
        Project: lambda: ProjectFactory(tenant=tenant),
        Activity: lambda: ActivityFactory(tenant=tenant, performed_by=user),
        Membership: lambda: MembershipFactory(tenant=tenant),
    }[model]

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(changelist(model)).status_code == 200
        return len(queries)

    for _ in range(5):
        make()
    few = count()
    for _ in range(45):
        make()
    assert count() == few


def test_the_contact_or_party_filter_lists_only_that_contacts_projects(tenant):
    client, _ = staff_client(tenant, Role.MANAGER, "office")
    company = CompanyFactory(tenant=tenant, company="Garcia Holdings")
    as_contact = ProjectFactory(tenant=tenant, contact=company, name="Clubhouse roof")
    as_party = ProjectFactory(tenant=tenant, name="Unit 4 repair")
    ProjectContactFactory(tenant=tenant, project=as_party, contact=company, role="organization")
    ProjectFactory.create_batch(3, tenant=tenant)

    response = client.get(changelist(Project), {"contact_or_party": company.pk})

    assert response.status_code == 200
    assert {project.pk for project in response.context["cl"].result_list} == {as_contact.pk, as_party.pk}
    assert "Garcia Holdings" in response.content.decode()


@pytest.mark.parametrize("value", ["abc", "0"])
def test_the_contact_or_party_filter_with_no_such_contact_lists_nothing(tenant, value):
    client, _ = staff_client(tenant, Role.MANAGER, "office")
    ProjectFactory.create_batch(2, tenant=tenant)

    response = client.get(changelist(Project), {"contact_or_party": value})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_the_contact_or_party_filter_does_not_show_another_tenants_contact(tenant, other_tenant):
    client, _ = staff_client(tenant, Role.MANAGER, "office")
    theirs = CompanyFactory(tenant=other_tenant, company="Valley Secret Holdings")
    ProjectFactory(tenant=other_tenant, contact=theirs)

    response = client.get(changelist(Project), {"contact_or_party": theirs.pk})

    assert list(response.context["cl"].result_list) == []
    assert "Valley Secret Holdings" not in response.content.decode()
