"""Organizations merge, step 4 of 4: drop `organizations`; search and indexes cover companies.

The contacts search column now covers the company and the words of the website. PostgreSQL
cannot change a generated column's expression, so the column is dropped and added again
(a rewrite of contacts) and its GIN index rebuilt: on a million contacts this is most of
the merge's time. The indexes for `is_organization` and `contact_category` are built here,
after the data is in.

Reversing starts here (the last operation runs first), and refuses before anything changes
when the merge cannot be undone: its backups were dropped, company contacts were created
since (they would become nameless people), or rows outside the merge refer to the company
contacts it would remove.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.core.management.base import CommandError
from django.db import migrations, models

BACKUP_SCHEMA = "merge_backups"
SHOWN = 20

# References to company contacts that reversing takes care of: the column or table goes
# (company_contact, project_contacts), is emptied (merged_organizations), or, for projects
# linked to an organization, is restored from the backups.
HANDLED = {
    ("contacts", "company_contact_id"),
    ("project_contacts", "contact_id"),
    ("merged_organizations", "contact_id"),
}
COMPANIES = "SELECT contact_id FROM merged_organizations WHERE contact_id IS NOT NULL"
# NOT EXISTS, not NOT IN: NOT IN over a subquery larger than work_mem is checked row by row.
LATER_COMPANIES = """
SELECT c.id FROM contacts c
WHERE c.is_organization AND NOT EXISTS (SELECT 1 FROM merged_organizations m WHERE m.contact_id = c.id)
"""
NOT_RESTORED = f"""NOT EXISTS (
    SELECT 1 FROM {BACKUP_SCHEMA}.projects b WHERE b.id = x.id AND b.organization_id IS NOT NULL
)"""

REFERENCES = """
SELECT cl.relname, a.attname
FROM pg_constraint con
JOIN pg_class cl ON cl.oid = con.conrelid
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
WHERE con.contype = 'f' AND con.confrelid = 'contacts'::regclass
ORDER BY 1, 2
"""


class MergeIrreversible(CommandError):
    """`migrate` prints a CommandError as a message, without a traceback."""


def _ids(cursor, sql: str) -> tuple[int, str]:
    """How many rows `sql` selects and the first ids. Counted on its own first: with a LIMIT the
    planner prefers an id-ordered nested loop, slow on a large table when nothing matches."""
    cursor.execute(f"SELECT count(*) FROM ({sql}) found")
    count = cursor.fetchone()[0]
    if not count:
        return 0, ""
    cursor.execute(f"SELECT id FROM ({sql}) found(id) ORDER BY id LIMIT {SHOWN}")
    ids = [str(row_id) for (row_id,) in cursor.fetchall()]
    return count, ", ".join(ids) + (" ..." if count > len(ids) else "")


def problems(cursor) -> list[str]:
    cursor.execute("SELECT count(*) FROM merged_organizations")
    if cursor.fetchone()[0] == 0:
        return []  # nothing was merged: nothing to restore
    cursor.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename IN ('organizations', 'projects')",
        [BACKUP_SCHEMA],
    )
    if cursor.fetchone()[0] != 2:
        return [
            f"its backups (schema {BACKUP_SCHEMA}) were dropped (manage.py merge_backups drop): the legacy "
            "rows cannot be restored. Restore a database backup taken before the merge instead."
        ]
    found = []
    count, ids = _ids(cursor, LATER_COMPANIES)
    if count:
        found.append(
            f"{count} company contact(s) were created after the merge and would become nameless people "
            f"(ids {ids}): delete or purge them first"
        )
    cursor.execute(REFERENCES)
    for table, column in cursor.fetchall():
        if (table, column) in HANDLED:
            continue
        sql = f"SELECT x.id FROM {table} x WHERE x.{column} IN ({COMPANIES})"
        if table == "projects":
            sql += f" AND {NOT_RESTORED}"
        count, ids = _ids(cursor, sql)
        if count:
            found.append(
                f"{count} row(s) of {table} refer to company contacts the merge created, through {column} "
                f"(ids {ids}): reversing would remove those contacts; point the rows elsewhere first"
            )
    return found


def check_reversible(connection) -> None:
    """Refuse to reverse the merge when it cannot restore everything.

    `manage.py migrate` runs this before its plan changes anything (`reverse_preflight`
    below), so the later migrations a reversal undoes first are still in place when it
    refuses; the migration runs it again as its first reverse step.
    """
    with connection.cursor() as cursor:
        found = problems(cursor)
    if found:
        raise MergeIrreversible(
            "The organizations merge cannot be reversed; nothing was changed:\n" + "\n".join(f"- {p}" for p in found)
        )


def refuse_unless_reversible(apps, schema_editor) -> None:
    check_reversible(schema_editor.connection)


def regexp_replace(source, pattern, replacement):
    if isinstance(source, str):
        source = models.F(source)
    return models.Func(
        source,
        models.Value(pattern),
        models.Value(replacement),
        models.Value("g"),
        function="regexp_replace",
        output_field=models.TextField(),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0006_merge_organizations"),
        ("crm", "0007_remove_project_organization"),
    ]
    reverse_preflight = staticmethod(check_reversible)  # see crm/migrating.py

    lint_exemptions = {
        "table-rewrite": "the search column's expression changes (company and website): PostgreSQL can only "
        "drop and re-add a generated column, inside the merge's maintenance window",
        "non-concurrent-index": "built in the merge's maintenance window, after its data; CONCURRENTLY cannot "
        "run in the migration's transaction",
    }

    operations = [
        migrations.DeleteModel(name="Organization"),
        migrations.RemoveIndex(model_name="contact", name="contacts_search_gin"),
        migrations.RemoveField(model_name="contact", name="search"),
        migrations.AddField(
            model_name="contact",
            name="search",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector(
                    "first_name",
                    "last_name",
                    "company",
                    regexp_replace("email", "[[:punct:]]+", " "),
                    regexp_replace("phone", "[^0-9]+", " "),
                    regexp_replace("phone", "[^0-9]+", ""),
                    regexp_replace("mobile_phone", "[^0-9]+", " "),
                    regexp_replace("mobile_phone", "[^0-9]+", ""),
                    regexp_replace(regexp_replace("website", "^[[:alpha:]]+://(www[.])?", ""), "[[:punct:]]+", " "),
                    config="simple",
                ),
                help_text=(
                    "Full-text search over names, the company, the words of the email and of the website (without "
                    "its scheme and www) and the digits of the phones, grouped as written and run together (query "
                    "it with crm.search.prefix_search_query)."
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search"], name="contacts_search_gin"),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                models.F("tenant"),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("is_deleted", False), ("is_organization", True)),
                name="contacts_tenant_companies_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(fields=["tenant", "contact_category"], name="contacts_tenant_category_idx"),
        ),
        # Last, so that reversing runs it first.
        migrations.RunPython(migrations.RunPython.noop, refuse_unless_reversible, elidable=False),
    ]
