"""Operations the project's migrations use. Migrations import them by path, so a change here
changes every migration that uses them: keep their behaviour stable.
"""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently


class AddIndexConcurrentlyOutsideTransactions(AddIndexConcurrently):
    """`AddIndexConcurrently` that builds the index plainly inside an outer transaction.

    On production, `manage.py migrate` runs a migration with `atomic = False` outside any
    transaction, and the index is built CONCURRENTLY: the table's writes never wait. The same
    migration also runs inside an outer transaction (`adopt_database`, `seed_demo`'s legacy
    rehearsal, the tests' migration round trips), where PostgreSQL refuses CONCURRENTLY; there the
    index is built by a plain CREATE INDEX, which the transaction can roll back.
    """

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.in_atomic_block:
            # AddIndex's: the plain build, without the mixin's refusal.
            super(AddIndexConcurrently, self).database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.in_atomic_block:
            super(AddIndexConcurrently, self).database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            super().database_backwards(app_label, schema_editor, from_state, to_state)
