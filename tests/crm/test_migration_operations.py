"""crm.migration_operations: an index built CONCURRENTLY by migrate, plainly inside a transaction."""

import pytest
from django.apps import apps
from django.db import connection, models
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext

from crm.migration_operations import AddIndexConcurrentlyOutsideTransactions

OPERATION = AddIndexConcurrentlyOutsideTransactions(
    model_name="campaignstepexecution", index=models.Index(fields=["attempts"], name="executions_attempts_test_idx")
)


def run(backwards: bool = False) -> list[str]:
    """Apply (or reverse) the operation on the test database; the index statements it ran."""
    before = ProjectState.from_apps(apps)
    after = before.clone()
    OPERATION.state_forwards("campaigns", after)
    with CaptureQueriesContext(connection) as queries, connection.schema_editor(atomic=False) as editor:
        if backwards:
            OPERATION.database_backwards("campaigns", editor, after, before)
        else:
            OPERATION.database_forwards("campaigns", editor, before, after)
    return [query["sql"] for query in queries if "executions_attempts_test_idx" in query["sql"]]


def index_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('executions_attempts_test_idx') IS NOT NULL")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_migrate_builds_and_drops_the_index_concurrently():
    created = run()
    assert index_exists()
    dropped = run(backwards=True)

    assert [sql.split(" ON ")[0] for sql in created] == ['CREATE INDEX CONCURRENTLY "executions_attempts_test_idx"']
    assert dropped == ['DROP INDEX CONCURRENTLY IF EXISTS "executions_attempts_test_idx"']
    assert not index_exists()


@pytest.mark.django_db
def test_inside_a_transaction_the_index_is_built_plainly_and_rolls_back_with_it():
    created = run()
    assert index_exists()
    dropped = run(backwards=True)

    assert [sql.split(" ON ")[0] for sql in created] == ['CREATE INDEX "executions_attempts_test_idx"']
    assert dropped == ['DROP INDEX IF EXISTS "executions_attempts_test_idx"']
    assert not index_exists()
