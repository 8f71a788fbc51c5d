"""The organizations merge (contacts 0004-0007, crm 0006-0007) with the migration executor:
every field and link carried over, reversed exactly, refused on bad data, validated."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from contacts.merge import merge_backups_drop
from contacts.models import Contact, MergedOrganization
from crm.legacy import contacts_before_merge, latest_state, migrate_to, pre_merge_state, state_before
from crm.models import Activity, Project, ProjectContact
from crm.search import prefix_search_query
from substatus.models import SubstatusConfig, SubstatusHistory
from tests.contacts.legacy import (
    MERGE_DATA,
    MERGE_SCHEMA,
    Legacy,
    applied,
    backup_schema_exists,
    load_legacy,
    merge_phases,
    rows,
)

pytestmark = pytest.mark.django_db

CATEGORY = {
    "real_estate": "real_estate_agent",
    "developer": "developer",
    "property_manager": "property_manager",
    "local_business": "local_business",
    "other": "other",
    None: "other",
}
TYPE_AND_STAGE = {
    "new": ("lead", "new"),
    "active": ("customer", "won"),
    "inactive": ("prospect", "lost"),
    None: ("lead", "new"),
}
# project -> its contact after the merge: (kind, name), None for none
PROJECT_CONTACT = {
    "acme_no_contact": ("person", "pat"),  # the organization's primary contact
    "acme_omar": ("person", "omar"),  # never replaced
    "acme_pat": ("person", "pat"),
    "builders_no_contact": ("company", "builders"),  # no primary contact: the company contact
    "builders_omar": ("person", "omar"),
    "plain_no_contact": None,
    "plain_omar": ("person", "omar"),
    "unicode_no_contact": ("company", "unicode"),
    "ridge_deleted": ("person", "mia"),
    "old_ridge_no_contact": ("person", "mia"),
    "valley_no_contact": ("person", "vic"),
}
# project_contacts rows (role organization): where the company contact is not the project's contact
PARTIES = {
    ("acme_no_contact", "acme"),
    ("acme_omar", "acme"),
    ("acme_pat", "acme"),
    ("builders_omar", "builders"),
    ("ridge_deleted", "ridge"),
    ("old_ridge_no_contact", "old_ridge"),
    ("valley_no_contact", "acme_valley"),
}
# person -> the organization whose company contact they work for (mia: the live one of her two)
WORKS_FOR = {"pat": "acme", "mia": "ridge", "vic": "acme_valley"}
CONTACT_COLUMNS = [f.attname for f in Contact._meta.concrete_fields if f.name not in ("id", "search")]
# A company contact's substatus is its stage's default, set by the substatus trigger when it
# is inserted (substatus_since: that statement's time, asserted on its own).
COMPANY_COLUMNS = [column for column in CONTACT_COLUMNS if column != "substatus_since"]


def legacy_state(apps: Any) -> dict[str, list[dict[str, Any]]]:
    return {
        "organizations": rows(apps, "contacts", "Organization"),
        "contacts": rows(apps, "contacts", "Contact"),
        "projects": rows(apps, "crm", "Project"),
    }


# The columns migrations after the merge add (contacts 0009, crm 0011_legacy_columns), as every merged row has them.
LATER_CONTACT_COLUMNS = {
    "quickbooks_customer_id": None,
    "proline_id": None,
    "timezone": "",
    "sms_opt_in": False,
    "sms_opt_in_date": None,
    "sms_opt_out": False,
    "sms_opt_out_date": None,
    "sms_opt_out_reason": None,
    "email_opt_out": False,
    "email_opt_out_date": None,
    "email_opt_out_reason": None,
    "email_invalid": False,
    "email_invalid_date": None,
    "email_invalid_reason": None,
}
LATER_PROJECT_COLUMNS = {"quickbooks_id": None, "quickbooks_sync_status": None}


def without(row: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in names}


def default_substatus(tenant_id: int, stage: str) -> int:
    return SubstatusConfig.objects.get(tenant_id=tenant_id, entity="contact", status=stage, is_default=True).pk


def company_row(org: dict[str, Any]) -> dict[str, Any]:
    """The company contact an organization becomes (DESIGN.md, "The organizations merge")."""
    contact_type, stage = TYPE_AND_STAGE[org["stage"]]
    return {
        "substatus_id": default_substatus(org["tenant_id"], stage),
        "tenant_id": org["tenant_id"],
        "is_organization": True,
        "company": org["name"],
        "company_contact_id": None,
        "contact_category": CATEGORY[org["org_type"]],
        "first_name": "",
        "last_name": "",
        "email": org["email"],
        "phone": org["phone"],
        "mobile_phone": None,
        "website": org["website"],
        "address_street": org["address_street"],
        "address_city": org["address_city"],
        "address_state": org["address_state"],
        "address_zip": org["address_zip"],
        "latitude": None,
        "longitude": None,
        "type": contact_type,
        "stage": stage,
        "source": None,
        "source_details": {},
        "assigned_to_id": org["default_assignee_id"],
        "property_type": None,
        "roof_type": None,
        "roof_age": None,
        "last_inspection_date": None,
        "property_value": None,
        "square_footage": None,
        "stories": None,
        "insurance_carrier": None,
        "policy_number": None,
        "claim_number": None,
        "deductible": None,
        "lead_score": 0,
        "priority": "normal",
        "custom_fields": {},
        "tags": org["tags"] or [],
        "notes": org["notes"],
        "is_deleted": org["is_deleted"] is True,
        "created_by_id": org["created_by_id"],
        "updated_by_id": None,
        "created_at": org["created_at"],
        "updated_at": org["updated_at"],
        **LATER_CONTACT_COLUMNS,
    }


def assert_merged(legacy: Legacy, before: dict[str, list[dict[str, Any]]]) -> None:
    """Every row after the merge, field by field, from the legacy rows before it."""
    by_name = {pk: name for name, pk in legacy.organizations.items()}
    mapping = {row.organization_id: row for row in MergedOrganization.objects.all()}
    assert {(org_id, row.tenant_id, row.org_type, row.stage) for org_id, row in mapping.items()} == {
        (org["id"], org["tenant_id"], org["org_type"], org["stage"]) for org in before["organizations"]
    }
    company: dict[str | None, int | None] = {by_name[org_id]: row.contact_id for org_id, row in mapping.items()}

    assert {
        by_name[org["id"]]: Contact.objects.values(*COMPANY_COLUMNS).get(pk=company[by_name[org["id"]]])
        for org in before["organizations"]
    } == {by_name[org["id"]]: company_row(org) for org in before["organizations"]}
    assert not Contact.objects.filter(is_organization=True, substatus_since__isnull=True).exists()

    people_names = {pk: name for name, pk in legacy.people.items()}
    people = Contact.objects.filter(is_organization=False).order_by("pk").values(*CONTACT_COLUMNS, "id")
    assert [without(person, "id") for person in people] == [
        {
            **without(person, "id", "search"),
            "is_organization": False,
            "company": legacy_name(before, WORKS_FOR.get(people_names[person["id"]]), legacy),
            "company_contact_id": company.get(WORKS_FOR.get(people_names[person["id"]])),
            "contact_category": "homeowner",
            "website": None,
            "notes": None,
            **LATER_CONTACT_COLUMNS,
        }
        for person in before["contacts"]
    ]

    def contact_of(expected: tuple[str, str] | None) -> int | None:
        if expected is None:
            return None
        kind, name = expected
        return legacy.people[name] if kind == "person" else company[name]

    project_names = {pk: name for name, pk in legacy.projects.items()}
    assert list(Project.objects.order_by("pk").values()) == [
        {
            **without(project, "organization_id"),
            "contact_id": contact_of(PROJECT_CONTACT[project_names[project["id"]]]),
            **LATER_PROJECT_COLUMNS,
        }
        for project in before["projects"]
    ]
    tenant_of = {project["id"]: project["tenant_id"] for project in before["projects"]}
    assert set(
        ProjectContact.objects.values_list("tenant_id", "project_id", "contact_id", "role", "created_by_id")
    ) == {
        (tenant_of[legacy.projects[project]], legacy.projects[project], company[org], "organization", None)
        for project, org in PARTIES
    }
    assert Contact.objects.count() == len(before["contacts"]) + len(before["organizations"])


def legacy_name(before: dict[str, list[dict[str, Any]]], org_name: str | None, legacy: Legacy) -> str:
    if org_name is None:
        return ""
    return next(org["name"] for org in before["organizations"] if org["id"] == legacy.organizations[org_name])


@pytest.fixture
def pre_merge() -> Any:
    """The database as it was before the merge; returns that state's historical apps."""
    return migrate_to(pre_merge_state())


