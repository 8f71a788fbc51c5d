"""`manage.py schema_check`: is the database what its migrations say it is?

Exit status: 0 clean, 1 drift, 2 the check could not run (the reason is printed).
"""

import sys

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.db import Error as DatabaseError

from crm.db import use_owner_credentials
from crm.schema.check import schema_check
from crm.schema.comparison import UNTRACKED
from crm.schema.report import as_json, as_text
from crm.schema.shadow import ShadowError, sigterm_as_interrupt


class Command(BaseCommand):
    help = (
        "Compare the database with a shadow database built from the migrations it records as applied, "
        "and django_migrations with the migrations in the code. Exit 0 when clean, 1 on drift, "
        "2 when the check cannot run. Objects of other tools: the SCHEMA_CHECK_IGNORE setting."
    )
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: %(default)s).")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument(
            "--allow-unapplied",
            action="store_true",
            help="Migrations in the code that are not applied yet are listed but do not count as drift "
            "(for a check before `migrate`).",
        )

    def handle(self, *args: object, database: str, format: str, allow_unapplied: bool, **options: object) -> None:
        use_owner_credentials("schema_check", using=database)
        try:
            with sigterm_as_interrupt():
                result = schema_check(alias=database)
        except KeyboardInterrupt:
            raise CommandError("schema_check: interrupted; the shadow database was dropped.", returncode=2) from None
        except (ShadowError, DatabaseError, psycopg.Error) as error:
            raise CommandError(f"schema_check cannot run: {error}", returncode=2) from error

        drift = (
            not result.schema_clean
            or bool(result.applied_not_in_code)
            or (bool(result.not_applied) and not allow_unapplied)
        )
        if format == "json":
            self.stdout.write(as_json(result))
        else:
            self.stdout.write(as_text(result, against=f"its {result.migrations} applied migrations"))
            count = (
                len(result.comparison.differences)
                + len(result.applied_not_in_code)
                + (0 if allow_unapplied else len(result.not_applied))
            )
            summary = f"Drift: {count} difference{'s' if count != 1 else ''}." if drift else "No drift."
            self.stdout.write(f"{summary} ({result.seconds:.1f} s)")
            if not result.migrations and result.comparison.of_status(UNTRACKED):
                self.stdout.write(
                    "The database records no migrations. If the old system created it, see "
                    "`manage.py adopt_database --dry-run` (docs/operations.md, adopting a database)."
                )
        if drift:
            sys.exit(1)
