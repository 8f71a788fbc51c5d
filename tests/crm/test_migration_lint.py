"""lint_migrations: the project's migrations pass, and each kind of bad migration is named."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently
from django.core.management import call_command
from django.db import migrations, models
from django.db.migrations.state import ModelState, ProjectState
from django.db.models.functions import Lower

from crm.schema.lint import (
    EXEMPTION,
    INDEX,
    IRREVERSIBLE,
    NOT_NULL,
    REWRITE,
    SCAN,
    TENANT_ROW_SECURITY,
    TRANSACTION,
    Finding,
    lint_migration,
    row_security_findings,
)

ROOT = Path(__file__).resolve().parents[2]
LARGE = {"contacts"}


def test_the_project_migrations_pass():
    out = io.StringIO()

    call_command("lint_migrations", stdout=out)

    assert out.getvalue().splitlines()[-1].startswith("Migrations OK (")


def test_a_bad_migration_fails_the_command():
    result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "lint_migrations"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.fixtures.lint_settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    # Each migration's block, in migration order (other apps' exempt findings may come between).
    assert (
        "lint_app.0001_city_index\n"
        "  irreversible: RunSQL has no reverse_sql\n"
        "  non-concurrent-index: RunSQL builds an index on contacts without CONCURRENTLY\n"
    ) in result.stdout
    assert "lint_app\n  missing-migration: models changed without a migration: Create model Visit\n" in result.stdout
    assert re.fullmatch(r"\d+ problems \(\d+ exempt\)\. Fix the migration, .*", result.stdout.splitlines()[-1])


def state_before() -> ProjectState:
    """A large table (contacts) and a small one (notes), created by an earlier migration."""
    state = ProjectState()
    for name, table in (("Contact", "contacts"), ("Note", "notes")):
        migrations.CreateModel(
            name,
            fields=[
                ("id", models.BigAutoField(primary_key=True)),
                ("name", models.CharField(max_length=50)),
                ("nickname", models.CharField(max_length=50, null=True)),
                ("score", models.IntegerField(null=True)),
            ],
            options={"db_table": table},
        ).state_forwards("lintapp", state)
    return state


def lint(*operations, **exemptions) -> list[tuple[str, str, str]]:
    body: dict[str, Any] = {"operations": list(operations)}
    if exemptions:
        body["lint_exemptions"] = {check.replace("_", "-"): reason for check, reason in exemptions.items()}
    migration = type("Migration", (migrations.Migration,), body)("0002_change", "lintapp")
    return [
        (finding.check, finding.message, finding.exempt_because)
        for finding in lint_migration(migration, state_before(), LARGE)
    ]


def forwards(apps, schema_editor):
    """A data step."""


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        pytest.param(
            migrations.AddField("contact", "kind", models.CharField(max_length=10, default="person")),
            [(NOT_NULL, "adds NOT NULL column contacts.kind without db_default")],
            id="not null without db_default",
        ),
        pytest.param(
            migrations.AddField("contact", "kind", models.CharField(max_length=10, db_default="person")),
            [],
            id="not null with db_default",
        ),
        pytest.param(
            migrations.AddField("contact", "kind", models.CharField(max_length=10, null=True)),
            [],
            id="nullable column",
        ),
        pytest.param(
            migrations.AddField("note", "kind", models.CharField(max_length=10, default="person")),
            [],
            id="small table",
        ),
        pytest.param(
            migrations.AddField(
                "contact",
                "search",
                models.GeneratedField(
                    expression=Lower("name"), output_field=models.CharField(max_length=50), db_persist=True
                ),
            ),
            [(REWRITE, "adds the stored generated column contacts.search: PostgreSQL rewrites every row")],
            id="stored generated column",
        ),
        pytest.param(
            migrations.AddField(
                "contact", "note", models.ForeignKey("lintapp.note", null=True, on_delete=models.SET_NULL)
            ),
            [
                (INDEX, "adds contacts.note with an index built without CONCURRENTLY"),
                (SCAN, "adds a foreign key on contacts.note, validated while writes wait"),
            ],
            id="foreign key",
        ),
        pytest.param(
            migrations.AlterField("contact", "name", models.CharField(max_length=100)),
            [],
            id="varchar widened",
        ),
        pytest.param(
            migrations.AlterField("contact", "name", models.TextField()),
            [],
            id="varchar to text",
        ),
        pytest.param(
            migrations.AlterField("contact", "name", models.CharField(max_length=20)),
            [(REWRITE, "changes the column contacts.name in a way that rewrites the table")],
            id="varchar narrowed",
        ),
        pytest.param(
            migrations.AlterField("contact", "score", models.BigIntegerField(null=True)),
            [(REWRITE, "changes the column contacts.score in a way that rewrites the table")],
            id="integer to bigint",
        ),
        pytest.param(
            migrations.AlterField("contact", "nickname", models.CharField(max_length=50)),
            [(SCAN, "sets contacts.nickname NOT NULL, which reads every row while writes wait")],
            id="set not null",
        ),
        pytest.param(
            migrations.AlterField("contact", "nickname", models.CharField(max_length=50, null=True, db_index=True)),
            [(INDEX, "indexes contacts.nickname without CONCURRENTLY")],
            id="db_index added",
        ),
        pytest.param(
            migrations.AddIndex("contact", models.Index(fields=["score"], name="contacts_score_idx")),
            [(INDEX, "builds index contacts_score_idx on contacts without CONCURRENTLY")],
            id="add index",
        ),
        pytest.param(
            AddIndexConcurrently("contact", models.Index(fields=["score"], name="contacts_score_idx")),
            [],
            id="add index concurrently",
        ),
        pytest.param(
            migrations.AddIndex("note", models.Index(fields=["score"], name="notes_score_idx")),
            [],
            id="index on a small table",
        ),
        pytest.param(
            migrations.AddConstraint(
                "contact", models.CheckConstraint(condition=models.Q(score__gte=0), name="contacts_score_positive")
            ),
            [(SCAN, "adds check constraint contacts_score_positive on contacts, validated while writes wait")],
            id="check constraint",
        ),
        pytest.param(
            migrations.AddConstraint("contact", models.UniqueConstraint(fields=["name"], name="contacts_name_unique")),
            [(INDEX, "adds constraint contacts_name_unique on contacts with an index built without CONCURRENTLY")],
            id="unique constraint",
        ),
        pytest.param(
            migrations.RunSQL("CREATE INDEX contacts_name_idx ON contacts (name)", "DROP INDEX contacts_name_idx"),
            [(INDEX, "RunSQL builds an index on contacts without CONCURRENTLY")],
            id="sql index",
        ),
        pytest.param(
            migrations.RunSQL(
                ["-- trigram search\nCREATE INDEX CONCURRENTLY contacts_name_idx ON public.contacts (name);"],
                "DROP INDEX CONCURRENTLY contacts_name_idx",
            ),
            [],
            id="sql index concurrently",
        ),
        pytest.param(
            migrations.RunSQL(
                "ALTER TABLE contacts ALTER COLUMN score TYPE bigint; SELECT 1",
                "ALTER TABLE contacts ALTER COLUMN score TYPE integer",
            ),
            [(REWRITE, "RunSQL changes a column type on contacts")],
            id="sql type change",
        ),
        pytest.param(
            migrations.RunSQL("ALTER TABLE contacts ADD COLUMN kind text NOT NULL", "ALTER TABLE contacts DROP kind"),
            [(NOT_NULL, "RunSQL adds a NOT NULL column without a default on contacts")],
            id="sql not null column",
        ),
        pytest.param(
            migrations.RunSQL(
                "ALTER TABLE contacts ADD COLUMN kind text NOT NULL DEFAULT 'person'",
                "ALTER TABLE contacts DROP kind",
            ),
            [],
            id="sql not null column with default",
        ),
        pytest.param(
            migrations.RunSQL(
                'ALTER TABLE "contacts" ADD CONSTRAINT contacts_score_positive CHECK (score >= 0) NOT VALID',
                "ALTER TABLE contacts DROP CONSTRAINT contacts_score_positive",
            ),
            [],
            id="sql constraint not valid",
        ),
        pytest.param(
            migrations.RunSQL(
                "ALTER TABLE contacts ALTER COLUMN name SET NOT NULL",
                "ALTER TABLE contacts ALTER COLUMN name DROP NOT NULL",
            ),
            [(SCAN, "RunSQL sets a column NOT NULL on contacts")],
            id="sql set not null",
        ),
        pytest.param(
            migrations.RunSQL("UPDATE notes SET score = 0"),
            [(IRREVERSIBLE, "RunSQL has no reverse_sql")],
            id="sql without reverse",
        ),
        pytest.param(
            migrations.RunPython(forwards),
            [(IRREVERSIBLE, "RunPython forwards has no reverse_code")],
            id="python without reverse",
        ),
        pytest.param(
            migrations.RunPython(forwards, migrations.RunPython.noop),
            [],
            id="python with reverse",
        ),
        pytest.param(
            migrations.SeparateDatabaseAndState(
                database_operations=[
                    migrations.RunSQL("CREATE INDEX contacts_name_idx ON contacts (name)", migrations.RunSQL.noop)
                ]
            ),
            [(INDEX, "RunSQL builds an index on contacts without CONCURRENTLY")],
            id="database operations of SeparateDatabaseAndState",
        ),
        pytest.param(
            migrations.RunSQL(
                "BEGIN; UPDATE notes SET score = 0; COMMIT;",
                "START TRANSACTION ISOLATION LEVEL SERIALIZABLE; UPDATE notes SET score = 1; END",
            ),
            [
                (TRANSACTION, "RunSQL forwards issues BEGIN inside the migration's transaction"),
                (TRANSACTION, "RunSQL forwards issues COMMIT inside the migration's transaction"),
                (TRANSACTION, "RunSQL in reverse issues START inside the migration's transaction"),
                (TRANSACTION, "RunSQL in reverse issues END inside the migration's transaction"),
            ],
            id="sql transaction control, on any table",
        ),
        pytest.param(
            migrations.RunSQL(
                [
                    "CREATE FUNCTION notes_touch() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN NEW.score := 0; RETURN NEW; END $$",
                    "DO $$ BEGIN PERFORM 1; END $$",
                    "SAVEPOINT step; ROLLBACK TO SAVEPOINT step; RELEASE SAVEPOINT step",
                ],
                "DROP FUNCTION notes_touch()",
            ),
            [],
            id="sql function bodies and savepoints are not transaction control",
        ),
    ],
)
def test_each_operation(operation, expected):
    assert lint(operation) == [(check, message, "") for check, message in expected]


def test_a_table_created_in_the_same_migration_is_not_large_yet():
    state = ProjectState()
    migration = migrations.Migration("0001_initial", "lintapp")
    migration.operations = [
        migrations.CreateModel(
            "Contact",
            fields=[("id", models.BigAutoField(primary_key=True)), ("score", models.IntegerField())],
            options={"db_table": "contacts"},
        ),
        migrations.AddIndex("contact", models.Index(fields=["score"], name="contacts_score_idx")),
        migrations.AddField("contact", "kind", models.CharField(max_length=10, default="person")),
    ]

    assert lint_migration(migration, state, LARGE) == []
    assert state.models["lintapp", "contact"].options["db_table"] == "contacts"


def test_an_exemption_with_a_reason_keeps_the_finding_visible():
    operation = migrations.AddIndex("contact", models.Index(fields=["score"], name="contacts_score_idx"))

    assert lint(operation, non_concurrent_index="built in the maintenance window") == [
        (INDEX, "builds index contacts_score_idx on contacts without CONCURRENTLY", "built in the maintenance window")
    ]


@pytest.mark.parametrize(
    ("exemptions", "expected"),
    [
        pytest.param(
            {"non_concurrent_index": " "},
            [
                (EXEMPTION, "exempts non-concurrent-index without saying why", ""),
                (INDEX, "builds index contacts_score_idx on contacts without CONCURRENTLY", ""),
            ],
            id="no reason",
        ),
        pytest.param(
            {"non_concurrent_index": "small", "slow_index": "typo"},
            [
                (
                    EXEMPTION,
                    "exempts unknown check 'slow-index'; the checks are irreversible, not-null-without-db-default, "
                    "table-rewrite, blocking-scan, non-concurrent-index, transaction-control",
                    "",
                ),
                (INDEX, "builds index contacts_score_idx on contacts without CONCURRENTLY", "small"),
            ],
            id="unknown check",
        ),
        pytest.param(
            {"non_concurrent_index": "small", "table_rewrite": "was needed once"},
            [
                (EXEMPTION, "exempts table-rewrite, which finds nothing here: remove it", ""),
                (INDEX, "builds index contacts_score_idx on contacts without CONCURRENTLY", "small"),
            ],
            id="stale exemption",
        ),
    ],
)
def test_a_bad_exemption_is_itself_a_problem(exemptions, expected):
    operation = migrations.AddIndex("contact", models.Index(fields=["score"], name="contacts_score_idx"))

    assert lint(operation, **exemptions) == expected


def test_findings_name_their_migration():
    migration = migrations.Migration("0002_change", "lintapp")
    migration.operations = [migrations.RunSQL("SELECT 1")]

    assert lint_migration(migration, state_before(), LARGE) == [
        Finding("lintapp.0002_change", IRREVERSIBLE, "RunSQL has no reverse_sql")
    ]


def test_a_tenant_table_without_row_security_is_named():
    state = ProjectState()
    fields = [
        ("id", models.BigAutoField(primary_key=True)),
        ("tenant", models.ForeignKey("crm.Tenant", models.CASCADE)),
    ]
    state.add_model(ModelState("contacts", "Probe", fields, {"db_table": "rls_probe"}))
    untenanted = [("id", models.BigAutoField(primary_key=True)), ("note", models.TextField())]
    state.add_model(ModelState("contacts", "Note", untenanted, {"db_table": "rls_note"}))

    assert list(row_security_findings(state, secured=set())) == [
        Finding(
            "contacts",
            TENANT_ROW_SECURITY,
            "rls_probe has a tenant_id column but no row-level security: add a migration with "
            'EnableTenantRowSecurity("rls_probe") (crm/migration_operations.py)',
        )
    ]
    assert list(row_security_findings(state, secured={"rls_probe"})) == []
