"""`manage.py seed_demo` (`make run` calls it): load the demo tenant "Summit Roofing", or bring
one an earlier version loaded up to date (crm/demo/: the legacy rehearsal, then every app's
demo steps). Deterministic and idempotent: a second run changes nothing and says so."""

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.db import use_owner_credentials
from crm.demo import DEMO_PASSWORD, OPS_USERNAME, STAFF, TENANT_NAME, TENANT_SUBDOMAIN, demo_steps, staff_username
from crm.demo.runner import demo_load
from crm.models import User


class Command(BaseCommand):
    help = (
        f"Load the demo tenant {TENANT_NAME!r} (subdomain {TENANT_SUBDOMAIN}): staff of every role, contacts, "
        "legacy organizations, projects and activities written as the old system held them and upgraded by "
        "migrate (organizations merge included), then every app's demo rows through its services. On a "
        "database holding the demo, applies the pending migrations and adds only the missing apps' rows. "
        "Refuses a database that holds other tenants."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even when DEBUG is off (the demo users are staff with a published password).",
        )

    def handle(self, *args: Any, force: bool, verbosity: int, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates staff users whose password is published in the README, so it runs only "
                "with DEBUG on. Pass --force to seed this database anyway."
            )
        use_owner_credentials("seed_demo")  # it migrates, then writes every tenant's demo rows
        # The stream itself, not self.stdout: migrate's output goes through it as well.
        demo_load(steps=demo_steps(), stdout=options.get("stdout") or sys.stdout, verbosity=verbosity)
        self.write_logins()

    def write_logins(self) -> None:
        usernames = [(role.value, staff_username(role)) for role, *_ in STAFF] + [("superuser", OPS_USERNAME)]
        users = User.objects.in_bulk([username for _, username in usernames], field_name="username")
        lines = [f"Demo logins (password {DEMO_PASSWORD!r}; the username or the email works):"]
        lines += [
            f"  {label:<10} {username:<15} {users[username].email}"
            for label, username in usernames
            if username in users
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