@pytest.fixture
def legacy(pre_merge) -> tuple[Legacy, dict[str, list[dict[str, Any]]]]:
    ids = load_legacy(pre_merge)
    return ids, legacy_state(pre_merge)


def test_merge_carries_every_field_and_link_and_reverses_exactly(legacy):
    ids, before = legacy

    migrate_to(latest_state())
    assert_merged(ids, before)
    assert backup_schema_exists()

    apps = migrate_to(pre_merge_state())
    assert legacy_state(apps) == before
    assert not backup_schema_exists()

    migrate_to(latest_state())
    assert_merged(ids, before)


def test_a_contacts_sequence_left_behind_by_imported_ids_is_moved_past_them(legacy):
    """Rows inserted with explicit ids (the old system's imports) leave the sequence behind."""
    ids, before = legacy
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('contacts', 'id'), 1, false)")

    migrate_to(latest_state())

    assert_merged(ids, before)
    assert min(MergedOrganization.objects.values_list("contact_id", flat=True)) > max(ids.people.values())


def test_company_contacts_get_their_default_substatus_and_history_says_migration(legacy):
    """The merge runs with the substatus triggers installed: each new company contact gets its
    stage's default substatus and one history row from the migration; nothing else moves."""
    ids, before = legacy
    earlier = set(SubstatusHistory.objects.values_list("pk", flat=True))

    migrate_to(latest_state())

    merged = dict(MergedOrganization.objects.values_list("organization_id", "contact_id"))
    tenant_of = {org["id"]: org["tenant_id"] for org in before["organizations"]}
    stage_of = {org["id"]: TYPE_AND_STAGE[org["stage"]][1] for org in before["organizations"]}
    written = SubstatusHistory.objects.exclude(pk__in=earlier)
    assert sorted(
        written.values_list(
            "tenant_id",
            "entity",
            "record_id",
            "from_status",
            "to_status",
            "from_substatus_id",
            "to_substatus_id",
            "changed_by_id",
            "source",
            "reason",
        )
    ) == sorted(
        (
            tenant_of[org_id],
            "contact",
            contact_id,
            None,
            stage_of[org_id],
            None,
            default_substatus(tenant_of[org_id], stage_of[org_id]),
            None,
            "migration",
            "organizations merge",
        )
        for org_id, contact_id in merged.items()
    )

    migrate_to(pre_merge_state())

    # The history is append-only: the company contacts' entries stay after a reverse.
    assert SubstatusHistory.objects.filter(entity="contact", record_id__in=merged.values()).count() == len(merged)


