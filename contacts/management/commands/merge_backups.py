"""`manage.py merge_backups list | drop --older-than 7d --yes`: the organizations merge's backups."""

import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from contacts.merge import Backups, merge_applied, merge_backups_drop, merge_backups_get, merge_reverse_command
from crm.db import use_owner_credentials

_DURATION = re.compile(r"([0-9]{1,5})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def duration(value: str) -> timedelta:
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ValueError(value)
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def age(delta: timedelta) -> str:
    if delta >= timedelta(days=1):
        return f"{delta.days} day(s)"
    if delta >= timedelta(hours=1):
        return f"{delta.seconds // 3600} hour(s)"
    return f"{delta.seconds // 60} minute(s)"


class Command(BaseCommand):
    help = (
        "List or drop the backups the organizations merge keeps (schema merge_backups) so that it can be "
        "reversed. Dropping them makes the merge irreversible: it needs --yes and drops all of them at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Show the backup tables, their rows and their age.")
        drop = actions.add_parser("drop", help="Drop every backup table, if the backups are old enough.")
        drop.add_argument(
            "--older-than",
            required=True,
            type=duration,
            metavar="AGE",
            help="Drop only backups at least this old: 7d, 12h or 30m.",
        )
        drop.add_argument("--yes", action="store_true", help="Confirm: the merge can no longer be reversed.")

    def handle(self, *args: Any, action: str, database: str, **options: Any) -> None:
        use_owner_credentials("merge_backups", using=database)  # only the owner reads the backups
        connection = connections[database]
        with transaction.atomic(using=database):
            backups = merge_backups_get(connection)
            if backups is None:
                self.stdout.write(self.none_message(connection))
                return
            if action == "list":
                self.write_list(backups, reverse=merge_reverse_command())
            else:
                self.drop(
                    backups,
                    connection=connection,
                    reverse=merge_reverse_command(),
                    older_than=options["older_than"],
                    confirmed=options["yes"],
                )

    def none_message(self, connection: Any) -> str:
        if merge_applied(connection):
            return (
                "No organizations merge backups: they were dropped (or the merge found no organizations to back "
                "up). A merge whose backups were dropped can no longer be reversed."
            )
        return "No organizations merge backups: the merge has not run on this database."

    def write_list(self, backups: Backups, *, reverse: str) -> None:
        taken = timezone.now() - backups.created_at
        lines = [
            f"Organizations merge backups in schema {backups.schema}, taken {backups.created_at:%Y-%m-%d %H:%M %Z} "
            f"({age(taken)} ago) by {backups.migration}:"
        ]
        width = max(len(table.name) for table in backups.tables)
        lines += [
            f"  {backups.schema}.{table.name:<{width}}  {table.rows:>9} rows  {table.size:>8}  "
            f"{table.primary_key or 'no primary key'}"
            for table in backups.tables
        ]
        lines.append(
            f"While they exist the merge can be reversed ({reverse}). Drop them, all at once, when you are "
            "satisfied: manage.py merge_backups drop --older-than 7d --yes"
        )
        self.stdout.write("\n".join(lines))

    def drop(self, backups: Backups, *, connection: Any, reverse: str, older_than: timedelta, confirmed: bool) -> None:
        taken = timezone.now() - backups.created_at
        tables = ", ".join(f"{backups.schema}.{table.name}" for table in backups.tables)
        if taken < older_than:
            self.stdout.write(
                f"The organizations merge backups are {age(taken)} old, not older than {age(older_than)}: "
                "nothing dropped."
            )
            return
        if not confirmed:
            raise CommandError(
                f"Dropping the organizations merge backups ({tables}) makes the merge irreversible: "
                f"`{reverse}` will refuse afterwards. Run again with --yes to drop them."
            )
        merge_backups_drop(connection)
        self.stdout.write(
            self.style.SUCCESS(
                f"Dropped {tables}. The organizations merge can no longer be reversed (migrate refuses to)."
            )
        )
