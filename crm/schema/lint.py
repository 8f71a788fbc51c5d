"""The migration lint: what `make test` refuses in a migration of this project.

- `irreversible`: an operation that cannot be reversed (RunPython without reverse_code,
  RunSQL without reverse_sql, ...).
- On an existing table listed in `MIGRATION_LINT_LARGE_TABLES` (created by an earlier
  migration, so it holds production rows), operations that block writes while
  PostgreSQL rewrites or reads the whole table:
  - `not-null-without-db-default`: a NOT NULL column without `db_default`;
  - `table-rewrite`: a column type change, a stored generated column;
  - `blocking-scan`: SET NOT NULL, a CHECK or FOREIGN KEY constraint validated in place;
  - `non-concurrent-index`: an index built without CONCURRENTLY (AddIndex, a unique
    constraint, an indexed, unique or foreign key field).
  Raw SQL (RunSQL) is read statement by statement for the same patterns.
- `transaction-control`: RunSQL (forwards or reverse) that issues BEGIN, COMMIT, ROLLBACK,
  START TRANSACTION, END or ABORT itself. A migration runs inside Django's transaction, and
  inside any outer one (the demo's legacy rehearsal, a test's fixture): a COMMIT there ends
  the caller's transaction, which then cannot roll back what it wrote. Split the work into
  two migrations instead (the pattern of crm 0014/0015). Checked on every table.
- `missing-migration`: models whose changes no migration records (`makemigrations --check`).
- `tenant-row-security`: a table of the project's models with a `tenant_id` column that no
  migration gives row-level security (`crm.migration_operations.EnableTenantRowSecurity`,
  issue 17). Not exemptible: every tenant table has the tenant policy.

A migration exempts itself from a check, next to its operations, with the reason:

    class Migration(migrations.Migration):
        lint_exemptions = {"table-rewrite": "why this rewrite is acceptable"}

An exemption must name a check that finds something in that migration, so exemptions
do not outlive their reason.

Only the project's own apps (in the repository, not installed packages) are linted; the
migrations of Django and other libraries are replayed to know the state, not judged.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlparse
from django.apps import apps
from django.conf import settings
from django.contrib.postgres.operations import AddConstraintNotValid, AddIndexConcurrently
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.migrations import operations
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
from django.db.migrations.state import ModelState, ProjectState

from crm.migration_operations import EnableTenantRowSecurity

IRREVERSIBLE = "irreversible"
NOT_NULL = "not-null-without-db-default"
REWRITE = "table-rewrite"
SCAN = "blocking-scan"
INDEX = "non-concurrent-index"
TRANSACTION = "transaction-control"
MISSING_MIGRATION = "missing-migration"
TENANT_ROW_SECURITY = "tenant-row-security"
EXEMPTION = "exemption"
CHECKS = (IRREVERSIBLE, NOT_NULL, REWRITE, SCAN, INDEX, TRANSACTION)


@dataclass(frozen=True)
class Finding:
    migration: str  # "app.name", or the app label for a missing migration
    check: str
    message: str
    exempt_because: str = ""


def db_table(model_state: ModelState) -> str:
    return model_state.options.get("db_table") or f"{model_state.app_label}_{model_state.name_lower}"


def creates_index(field: models.Field) -> bool:
    db_index = field.db_index  # type: ignore[attr-defined]  # set in __init__; missing from django-stubs
    return not field.many_to_many and (db_index or field.unique or field.primary_key)


def column_type(field: models.Field) -> str | None:
    """The column type a plain field creates; None where it needs the model (relations)."""
    if field.is_relation or isinstance(field, models.GeneratedField):
        return None
    return field.db_type(connections[DEFAULT_DB_ALIAS])


WIDENING = re.compile(r"^varchar\((\d+)\)$")


def rewrites_column(old: models.Field, new: models.Field) -> bool:
    """True when PostgreSQL rewrites the table to change `old`'s column into `new`'s.
    Widening a varchar or turning it into text is a catalog-only change."""
    if isinstance(new, models.GeneratedField):
        # GeneratedField's db_persist and expression are set in __init__; django-stubs omits them.
        persisted: bool = new.db_persist  # type: ignore[attr-defined]
        if not isinstance(old, models.GeneratedField):
            return persisted
        return persisted and old.expression != new.expression  # type: ignore[attr-defined]
    before, after = column_type(old), column_type(new)
    if before is None or after is None or before == after:
        return False
    widened = WIDENING.match(before.replace("character varying", "varchar"))
    if widened and after == "text":
        return False
    longer = WIDENING.match(after.replace("character varying", "varchar"))
    return not (widened and longer and int(longer[1]) >= int(widened[1]))


def field_operation_findings(
    operation: operations.AddField | operations.AlterField, old: models.Field | None, table: str
) -> Iterator[tuple[str, str]]:
    field = operation.field
    where = f"{table}.{operation.name}"
    if isinstance(operation, operations.AddField):
        if isinstance(field, models.GeneratedField):
            if field.db_persist:  # type: ignore[attr-defined]  # as in rewrites_column
                yield REWRITE, f"adds the stored generated column {where}: PostgreSQL rewrites every row"
        elif not field.null and not field.many_to_many and field.db_default is models.NOT_PROVIDED:
            yield NOT_NULL, f"adds NOT NULL column {where} without db_default"
        if creates_index(field):
            yield INDEX, f"adds {where} with an index built without CONCURRENTLY"
        # db_constraint: a ForeignKey's, set in __init__; missing from django-stubs
        if field.is_relation and not field.many_to_many and field.db_constraint:  # type: ignore[attr-defined]
            yield SCAN, f"adds a foreign key on {where}, validated while writes wait"
    elif isinstance(operation, operations.AlterField) and old is not None:
        if rewrites_column(old, field):
            yield REWRITE, f"changes the column {where} in a way that rewrites the table"
        if old.null and not field.null:
            yield SCAN, f"sets {where} NOT NULL, which reads every row while writes wait"
        if creates_index(field) and not creates_index(old):
            yield INDEX, f"indexes {where} without CONCURRENTLY"


def model_operation_findings(operation: Operation, table: str) -> Iterator[tuple[str, str]]:
    if isinstance(operation, AddIndexConcurrently):
        return
    if isinstance(operation, operations.AddIndex):
        yield INDEX, f"builds index {operation.index.name} on {table} without CONCURRENTLY"
    elif isinstance(operation, operations.AddConstraint) and not isinstance(operation, AddConstraintNotValid):
        constraint = operation.constraint
        if isinstance(constraint, models.CheckConstraint):
            yield SCAN, f"adds check constraint {constraint.name} on {table}, validated while writes wait"
        else:
            yield INDEX, f"adds constraint {constraint.name} on {table} with an index built without CONCURRENTLY"
    elif isinstance(operation, (operations.AlterUniqueTogether, operations.AlterIndexTogether)) and (
        operation.option_value
    ):
        yield INDEX, f"adds {operation.option_name} on {table} with indexes built without CONCURRENTLY"


SQL_TABLE = r"(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?(?:\"?\w+\"?\.)?\"?(?P<table>\w+)\"?"
SQL_INDEX = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)(?:IF\s+NOT\s+EXISTS\s+)?(?:\"?[\w$]+\"?\s+)?ON\s+" + SQL_TABLE,
    re.IGNORECASE,
)
SQL_ALTER = re.compile(r"^ALTER\s+TABLE\s+" + SQL_TABLE + r"\s+(?P<actions>.*)$", re.IGNORECASE | re.DOTALL)
SQL_ACTIONS = (
    (re.compile(r"\bALTER\s+(?:COLUMN\s+)?\S+\s+(?:SET\s+DATA\s+)?TYPE\b", re.I), REWRITE, "changes a column type"),
    (
        re.compile(r"\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*STORED", re.I | re.S),
        REWRITE,
        "adds a stored generated column",
    ),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), SCAN, "sets a column NOT NULL"),
    (
        re.compile(r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:CHECK|FOREIGN\s+KEY)\b(?!.*\bNOT\s+VALID\b)", re.I | re.S),
        SCAN,
        "adds a constraint validated in place",
    ),
    (
        re.compile(r"\bADD\s+(?:CONSTRAINT\s+\S+\s+)?(?:UNIQUE|PRIMARY\s+KEY)\b(?!.*\bUSING\s+INDEX\b)", re.I | re.S),
        INDEX,
        "adds a unique constraint with an index built without CONCURRENTLY",
    ),
)
# A statement that starts or ends a transaction; `BEGIN` inside a function body ($$...$$) is
# part of a longer statement and never matches, as each statement is matched whole.
SQL_TRANSACTION = re.compile(r"^(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b", re.IGNORECASE)
# ROLLBACK TO SAVEPOINT stays inside the transaction: allowed.
ROLLBACK_TO = re.compile(r"^ROLLBACK\s+(?:WORK\s+|TRANSACTION\s+)?TO\b", re.IGNORECASE)
SQL_ADD_COLUMN = re.compile(r"\bADD\s+(?:COLUMN\s+)?(?!CONSTRAINT\b)(?P<definition>[^,]*)", re.I)


def statements(sql: Any) -> Iterator[str]:
    """The statements of a RunSQL `sql` argument (a string, or a list of strings or
    (sql, params) pairs)."""
    parts = [sql] if isinstance(sql, str) else sql or []
    for part in parts:
        text = part[0] if isinstance(part, list | tuple) else part
        for statement in sqlparse.split(sqlparse.format(text, strip_comments=True)):
            yield " ".join(statement.rstrip(";").split())


def transaction_findings(sql: Any, direction: str) -> Iterator[tuple[str, str]]:
    for statement in statements(sql):
        if SQL_TRANSACTION.match(statement) and not ROLLBACK_TO.match(statement):
            command = statement.split()[0].upper()
            yield TRANSACTION, f"RunSQL {direction} issues {command} inside the migration's transaction"


def sql_findings(sql: Any, large_tables: set[str]) -> Iterator[tuple[str, str]]:
    for statement in statements(sql):
        if (index := SQL_INDEX.match(statement)) and index["table"] in large_tables:
            yield INDEX, f"RunSQL builds an index on {index['table']} without CONCURRENTLY"
            continue
        alter = SQL_ALTER.match(statement)
        if not alter or alter["table"] not in large_tables:
            continue
        for pattern, check, what in SQL_ACTIONS:
            if pattern.search(alter["actions"]):
                yield check, f"RunSQL {what} on {alter['table']}"
        for added in SQL_ADD_COLUMN.finditer(alter["actions"]):
            definition = added["definition"].upper()
            if "NOT NULL" in definition and "DEFAULT" not in definition and "GENERATED" not in definition:
                yield NOT_NULL, f"RunSQL adds a NOT NULL column without a default on {alter['table']}"


def irreversible_message(operation: Operation) -> str:
    if isinstance(operation, operations.RunPython):
        return f"RunPython {getattr(operation.code, '__name__', operation.code)} has no reverse_code"
    if isinstance(operation, operations.RunSQL):
        return "RunSQL has no reverse_sql"
    return f"{operation.describe()} cannot be reversed"


def operation_findings(
    operation: Operation, app_label: str, state: ProjectState, existing: set[str], large_tables: set[str]
) -> Iterator[tuple[str, str]]:
    """What `operation` does to the large tables that existed before its migration, and
    whether it can be reversed. `state` is the state just before the operation."""
    if not operation.reversible:
        yield IRREVERSIBLE, irreversible_message(operation)
    if isinstance(operation, operations.SeparateDatabaseAndState):
        for database_operation in operation.database_operations:
            yield from operation_findings(database_operation, app_label, state, existing, large_tables)
        return
    if isinstance(operation, operations.RunSQL):
        yield from transaction_findings(operation.sql, "forwards")
        if operation.reverse_sql is not None:
            yield from transaction_findings(operation.reverse_sql, "in reverse")
        yield from sql_findings(operation.sql, large_tables & existing)
        return
    model_name = getattr(operation, "model_name_lower", None)
    model_state = state.models.get((app_label, model_name)) if model_name else None
    if model_state is None:
        return
    table = db_table(model_state)
    if table not in large_tables or table not in existing:
        return
    if isinstance(operation, operations.AddField | operations.AlterField):
        old = model_state.fields.get(operation.name) if isinstance(operation, operations.AlterField) else None
        yield from field_operation_findings(operation, old, table)
    else:
        yield from model_operation_findings(operation, table)


def exemptions(migration: Migration) -> dict[str, str]:
    return dict(getattr(migration, "lint_exemptions", {}))


def lint_migration(migration: Migration, state: ProjectState, large_tables: set[str]) -> list[Finding]:
    """Lint `migration` and move `state` past it."""
    name = f"{migration.app_label}.{migration.name}"
    existing = {db_table(model_state) for model_state in state.models.values()}
    found: list[tuple[str, str]] = []
    for operation in migration.operations:
        found.extend(operation_findings(operation, migration.app_label, state, existing, large_tables))
        operation.state_forwards(migration.app_label, state)
    findings = []
    exempt = exemptions(migration)
    for check, reason in exempt.items():
        if check not in CHECKS:
            findings.append(
                Finding(name, EXEMPTION, f"exempts unknown check {check!r}; the checks are {', '.join(CHECKS)}")
            )
        elif not isinstance(reason, str) or not reason.strip():
            findings.append(Finding(name, EXEMPTION, f"exempts {check} without saying why"))
        elif check not in {found_check for found_check, _ in found}:
            findings.append(Finding(name, EXEMPTION, f"exempts {check}, which finds nothing here: remove it"))
    for check, message in found:
        reason = exempt.get(check, "")
        findings.append(Finding(name, check, message, reason.strip() if isinstance(reason, str) else ""))
    return findings


def is_project_app(app_label: str) -> bool:
    path = Path(apps.get_app_config(app_label).path)
    return path.is_relative_to(settings.BASE_DIR) and "site-packages" not in path.parts


def missing_migrations(loader: MigrationLoader) -> Iterator[Finding]:
    autodetector = MigrationAutodetector(
        loader.project_state(),
        ProjectState.from_apps(apps),
        NonInteractiveMigrationQuestioner(specified_apps=None, dry_run=True),
    )
    for app_label, app_migrations in sorted(autodetector.changes(graph=loader.graph).items()):
        described = "; ".join(
            operation.describe() for migration in app_migrations for operation in migration.operations
        )
        yield Finding(app_label, MISSING_MIGRATION, f"models changed without a migration: {described}")


def state_column(name: str, field: models.Field) -> str:
    """The column a field of a model state creates (its name is not bound yet)."""
    if field.db_column:
        return field.db_column
    return f"{name}_id" if isinstance(field, models.ForeignKey) else name


def row_security_findings(state: ProjectState, secured: set[str]) -> Iterator[Finding]:
    """A finding per project table with a `tenant_id` column not in `secured` (the tables an
    EnableTenantRowSecurity operation of the plan names)."""
    for (app_label, _), model_state in sorted(state.models.items()):
        options = model_state.options
        if not is_project_app(app_label) or options.get("proxy") or not options.get("managed", True):
            continue
        table = db_table(model_state)
        columns = {state_column(name, field) for name, field in model_state.fields.items()}
        if "tenant_id" in columns and table not in secured:
            yield Finding(
                app_label,
                TENANT_ROW_SECURITY,
                f"{table} has a tenant_id column but no row-level security: add a migration with "
                f'EnableTenantRowSecurity("{table}") (crm/migration_operations.py)',
            )


def lint(large_tables: Iterable[str] | None = None) -> list[Finding]:
    """Every finding of every migration of the project's apps, in migration order."""
    tables = set(settings.MIGRATION_LINT_LARGE_TABLES if large_tables is None else large_tables)
    loader = MigrationLoader(None, ignore_no_migrations=True)
    graph = loader.graph
    plan: dict[tuple[str, str], None] = {}
    for leaf in sorted(graph.leaf_nodes()):
        plan.update(dict.fromkeys(graph.forwards_plan(leaf)))
    state = ProjectState(real_apps=loader.unmigrated_apps)
    findings: list[Finding] = []
    secured: set[str] = set()
    for node in plan:
        migration = graph.nodes[node]
        migration_findings = lint_migration(migration, state, tables)
        if is_project_app(node[0]):
            findings.extend(migration_findings)
        secured.update(op.table for op in migration.operations if isinstance(op, EnableTenantRowSecurity))
    findings.extend(missing_migrations(loader))
    findings.extend(row_security_findings(state, secured))
    return findings