def test_search_covers_company_and_website_words(legacy):
    migrate_to(latest_state())
    companies = Contact.objects.filter(is_organization=True)

    found = {
        term: sorted(companies.filter(search=prefix_search_query(term)).values_list("company", "tenant__subdomain"))
        for term in ("acme property", "zürich", "東京", "builders", "acme.example", "www", "https")
    }

    assert found == {
        "acme property": [("Acme Property Group", "summit"), ("Acme Property Group", "valley")],
        "zürich": [("Société des Toits — Zürich 東京", "summit")],
        "東京": [("Société des Toits — Zürich 東京", "summit")],
        "builders": [("Bear Creek Builders", "summit")],  # the words of its email
        "acme.example": [("Acme Property Group", "summit")],  # its website and email, not valley's
        "www": [],  # the website's scheme and www are left out
        "https": [],
    }


# The old system's bad data: the merge refuses to start, and says which rows -----------------


def break_tenants(apps: Any, ids: Legacy) -> None:
    """A project of summit linked to valley's organization; valley's organization naming summit's person."""
    apps.get_model("crm", "Project").objects.filter(pk=ids.projects["plain_omar"]).update(
        organization_id=ids.organizations["acme_valley"]
    )
    apps.get_model("contacts", "Organization").objects.filter(pk=ids.organizations["acme_valley"]).update(
        primary_contact_id=ids.people["omar"]
    )


