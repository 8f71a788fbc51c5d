"""The campaigns migrations: forwards on a database that already holds a tenant (the defaults are
there for it and for a tenant created after), the database rules installed, backwards to nothing."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from campaigns.defaults import TEMPLATES, default_templates_ensure
from campaigns.models import CampaignStepExecution, CampaignTemplate
from campaigns.services import templates_visible
from tests.campaigns.test_content import DEFAULT_NAMES


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def campaign_objects() -> list[tuple]:
    return rows(
        "SELECT 'table', table_name FROM information_schema.tables WHERE table_name LIKE 'campaign%%' "
        "UNION ALL SELECT 'function', proname FROM pg_proc WHERE proname LIKE 'campaign%%' ORDER BY 1, 2"
    )


@pytest.mark.django_db(transaction=True)
def test_forwards_backwards_and_forwards_again():
    executor = migrate([("campaigns", None)])
    assert campaign_objects() == []
    apps = executor.loader.project_state([("crm", "0004_actor_sql_functions")]).apps
    before = apps.get_model("crm", "Tenant").objects.create(name="Legacy Roofing", subdomain="legacy")

    migrate(latest())

    templates = rows("SELECT tenant_id, name FROM campaign_templates ORDER BY name")
    assert templates == [(None, name) for name in DEFAULT_NAMES]  # every tenant's, the one before included
    assert [template.name for template in templates_visible(tenant_id=before.pk)] == DEFAULT_NAMES
    assert [name for kind, name in campaign_objects() if kind == "function"] == [
        "campaign_enrollments_count_delete",
        "campaign_enrollments_count_insert",
        "campaign_enrollments_count_update",
        "campaign_steps_published_frozen",
        "campaign_triggers_published_frozen",
        "campaign_versions_published_stays",
    ]

    migrate([("campaigns", None)])

    assert campaign_objects() == []

    migrate(latest())

    assert len(rows("SELECT id FROM campaign_templates")) == 6


def test_the_migration_holds_a_frozen_copy_of_the_defaults():
    migration = importlib.import_module("campaigns.migrations.0003_default_templates")

    assert migration.TEMPLATES == TEMPLATES


def test_missing_defaults_are_put_back(default_templates):
    CampaignTemplate.objects.filter(key="win-back-inactive").delete()

    assert default_templates_ensure() == 1
    assert default_templates_ensure() == 0
    assert CampaignTemplate.objects.filter(tenant__isnull=True).count() == 6


@pytest.mark.django_db(transaction=True)
def test_the_provider_id_index_goes_forwards_and_backwards():
    """0008, outside a transaction as `migrate` runs it: built CONCURRENTLY, dropped on the way back."""
    index = "SELECT indexdef FROM pg_indexes WHERE indexname = 'executions_provider_id_idx'"
    migrate([("campaigns", "0007_executions_analytics_indexes")])
    assert rows(index) == []

    migrate([("campaigns", "0008_executions_provider_id_index")])
    assert rows(index) == [
        (
            "CREATE INDEX executions_provider_id_idx ON public.campaign_step_executions USING btree "
            "(provider_message_id) WHERE (NOT ((provider_message_id)::text = ''::text))",
        )
    ]

    migrate([("campaigns", "0007_executions_analytics_indexes")])
    assert rows(index) == []

    migrate(latest())
    assert len(rows(index)) == 1
    # The webhooks' lookup can use it (the planner proves `= '<id>'` is inside `NOT (= '')`).
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
    try:
        plan = CampaignStepExecution.objects.filter(provider_message_id="883953f4-6105-42a2").explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
    assert "executions_provider_id_idx" in plan
