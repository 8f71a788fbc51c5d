"""`manage.py import_legacy --from <postgres URL>`: a customer's old-system database into Ridgeline.

Exit status: 0 imported (or, with --dry-run, what would be imported was reported), 1 stopped
(--strict refused a row and rolled back its table, or the organizations merge refused),
2 cannot run (the source is unreachable or not the old system's, the target is not
migrated, another import is running): nothing was written.
"""

import json
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import Error as DatabaseError

from crm.db import use_owner_credentials
from legacy_import import source
from legacy_import.importer import BATCH, Run, StrictStop, import_lock, import_run, target_pending, tenants_for
from legacy_import.mapping import Report, run_key


class Command(BaseCommand):
    help = (
        "Import an old-system (Supabase) database: users, tenants, memberships, substatuses, contacts, "
        "organizations, projects, activities, AI conversations, saved filters and impersonation logs (as history), "
        "keeping every old uuid (legacy_ids); then the organizations merge. Idempotent and resumable; reads the "
        "source read-only."
    )
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="source_url", required=True, help="postgres:// URL of the old database.")
        parser.add_argument(
            "--tenant", action="append", default=[], help="Import only this subdomain (repeat for several)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Run the whole import and roll it back.")
        parser.add_argument(
            "--strict", action="store_true", help="Stop at the first refused row (its table rolls back)."
        )
        parser.add_argument("--report-json", type=Path, help="Also write the report as JSON to this file.")
        parser.add_argument("--batch-size", type=int, default=BATCH, help="Rows a batch (default: %(default)s).")

    def handle(
        self,
        *args: object,
        source_url: str,
        tenant: list[str],
        dry_run: bool,
        strict: bool,
        report_json: Path | None,
        batch_size: int,
        **options: object,
    ) -> None:
        use_owner_credentials("import_legacy")  # it writes every imported tenant's rows
        pending = target_pending()
        if pending:
            raise CommandError(
                f"import_legacy cannot run: the target database is not migrated ({len(pending)} migrations not "
                f"applied, first {pending[0]}); run `manage.py migrate` first. Nothing was written.",
                returncode=2,
            )
        try:
            old = source.connect(source_url)
            problems = source.missing(old)
            if problems:
                raise source.SourceError(
                    f"{source.without_password(source_url)} is not an old-system database: it lacks "
                    + ", ".join(problems)
                )
            tenants = tenants_for(old, tenant)
        except source.SourceError as error:
            raise CommandError(f"import_legacy cannot run: {error}. Nothing was written.", returncode=2) from error
        report = Report()
        run = Run(
            source=old,
            run_key=run_key(source.without_password(source_url), tenant),
            tenants=tenants,
            report=report,
            strict=strict,
            batch=batch_size,
            progress=self.stderr,
        )
        try:
            with import_lock() as locked:
                if not locked:
                    raise CommandError(
                        "import_legacy cannot run: another import is running on this database. Nothing was written.",
                        returncode=2,
                    )
                import_run(run, dry_run=dry_run, out=self.stdout)
        except StrictStop as stop:
            self.write_report(report, report_json)
            raise CommandError(
                f"--strict: stopped at a refused row, its table {run.table.name} was rolled back (the tables before "
                f"it stay imported; run again to continue): {stop}",
                returncode=1,
            ) from stop
        except (psycopg.Error, DatabaseError) as error:
            raise CommandError(f"import_legacy stopped: {error}", returncode=2) from error
        finally:
            old.close()
        self.write_report(report, report_json)

    def write_report(self, report: Report, path: Path | None) -> None:
        self.stdout.write(report.as_text())
        if path is not None:
            path.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
