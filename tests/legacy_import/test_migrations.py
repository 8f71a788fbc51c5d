"""The legacy_import migrations forwards, backwards (nothing left) and forwards again."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename::text FROM pg_tables WHERE tablename LIKE 'legacy%%' ORDER BY 1")
        return [name for (name,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_forwards_backwards_and_forwards_again():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    installed = tables()
    assert installed == [
        "legacy_ids",
        "legacy_import_checkpoints",
        "legacy_import_impersonation_logs",
        "legacy_import_organizations",
        "legacy_import_project_organizations",
    ]

    migrate([("legacy_import", "0001_initial")])
    assert "legacy_import_impersonation_logs" not in tables()
    migrate([("legacy_import", None)])
    assert tables() == []

    executor = migrate(latest)
    assert tables() == installed
    apps = executor.loader.project_state(latest).apps
    tenant = apps.get_model("crm", "Tenant").objects.create(name="Roofers", subdomain="roofers")
    log = apps.get_model("legacy_import", "LegacyImpersonationLog").objects.create(
        tenant=tenant,
        old_admin_user_id="00000000-0000-4000-8000-000000000001",
        old_impersonated_user_id="00000000-0000-4000-8000-000000000002",
        started_at="2024-01-01T10:00Z",
        status="ended",
        created_at="2024-01-01T10:00Z",
        updated_at="2024-01-01T10:00Z",
    )
    assert log.admin_user_id is None
