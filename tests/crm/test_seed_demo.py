"""`manage.py seed_demo`: the demo tenant that `make run` loads, written as the old system held
it and upgraded by `migrate` (the organizations merge included) like a customer's database, then
every app's demo steps; and the same command over a demo an earlier version built."""

from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Count, F
from django.test import override_settings
from rest_framework.test import APIClient

from contacts.models import Contact, MergedOrganization
from crm.demo import DEMO_PASSWORD, DemoStep, demo_steps
from crm.demo.runner import demo_load
from crm.errors import ApplicationError
from crm.models import Activity, AuthToken, Project, ProjectContact, Tenant, User
from crm.services import activity_create
from impersonation.models import ImpersonationLog
from substatus.models import SubstatusConfig
from tests.api import table
from tests.contacts.legacy import merge_phases

pytestmark = pytest.mark.django_db

STAFF_ROLES = {
    "summit-owner": "owner",
    "summit-admin": "admin",
    "summit-manager": "manager",
    "summit-member": "member",
    "summit-viewer": "viewer",
}
# The step the earlier version lacks in `demo`, and a migration it had not applied.
NEW_STEP = "substatus.own"
NEW_MIGRATION = ("admin", "0003_logentry_add_action_flag_choices")  # leaf, state-only: safe to apply again


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def distinct(queryset, field: str) -> set:
    return set(queryset.order_by().values_list(field, flat=True).distinct())


def every_row() -> dict[str, dict[Any, dict[str, Any]]]:
    """Every row of every model's table, by primary key: what a later run must leave alone."""
    return {
        model._meta.db_table: {row[model._meta.pk.attname]: row for row in table(model)} for model in apps.get_models()
    }


def changed_rows(before: dict, after: dict) -> dict[str, list[Any]]:
    """The primary keys of the rows each table changed or lost."""
    changed = {table: [pk for pk, row in rows.items() if after[table].get(pk) != row] for table, rows in before.items()}
    return {table: pks for table, pks in changed.items() if pks}


def added_rows(before: dict, after: dict) -> dict[str, int]:
    """How many rows each table gained."""
    counts = {table: len(rows.keys() - before.get(table, {}).keys()) for table, rows in after.items()}
    return {table: count for table, count in counts.items() if count}


@dataclass
class Demo:
    tenant: Tenant
    built: str  # the output of the earlier version's run (one step fewer)
    earlier: dict  # every row after it
    upgraded: str  # the output of `seed_demo` over it (a pending migration, the new step)


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker) -> Iterator[Demo]:
    """Built as an earlier version did (without NEW_STEP), then brought up to date by `seed_demo`
    with NEW_MIGRATION pending, as `make run` does after a pull; once for the module, inside a
    transaction rolled back at its end.

    Each test runs in a savepoint within it (pytest-django's `db`), so no test sees
    another's changes and the seeding, a few seconds, is paid once.
    """
    with django_db_blocker.unblock(), transaction.atomic(), override_settings(DEBUG=True):
        built = StringIO()
        demo_load(steps=[step for step in demo_steps() if step.name != NEW_STEP], stdout=built)
        earlier = every_row()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", NEW_MIGRATION)
        upgraded = seed()
        yield Demo(Tenant.objects.get(subdomain="summit"), built.getvalue(), earlier, upgraded)
        transaction.set_rollback(True)


