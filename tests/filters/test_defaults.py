"""Every tenant's default catalog and saved filters (new or existing, however created), and stale marking."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.actor import Actor
from filters.catalog import DEFAULT_CATALOG, DEFAULT_SAVED_FILTERS
from filters.models import FilterConfig, SavedFilter
from filters.services import (
    filter_compile,
    filter_config_delete,
    filter_config_update,
    saved_filter_create,
    saved_filter_update,
)
from tests.factories import TenantFactory


def catalog_of(tenant_id: int) -> list[tuple]:
    return list(
        FilterConfig.objects.filter(tenant_id=tenant_id)
        .order_by("entity_type", "display_order")
        .values_list(
            "entity_type",
            "field_name",
            "field_label",
            "field_type",
            "filter_operator",
            "filter_options",
            "is_quick_filter",
        )
    )


def expected_catalog() -> list[tuple]:
    rows = [
        (
            e.entity_type,
            e.field_name,
            e.field_label,
            e.field_type,
            e.filter_operator,
            e.filter_options,
            e.is_quick_filter,
        )
        for e in DEFAULT_CATALOG
    ]
    return sorted(rows, key=lambda row: row[0])  # stable: each entity's entries keep their order


def saved_of(tenant_id: int) -> list[tuple]:
    return list(
        SavedFilter.objects.filter(tenant_id=tenant_id)
        .order_by("name")
        .values_list("entity_type", "name", "filter_criteria", "created_by", "is_shared", "is_system", "is_default")
    )


EXPECTED_SAVED = sorted(
    [(s.entity_type, s.name, s.filter_criteria, None, True, True, False) for s in DEFAULT_SAVED_FILTERS],
    key=lambda row: row[1],
)


def test_a_new_tenant_has_the_defaults(db):
    tenant = TenantFactory()

    assert catalog_of(tenant.pk) == expected_catalog()
    assert saved_of(tenant.pk) == EXPECTED_SAVED
    assert [name for _, name, *_ in EXPECTED_SAVED] == [
        "Hot Leads (Score > 70)",
        "My Active Leads",
        "Projects In Progress",
    ]


def test_a_tenant_made_by_raw_sql_has_the_defaults(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tenants (name, subdomain, timezone) VALUES ('Raw Roofing', 'raw', 'UTC') RETURNING id"
        )
        tenant_id = cursor.fetchone()[0]

    assert catalog_of(tenant_id) == expected_catalog()
    assert saved_of(tenant_id) == EXPECTED_SAVED


def test_the_default_saved_filters_are_valid_trees_for_the_default_catalog(tenant, owner):
    actor = Actor(tenant=tenant, user=owner)
    for saved in SavedFilter.objects.filter(tenant=tenant):
        assert filter_compile(actor=actor, entity_type=saved.entity_type, tree=saved.filter_criteria).tree == (
            saved.filter_criteria
        )


# Migrations: existing tenants get the defaults; backwards and forwards again -----------------


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_migrations_forwards_backwards_and_forwards_again_with_existing_tenants():
    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        migrate([("filters", None)])
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tenants (name, subdomain, timezone) VALUES ('Old Roofing', 'old', 'UTC') RETURNING id"
            )
            before = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'filters_%%'")
            assert cursor.fetchone()[0] == 0

        migrate([("filters", "0002_sql")])
        assert catalog_of(before) == []  # 0002 installs the trigger for tenants made from now on

        migrate([("filters", "0004_sub_contractor")])
        assert catalog_of(before) == expected_catalog()
        assert saved_of(before) == EXPECTED_SAVED
        after = TenantFactory(subdomain="new-roofing")
        assert catalog_of(after.pk) == expected_catalog()

        migrate([("filters", None)])
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('filter_configs'), to_regclass('saved_filters')")
            assert cursor.fetchone() == (None, None)
            cursor.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'filters_%%'")
            assert cursor.fetchone()[0] == 0
            cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'filters_%%'")
            assert cursor.fetchone()[0] == 0

        migrate([("filters", "0004_sub_contractor")])
        assert catalog_of(before) == expected_catalog()
        assert catalog_of(after.pk) == expected_catalog()
    finally:
        migrate(leaves)  # the transactional test's flush empties the tables afterwards


# Stale marking -------------------------------------------------------------------------------


@pytest.fixture
def actor(tenant, owner):
    return Actor(tenant=tenant, user=owner)


@pytest.fixture
def uses_source(actor):
    return saved_filter_create(
        actor=actor,
        entity_type="contacts",
        name="Referrals",
        filter_criteria={"or": [{"not": {"field": "source", "op": "equals", "value": "referral"}}]},
    )


@pytest.fixture
def other_filter(actor):
    return saved_filter_create(
        actor=actor,
        entity_type="contacts",
        name="Big",
        filter_criteria={"field": "lead_score", "op": "greater_than", "value": 90},
    )


def source_config(tenant) -> FilterConfig:
    return FilterConfig.objects.get(tenant=tenant, entity_type="contacts", field_name="source")


def stale(saved: SavedFilter) -> tuple[bool, str]:
    saved.refresh_from_db()
    return saved.is_stale, saved.stale_reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"is_active": False}, "The filter Source (source) was deactivated."),
        (
            {"field_type": "text", "filter_operator": "contains", "filter_options": []},
            "The filter Source (source) changed type from select to text.",
        ),
    ],
    ids=["deactivated", "type-changed"],
)
def test_a_changed_catalog_entry_marks_the_filters_using_it_stale(actor, uses_source, other_filter, change, reason):
    filter_config_update(config=source_config(actor.tenant), actor=actor, **change)

    assert stale(uses_source) == (True, reason)
    assert stale(other_filter) == (False, "")


def test_a_deleted_catalog_entry_marks_them_stale_and_deletes_none(actor, uses_source, other_filter):
    filter_config_delete(config=source_config(actor.tenant), actor=actor)

    assert stale(uses_source) == (True, "The filter Source (source) was deleted.")
    assert stale(other_filter) == (False, "")
    assert SavedFilter.objects.filter(pk=uses_source.pk).exists()


def test_a_relabel_or_reorder_marks_nothing(actor, uses_source):
    filter_config_update(config=source_config(actor.tenant), actor=actor, field_label="Lead source", display_order=9)
    assert stale(uses_source) == (False, "")


def test_another_entitys_entry_of_the_same_name_marks_nothing(actor):
    jobs = saved_filter_create(
        actor=actor,
        entity_type="projects",
        name="Repairs",
        filter_criteria={"field": "type", "op": "equals", "value": "repair"},
    )
    contacts_type = FilterConfig.objects.get(tenant=actor.tenant, entity_type="contacts", field_name="type")
    filter_config_update(config=contacts_type, actor=actor, is_active=False)
    assert stale(jobs) == (False, "")


def test_saving_a_valid_tree_clears_the_mark(actor, uses_source):
    filter_config_update(config=source_config(actor.tenant), actor=actor, is_active=False)
    assert stale(uses_source)[0] is True

    saved_filter_update(
        saved_filter=uses_source, actor=actor, filter_criteria={"field": "stage", "op": "equals", "value": "new"}
    )

    assert stale(uses_source) == (False, "")
