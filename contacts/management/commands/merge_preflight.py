"""`manage.py merge_preflight`: will `migrate` be able to run the organizations merge?"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from contacts.merge import merge_applied, merge_module
from crm.legacy import MERGE_START


class Command(BaseCommand):
    help = (
        "Check the legacy data with the checks the organizations merge runs before it starts (contacts "
        "migration 0004). Prints the same report as migrate and exits non-zero when the merge would refuse."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database to check.")

    def handle(self, *args: Any, database: str, **options: Any) -> None:
        connection = connections[database]
        if merge_applied(connection):
            self.stdout.write("The organizations merge has already run on this database: nothing to check.")
            return
        preflight = merge_module(connection, MERGE_START)
        with connection.cursor() as cursor:
            problems = preflight.preflight(cursor)
            cursor.execute(
                "SELECT (SELECT count(*) FROM organizations), "
                "(SELECT count(*) FROM projects WHERE organization_id IS NOT NULL)"
            )
            organizations, linked = cursor.fetchone()
        if problems:
            raise CommandError(preflight.report(problems))
        self.stdout.write(
            self.style.SUCCESS(
                f"The organizations merge can start: {organizations} organizations and {linked} projects linked "
                "to them, no problem found."
            )
        )
