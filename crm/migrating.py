"""Checks a migration runs before a plan that reverses it changes anything.

Reversing a migration unapplies every later one first. A migration whose reversal can be
refused (the organizations merge, when its backups are gone) would otherwise refuse only
after those later migrations were undone. Such a migration declares, on its `Migration`
class, `reverse_preflight = <function(connection)>` that raises a `CommandError` saying why;
`manage.py migrate` (and `crm.legacy.migrate_to`) call every one in the plan before its first
step, so a refusal leaves the database exactly as it was.
"""

from collections.abc import Iterable

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration

Plan = Iterable[tuple[Migration, bool]]


def reverse_preflight(connection: BaseDatabaseWrapper, plan: Plan) -> None:
    """Run the `reverse_preflight` of every migration the plan reverses, latest first."""
    for migration, backwards in plan:
        check = getattr(migration, "reverse_preflight", None)
        if backwards and check is not None:
            check(connection)
