"""Legacy data for the organizations merge tests, written with the historical models of the
state before the merge, and the helpers that move the database between migrations.

The tests run inside pytest-django's transaction: migrating back and forth there is rolled
back at the end like any other write. Rows inserted before a migration leave deferred
foreign-key checks pending, and PostgreSQL refuses to ALTER a table with pending trigger
events in the same transaction; `migrate()` makes them immediate first (on a real
`migrate`, each migration commits, which does the same).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

MERGE_START = ("contacts", "0004_merge_preflight")
MERGE_SCHEMA = [("contacts", "0005_merge_schema"), ("crm", "0006_project_contacts")]
MERGE_DATA = ("contacts", "0006_merge_organizations")


def pre_merge_targets() -> list[tuple[str, str]]:
    """The migrations the merge starts from (the parents of its first migration)."""
    return sorted(parent.key for parent in MigrationLoader(connection).graph.node_map[MERGE_START].parents)


def contacts_before_merge() -> str:
    """The contacts migration the merge starts from: `migrate contacts <it>` reverses the merge."""
    return next(name for app, name in pre_merge_targets() if app == "contacts")


def latest_targets() -> list[tuple[str, str]]:
    return MigrationLoader(connection).graph.leaf_nodes()


def merged_targets() -> list[tuple[str, str]]:
    """The merge's last migrations, without the later ones of other features: Django
    reverses those first (in their own transactions) when taking the database back."""
    return [("contacts", "0007_merge_finish"), ("crm", "0007_remove_project_organization")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to `targets`; returns the historical apps of that state."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


def applied() -> set[tuple[str, str]]:
    return set(MigrationLoader(connection).applied_migrations)


def rows(apps: Any, app_label: str, model: str) -> list[dict[str, Any]]:
    return list(apps.get_model(app_label, model).objects.order_by("pk").values())


def backup_schema_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'merge_backups'")
        return cursor.fetchone()[0] == 1


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
    Tenant = apps.get_model("crm", "Tenant")  # noqa: N806 - historical model classes
    User = apps.get_model("crm", "User")  # noqa: N806
    Contact = apps.get_model("contacts", "Contact")  # noqa: N806
    Organization = apps.get_model("contacts", "Organization")  # noqa: N806
    Project = apps.get_model("crm", "Project")  # noqa: N806
    legacy = Legacy()
    summit = Tenant.objects.create(name="Summit Roofing", subdomain="summit")
    valley = Tenant.objects.create(name="Valley Roofing", subdomain="valley")
    legacy.tenants = {"summit": summit.pk, "valley": valley.pk}
    ana = User.objects.create(username="ana", email="ana@example.com")
    bo = User.objects.create(username="bo", email="bo@example.com")
    legacy.users = {"ana": ana.pk, "bo": bo.pk}

    def person(key: str, tenant: Any, **fields: Any) -> Any:
        contact = Contact.objects.create(tenant=tenant, first_name=key.title(), last_name="Legacy", **fields)
        legacy.people[key] = contact.pk
        return contact

    pat = person("pat", summit, email="pat@example.com", created_at=when(1), updated_at=when(2))
    # A person whose email the organization "acme" also has (in another case): both stay.
    person("dana", summit, email="office@acme.example")
    omar = person("omar", summit, phone="(303) 555-0199")
    mia = person("mia", summit)  # primary contact of a live and of a deleted organization
    vic = person("vic", valley)

    def organization(key: str, tenant: Any, **fields: Any) -> Any:
        org = Organization.objects.create(tenant=tenant, **fields)
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
        legacy.projects[key] = Project.objects.create(tenant=tenant, name=key, **fields).pk

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
