"""Operations the project's migrations use. Migrations import them by path, so a change here
changes every migration that uses them: keep their behaviour stable.
"""

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db.migrations.operations.base import Operation

# The rows a transaction may see and write in a tenant table (EnableTenantRowSecurity). Each
# function is read once per query (a scalar subquery is an InitPlan), not once per row, and
# `tenant_id = $1` can use the tenant's indexes.
TENANT_CONDITION = "tenant_id = (SELECT app_tenant_id()) OR (SELECT app_cross_tenant())"


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


class EnableTenantRowSecurity(Operation):
    """Row-level security on a tenant table: ENABLE + FORCE, and the policy `tenant_isolation`.

    A row is seen and written only when its tenant is the one the transaction published
    (`app_tenant_id()`, crm.actor.publish_actor), or on the one explicit cross-tenant path
    (`app_cross_tenant()`, crm.rls.cross_tenant). With nothing published, a query sees no row
    and writes none. FORCE applies the policy to the table's owner too (a superuser still
    bypasses it: the application connects as a role that is neither, docs/operations.md).

    `read_also`: an SQL condition under which a row may also be read (never written), e.g. a
    user's own memberships, read to resolve the tenant before one is published.

    The reverse drops the policies and turns row-level security off again.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, table: str, read_also: str | None = None) -> None:
        self.table = table
        self.read_also = read_also

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs = {"table": self.table}
        if self.read_also is not None:
            kwargs["read_also"] = self.read_also
        return type(self).__qualname__, [], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        """Row-level security is not part of Django's model state."""

    def forwards_sql(self, quote: Any) -> list[str]:
        table = quote(self.table)
        statements = [
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT_CONDITION}) WITH CHECK ({TENANT_CONDITION})",
        ]
        if self.read_also is not None:
            statements.append(f"CREATE POLICY read_also ON {table} FOR SELECT USING ({self.read_also})")
        return statements

    def backwards_sql(self, quote: Any) -> list[str]:
        table = quote(self.table)
        return [
            f"DROP POLICY IF EXISTS read_also ON {table}",
            f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ]

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        for statement in self.forwards_sql(schema_editor.quote_name):
            schema_editor.execute(statement)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        for statement in self.backwards_sql(schema_editor.quote_name):
            schema_editor.execute(statement)

    def describe(self) -> str:
        return f"Enable and force row-level security on {self.table} (tenant policy)"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.table}_row_security"