def preflight_report(ids: Legacy) -> str:
    summit, valley = ids.tenants["summit"], ids.tenants["valley"]
    project, org, person = ids.projects["plain_omar"], ids.organizations["acme_valley"], ids.people["omar"]
    return (
        "The organizations merge cannot start: 2 problem(s) in the legacy data. Nothing was changed; fix these "
        "rows, then run migrate again (manage.py merge_preflight lists them without migrating).\n"
        "- project_organization_other_tenant: 1 project(s) linked to an organization of another tenant\n"
        f"    project {project} (tenant {summit}) -> organization {org} (tenant {valley})\n"
        "- organization_primary_contact_other_tenant: 1 organization(s) whose primary contact belongs to another "
        "tenant\n"
        f"    organization {org} (tenant {valley}) -> primary contact {person} (tenant {summit})"
    )


def test_cross_tenant_links_stop_the_merge_before_anything_changes(pre_merge, legacy):
    ids, _ = legacy
    break_tenants(pre_merge, ids)
    before, migrations = legacy_state(pre_merge), applied()

    with pytest.raises(CommandError) as refused:
        migrate_to(latest_state())

    assert str(refused.value) == preflight_report(ids)
    assert (legacy_state(pre_merge), applied()) == (before, migrations)


def test_merge_preflight_prints_the_same_report_and_fails(pre_merge, legacy):
    ids, _ = legacy
    break_tenants(pre_merge, ids)

    with pytest.raises(CommandError) as refused:
        call_command("merge_preflight")

    assert str(refused.value) == preflight_report(ids)


def test_merge_preflight_passes_clean_data_and_skips_a_merged_database(legacy):
    out = StringIO()
    call_command("merge_preflight", stdout=out)
    migrate_to(latest_state())
    call_command("merge_preflight", stdout=out)

    assert out.getvalue().splitlines() == [
        "The organizations merge can start: 7 organizations and 9 projects linked to them, no problem found.",
        "The organizations merge has already run on this database: nothing to check.",
    ]


def test_the_many_offending_rows_are_counted_and_the_first_twenty_listed(pre_merge, legacy):
    ids, _ = legacy
    Project = pre_merge.get_model("crm", "Project")  # noqa: N806
    summit = pre_merge.get_model("crm", "Tenant").objects.get(pk=ids.tenants["summit"])
    crossing = [
        Project.objects.create(tenant=summit, name=f"crossing {n}", organization_id=ids.organizations["acme_valley"])
        for n in range(23)
    ]

    with pytest.raises(CommandError) as refused:
        migrate_to(latest_state())

    lines = str(refused.value).splitlines()
    assert lines[1] == "- project_organization_other_tenant: 23 project(s) linked to an organization of another tenant"
    assert lines[2:] == [
        f"    project {project.pk} (tenant {ids.tenants['summit']}) -> organization "
        f"{ids.organizations['acme_valley']} (tenant {ids.tenants['valley']})"
        for project in crossing[:20]
    ] + ["    ... and 3 more"]


# Validation: a merge that went wrong aborts, names the check, and changes nothing -------------

