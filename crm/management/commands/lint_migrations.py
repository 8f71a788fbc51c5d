"""`manage.py lint_migrations`: refuse migrations that would hurt production.

Exit status: 0 when every finding is exempted with a reason, 1 otherwise.
"""

import sys
from itertools import groupby

from django.core.management.base import BaseCommand

from crm.schema.lint import lint


class Command(BaseCommand):
    help = (
        "Lint the project's migrations: irreversible operations, write-blocking rewrites, scans and "
        "non-concurrent index builds on the large tables (MIGRATION_LINT_LARGE_TABLES), model changes "
        "without a migration. A migration exempts itself with `lint_exemptions = {check: reason}`."
    )

    def handle(self, *args: object, **options: object) -> None:
        findings = lint()
        failing = [finding for finding in findings if not finding.exempt_because]
        for migration, group in groupby(findings, key=lambda finding: finding.migration):
            self.stdout.write(migration)
            for finding in group:
                if finding.exempt_because:
                    self.stdout.write(f"  exempt {finding.check}: {finding.message}")
                    self.stdout.write(f"         because {finding.exempt_because}")
                else:
                    self.stdout.write(self.style.ERROR(f"  {finding.check}: {finding.message}"))
        exempt = len(findings) - len(failing)
        if failing:
            self.stdout.write(
                f"{len(failing)} problem{'s' if len(failing) != 1 else ''} ({exempt} exempt). "
                "Fix the migration, or exempt it with lint_exemptions = {check: reason} (crm/schema/lint.py)."
            )
            sys.exit(1)
        self.stdout.write(f"Migrations OK ({exempt} exempt).")
