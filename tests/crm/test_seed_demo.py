"""`manage.py seed_demo`: the demo tenant that `make run` loads."""

from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F, Max
from django.test import override_settings
from rest_framework.test import APIClient

from contacts.models import Contact, Organization
from crm.management.commands.seed_demo import DEMO_PASSWORD
from crm.models import Activity, Membership, Project, Tenant, User

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
        model.__name__: model.objects.count() for model in (User, Tenant, Membership, Contact, Project, Activity)
    }
    state["Organization"] = Organization.objects.count()
    state["last writes"] = [
        model.objects.aggregate(last=Max("updated_at"))["last"] for model in (Tenant, Contact, Project, Organization)
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
    assert "200 contacts (6 soft-deleted)" in output


def test_creates_the_documented_amounts_through_the_services(demo):
    tenant, _ = demo
    contacts = Contact.objects.filter(tenant=tenant)
    projects = Project.objects.filter(tenant=tenant)
    activities = Activity.objects.filter(tenant=tenant)
    organizations = Organization.objects.filter(tenant=tenant)
    staff = set(tenant.memberships.values_list("user_id", flat=True))

    assert {
        "contacts": contacts.count(),
        "deleted contacts": contacts.filter(is_deleted=True).count(),
        "projects": projects.count(),
        "deleted projects": projects.filter(is_deleted=True).count(),
        "activities": activities.count(),
        "organizations": organizations.count(),
    } == {
        "contacts": 200,
        "deleted contacts": 6,
        "projects": 60,
        "deleted projects": 2,
        "activities": 300,
        "organizations": 15,
    }
    # Written with an actor: every row names a staff member as its author.
    assert distinct(contacts, "created_by") <= staff
    assert distinct(contacts, "assigned_to") <= staff | {None}
    assert distinct(projects, "created_by") <= staff
    assert distinct(activities, "performed_by") <= staff
    assert distinct(organizations, "created_by") <= staff
    assert Contact.objects.exclude(tenant=tenant).count() == 0


def test_covers_every_value_of_every_list(demo):
    tenant, _ = demo
    contacts = Contact.objects.filter(tenant=tenant)
    organizations = Organization.objects.filter(tenant=tenant)

    assert {
        "contact type": distinct(contacts, "type"),
        "contact stage": distinct(contacts, "stage"),
        "contact priority": distinct(contacts, "priority"),
        "lead source": distinct(contacts, "source"),
        "project status": distinct(Project.objects.filter(tenant=tenant), "status"),
        "project type": distinct(Project.objects.filter(tenant=tenant), "type"),
        "activity type": distinct(Activity.objects.filter(tenant=tenant), "type"),
        "activity direction": distinct(Activity.objects.filter(tenant=tenant), "direction"),
        "organization type": distinct(organizations, "org_type"),
        "organization stage": distinct(organizations, "stage"),
        "organization is_deleted": distinct(organizations, "is_deleted"),
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
        "project status": set(Project.Status.values),
        "project type": set(Project.Type.values),
        "activity type": set(Activity.Type.values),
        "activity direction": {*Activity.Direction.values, None},
        "organization type": {*Organization.OrgType.values, None},
        "organization stage": {*Organization.Stage.values, None},
        "organization is_deleted": {True, False, None},
    }


def test_gives_the_organizations_merge_every_case(demo):
    tenant, _ = demo
    linked = Project.objects.filter(tenant=tenant, organization__isnull=False)
    organizations = Organization.objects.filter(tenant=tenant)
    activities = Activity.objects.filter(tenant=tenant)

    cases = {
        "organization with a primary contact": organizations.filter(primary_contact__isnull=False),
        "organization without a primary contact": organizations.filter(primary_contact__isnull=True),
        "organization without projects": organizations.filter(projects__isnull=True),
        "project with the organization's primary contact": linked.filter(contact=F("organization__primary_contact")),
        "project with another contact": linked.exclude(contact=F("organization__primary_contact")).filter(
            contact__isnull=False
        ),
        "project without a contact, organization with a primary contact": linked.filter(
            contact__isnull=True, organization__primary_contact__isnull=False
        ),
        "project without a contact, organization without one": linked.filter(
            contact__isnull=True, organization__primary_contact__isnull=True
        ),
        "project of a deleted organization": linked.filter(organization__is_deleted=True),
        "activity on a project alone": activities.filter(contact__isnull=True, project__isnull=False),
        "activity on a contact and its project": activities.filter(project__contact=F("contact")),
        "child project": Project.objects.filter(tenant=tenant, parent_project__isnull=False),
    }

    assert {case: queryset.exists() for case, queryset in cases.items()} == dict.fromkeys(cases, True)


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
            by_email.json() == by_username.json(),
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
