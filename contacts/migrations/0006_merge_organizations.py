"""Organizations merge, step 3 of 4: every organization becomes a company contact.

Set-based SQL in one transaction (no query per row, no row loaded into Python):

1. backups: the legacy rows, keyed (primary keys and tenant columns), in the schema
   `merge_backups`: every organization, and every project's id, tenant, contact and
   organization. `manage.py merge_backups` lists and drops them; reversing needs them.
2. company contacts: every organization, deleted or not (NULL counts as not deleted),
   becomes a contact with `is_organization`; `company` (its display name) is its name, every
   other field lands in the matching column (`default_assignee` -> `assigned_to`), `org_type`
   maps to `contact_category` and `stage` to `type`/`stage`. `merged_organizations` records
   organization id -> contact id with the original `org_type` and `stage`.
3. people: an organization's primary contact works for its company contact
   (`company_contact`, and `company` when empty).
4. projects: a project's contact is never replaced; one without gets the organization's
   primary contact, else its company contact. The company contact is recorded in
   `project_contacts` (role `organization`) whenever it is not the project's contact.
5. validation, in the same transaction: any mismatch raises, naming the check, the counts
   expected and found and up to 20 ids, and the whole migration rolls back.

History triggers see `app.change_source = 'migration'`. Each phase prints its row count and
time at verbosity >= 1 (through `migrate_stdout`, see crm/management/commands/migrate.py).
Reversing restores the organizations (ids, every field, timestamps), `projects.organization`
and every linked project's original contact from the backups, then removes what the merge
created; contacts 0007 refuses to start reversing when that cannot be done.
"""

import time
from dataclasses import dataclass

from django.core.management.base import CommandError
from django.db import migrations

BACKUP_SCHEMA = "merge_backups"
SHOWN = 20  # offending ids listed per failed check

CATEGORY_FOR_ORG_TYPE = """
    CASE o.org_type
        WHEN 'real_estate' THEN 'real_estate_agent'
        WHEN 'developer' THEN 'developer'
        WHEN 'property_manager' THEN 'property_manager'
        WHEN 'local_business' THEN 'local_business'
        ELSE 'other'
    END"""
TYPE_FOR_STAGE = "CASE o.stage WHEN 'active' THEN 'customer' WHEN 'inactive' THEN 'prospect' ELSE 'lead' END"
STAGE_FOR_STAGE = "CASE o.stage WHEN 'active' THEN 'won' WHEN 'inactive' THEN 'lost' ELSE 'new' END"

