"""Checks a migration runs before a plan that reverses it changes anything.

Reversing a migration unapplies every later one first. A migration whose reversal can be
refused (the organizations merge, when its backups are gone) would otherwise refuse only
after those later migrations were undone. Such a migration declares, on its `Migration`
class, `reverse_preflight = <function(connection)>` that raises a `CommandError` saying why;
`manage.py migrate` (and `crm.legacy.migrate_to`) call every one in the plan before its first
step, so a refusal leaves the database exactly as it was.

The same holds forwards: a plan applies, in its order, migrations that do not depend on one
that refuses to start (the organizations merge on legacy data it cannot carry over), so a
migration that checks the database before it changes anything declares `forward_preflight`
too, and it runs before the plan's first step when the database is already in the state the
migration starts from (every dependency applied: a database migrated from nothing has no
legacy data to refuse, and its tables may not exist yet).
"""

from collections.abc import Iterable

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.recorder import MigrationRecorder

Plan = Iterable[tuple[Migration, bool]]


def plan_preflight(connection: BaseDatabaseWrapper, plan: Plan) -> None:
    """Before a plan's first step: the `reverse_preflight` of every migration it reverses
    (latest first), then the `forward_preflight` of every migration it applies whose
    dependencies are all applied already (in the plan's order)."""
    steps = list(plan)
    for migration, backwards in steps:
        check = getattr(migration, "reverse_preflight", None)
        if backwards and check is not None:
            check(connection)
    forwards = [step for step, backwards in steps if not backwards and hasattr(step, "forward_preflight")]
    if not forwards:
        return
    applied = set(MigrationRecorder(connection).applied_migrations())
    for migration in forwards:
        if all(tuple(dependency) in applied for dependency in migration.dependencies):
            migration.forward_preflight(connection)