def legacy(sql: str) -> list[tuple]:
    """Rows of the legacy data as the merge's backups hold it (the demo before the upgrade)."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_creates_the_demo_tenant_with_staff_of_every_role(demo):
    tenant = demo.tenant

    assert (tenant.name, tenant.timezone) == ("Summit Roofing", "America/Denver")
    assert dict(tenant.memberships.values_list("user__username", "role")) == STAFF_ROLES
    assert {user.username: (user.is_staff, user.is_superuser) for user in User.objects.all()} == {
        **dict.fromkeys(STAFF_ROLES, (True, False)),
        "ops": (True, True),
    }
    assert set(User.objects.exclude(username="ops").values_list("email", flat=True)) == {
        f"{role}@summitroofing.example" for role in STAFF_ROLES.values()
    }


def test_the_legacy_rehearsal_writes_the_old_rows_then_migrate_merges_them_and_says_so(demo):
    lines = demo.built.splitlines()
    rehearsal = lines[: lines.index("Added the demo rows of the apps' steps:")]

    assert rehearsal[0] == "Wrote Summit Roofing as the old system held it; upgrading the database like a customer's:"
    assert "  Applying contacts.0006_merge_organizations..." in rehearsal
    assert merge_phases("\n".join(rehearsal)) == [
        ["legacy", "data", "checked:", "no", "problem"],
        ["backups", "15", "organizations,", "60", "projects", "in", "merge_backups"],
        ["company", "contacts", "15", "created"],
        ["people", "12", "primary", "contacts", "linked", "to", "their", "company"],
        ["projects", "7", "given", "a", "contact,", "18", "organizations", "recorded", "in", "project_contacts"],
        ["foreign", "keys", "of", "every", "written", "row", "checked"],
        ["validation", "9", "checks", "passed"],
    ]
    summary = rehearsal[rehearsal.index("Created the demo tenant Summit Roofing (subdomain summit, America/Denver):") :]
    assert [line.split(";")[0] for line in summary] == [
        "Created the demo tenant Summit Roofing (subdomain summit, America/Denver):",
        "  5 staff members (1 admin, 1 manager, 1 member, 1 owner, 1 viewer) and the superuser ops",
        "  200 people (6 soft-deleted, 12 working for a company)",
        "  15 company contacts, 15 of them merged from legacy organizations (2 deleted)",
        "  60 projects (2 soft-deleted)",
        "  18 project parties: 18 organization",
        "  300 activities: 85 call, 25 door_knock, 55 email, 30 meeting, 35 note, 45 sms, 25 task",
    ]
    assert lines[len(rehearsal) :] == [
        "Added the demo rows of the apps' steps:",
        "  contacts.parties: 8 adjusters (contacts); project parties: 14 adjuster, 2 sub_contractor",
        "  campaigns.live: 2 active campaigns: New Lead Welcome Series (12 enrolled); "
        "Storm Damage Outreach (12 enrolled)",
        "  impersonation.viewed: notify_impersonated_users on; Marcus Lee viewed Jake Romero's account (SUP-1042), "
        "who has the notice on their feed",
        "  ai_chat.offline: 3 conversations with the offline assistant: 'Find contacts named Smith' (search_contacts); "
        "'What are my open estimates?' (list_projects); 'Add a note to Monica Smith: asked for a quote on seamless "
        "gutters before the fall.' (search_contacts, create_activity)",
        "  filters.saved: a Last inspection filter; saved filters: Storm leads in Denver (shared, manager), "
        "My follow-ups this week (member's default)",
    ]


def test_over_an_earlier_demo_applies_the_new_migrations_and_adds_only_the_new_steps_rows(demo):
    now = every_row()
    lines = demo.upgraded.splitlines()

    assert changed_rows(demo.earlier, now) == {}
    assert added_rows(demo.earlier, now) == {"status_substatus_configs": 3}
    new = SubstatusConfig.objects.exclude(pk__in=demo.earlier["status_substatus_configs"])
    assert sorted(
        new.values_list(
            "tenant__subdomain",
            "entity",
            "status",
            "key",
            "is_default",
            "auto_transition_to__key",
            "auto_transition_delay_hours",
            "created_by__username",
        )
    ) == [
        ("summit", "contact", "new", "storm_lead", False, "attempting_contact", 48, "summit-admin"),
        ("summit", "project", "approved", "hoa_approval_pending", False, None, None, "summit-admin"),
        ("summit", "project", "in_progress", "supplement_submitted", False, None, None, "summit-admin"),
    ]
    assert lines[0] == (
        "Demo tenant Summit Roofing (summit) already exists; applying the migrations added since it was built:"
    )
    assert "  Applying admin.0003_logentry_add_action_flag_choices... OK" in lines
    added = lines.index("Added the demo steps it lacked:")
    assert lines[added + 1 : added + 2] == [
        "  substatus.own: 3 substatuses of its own: Waiting on HOA approval (project approved); Supplement "
        "submitted (project in_progress); Storm canvass lead (contact new, to Attempting contact after 48 h)"
    ]
    assert lines[added + 2] == "Demo logins (password 'ridgeline-demo'; the username or the email works):"


def test_creates_the_documented_amounts(demo):
    tenant = demo.tenant
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
        "activities": 302,  # the rehearsal's 300, the member's notice and the offline assistant's note
        "parties": {"adjuster": 14, "organization": 18, "sub_contractor": 2},
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
    tenant = demo.tenant
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
    tenant = demo.tenant
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
    before = every_row()

    output = seed()

    assert every_row() == before
    assert output.splitlines()[0] == "Demo tenant Summit Roofing (summit) already exists: nothing changed."


def test_a_step_added_later_adds_its_rows_once_and_says_so(demo):
    """A later app's demo module (say campaigns/demo.py) over the demo `make run` built before."""
    before = every_row()
    runs = []

    def build(actor):
        runs.append(actor.tenant.subdomain)
        contact = Contact.objects.get(tenant=demo.tenant, email="karen.mills@statefarm.example")
        activity_create(actor=actor, contact=contact, type="email", subject="Storm season check-in")
        return "1 email"

    later = DemoStep(
        name="campaigns.sequences",
        build=build,
        present=lambda tenant: Activity.objects.filter(tenant=tenant, subject="Storm season check-in").exists(),
        after=("contacts.parties",),
    )
    first, second = StringIO(), StringIO()

    demo_load(steps=[later, *demo_steps()], stdout=first)
    demo_load(steps=[later, *demo_steps()], stdout=second)

    assert (changed_rows(before, every_row()), added_rows(before, every_row())) == ({}, {"activities": 1})
    assert Activity.objects.get(subject="Storm season check-in").performed_by.username == "summit-admin"
    assert first.getvalue().splitlines() == [
        "Demo tenant Summit Roofing (summit) already exists; added the demo steps it lacked:",
        "  campaigns.sequences: 1 email",
    ]
    assert (runs, second.getvalue()) == (
        ["summit"],
        "Demo tenant Summit Roofing (summit) already exists: nothing changed.\n",
    )


