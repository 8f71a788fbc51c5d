"""`schema_check` and `adopt_database`: a live database compared with a shadow.

`schema_check` migrates the shadow to exactly the migrations the live database records
as applied, so a pending migration shows up once (as "not applied") instead of as every
object it would create, and everything else that differs is drift.

`adopt_database` compares a database created outside Django with the legacy state
(`LEGACY_STATE`) and, only when they match, records those migrations as applied.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from crm.legacy import LEGACY_STATE, Node
from crm.schema.comparison import Comparison, compare
from crm.schema.introspection import SchemaObject, introspect
from crm.schema.shadow import migrate, shadow_database

# The old system's databases also hold the table of DRF's authtoken app, no longer installed
# (its migrations are not in the code): adoption expects it, and the tokens' move to
# `auth_tokens` (crm 0009, 0010) takes it over.
LEGACY_SQL = """
CREATE TABLE authtoken_token (
    key varchar(40) PRIMARY KEY,
    created timestamptz NOT NULL,
    user_id bigint NOT NULL UNIQUE REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX ON authtoken_token (key varchar_pattern_ops);
"""
MIGRATIONS_TABLE = MigrationRecorder.Migration._meta.db_table


def label(node: Node) -> str:
    return f"{node[0]}.{node[1]}"


def ignore_patterns() -> list[str]:
    return list(settings.SCHEMA_CHECK_IGNORE)


@dataclass
class Result:
    database: str
    migrations: int  # how many migrations built the shadow
    comparison: Comparison
    applied_not_in_code: list[str] = field(default_factory=list)
    not_applied: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def schema_clean(self) -> bool:
        return not self.comparison.differences

    @property
    def clean(self) -> bool:
        return self.schema_clean and not self.applied_not_in_code and not self.not_applied


def snapshot(connection: BaseDatabaseWrapper) -> list[SchemaObject]:
    with connection.cursor() as cursor:
        return introspect(cursor)


def schema_check(*, alias: str = "default", ignore: Sequence[str] | None = None) -> Result:
    started = time.monotonic()
    live = connections[alias]
    with shadow_database(alias) as shadow:
        loader = MigrationLoader(live)
        recorded = set(loader.applied_migrations)
        in_code = set(loader.graph.nodes)
        replaced = {node for squash in loader.replacements.values() for node in squash.replaces}
        actual = snapshot(live)
        applied = migrate(shadow, sorted(recorded & in_code))
        expected = snapshot(shadow)
    return Result(
        database=live.settings_dict["NAME"],
        migrations=applied,
        comparison=compare(expected, actual, ignore=ignore_patterns() if ignore is None else ignore),
        applied_not_in_code=sorted(label(node) for node in recorded - in_code - replaced),
        not_applied=sorted(label(node) for node in in_code - recorded),
        seconds=time.monotonic() - started,
    )


class AlreadyAdopted(Exception):
    """The database already records the legacy state as applied."""


class NotLegacy(Exception):
    """The database records some migrations but not the legacy state."""


def legacy_plan(loader: MigrationLoader) -> list[Node]:
    plan: list[Node] = []
    for target in LEGACY_STATE:
        plan.extend(node for node in loader.graph.forwards_plan(target) if node not in plan)
    return plan


def without_migrations_table(snapshot: list[SchemaObject]) -> list[SchemaObject]:
    return [obj for obj in snapshot if MIGRATIONS_TABLE not in {obj.table, obj.name}]


def adoption_check(*, alias: str = "default", ignore: Sequence[str] | None = None) -> tuple[Result, list[Node]]:
    """Compare the live database with the legacy state; return the result and the
    migrations adoption would record. `django_migrations` is left out of the comparison:
    adoption creates it."""
    started = time.monotonic()
    live = connections[alias]
    loader = MigrationLoader(live)
    plan = legacy_plan(loader)
    if loader.applied_migrations:
        if set(loader.applied_migrations) >= set(plan):
            raise AlreadyAdopted(
                f"the database already records the legacy state as applied "
                f"({len(loader.applied_migrations)} migrations): run `manage.py migrate`"
            )
        raise NotLegacy(
            f"the database records {len(loader.applied_migrations)} applied migrations but not the whole "
            "legacy state, so it was not created by the old system: adoption is for databases "
            "that record none; compare it with `manage.py schema_check`"
        )
    with shadow_database(alias) as shadow:
        actual = snapshot(live)
        applied = migrate(shadow, plan)
        with shadow.cursor() as cursor:
            cursor.execute(LEGACY_SQL)
        expected = snapshot(shadow)
    result = Result(
        database=live.settings_dict["NAME"],
        migrations=applied,
        comparison=compare(
            without_migrations_table(expected),
            without_migrations_table(actual),
            ignore=ignore_patterns() if ignore is None else ignore,
        ),
        seconds=time.monotonic() - started,
    )
    return result, plan


def record_applied(*, alias: str, plan: Sequence[Node]) -> None:
    recorder = MigrationRecorder(connections[alias])
    with transaction.atomic(using=alias):
        recorder.ensure_schema()
        for app_label, name in plan:
            recorder.record_applied(app_label, name)
