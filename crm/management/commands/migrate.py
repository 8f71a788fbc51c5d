"""Django's `migrate`, letting long data migrations report their progress, and running the
preflight checks of the migrations in its plan (crm/migrating.py) before it changes anything. It connects
as the tables' owner (MIGRATE_DATABASE_URL, see crm/db.py).

A RunPython function receives only `(apps, schema_editor)`: Django gives it neither the
command's verbosity nor its output stream. While this command runs, the connection it
migrates carries `migrate_stdout`: the command's output at verbosity >= 1, else None.
Migrations read it with `getattr(schema_editor.connection, "migrate_stdout", None)` (they
must not import app code), so `migrate -v 0` is quiet and `call_command(stdout=...)`
captures their lines like Django's own.

The plan is the one Django's `pre_migrate` signal carries: it is sent after the plan is
made and before its first step (see `crm/migrating.py`).
"""

from typing import Any

from django.core.management.commands import migrate
from django.db import connections
from django.db.models.signals import pre_migrate

from crm.db import use_owner_credentials
from crm.migrating import Plan, plan_preflight


class Command(migrate.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        use_owner_credentials("migrate", using=options["database"])  # the owner runs the migrations
        connection = connections[options["database"]]
        checked = False

        def preflight(*, plan: Plan | None = None, using: str, **kwargs: Any) -> None:
            nonlocal checked  # pre_migrate is sent once per app: check the plan once
            if plan is None or checked or using != connection.alias:
                return
            checked = True
            plan_preflight(connection, plan)

        connection.migrate_stdout = self.stdout if options["verbosity"] >= 1 else None  # type: ignore[attr-defined]
        pre_migrate.connect(preflight, weak=False, dispatch_uid="crm.migrate.plan_preflight")
        try:
            super().handle(*args, **options)
        finally:
            pre_migrate.disconnect(dispatch_uid="crm.migrate.plan_preflight")
            del connection.migrate_stdout  # type: ignore[attr-defined]