# Each case corrupts the merge from inside the database (a trigger the test installs, so no
# hook lives in the migration) and names the validation lines it must produce.
CORRUPTIONS = {
    "a mapping row is lost": (
        "merged_organizations",
        "BEFORE INSERT",
        "IF NEW.organization_id = {acme} THEN RETURN NULL; END IF; RETURN NEW;",
        [
            "- organizations_merged: organizations (deleted ones included) that became a company contact: "
            "expected 7, found 6; ids: {acme}",
            "- primary_contacts_linked: primary contacts working for one of their organizations' company contacts: "
            "expected 3, found 2; ids: {pat}",
        ],
    ),
    "a field is not carried over": (
        "contacts",
        "BEFORE INSERT",
        "IF NEW.company = 'Ridge Realty' THEN NEW.notes := 'lost'; END IF; RETURN NEW;",
        [
            "- company_fields: organizations whose every field landed in their company contact: "
            "expected 7, found 6; ids: {ridge}"
        ],
    ),
    "an organization link is not recorded": (
        "project_contacts",
        "BEFORE INSERT",
        "IF NEW.project_id = {acme_omar} THEN RETURN NULL; END IF; RETURN NEW;",
        [
            "- project_links_reachable: projects linked to an organization that reach its company contact "
            "(contact or project_contacts): expected 9, found 8; ids: {acme_omar}"
        ],
    ),
    "a project loses its contact": (
        "project_contacts",
        "AFTER INSERT",
        "UPDATE projects SET contact_id = NULL WHERE id = {acme_omar}; RETURN NEW;",
        [
            "- project_contacts_kept: projects still there with their organization and contact, a contact added "
            "only where none was: expected 11, found 10; ids: {acme_omar}"
        ],
    ),
    "a project gets another tenant's contact": (
        "projects",
        "BEFORE UPDATE",
        "IF NEW.id = {acme_no_contact} THEN NEW.contact_id := {vic}; END IF; RETURN NEW;",
        [
            "- projects_given_a_contact: projects without a contact, linked to an organization, given its primary "
            "contact or else its company: expected 6, found 5; ids: {acme_no_contact}",
            "- projects_same_tenant: projects linked to an organization whose organization and contact are of the "
            "project's tenant: expected 9, found 8; ids: {acme_no_contact}",
        ],
    ),
    "a person works for another tenant's company": (
        "contacts",
        "BEFORE UPDATE",
        "IF NEW.id = {pat} THEN NEW.company_contact_id := "
        "(SELECT contact_id FROM merged_organizations WHERE organization_id = {acme_valley}); END IF; RETURN NEW;",
        [
            "- primary_contacts_linked: primary contacts working for one of their organizations' company contacts: "
            "expected 3, found 2; ids: {pat}",
            "- company_contacts_same_tenant: people working for a company contact of their own tenant: "
            "expected 3, found 2; ids: {pat}",
        ],
    ),
}


def install_corruption(table: str, timing: str, body: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE FUNCTION test_corrupt_merge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} END $$"
        )
        cursor.execute(
            f"CREATE TRIGGER test_corrupt_merge {timing} ON {table} FOR EACH ROW EXECUTE FUNCTION test_corrupt_merge()"
        )


def merge_state() -> dict[str, Any]:
    with connection.cursor() as cursor:
        tables = {}
        for table in (
            "organizations",
            "contacts",
            "projects",
            "project_contacts",
            "merged_organizations",
            "substatus_history",
        ):
            if table in connection.introspection.table_names(cursor):
                cursor.execute(f"SELECT to_jsonb(t) - 'search' FROM {table} t ORDER BY 1")  # noqa: S608
                tables[table] = cursor.fetchall()
    return {"tables": tables, "backups": backup_schema_exists(), "applied": applied()}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_failed_validation_names_the_check_and_changes_nothing(legacy, case):
    ids, _ = legacy
    table, timing, body, lines = CORRUPTIONS[case]
    names = {**ids.organizations, **ids.people, **ids.projects}
    migrate_to(state_before(MERGE_DATA))  # the merge's schema and whatever does not need the merge
    install_corruption(table, timing, body.format(**names))
    before = merge_state()

    with pytest.raises(CommandError) as failed:
        migrate_to(latest_state())

    assert str(failed.value).splitlines() == [
        "The organizations merge failed its validation and was rolled back: nothing changed.",
        *(line.format(**names) for line in lines),
    ]
    assert merge_state() == before
    assert MERGE_DATA not in applied()


# Reversing refuses, before changing anything, when it cannot restore everything ---------------


