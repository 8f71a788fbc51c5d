"""`manage.py seed_demo`: the demo tenant that `make run` loads, written as the old system held
it and upgraded by `migrate` (the organizations merge included) like a customer's database."""

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Count, F, Max
from django.test import override_settings
from rest_framework.test import APIClient

from contacts.models import Contact, MergedOrganization
from crm.management.commands.seed_demo import DEMO_PASSWORD
from crm.models import Activity, Membership, Project, ProjectContact, Tenant, User

pytestmark = pytest.mark.django_db

STAFF_ROLES = {
    "summit-owner": "owner",
    "summit-admin": "admin",
    "summit-manager": "manager",
    "summit-member": "member",
    "summit-viewer": "viewer",
}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def distinct(queryset, field: str) -> set:
    return set(queryset.order_by().values_list(field, flat=True).distinct())


def snapshot() -> dict:
    """Row counts, last writes and password hashes: what a second run must leave alone."""
    state: dict = {
        model.__name__: model.objects.count()
        for model in (User, Tenant, Membership, Contact, Project, Activity, ProjectContact, MergedOrganization)
    }
    state["last writes"] = [
        model.objects.aggregate(last=Max("updated_at"))["last"] for model in (Tenant, Contact, Project)
    ]
    state["passwords"] = dict(User.objects.values_list("username", "password"))
    return state


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker) -> Iterator[tuple[Tenant, str]]:
    """Seeded once for the module, inside a transaction rolled back at its end.

    Each test runs in a savepoint within it (pytest-django's `db`), so no test sees
    another's changes and the seeding, a few seconds, is paid once.
    """
    with django_db_blocker.unblock(), transaction.atomic(), override_settings(DEBUG=True):
        output = seed()
        yield Tenant.objects.get(subdomain="summit"), output
        transaction.set_rollback(True)


