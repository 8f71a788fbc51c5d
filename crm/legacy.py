"""The old system's schema, and writing its rows there: the one place the demo's legacy rehearsal
(crm/demo/rehearsal.py), the organizations merge's tests (tests/contacts/legacy.py) and the
merge benchmark (bench/merge.py, with bench/_data.py) take it from.

Two legacy states matter. `LEGACY_STATE` is the schema the old system's databases hold (what
`adopt_database` takes over and what the demo is written at); the state before the merge is
where the organizations merge starts from (the legacy state plus what Ridgeline added before
it, substatuses included). `migrate_to()` moves the database to a state, forwards or back,
and returns the historical models rows are written with there (`LegacyRows`).

Migrations never import this module: they import no app code.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import StateApps

from crm.migrating import plan_preflight

Node = tuple[str, str]

# The schema production databases of the old system hold: the initial migrations of
# Ridgeline's apps, and Django's contrib apps at the migrations Django 5.2 ships (plus the
# table of DRF's authtoken app, no longer installed: crm.schema.check.LEGACY_SQL).
# Everything after these (crm 0003 and 0004, contacts 0002, the organizations merge, the
# tokens' move to `auth_tokens`, ...) is applied by `manage.py migrate` after adoption.
LEGACY_STATE: tuple[Node, ...] = (
    ("contenttypes", "0002_remove_content_type_name"),
    ("auth", "0012_alter_user_first_name_max_length"),
    ("crm", "0002_projects_activities"),
    ("contacts", "0001_initial"),
    ("admin", "0003_logentry_add_action_flag_choices"),
    ("sessions", "0001_initial"),
)
# The first migration of the organizations merge (contacts 0004-0007).
MERGE_START: Node = ("contacts", "0004_merge_preflight")


def _graph() -> MigrationGraph:
    return MigrationLoader(None, ignore_no_migrations=True).graph


def pre_merge_state() -> list[Node]:
    """The migrations the organizations merge starts from (the parents of its first one)."""
    return sorted(parent.key for parent in _graph().node_map[MERGE_START].parents)


def contacts_before_merge() -> str:
    """The contacts migration before the merge: `migrate contacts <it>` reverses the merge."""
    return next(name for app, name in pre_merge_state() if app == MERGE_START[0])


def state_before(node: Node) -> list[Node]:
    """Every migration but `node` and those that depend on it: the state a plan to the latest
    one applies `node` first from."""
    graph = _graph()
    excluded = set(graph.backwards_plan(node))  # the node and every migration that depends on it
    kept = set(graph.nodes) - excluded
    return sorted(key for key in kept if not any(child.key in kept for child in graph.node_map[key].children))


def latest_state() -> list[Node]:
    return sorted(_graph().leaf_nodes())


def migrate_to(targets: Sequence[Node]) -> StateApps:
    """Migrate the database to `targets` (forwards or backwards); return that state's historical apps.

    Rows written earlier in the same transaction (the tests, the demo) leave foreign-key checks
    pending, and PostgreSQL refuses to ALTER a table with pending trigger events: they are made
    immediate first (a real `migrate` commits after each migration, which does the same).
    """
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(list(targets))
    plan_preflight(connection, plan)
    executor.migrate(list(targets), plan=plan)
    return MigrationExecutor(connection).loader.project_state(list(targets)).apps


class LegacyRows:
    """Writes rows with the historical models of one migration state ("app_label.Model" names)."""

    def __init__(self, apps: StateApps) -> None:
        self.apps = apps

    def model(self, name: str) -> Any:
        return self.apps.get_model(name)

    def create(self, model: str, **fields: Any) -> Any:
        return self.model(model).objects.create(**fields)
