"""crm.migration_operations: an index built CONCURRENTLY by migrate, plainly inside a transaction.

On a table of the test's own (a transactional test elsewhere may leave the project's apps
migrated back when this one runs)."""

import pytest
from django.db import connection, models
from django.db.migrations.state import ModelState, ProjectState
from django.test.utils import CaptureQueriesContext

from crm.migration_operations import AddIndexConcurrentlyOutsideTransactions

INDEX = "migration_ops_notes_score_idx"
OPERATION = AddIndexConcurrentlyOutsideTransactions(model_name="note", index=models.Index(fields=["score"], name=INDEX))


@pytest.fixture
def notes():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE migration_ops_notes (id bigserial PRIMARY KEY, score integer)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS migration_ops_notes")


def run(backwards: bool = False) -> list[str]:
    """Apply (or reverse) the operation; the statements it ran on the index."""
    before = ProjectState()
    before.add_model(
        ModelState(
            "opsapp",
            "Note",
            [("id", models.BigAutoField(primary_key=True)), ("score", models.IntegerField())],
            options={"db_table": "migration_ops_notes"},
        )
    )
    after = before.clone()
    OPERATION.state_forwards("opsapp", after)
    with CaptureQueriesContext(connection) as queries, connection.schema_editor(atomic=False) as editor:
        if backwards:
            OPERATION.database_backwards("opsapp", editor, after, before)
        else:
            OPERATION.database_forwards("opsapp", editor, before, after)
    return [query["sql"] for query in queries if INDEX in query["sql"]]


def index_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [INDEX])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_migrate_builds_and_drops_the_index_concurrently(notes):
    created = run()
    assert index_exists()
    dropped = run(backwards=True)

    assert [sql.split(" ON ")[0] for sql in created] == [f'CREATE INDEX CONCURRENTLY "{INDEX}"']
    assert dropped == [f'DROP INDEX CONCURRENTLY IF EXISTS "{INDEX}"']
    assert not index_exists()


@pytest.mark.django_db
def test_inside_a_transaction_the_index_is_built_plainly_and_rolls_back_with_it(notes):
    created = run()
    assert index_exists()
    dropped = run(backwards=True)

    assert [sql.split(" ON ")[0] for sql in created] == [f'CREATE INDEX "{INDEX}"']
    assert dropped == [f'DROP INDEX IF EXISTS "{INDEX}"']
    assert not index_exists()
