"""The one path for work across tenants under row-level security (issue 17).

Every tenant table lets a transaction see and write only the rows of the tenant it
published (`crm.actor.publish_actor`). Work that truly spans tenants (a superuser in the
admin, the beat tasks that scan every tenant, owner-level commands) runs inside
`cross_tenant(reason)`: one transaction with `app.cross_tenant` set for that transaction
only, and a log line saying why. Nothing turns the guard off for a connection or a process.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

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


@contextmanager
def task_scope(task_name: str, tenant_id: int | None, *, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """A Celery task's reads: its tenant's rows when it was given one (`tenant_id=`), else (the
    beat tasks that scan every tenant, the runs they enqueue) every tenant's, logged with the
    task's name.

    Set on the task's connection for the task's duration (and reset after it), not in one
    transaction: the tasks keep their own transaction boundaries (a claim commits before its
    runs are enqueued, each run commits alone). The services' transactions still publish their
    actor, which wins inside them.
    """
    connection = connections[using]
    name, value = ("app.tenant_id", str(tenant_id)) if tenant_id is not None else ("app.cross_tenant", "on")
    if tenant_id is None:
        logger.info("cross-tenant: task %s", task_name)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
    try:
        yield
    finally:
        if connection.connection is not None and not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, '', false)", [name])


def publishes_url_tenant(view: Callable[..., Any]) -> Callable[..., Any]:
    """A public view of one tenant's rows, named by the URL's `tenant_id` (campaign links, the
    providers' webhooks, each checked by its token or signature): it runs in one transaction
    with that tenant published, so it reads and writes that tenant's rows only."""

    @wraps(view)
    def published(*args: Any, **kwargs: Any) -> Any:
        from crm.actor import Actor
        from crm.models import Tenant

        with Actor(tenant=Tenant(pk=kwargs["tenant_id"]), user=None).atomic():
            return view(*args, **kwargs)

    return published
