"""Legacy data for the organizations merge tests, written at the state before the merge with
`crm.legacy` (the states, `migrate_to` and `LegacyRows` the demo and the benchmarks use too).

The tests run inside pytest-django's transaction: migrating back and forth there is rolled
back at the end like any other write.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.migrations.loader import MigrationLoader

from crm.legacy import LegacyRows

MERGE_SCHEMA = [("contacts", "0005_merge_schema"), ("crm", "0006_project_contacts")]
MERGE_DATA = ("contacts", "0006_merge_organizations")


def applied() -> set[tuple[str, str]]:
    return set(MigrationLoader(connection).applied_migrations)


def rows(apps: Any, app_label: str, model: str) -> list[dict[str, Any]]:
    return list(apps.get_model(app_label, model).objects.order_by("pk").values())


def backup_schema_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'merge_backups'")
        return cursor.fetchone()[0] == 1


def merge_phases(output: str) -> list[list[str]]:
    """The words of the merge's phase lines in `migrate`'s output, without their timings."""
    return [line.split("(")[0].split() for line in output.splitlines() if line.startswith("    ")]


def when(day: int) -> datetime:
    return datetime(2021, 3, day, 14, 30, 15, 123456, tzinfo=UTC)


@dataclass
class Legacy:
    """Ids of the legacy rows, by the name the tests use."""

    tenants: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    people: dict[str, int] = field(default_factory=dict)
    organizations: dict[str, int] = field(default_factory=dict)
    projects: dict[str, int] = field(default_factory=dict)


def load_legacy(apps: Any) -> Legacy:
    """Every case the merge must carry over, in two tenants (see the comments)."""
    old = LegacyRows(apps)
    legacy = Legacy()
    summit = old.create("crm.Tenant", name="Summit Roofing", subdomain="summit")
    valley = old.create("crm.Tenant", name="Valley Roofing", subdomain="valley")
    legacy.tenants = {"summit": summit.pk, "valley": valley.pk}
    ana = old.create("crm.User", username="ana", email="ana@example.com")
    bo = old.create("crm.User", username="bo", email="bo@example.com")
    legacy.users = {"ana": ana.pk, "bo": bo.pk}

    def person(key: str, tenant: Any, **fields: Any) -> Any:
        contact = old.create("contacts.Contact", tenant=tenant, first_name=key.title(), last_name="Legacy", **fields)
        legacy.people[key] = contact.pk
        return contact

    pat = person("pat", summit, email="pat@example.com", created_at=when(1), updated_at=when(2))
    # A person whose email the organization "acme" also has (in another case): both stay.
    person("dana", summit, email="office@acme.example")
    omar = person("omar", summit, phone="(303) 555-0199")
    mia = person("mia", summit)  # primary contact of a live and of a deleted organization
    vic = person("vic", valley)

    def organization(key: str, tenant: Any, **fields: Any) -> Any:
        org = old.create("contacts.Organization", tenant=tenant, **fields)
        legacy.organizations[key] = org.pk
        return org

    acme = organization(
        "acme",
        summit,
        name="Acme Property Group",
        org_type="real_estate",
        stage="new",
        primary_contact=pat,
        address_street="1200 Larimer St",
        address_city="Denver",
        address_state="CO",
        address_zip="80202",
        phone="(303) 555-0100",
        email="Office@Acme.example",
        website="https://www.acme.example/",
        notes="Call the office manager before sending a crew.",
        tags=["commercial", "net-30"],
        default_assignee=ana,
        is_deleted=False,
        created_by=bo,
        created_at=when(3),
        updated_at=when(4),
    )
    builders = organization(
        "builders",
        summit,
        name="Bear Creek Builders",
        org_type="developer",
        stage="active",
        email="bob@builders.example",
        is_deleted=True,
        created_at=when(5),
        updated_at=when(6),
    )
    ridge = organization(
        "ridge",
        summit,
        name="Ridge Realty",
        org_type="property_manager",
        stage="inactive",
        primary_contact=mia,
        is_deleted=None,
        created_at=when(7),
        updated_at=when(7),
    )
    old_ridge = organization(
        "old_ridge",
        summit,
        name="Old Ridge Realty",
        org_type="local_business",
        stage=None,
        primary_contact=mia,
        is_deleted=True,
        created_at=when(2),
        updated_at=when(8),
    )
    # Empty strings, not NULLs: carried over as they are.
    organization(
        "empty",
        summit,
        name="Empty Strings LLC",
        org_type="other",
        stage="new",
        address_street="",
        address_city="",
        phone="",
        email="",
        website="",
        notes="",
        tags=[],
        created_at=when(9),
        updated_at=when(9),
    )
    unicode = organization(
        "unicode",
        summit,
        name="Société des Toits — Zürich 東京",
        org_type=None,
        stage=None,
        is_deleted=False,
        created_at=when(10),
        updated_at=when(10),
    )
    # Same name as summit's "acme", in another tenant.
    acme_valley = organization(
        "acme_valley",
        valley,
        name="Acme Property Group",
        org_type="local_business",
        stage="active",
        primary_contact=vic,
        created_at=when(11),
        updated_at=when(11),
    )

    def project(key: str, tenant: Any, **fields: Any) -> None:
        legacy.projects[key] = old.create("crm.Project", tenant=tenant, name=key, **fields).pk

    project("acme_no_contact", summit, organization=acme)
    project("acme_omar", summit, organization=acme, contact=omar)
    project("acme_pat", summit, organization=acme, contact=pat)
    project("builders_no_contact", summit, organization=builders)
    project("builders_omar", summit, organization=builders, contact=omar)
    project("plain_no_contact", summit)
    project("plain_omar", summit, contact=omar)
    project("unicode_no_contact", summit, organization=unicode)
    project("ridge_deleted", summit, organization=ridge, is_deleted=True)
    project("old_ridge_no_contact", summit, organization=old_ridge)
    project("valley_no_contact", valley, organization=acme_valley)
    return legacy