def test_reversing_refuses_once_the_backups_are_dropped(legacy):
    migrate_to(latest_state())
    merge_backups_drop(connection)
    before, migrations_before = merge_state(), applied()

    with pytest.raises(CommandError) as refused:
        migrate_to(pre_merge_state())

    assert str(refused.value) == (
        "The organizations merge cannot be reversed; nothing was changed:\n"
        "- its backups (schema merge_backups) were dropped (manage.py merge_backups drop): the legacy rows "
        "cannot be restored. Restore a database backup taken before the merge instead."
    )
    assert merge_state() == before
    assert applied() == migrations_before  # refused before the later migrations were undone


def test_reversing_refuses_while_later_rows_depend_on_the_merged_companies(legacy):
    ids, _ = legacy
    migrate_to(latest_state())
    acme = MergedOrganization.objects.get(organization_id=ids.organizations["acme"]).contact
    call = Activity.objects.create(tenant=acme.tenant, contact=acme, type=Activity.Type.CALL)
    later_company = Contact.objects.create(tenant=acme.tenant, is_organization=True, company="New Co")
    repointed = Project.objects.get(pk=ids.projects["plain_omar"])
    repointed.contact = acme
    repointed.save()
    Project.objects.filter(pk=ids.projects["acme_omar"]).update(contact=acme)  # restored from the backups
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # `migrate` commits its rows' checks first too
    before, migrations_before = merge_state(), applied()

    with pytest.raises(CommandError) as refused:
        call_command("migrate", "contacts", contacts_before_merge(), verbosity=0)  # what ops run

    assert str(refused.value).splitlines() == [
        "The organizations merge cannot be reversed; nothing was changed:",
        f"- 1 company contact(s) were created after the merge and would become nameless people (ids "
        f"{later_company.pk}): delete or purge them first",
        f"- 1 row(s) of activities refer to company contacts the merge created, through contact_id (ids {call.pk}): "
        "reversing would remove those contacts; point the rows elsewhere first",
        f"- 1 row(s) of projects refer to company contacts the merge created, through contact_id (ids "
        f"{repointed.pk}): reversing would remove those contacts; point the rows elsewhere first",
    ]
    assert merge_state() == before
    assert applied() == migrations_before  # refused before the later migrations were undone


# What ops see ------------------------------------------------------------------------------


def test_migrate_prints_each_phase_with_its_rows_at_verbosity_1_only(legacy):
    quiet, loud = StringIO(), StringIO()
    target = MERGE_DATA[1]
    call_command("migrate", *MERGE_SCHEMA[0], verbosity=0, stdout=quiet)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    call_command("migrate", "contacts", target, verbosity=1, stdout=loud)

    assert quiet.getvalue() == ""
    assert merge_phases(loud.getvalue()) == [
        ["backups", "7", "organizations,", "11", "projects", "in", "merge_backups"],
        ["company", "contacts", "7", "created"],
        ["people", "3", "primary", "contacts", "linked", "to", "their", "company"],
        ["projects", "6", "given", "a", "contact,", "7", "organizations", "recorded", "in", "project_contacts"],
        ["foreign", "keys", "of", "every", "written", "row", "checked"],
        ["validation", "9", "checks", "passed"],
    ]


@pytest.mark.django_db(transaction=True)
def test_the_merge_commits_step_by_step_like_a_production_migrate():
    """Each migration in its own transaction, as `manage.py migrate` runs them (the tests above
    run inside one): the data step's deferred foreign keys must not block the next steps."""
    try:
        call_command("migrate", "contacts", contacts_before_merge(), verbosity=0)
        apps = MigrationExecutor(connection).loader.project_state(pre_merge_state()).apps
        ids = load_legacy(apps)
        before = legacy_state(apps)

        call_command("migrate", verbosity=0)
        assert_merged(ids, before)
        call_command("migrate", "contacts", contacts_before_merge(), verbosity=0)
        assert legacy_state(MigrationExecutor(connection).loader.project_state(pre_merge_state()).apps) == before
        call_command("migrate", verbosity=0)
        assert_merged(ids, before)
    finally:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS merge_backups CASCADE")
