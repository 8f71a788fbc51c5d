"""The one path for work across tenants under row-level security (issue 17).

Every tenant table lets a transaction see and write only the rows of the tenant it
published (`crm.actor.publish_actor`). Work that truly spans tenants (a superuser in the
admin, the beat tasks that scan every tenant, owner-level commands) runs inside
`cross_tenant(reason)`: one transaction with `app.cross_tenant` set for that transaction
only, and a log line saying why. Nothing turns the guard off for a connection or a process.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction

logger = logging.getLogger("crm.rls")


def publish_cross_tenant(reason: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Open the current transaction to every tenant's rows, logging why.

    Precondition: inside `transaction.atomic()` (the setting is transaction-local).
    """
    if not reason.strip():
        raise ValueError("cross-tenant work must say why (reason=...)")
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("publish_cross_tenant() must run inside transaction.atomic().")
    logger.info("cross-tenant: %s", reason)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.cross_tenant', 'on', true)")


@contextmanager
def cross_tenant(reason: str, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """A transaction (a savepoint inside one) that sees and writes every tenant's rows;
    `reason` is logged. Inside an outer transaction (a request's), the outer one is closed to
    other tenants again when the block ends."""
    connection = connections[using]
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.cross_tenant', true)")
            (before,) = cursor.fetchone()
        publish_cross_tenant(reason, using=using)
        try:
            yield
        finally:
            if not connection.needs_rollback:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('app.cross_tenant', %s, true)", [before or ""])
