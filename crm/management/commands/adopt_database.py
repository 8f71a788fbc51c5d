"""`manage.py adopt_database`: take over a database the old system created.

Exit status: 0 adopted (or, with --dry-run, adoptable; or adopted before), 1 refused
because the schema differs from the legacy state (nothing is recorded), 2 cannot run.
"""

import sys

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS
from django.db import Error as DatabaseError

from crm.db import use_owner_credentials
from crm.schema.check import AlreadyAdopted, NotLegacy, adoption_check, label, record_applied
from crm.schema.report import as_text
from crm.schema.shadow import ShadowError, sigterm_as_interrupt


class Command(BaseCommand):
    help = (
        "Compare a database created outside Django with the legacy state (the initial migrations) and, "
        "only if they match, record those migrations as applied; `migrate` then takes it the rest of the way."
    )
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: %(default)s).")
        parser.add_argument("--dry-run", action="store_true", help="Compare and print what would be recorded.")

    def handle(self, *args: object, database: str, dry_run: bool, **options: object) -> None:
        use_owner_credentials("adopt_database", using=database)
        try:
            with sigterm_as_interrupt():
                result, plan = adoption_check(alias=database)
        except AlreadyAdopted as done:
            self.stdout.write(f"Nothing to do: {done}")
            return
        except NotLegacy as error:
            raise CommandError(f"adopt_database refused: {error}", returncode=2) from error
        except KeyboardInterrupt:
            raise CommandError("adopt_database: interrupted; nothing was recorded.", returncode=2) from None
        except (ShadowError, DatabaseError, psycopg.Error) as error:
            raise CommandError(f"adopt_database cannot run: {error}", returncode=2) from error

        self.stdout.write(as_text(result, against=f"the legacy state ({len(plan)} migrations)"))
        if not result.clean:
            self.stdout.write("Refused: the database differs from the legacy state; nothing was recorded.")
            sys.exit(1)
        names = "\n".join(f"  {label(node)}" for node in plan)
        if dry_run:
            self.stdout.write(f"The schema matches; --dry-run: would record {len(plan)} migrations as applied:")
            self.stdout.write(names)
            return
        record_applied(alias=database, plan=plan)
        self.stdout.write(f"Recorded {len(plan)} migrations as applied:")
        self.stdout.write(names)
        self.stdout.write("Next: `manage.py migrate` applies the rest, then `manage.py schema_check`.")
