"""The substatus migrations on a database that already holds tenants, contacts and projects:
forwards (catalog, defaults, history with source `migration`), backwards (nothing left), forwards again."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from substatus.catalog import DEFAULT_CATALOG

BEFORE = [("substatus", None), ("contacts", "0002_updated_by_search"), ("crm", "0004_actor_sql_functions")]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader sees what is applied now


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def one(sql: str, params=()) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_forwards_backwards_and_forwards_again_with_existing_data():
    executor = migrate(BEFORE)
    apps = executor.loader.project_state([node for node in BEFORE if node[1]]).apps
    tenant = apps.get_model("crm", "Tenant").objects.create(name="Legacy Roofing", subdomain="legacy")
    contact = apps.get_model("contacts", "Contact").objects.create(tenant=tenant, first_name="Ann", stage="qualified")
    project = apps.get_model("crm", "Project").objects.create(tenant=tenant, name="Old job", status="completed")

    migrate(latest())

    assert one("SELECT count(*) FROM status_substatus_configs WHERE tenant_id = %s", [tenant.pk]) == len(
        DEFAULT_CATALOG
    )
    assert rows(
        "SELECT config.key, record.substatus_since IS NOT NULL FROM contacts AS record "
        "JOIN status_substatus_configs AS config ON config.id = record.substatus_id WHERE record.id = %s",
        [contact.pk],
    ) == [("decision_maker_identified", True)]
    assert rows(
        "SELECT config.key FROM projects AS record "
        "JOIN status_substatus_configs AS config ON config.id = record.substatus_id WHERE record.id = %s",
        [project.pk],
    ) == [("final_payment_received",)]
    assert rows(
        "SELECT entity, record_id, from_status, to_status, source, reason FROM substatus_history ORDER BY entity"
    ) == [
        ("contact", contact.pk, "qualified", "qualified", "migration", "Substatus tracking started"),
        ("project", project.pk, "completed", "completed", "migration", "Substatus tracking started"),
    ]

    migrate(BEFORE)

    assert one("SELECT to_regclass('status_substatus_configs') IS NULL AND to_regclass('substatus_history') IS NULL")
    assert (
        rows(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name IN ('contacts', 'projects') AND column_name LIKE 'substatus%%'"
        )
        == []
    )
    assert rows("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'substatus%%'") == []
    assert rows("SELECT proname FROM pg_proc WHERE proname LIKE 'substatus%%'") == []

    migrate(latest())

    assert one("SELECT count(*) FROM substatus_history WHERE source = 'migration'") == 2
    assert one("SELECT count(*) FROM contacts WHERE substatus_id IS NULL") == 0


@pytest.mark.django_db(transaction=True)
def test_a_status_left_without_a_default_gets_its_first_substatus_as_default():
    migrate([("substatus", "0003_default_catalog")])
    tenant = one("INSERT INTO tenants (name, subdomain) VALUES ('Legacy Roofing', 'legacy') RETURNING id")
    with connection.cursor() as cursor:  # raw SQL before the rule existed
        cursor.execute(
            "UPDATE status_substatus_configs SET is_default = false "
            "WHERE tenant_id = %s AND entity = 'project' AND status = 'approved'",
            [tenant],
        )

    migrate(latest())

    assert rows(
        "SELECT key FROM status_substatus_configs "
        "WHERE tenant_id = %s AND entity = 'project' AND status = 'approved' AND is_default",
        [tenant],
    ) == [("contract_signed",)]
    statuses = {(entry.entity, entry.status) for entry in DEFAULT_CATALOG}
    assert one("SELECT count(*) FROM status_substatus_configs WHERE is_default") == len(statuses)

    migrate([("substatus", "0003_default_catalog")])

    assert rows("SELECT tgname FROM pg_trigger WHERE tgname = 'substatus_default_required'") == []
    migrate(latest())
