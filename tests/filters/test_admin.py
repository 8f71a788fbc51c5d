"""The admin: the catalog through its services (refusals on the form), saved filters under the API's rules."""

import json

import pytest

from crm.models import Role
from filters.models import FilterConfig, FilterUsageLog, SavedFilter
from tests.admin import admin_url, post_page, staff_client
from tests.api import tables

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_catalog_entry_and_a_bad_one_is_refused_on_its_field(tenant):
    client, _ = staff_client(tenant, Role.ADMIN)
    form = {
        "tenant": tenant.pk,
        "entity_type": "contacts",
        "field_label": "Roof age",
        "field_type": "number",
        "filter_operator": "",
        "filter_options": "[]",
        "display_order": "20",
        "is_advanced_filter": "on",
        "is_active": "on",
    }
    before = tables()

    refused = client.post(admin_url("add", FilterConfig), {**form, "field_name": "password"})

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["field_name"] == [
        "'password' is not a field contacts can be filtered on."
    ]
    assert tables() == before

    added = client.post(admin_url("add", FilterConfig), {**form, "field_name": "roof_age"})

    assert added.status_code == 302
    config = FilterConfig.objects.get(tenant=tenant, field_name="roof_age")
    assert (config.filter_operator, config.display_order) == ("equals", 20)


def test_a_bad_saved_filter_tree_is_refused_on_its_field(tenant):
    client, user = staff_client(tenant, Role.MEMBER)
    form = {"tenant": tenant.pk, "entity_type": "contacts", "name": "Hail leads", "sort": "", "columns": "[]"}
    bad = {"and": [{"field": "roof_colour", "op": "equals", "value": "red"}, {"field": "stage", "op": "nope"}]}
    before = tables()

    refused = client.post(admin_url("add", SavedFilter), {**form, "filter_criteria": json.dumps(bad)})

    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors == {
        "filter_criteria": [
            "and[0].field: unknown field 'roof_colour' for contacts; and[1].op: 'nope' is not an operator of "
            "multi_select fields; use one of: equals, not_equals, in, not_in, is_null, is_not_null"
        ]
    }
    assert tables() == before

    good = {"field": "stage", "op": "equals", "value": "new"}
    added = client.post(admin_url("add", SavedFilter), {**form, "filter_criteria": json.dumps(good)})

    assert added.status_code == 302
    assert SavedFilter.objects.get(tenant=tenant, name="Hail leads").created_by == user


def test_a_manager_cannot_change_the_catalog(tenant):
    client, _ = staff_client(tenant, Role.MANAGER)
    config = FilterConfig.objects.get(tenant=tenant, entity_type="contacts", field_name="stage")
    assert client.get(admin_url("change", FilterConfig, config.pk)).context["has_change_permission"] is False


def test_deactivating_in_the_admin_marks_saved_filters_stale(tenant, owner):
    client, _ = staff_client(tenant, Role.OWNER)
    mine = SavedFilter.objects.create(
        tenant=tenant,
        created_by=owner,
        entity_type="contacts",
        name="Mine",
        filter_criteria={"field": "priority", "op": "equals", "value": "high"},
    )
    config = FilterConfig.objects.get(tenant=tenant, entity_type="contacts", field_name="priority")

    response = post_page(client, admin_url("change", FilterConfig, config.pk), {"is_active": None})

    assert response.status_code == 302
    mine.refresh_from_db()
    assert (mine.is_stale, mine.stale_reason) == (True, "The filter Priority (priority) was deactivated.")


def test_a_member_sees_their_own_and_shared_saved_filters(tenant, owner):
    client, user = staff_client(tenant, Role.MEMBER)
    criteria = {"and": []}
    own = SavedFilter.objects.create(
        tenant=tenant, created_by=user, entity_type="contacts", name="Own", filter_criteria=criteria
    )
    SavedFilter.objects.create(
        tenant=tenant, created_by=owner, entity_type="contacts", name="Private", filter_criteria=criteria
    )

    response = client.get(admin_url("changelist", SavedFilter))

    shown = {obj.name for obj in response.context["cl"].result_list}
    assert shown == {own.name, "Hot Leads (Score > 70)", "My Active Leads", "Projects In Progress"}


def test_a_system_filter_cannot_be_deleted_in_the_admin(tenant):
    client, _ = staff_client(tenant, Role.OWNER)
    system = SavedFilter.objects.get(tenant=tenant, name="My Active Leads")

    response = client.post(admin_url("delete", SavedFilter, system.pk), {"post": "yes"}, follow=True)

    assert "System filters cannot be deleted; an admin can deactivate them." in [
        str(m) for m in response.context["messages"]
    ]
    assert SavedFilter.objects.filter(pk=system.pk).exists()


def test_a_member_cannot_edit_a_shared_filter_in_the_admin(tenant, owner):
    client, _ = staff_client(tenant, Role.MEMBER)
    shared = SavedFilter.objects.create(
        tenant=tenant,
        created_by=owner,
        entity_type="contacts",
        name="Team",
        filter_criteria={"and": []},
        is_shared=True,
    )

    response = post_page(client, admin_url("change", SavedFilter, shared.pk), {"name": "Mine now"})

    assert response.status_code == 200
    assert "duplicate it to make it yours" in response.content.decode()
    shared.refresh_from_db()
    assert shared.name == "Team"


def test_usage_logs_are_read_only_for_managers(tenant):
    manager, _ = staff_client(tenant, Role.MANAGER, username="mgr")
    member_client, _ = staff_client(tenant, Role.MEMBER, username="mem")

    assert manager.get(admin_url("changelist", FilterUsageLog)).status_code == 200
    assert member_client.get(admin_url("changelist", FilterUsageLog)).status_code == 403
    assert manager.get(admin_url("add", FilterUsageLog)).status_code == 403