# The legacy columns, in the order of the organizations table (backups keep them all).
ORGANIZATION_COLUMNS = [
    "id",
    "tenant_id",
    "name",
    "org_type",
    "stage",
    "primary_contact_id",
    "address_street",
    "address_city",
    "address_state",
    "address_zip",
    "phone",
    "email",
    "website",
    "notes",
    "tags",
    "default_assignee_id",
    "is_deleted",
    "created_by_id",
    "created_at",
    "updated_at",
]
# organization column -> the company contact's column, carried over unchanged
CARRIED = {
    "tenant_id": "tenant_id",
    "name": "company",
    "address_street": "address_street",
    "address_city": "address_city",
    "address_state": "address_state",
    "address_zip": "address_zip",
    "phone": "phone",
    "email": "email",
    "website": "website",
    "notes": "notes",
    "default_assignee_id": "assigned_to_id",
    "created_by_id": "created_by_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
# contact column -> how it is computed from the organization `o`
COMPUTED = {
    "is_organization": "true",
    "tags": "COALESCE(o.tags, '{}')",
    "is_deleted": "COALESCE(o.is_deleted, false)",
    "contact_category": CATEGORY_FOR_ORG_TYPE,
    "type": TYPE_FOR_STAGE,
    "stage": STAGE_FOR_STAGE,
}

BACKUP = f"""
CREATE SCHEMA {BACKUP_SCHEMA};
COMMENT ON SCHEMA {BACKUP_SCHEMA} IS
    'Legacy rows kept by the organizations merge (contacts 0006) so that it can be reversed; '
    'see manage.py merge_backups.';
CREATE TABLE {BACKUP_SCHEMA}.info AS
    SELECT now() AS created_at, 'contacts.0006_merge_organizations'::text AS migration;
ALTER TABLE {BACKUP_SCHEMA}.info ADD PRIMARY KEY (migration);
CREATE TABLE {BACKUP_SCHEMA}.organizations AS SELECT {", ".join(ORGANIZATION_COLUMNS)} FROM organizations;
ALTER TABLE {BACKUP_SCHEMA}.organizations ADD PRIMARY KEY (id);
CREATE TABLE {BACKUP_SCHEMA}.projects AS SELECT id, tenant_id, contact_id, organization_id FROM projects;
ALTER TABLE {BACKUP_SCHEMA}.projects ADD PRIMARY KEY (id);
"""

# Rows inserted with explicit ids (an import, a restore) can leave the contacts sequence
# behind the highest id: move it past it (never back) before drawing ids from it.
SEQUENCE = """
SELECT setval(
    pg_get_serial_sequence('contacts', 'id'),
    GREATEST(nextval(pg_get_serial_sequence('contacts', 'id')), (SELECT COALESCE(max(id), 0) FROM contacts))
)
"""

# Contact ids are drawn from the contacts sequence first, so organization -> contact is
# known without matching rows back by their values.
MAP = """
INSERT INTO merged_organizations (organization_id, tenant_id, contact_id, org_type, stage, merged_at)
SELECT o.id, o.tenant_id, nextval(pg_get_serial_sequence('contacts', 'id')), o.org_type, o.stage, now()
FROM organizations o
ORDER BY o.id
"""

COMPANIES = f"""
INSERT INTO contacts (id, {", ".join([*CARRIED.values(), *COMPUTED])})
SELECT m.contact_id, {", ".join([*(f"o.{column}" for column in CARRIED), *COMPUTED.values()])}
FROM organizations o JOIN merged_organizations m ON m.organization_id = o.id
"""

# A person named primary contact by several organizations works for the first live one.
PEOPLE = """
UPDATE contacts p
SET company_contact_id = pick.contact_id, company = CASE WHEN p.company = '' THEN pick.name ELSE p.company END
FROM (
    SELECT DISTINCT ON (o.primary_contact_id) o.primary_contact_id, m.contact_id, o.name
    FROM organizations o JOIN merged_organizations m ON m.organization_id = o.id
    WHERE o.primary_contact_id IS NOT NULL
    ORDER BY o.primary_contact_id, COALESCE(o.is_deleted, false), o.id
) pick
WHERE p.id = pick.primary_contact_id
"""

PROJECT_CONTACTS = """
UPDATE projects p
SET contact_id = COALESCE(o.primary_contact_id, m.contact_id)
FROM organizations o JOIN merged_organizations m ON m.organization_id = o.id
WHERE p.organization_id = o.id AND p.contact_id IS NULL
"""

PROJECT_PARTIES = """
INSERT INTO project_contacts (tenant_id, project_id, contact_id, role, created_at)
SELECT p.tenant_id, p.id, m.contact_id, 'organization', now()
FROM projects p JOIN merged_organizations m ON m.organization_id = p.organization_id
WHERE p.contact_id IS DISTINCT FROM m.contact_id
"""


@dataclass(frozen=True)
class Validation:
    """`offenders` selects the ids of the rows that break the rule; `expected` counts the rows it covers."""

    name: str
    rule: str
    expected: str
    offenders: str


VALIDATIONS = [
    Validation(
        "organizations_merged",
        "organizations (deleted ones included) that became a company contact",
        "SELECT count(*) FROM organizations",
        """
        SELECT o.id FROM organizations o
        LEFT JOIN merged_organizations m ON m.organization_id = o.id
        LEFT JOIN contacts c ON c.id = m.contact_id AND c.is_organization
        WHERE c.id IS NULL
        """,
    ),
    Validation(
        "company_fields",
        "organizations whose every field landed in their company contact",
        "SELECT count(*) FROM organizations",
        f"""
        SELECT o.id FROM organizations o
        JOIN merged_organizations m ON m.organization_id = o.id
        JOIN contacts c ON c.id = m.contact_id
        WHERE {" OR ".join(f"c.{contact} IS DISTINCT FROM o.{legacy}" for legacy, contact in CARRIED.items())}
           OR {" OR ".join(f"c.{contact} IS DISTINCT FROM {value}" for contact, value in COMPUTED.items())}
           OR m.tenant_id IS DISTINCT FROM o.tenant_id
           OR m.org_type IS DISTINCT FROM o.org_type OR m.stage IS DISTINCT FROM o.stage
        """,
    ),
    Validation(
        "primary_contacts_linked",
        "primary contacts working for one of their organizations' company contacts",
        "SELECT count(DISTINCT primary_contact_id) FROM organizations",
        """
        SELECT DISTINCT o.primary_contact_id FROM organizations o
        JOIN contacts p ON p.id = o.primary_contact_id
        WHERE p.company_contact_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM organizations o2 JOIN merged_organizations m2 ON m2.organization_id = o2.id
            WHERE o2.primary_contact_id = p.id AND m2.contact_id = p.company_contact_id
        )
        """,
    ),
    Validation(
        "project_links_reachable",
        "projects linked to an organization that reach its company contact (contact or project_contacts)",
        "SELECT count(*) FROM projects WHERE organization_id IS NOT NULL",
        """
        SELECT p.id FROM projects p
        JOIN merged_organizations m ON m.organization_id = p.organization_id
        WHERE p.contact_id IS DISTINCT FROM m.contact_id AND NOT EXISTS (
            SELECT 1 FROM project_contacts pc
            WHERE pc.project_id = p.id AND pc.contact_id = m.contact_id AND pc.role = 'organization'
        )
        """,
    ),
    Validation(
        "project_contacts_kept",
        "projects still there with their organization and contact, a contact added only where none was",
        f"SELECT count(*) FROM {BACKUP_SCHEMA}.projects",
        f"""
        SELECT b.id FROM {BACKUP_SCHEMA}.projects b LEFT JOIN projects p ON p.id = b.id
        WHERE p.id IS NULL
           OR p.organization_id IS DISTINCT FROM b.organization_id
           OR (b.contact_id IS NOT NULL AND p.contact_id IS DISTINCT FROM b.contact_id)
           OR (b.organization_id IS NULL AND p.contact_id IS DISTINCT FROM b.contact_id)
        """,
    ),
    Validation(
        "projects_given_a_contact",
        "projects without a contact, linked to an organization, given its primary contact or else its company",
        f"SELECT count(*) FROM {BACKUP_SCHEMA}.projects WHERE contact_id IS NULL AND organization_id IS NOT NULL",
        f"""
        SELECT b.id FROM {BACKUP_SCHEMA}.projects b
        JOIN projects p ON p.id = b.id
        JOIN organizations o ON o.id = b.organization_id
        JOIN merged_organizations m ON m.organization_id = o.id
        WHERE b.contact_id IS NULL AND p.contact_id IS DISTINCT FROM COALESCE(o.primary_contact_id, m.contact_id)
        """,
    ),
    Validation(
        "company_contacts_same_tenant",
        "people working for a company contact of their own tenant",
        "SELECT count(*) FROM contacts WHERE company_contact_id IS NOT NULL",
        """
        SELECT p.id FROM contacts p JOIN contacts c ON c.id = p.company_contact_id
        WHERE c.tenant_id <> p.tenant_id OR NOT c.is_organization
        """,
    ),
    Validation(
        "projects_same_tenant",
        "projects linked to an organization whose organization and contact are of the project's tenant",
        "SELECT count(*) FROM projects WHERE organization_id IS NOT NULL",
        """
        SELECT p.id FROM projects p
        JOIN merged_organizations m ON m.organization_id = p.organization_id
        LEFT JOIN contacts c ON c.id = p.contact_id
        WHERE m.tenant_id <> p.tenant_id OR c.tenant_id <> p.tenant_id
        """,
    ),
    Validation(
        "project_parties_same_tenant",
        "project_contacts rows whose project and contact are of the row's tenant",
        "SELECT count(*) FROM project_contacts",
        """
        SELECT pc.id FROM project_contacts pc
        JOIN projects p ON p.id = pc.project_id JOIN contacts c ON c.id = pc.contact_id
        WHERE pc.tenant_id <> p.tenant_id OR pc.tenant_id <> c.tenant_id
        """,
    ),
]


# Legacy references to rows purged since the merge come back as NULL, as the old app's
# ON DELETE SET NULL would have left them.
PURGEABLE = {"primary_contact_id": "contacts", "default_assignee_id": "users", "created_by_id": "users"}


def _restored(column: str, table: str | None) -> str:
    return f"b.{column}" if table is None else f"(SELECT t.id FROM {table} t WHERE t.id = b.{column})"


RESTORE_ORGANIZATIONS = f"""
INSERT INTO organizations ({", ".join(ORGANIZATION_COLUMNS)})
SELECT {", ".join(_restored(column, PURGEABLE.get(column)) for column in ORGANIZATION_COLUMNS)}
FROM {BACKUP_SCHEMA}.organizations b
"""

# Only projects the merge could change (those linked to an organization) are restored:
# later edits of any other project stay.
RESTORE_PROJECTS = f"""
UPDATE projects p
SET organization_id = b.organization_id, contact_id = {_restored("contact_id", "contacts")}
FROM {BACKUP_SCHEMA}.projects b
WHERE p.id = b.id AND b.organization_id IS NOT NULL
"""


class MergeFailed(CommandError):
    """`migrate` prints a CommandError as a message, without a traceback."""


class MergeIrreversible(CommandError):
    pass


class Progress:
    """Phase lines between Django's "Applying ..." and its " OK", when `migrate` shows them."""

    def __init__(self, schema_editor) -> None:
        self.out = getattr(schema_editor.connection, "migrate_stdout", None)
        self.began = time.monotonic()

    def phase(self, name: str, detail: str) -> None:
        now = time.monotonic()
        if self.out is not None:
            self.out.write(f"\n    {name:<18} {detail} ({now - self.began:.2f} s)", ending="")
        self.began = now

    def done(self) -> None:
        if self.out is not None:
            self.out.write("\n ", ending="")


def _execute(cursor, sql: str) -> int:
    cursor.execute(sql)
    return cursor.rowcount


def _count(cursor, sql: str) -> int:
    cursor.execute(sql)
    return cursor.fetchone()[0]


def _publish_source(cursor) -> None:
    """History triggers record these changes as the migration's (transaction-local settings)."""
    cursor.execute(
        "SELECT set_config('app.change_source', 'migration', true), "
        "set_config('app.change_reason', 'organizations merge', true)"
    )


def validate(cursor) -> None:
    """Raise MergeFailed naming every failed check; precondition: the merge ran in this transaction."""
    failures = []
    for check in VALIDATIONS:
        # Counted on its own: with a LIMIT the planner prefers an id-ordered nested loop, slow
        # over a million rows when, as it should, it finds nothing.
        broken = _count(cursor, f"SELECT count(*) FROM ({check.offenders}) bad")
        if not broken:
            continue
        cursor.execute(f"SELECT id FROM ({check.offenders}) bad(id) ORDER BY id LIMIT {SHOWN}")
        rows = cursor.fetchall()
        expected = _count(cursor, check.expected)
        found = expected - broken
        ids = ", ".join(str(row_id) for (row_id,) in rows) + (" ..." if broken > len(rows) else "")
        failures.append(f"- {check.name}: {check.rule}: expected {expected}, found {found}; ids: {ids}")
    if failures:
        raise MergeFailed(
            "The organizations merge failed its validation and was rolled back: nothing changed.\n"
            + "\n".join(failures)
        )


def merge(apps, schema_editor) -> None:
    """Organizations become company contacts: backups, links, validation, in one transaction."""
    progress = Progress(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        organizations = _count(cursor, "SELECT count(*) FROM organizations")
        if organizations == 0:
            progress.phase("organizations", "none: nothing to merge")
            progress.done()
            return
        _publish_source(cursor)
        # The mapping names contact ids before their contacts exist: foreign keys are
        # checked once the links are all written (SET CONSTRAINTS ALL IMMEDIATE below).
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        _execute(cursor, BACKUP)
        projects = _count(cursor, f"SELECT count(*) FROM {BACKUP_SCHEMA}.projects")
        progress.phase("backups", f"{organizations} organizations, {projects} projects in {BACKUP_SCHEMA}")
        _execute(cursor, SEQUENCE)
        _execute(cursor, MAP)
        companies = _execute(cursor, COMPANIES)
        progress.phase("company contacts", f"{companies} created")
        people = _execute(cursor, PEOPLE)
        progress.phase("people", f"{people} primary contacts linked to their company")
        given = _execute(cursor, PROJECT_CONTACTS)
        parties = _execute(cursor, PROJECT_PARTIES)
        progress.phase("projects", f"{given} given a contact, {parties} organizations recorded in project_contacts")
        # Check the re-pointed foreign keys now rather than at commit: a broken one fails
        # here, and the next migrations may alter these tables (even inside one transaction).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        progress.phase("foreign keys", "of every written row checked")
        validate(cursor)
        progress.phase("validation", f"{len(VALIDATIONS)} checks passed")
    progress.done()


def backups_present(cursor) -> bool:
    cursor.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename IN ('organizations', 'projects')",
        [BACKUP_SCHEMA],
    )
    return cursor.fetchone()[0] == 2


def unmerge(apps, schema_editor) -> None:
    """Restore organizations and linked projects from the backups; remove the company contacts.

    Precondition: contacts 0007's guard found the merge reversible (0007 runs backwards first).
    """
    progress = Progress(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        merged = _count(cursor, "SELECT count(*) FROM merged_organizations")
        if merged and not backups_present(cursor):
            raise MergeIrreversible(
                f"The organizations merge cannot be reversed: its backups (schema {BACKUP_SCHEMA}) were dropped."
            )
        if merged == 0:
            progress.phase("organizations", "none were merged: nothing to restore")
            progress.done()
            return
        _publish_source(cursor)
        restored = _execute(cursor, RESTORE_ORGANIZATIONS)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('organizations', 'id'), COALESCE(max(id), 0) + 1, false) "
            "FROM organizations"
        )
        progress.phase("organizations", f"{restored} restored")
        projects = _execute(cursor, RESTORE_PROJECTS)
        progress.phase("projects", f"{projects} given back their organization and original contact")
        companies = "SELECT contact_id FROM merged_organizations WHERE contact_id IS NOT NULL"
        _execute(cursor, f"DELETE FROM project_contacts WHERE contact_id IN ({companies})")
        _execute(cursor, f"UPDATE contacts SET company_contact_id = NULL WHERE company_contact_id IN ({companies})")
        removed = _execute(
            cursor,
            "WITH merged AS (DELETE FROM merged_organizations RETURNING contact_id) "
            "DELETE FROM contacts WHERE id IN (SELECT contact_id FROM merged)",
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _execute(cursor, f"DROP SCHEMA IF EXISTS {BACKUP_SCHEMA} CASCADE")
        progress.phase("company contacts", f"{removed} removed, backups dropped")
    progress.done()


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0005_merge_schema"),
        ("crm", "0006_project_contacts"),
    ]

    operations = [migrations.RunPython(merge, unmerge, elidable=False)]
