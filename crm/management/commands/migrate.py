"""Django's `migrate`, letting long data migrations report their progress.

A RunPython function receives only `(apps, schema_editor)`: Django gives it neither the
command's verbosity nor its output stream. While this command runs, the connection it
migrates carries `migrate_stdout`: the command's output at verbosity >= 1, else None.
Migrations read it with `getattr(schema_editor.connection, "migrate_stdout", None)` (they
must not import app code), so `migrate -v 0` is quiet and `call_command(stdout=...)`
captures their lines like Django's own.
"""

from typing import Any

from django.core.management.commands import migrate
from django.db import connections


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        connection.migrate_stdout = self.stdout if options["verbosity"] >= 1 else None  # type: ignore[attr-defined]
        try:
            super().handle(*args, **options)
        finally:
            del connection.migrate_stdout  # type: ignore[attr-defined]
