"""Organizations merge, step 1 of 4: refuse to start on legacy data the merge cannot carry over.

The old application let a project point at another tenant's organization and an
organization name another tenant's contact as its primary contact. The merge would turn
those into links across tenants, so it stops here, before anything changes, and lists the
offending rows; ops fix them and run `migrate` again.

`manage.py merge_preflight` runs `preflight()` from this module (loaded through the
migration loader), so the report ops read before `migrate` is the one `migrate` acts on.
The module imports no app code, as every migration.

Steps 2-4: 0005_merge_schema (columns, project_contacts), 0006_merge_organizations (the data,
validated in the same transaction), 0007_merge_finish (drops the legacy table, search covers
company and website).
"""

import time
from dataclasses import dataclass

from django.core.management.base import CommandError
from django.db import migrations

SHOWN = 20  # offending rows listed per check


@dataclass(frozen=True)
class Check:
    name: str
    problem: str  # "{count} <what is wrong>"
    sql: str  # the offending records: (sort key, description)


CHECKS = [
    Check(
        "project_organization_other_tenant",
        "{count} project(s) linked to an organization of another tenant",
        """
        SELECT p.id,
               format('project %s (tenant %s) -> organization %s (tenant %s)', p.id, p.tenant_id, o.id, o.tenant_id)
        FROM projects p JOIN organizations o ON o.id = p.organization_id
        WHERE o.tenant_id <> p.tenant_id
        """,
    ),
    Check(
        "organization_primary_contact_other_tenant",
        "{count} organization(s) whose primary contact belongs to another tenant",
        """
        SELECT o.id,
               format('organization %s (tenant %s) -> primary contact %s (tenant %s)', o.id, o.tenant_id, c.id, c.tenant_id)
        FROM organizations o JOIN contacts c ON c.id = o.primary_contact_id
        WHERE c.tenant_id <> o.tenant_id
        """,
    ),
    Check(
        "leftover_backups",
        "{count} backup table(s) of an earlier merge in schema merge_backups",
        """
        SELECT c.relname, format('merge_backups.%s', c.relname)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'merge_backups' AND c.relkind = 'r'
        """,
    ),
]


@dataclass(frozen=True)
class Problem:
    check: str
    summary: str
    rows: list[str]

    def __str__(self) -> str:
        lines = [f"- {self.check}: {self.summary}"]
        lines += [f"    {row}" for row in self.rows]
        return "\n".join(lines)


class MergeRefused(CommandError):
    """`migrate` prints a CommandError as a message, without a traceback."""


def preflight(cursor) -> list[Problem]:
    """Every problem found in the legacy data (empty when the merge may start)."""
    problems = []
    for check in CHECKS:
        # Counted on its own: with a LIMIT the planner prefers an ordered nested loop, slow on
        # large tables when, as it should, it finds nothing.
        cursor.execute(f"SELECT count(*) FROM ({check.sql}) offending")
        count = cursor.fetchone()[0]
        if not count:
            continue
        cursor.execute(f"SELECT description FROM ({check.sql}) offending(key, description) ORDER BY key LIMIT {SHOWN}")
        shown = [description for (description,) in cursor.fetchall()]
        if count > len(shown):
            shown.append(f"... and {count - len(shown)} more")
        problems.append(Problem(check.name, check.problem.format(count=count), shown))
    return problems


def report(problems: list[Problem]) -> str:
    return "\n".join(
        [
            f"The organizations merge cannot start: {len(problems)} problem(s) in the legacy data. "
            "Nothing was changed; fix these rows, then run migrate again (manage.py merge_preflight "
            "lists them without migrating).",
            *map(str, problems),
        ]
    )


def refuse_problems(connection) -> None:
    """`manage.py migrate` runs this before its plan changes anything (`forward_preflight`):
    migrations the plan applies before this one would otherwise be applied when it refuses."""
    with connection.cursor() as cursor:
        problems = preflight(cursor)
    if problems:
        raise MergeRefused(report(problems))


def check_legacy_data(apps, schema_editor) -> None:
    """Refuse to start on legacy links across tenants (merge_preflight lists them)."""
    began = time.monotonic()
    refuse_problems(schema_editor.connection)
    out = getattr(schema_editor.connection, "migrate_stdout", None)
    if out is not None:  # between Django's "Applying ..." and its " OK"
        out.write(f"\n    legacy data checked: no problem ({time.monotonic() - began:.2f} s)\n ", ending="")


class Migration(migrations.Migration):
    # After the substatus app: the merge runs with its triggers installed, as in production.
    dependencies = [
        ("contacts", "0003_contact_substatus"),
        ("crm", "0005_project_substatus"),
        ("substatus", "0003_default_catalog"),
    ]

    operations = [migrations.RunPython(check_legacy_data, migrations.RunPython.noop, elidable=False)]

    forward_preflight = staticmethod(refuse_problems)