def legacy(sql: str) -> list[tuple]:
    """Rows of the legacy data as the merge's backups hold it (the demo before the upgrade)."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_creates_the_demo_tenant_with_staff_of_every_role(demo):
    tenant, output = demo

    assert (tenant.name, tenant.timezone) == ("Summit Roofing", "America/Denver")
    assert dict(tenant.memberships.values_list("user__username", "role")) == STAFF_ROLES
    assert {user.username: (user.is_staff, user.is_superuser) for user in User.objects.all()} == {
        **dict.fromkeys(STAFF_ROLES, (True, False)),
        "ops": (True, True),
    }
    assert set(User.objects.exclude(username="ops").values_list("email", flat=True)) == {
        f"{role}@summitroofing.example" for role in STAFF_ROLES.values()
    }
    assert "Created the demo tenant Summit Roofing" in output
    assert "  208 people (6 soft-deleted, 12 working for a company)" in output
    assert "  15 company contacts, 15 of them merged from legacy organizations (2 deleted)" in output


def test_creates_the_documented_amounts(demo):
    tenant, _ = demo
    people = Contact.objects.filter(tenant=tenant, is_organization=False)
    companies = Contact.objects.filter(tenant=tenant, is_organization=True)
    projects = Project.objects.filter(tenant=tenant)
    activities = Activity.objects.filter(tenant=tenant)
    parties = ProjectContact.objects.filter(tenant=tenant)
    staff = set(tenant.memberships.values_list("user_id", flat=True))

    assert {
        "people": people.count(),
        "adjusters": people.filter(contact_category="adjuster").count(),
        "deleted people": people.filter(is_deleted=True).count(),
        "companies": companies.count(),
        "merged organizations": MergedOrganization.objects.filter(tenant=tenant).count(),
        "projects": projects.count(),
        "deleted projects": projects.filter(is_deleted=True).count(),
        "activities": activities.count(),
        "parties": dict(parties.order_by("role").values_list("role").annotate(n=Count("pk"))),
    } == {
        "people": 208,
        "adjusters": 8,
        "deleted people": 6,
        "companies": 15,
        "merged organizations": 15,
        "projects": 60,
        "deleted projects": 2,
        "activities": 300,
        "parties": {"adjuster": 14, "organization": 18, "subcontractor": 2},
    }
    # Every row names a staff member as its author, from the old system's rows to the services' ones.
    assert distinct(people, "created_by") <= staff
    assert distinct(people, "assigned_to") <= staff | {None}
    assert distinct(companies, "created_by") == {tenant.memberships.get(role="admin").user_id}
    assert distinct(projects, "created_by") <= staff
    assert distinct(activities, "performed_by") <= staff
    assert distinct(parties.exclude(role="organization"), "created_by") == {
        tenant.memberships.get(role="admin").user_id
    }
    assert Contact.objects.exclude(tenant=tenant).count() == 0


def test_covers_every_value_of_every_list(demo):
    tenant, _ = demo
    contacts = Contact.objects.filter(tenant=tenant)
    merged = MergedOrganization.objects.filter(tenant=tenant)

    assert {
        "contact type": distinct(contacts, "type"),
        "contact stage": distinct(contacts, "stage"),
        "contact priority": distinct(contacts, "priority"),
        "lead source": distinct(contacts.filter(is_organization=False, contact_category="homeowner"), "source"),
        "company category": distinct(contacts.filter(is_organization=True), "contact_category"),
        "project status": distinct(Project.objects.filter(tenant=tenant), "status"),
        "project type": distinct(Project.objects.filter(tenant=tenant), "type"),
        "activity type": distinct(Activity.objects.filter(tenant=tenant), "type"),
        "activity direction": distinct(Activity.objects.filter(tenant=tenant), "direction"),
        "organization type (kept by the merge)": distinct(merged, "org_type"),
        "organization stage (kept by the merge)": distinct(merged, "stage"),
        "organization is_deleted before the merge": {
            row[0] for row in legacy("SELECT is_deleted FROM merge_backups.organizations")
        },
    } == {
        "contact type": set(Contact.Type.values),
        "contact stage": set(Contact.Stage.values),
        "contact priority": set(Contact.Priority.values),
        "lead source": {
            "Door knock",
            "Storm canvass",
            "Referral",
            "Google Ads",
            "HomeAdvisor",
            "Website",
            "Yard sign",
            "Facebook",
        },
        "company category": {"real_estate_agent", "developer", "property_manager", "local_business", "other"},
        "project status": set(Project.Status.values),
        "project type": set(Project.Type.values),
        "activity type": set(Activity.Type.values),
        "activity direction": {*Activity.Direction.values, None},
        "organization type (kept by the merge)": {
            "real_estate",
            "developer",
            "property_manager",
            "local_business",
            "other",
            None,
        },
        "organization stage (kept by the merge)": {"new", "active", "inactive", None},
        "organization is_deleted before the merge": {True, False, None},
    }


def test_went_through_every_case_of_the_organizations_merge(demo):
    tenant, _ = demo
    linked = "SELECT b.id FROM merge_backups.projects b JOIN merge_backups.organizations o ON o.id = b.organization_id "
    cases = {
        "project without a contact, organization with a primary contact": "b.contact_id IS NULL "
        "AND o.primary_contact_id IS NOT NULL",
        "project without a contact, organization without one": "b.contact_id IS NULL AND o.primary_contact_id IS NULL",
        "project with the organization's primary contact": "b.contact_id = o.primary_contact_id",
        "project with another contact": "b.contact_id <> o.primary_contact_id",
        "project of a deleted organization": "o.is_deleted",
    }
    companies = Contact.objects.filter(tenant=tenant, is_organization=True)
    activities = Activity.objects.filter(tenant=tenant)

    assert {case: bool(legacy(linked + "WHERE " + condition)) for case, condition in cases.items()} == dict.fromkeys(
        cases, True
    )
    assert legacy(
        "SELECT o.id FROM merge_backups.organizations o WHERE NOT EXISTS "
        "(SELECT 1 FROM merge_backups.projects b WHERE b.organization_id = o.id)"
    ), "an organization without projects"
    assert {
        "a project's contact is a company": Project.objects.filter(contact__in=companies).exists(),
        "a company is a party of a project": ProjectContact.objects.filter(role="organization").exists(),
        "a person works for a company": Contact.objects.filter(company_contact__in=companies).exists(),
        "activity on a project alone": activities.filter(contact__isnull=True, project__isnull=False).exists(),
        "activity on a contact and its project": activities.filter(project__contact=F("contact")).exists(),
        "child project": Project.objects.filter(tenant=tenant, parent_project__isnull=False).exists(),
    } == dict.fromkeys(
        [
            "a project's contact is a company",
            "a company is a party of a project",
            "a person works for a company",
            "activity on a project alone",
            "activity on a contact and its project",
            "child project",
        ],
        True,
    )


def test_second_run_changes_nothing_and_says_so(demo):
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert output.splitlines()[0] == "Demo tenant Summit Roofing (summit) already exists: nothing changed."


def test_demo_logins_get_an_api_token_by_username_or_email(demo):
    client = APIClient()
    seen = {}
    for user in User.objects.all():
        by_username = client.post("/api/v1/auth/token/", {"username": user.username, "password": DEMO_PASSWORD})
        by_email = client.post("/api/v1/auth/token/", {"username": user.email, "password": DEMO_PASSWORD})
        me = APIClient()
        me.credentials(HTTP_AUTHORIZATION=f"Token {by_username.json()['token']}")
        memberships = me.get("/api/v1/me/").json()["memberships"]
        seen[user.username] = (
            by_username.status_code,
            by_email.status_code == 200 and by_email.json()["token"] != by_username.json()["token"],
            [(m["subdomain"], m["role"]) for m in memberships],
        )

    assert seen == {
        **{username: (200, True, [("summit", role)]) for username, role in STAFF_ROLES.items()},
        "ops": (200, True, []),
    }


def test_refuses_to_run_with_debug_off(demo, settings):
    settings.DEBUG = False
    before = snapshot()

    with pytest.raises(CommandError, match="runs only with DEBUG on"):
        seed()

    assert snapshot() == before


def test_runs_with_debug_off_when_forced(demo, settings):
    settings.DEBUG = False

    output = seed("--force")

    assert output.splitlines()[0] == "Demo tenant Summit Roofing (summit) already exists: nothing changed."
