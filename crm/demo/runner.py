"""Build or bring up to date the demo tenant: the legacy rehearsal, `migrate`, then the apps' steps."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from django.core.management import call_command
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from crm.demo import TENANT_NAME, TENANT_SUBDOMAIN, DemoStep, demo_actor, demo_order
from crm.demo.rehearsal import rehearse
from crm.models import Tenant


@contextmanager
def _demo_lock() -> Iterator[None]:
    """Two `make run` at once: the second waits, then finds the demo built."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext('ridgeline.seed_demo'))")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('ridgeline.seed_demo'))")


def _tenant_subdomains() -> set[str]:
    """Subdomains of the tenants (read with SQL: the schema may be at any migration)."""
    if "tenants" not in connection.introspection.table_names():
        return set()
    with connection.cursor() as cursor:
        cursor.execute("SELECT subdomain FROM tenants")
        return {subdomain for (subdomain,) in cursor.fetchall()}


def _migrations_pending() -> bool:
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def demo_load(*, steps: Sequence[DemoStep], stdout: TextIO, verbosity: int = 1) -> None:
    """Build the demo tenant, or bring up to date one that an earlier version built.

    On a database without tenants: the legacy rehearsal (which runs `migrate`). On one holding
    the demo: `migrate` when migrations are pending. Then every step whose rows are missing, each
    in its own transaction, in dependency order, saying what it added; what exists is never
    changed. A database holding other tenants is refused, unchanged.
    """
    ordered = demo_order(steps)
    out = OutputWrapper(stdout)
    existing = f"Demo tenant {TENANT_NAME} ({TENANT_SUBDOMAIN}) already exists"
    with _demo_lock():
        subdomains = _tenant_subdomains()
        rehearsed = TENANT_SUBDOMAIN not in subdomains
        migrated = False
        if rehearsed:
            if subdomains:
                raise CommandError(
                    f"This database holds other tenants ({', '.join(sorted(subdomains))}) and no demo: the demo "
                    "is written as the old system held it and upgraded like a customer's database, which needs "
                    "a database without tenants. Point DATABASE_URL at a new database and run make run again."
                )
            tenant = rehearse(stdout=stdout, verbosity=verbosity)
        else:
            if _migrations_pending():
                out.write(f"{existing}; applying the migrations added since it was built:")
                call_command("migrate", interactive=False, verbosity=verbosity, stdout=stdout)
                migrated = True
            tenant = Tenant.objects.get(subdomain=TENANT_SUBDOMAIN)
        if rehearsed:
            header = "Added the demo rows of the apps' steps:"
        elif migrated:
            header = "Added the demo steps it lacked:"
        else:
            header = f"{existing}; added the demo steps it lacked:"
        actor = demo_actor(tenant)
        added = False
        for step in ordered:
            if step.present(tenant):
                continue
            with transaction.atomic():
                what = step.build(actor)
            if not added:
                out.write(header)
            out.write(f"  {step.name}: {what}")
            added = True
    if added or rehearsed:
        return
    out.write("Every demo step's rows were there: none added." if migrated else f"{existing}: nothing changed.")