def test_a_pending_migration_alone_is_applied_and_no_row_added(demo):
    before = every_row()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", NEW_MIGRATION)

    lines = seed().splitlines()

    assert (changed_rows(before, every_row()), added_rows(before, every_row())) == ({}, {})
    assert lines[0] == (
        "Demo tenant Summit Roofing (summit) already exists; applying the migrations added since it was built:"
    )
    logins = lines.index("Demo logins (password 'ridgeline-demo'; the username or the email works):")
    assert lines[logins - 2 : logins] == [
        "  Applying admin.0003_logentry_add_action_flag_choices... OK",
        "Every demo step's rows were there: none added.",
    ]


def test_a_step_that_fails_half_way_adds_nothing(demo):
    before = every_row()

    def build(actor):
        activity_create(actor=actor, contact=Contact.objects.filter(tenant=demo.tenant).first(), type="note")
        raise ApplicationError("The step broke half-way.", code="broken")

    with pytest.raises(ApplicationError, match="The step broke half-way."):
        demo_load(steps=[DemoStep(name="tests.broken", build=build, present=lambda tenant: False)], stdout=StringIO())

    assert every_row() == before


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
    before = every_row()

    with pytest.raises(CommandError, match="runs only with DEBUG on"):
        seed()

    assert every_row() == before


def test_runs_with_debug_off_when_forced(demo, settings):
    settings.DEBUG = False

    output = seed("--force")

    assert output.splitlines()[0] == "Demo tenant Summit Roofing (summit) already exists: nothing changed."


def test_the_member_has_the_notice_of_the_admins_support_session(demo):
    tenant = demo.tenant
    notice = Activity.objects.get(tenant=tenant, type=Activity.Type.NOTICE)
    session = ImpersonationLog.objects.get(tenant=tenant)

    assert tenant.settings["notify_impersonated_users"] is True
    assert (notice.recipient.username, notice.created_by.username, notice.subject) == (
        "summit-member",
        "summit-admin",
        "Your account was viewed by Marcus Lee: Jake cannot find the Hendricks job on his list",
    )
    assert (session.impersonated_user, session.admin_user, session.ticket, session.end_reason) == (
        notice.recipient,
        notice.created_by,
        "SUP-1042",
        "stopped",
    )
    assert not AuthToken.objects.filter(digest=session.admin_token_digest).exists()
