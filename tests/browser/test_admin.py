"""The admin in a real browser (Playwright driving Debian's chromium) against a live server with
`make run`'s demo tenant, Summit Roofing, signed in as its admin: what office staff do there,
each flow checked against the database.

The demo is loaded once for the module and committed (the live server reads it through its own
connections), with a second tenant's contact beside it. The module starts from and leaves the
database as the migrations do (the demo's rehearsal needs a database without tenants), emptying
it as pytest-django's transactional tests do.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from campaigns.defaults import default_templates_ensure
from campaigns.models import Campaign, CampaignTemplate, VersionStatus
from contacts.merge import merge_backups_drop, merge_backups_get
from contacts.models import Contact
from crm.demo import DEMO_PASSWORD, TENANT_SUBDOMAIN, demo_steps
from crm.demo.runner import demo_load
from crm.models import Project, Tenant, User
from filters.models import SavedFilter
from substatus.models import SubstatusConfig, SubstatusHistory
from tests.browser.conftest import log_in
from tests.factories import ContactFactory, TenantFactory

ADMIN = "summit-admin"

# Each test's own queries run in a transaction rolled back after it (the browser's writes go
# through the live server's connections, committed); the mark also makes pytest-django set up
# the test database when this module runs alone.
pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Demo:
    tenant: Tenant
    admin: User
    stranger: Contact  # another tenant's contact


def database_emptied() -> None:
    """Back to what the migrations leave: no rows but the default campaign templates (which
    flush empties too), content types and permissions (flush's post_migrate writes them again),
    and no organizations merge backups (the merge found no organizations on the empty database)."""
    call_command("flush", interactive=False, verbosity=0)
    if merge_backups_get(connection) is not None:
        merge_backups_drop(connection)
    default_templates_ensure()


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker) -> Iterator[Demo]:
    with django_db_blocker.unblock():
        assert connection.settings_dict["NAME"].startswith("test_"), "the module empties its database at the end"
        database_emptied()
        try:
            with transaction.atomic(), override_settings(DEBUG=True):
                demo_load(steps=demo_steps(), stdout=StringIO())
                valley = TenantFactory.create(name="Valley Roofing", subdomain="valley")
                stranger = ContactFactory.create(tenant=valley, first_name="Quentin", last_name="Valleyman")
            yield Demo(Tenant.objects.get(subdomain=TENANT_SUBDOMAIN), User.objects.get(username=ADMIN), stranger)
        finally:
            database_emptied()


@pytest.fixture(scope="module")
def server(demo) -> Iterator[str]:
    """A live server of the module's own: pytest-django's `live_server` would empty the
    database after every test."""
    live = LiveServer("localhost")
    yield live.url
    live.stop()


@pytest.fixture
def browser_context_args(server) -> dict[str, Any]:
    return {"base_url": server}


@pytest.fixture
def admin_page(page: Page, server: str) -> Page:
    log_in(page, server, ADMIN, DEMO_PASSWORD)
    expect(page.locator("#user-tools")).to_contain_text("Marcus")
    return page


def alive_contacts(tenant: Tenant):
    return Contact.objects.filter(tenant=tenant).exclude(is_deleted=True)


def messages(page: Page):
    return page.locator("ul.messagelist")


def run_action(page: Page, action: str, *names: str) -> None:
    """Tick the rows showing `names` on the change list and run the admin action."""
    for name in names:
        page.locator("#result_list tbody tr", has_text=name).locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def test_the_contact_list_shows_the_tenants_contacts_only(demo, admin_page, step):
    page = admin_page
    alive = alive_contacts(demo.tenant)
    first_page = [contact.display_name for contact in alive.order_by("-created_at", "-id")[:100]]

    page.goto("/admin/contacts/contact/")
    step("the contact list")
    expect(page.locator("p.paginator")).to_contain_text(f"{alive.count()} contacts")
    assert page.locator("#result_list tbody th.field-display_name").all_inner_texts() == first_page
    expect(page.locator("#changelist-filter")).not_to_contain_text("By tenant")  # one tenant: no such filter

    page.fill("#searchbar", demo.stranger.last_name)
    page.press("#searchbar", "Enter")
    step("another tenant's contact searched for")
    expect(page.locator("#result_list")).to_have_count(0)
    expect(page.locator("#changelist")).not_to_contain_text(demo.stranger.display_name)
    assert Contact.objects.filter(last_name=demo.stranger.last_name).count() == 1  # it exists, elsewhere

    page.goto(f"/admin/contacts/contact/{demo.stranger.pk}/change/")
    step("another tenant's contact by its id")
    expect(page.locator("ul.messagelist")).to_contain_text("doesn’t exist")


def test_a_contact_without_a_name_is_refused_on_the_field_then_one_is_added(demo, admin_page, step):
    page = admin_page
    before = Contact.objects.count()

    page.goto("/admin/contacts/contact/add/")
    page.select_option("#id_tenant", label=demo.tenant.name)
    page.click("input[name=_save]")
    step("saved without a name")
    expect(page.locator(".field-first_name .errorlist")).to_have_text(
        "Give the contact a name, an email or a phone number."
    )
    assert Contact.objects.count() == before

    page.fill("#id_first_name", "Wanda")
    page.fill("#id_last_name", "Shingleton")
    page.click("input[name=_save]")
    step("saved with a name")
    expect(messages(page)).to_contain_text("Wanda Shingleton")
    expect(page.locator("#result_list tbody tr").first).to_contain_text("Wanda Shingleton")
    added = Contact.objects.get(last_name="Shingleton")
    assert (added.tenant, added.first_name, added.created_by, added.is_deleted) == (
        demo.tenant,
        "Wanda",
        demo.admin,
        False,
    )
    assert Contact.objects.count() == before + 1


def test_a_projects_new_status_gets_its_default_substatus_and_a_history_row(demo, admin_page, step):
    page = admin_page
    project = Project.objects.alive().filter(tenant=demo.tenant, status="estimate").order_by("pk").first()
    default = SubstatusConfig.objects.get(tenant=demo.tenant, entity="project", status="approved", is_default=True)

    page.goto(f"/admin/crm/project/{project.pk}/change/")
    page.select_option("#id_status", "approved")
    page.fill("#id_reason", "Signed the estimate at the kitchen table")
    step("status changed to approved")
    page.click("input[name=_continue]")
    step("saved")

    expect(messages(page)).to_contain_text("was changed successfully")
    expect(page.locator("#id_status")).to_have_value("approved")
    expect(page.locator("#id_substatus")).to_have_value(str(default.pk))
    history = page.locator(".field-substatus_history table tbody tr").first
    expect(history).to_contain_text("estimate")
    expect(history).to_contain_text(f"approved / {default.label}")
    expect(history).to_contain_text("Signed the estimate at the kitchen table")
    project.refresh_from_db()
    assert (project.status, project.substatus_id) == ("approved", default.pk)
    change = SubstatusHistory.objects.filter(entity="project", record_id=project.pk).latest("changed_at", "id")
    assert (change.from_status, change.to_status, change.to_substatus_id, change.changed_by, change.reason) == (
        "estimate",
        "approved",
        default.pk,
        demo.admin,
        "Signed the estimate at the kitchen table",
    )


def test_a_contact_is_marked_deleted_and_restored(demo, admin_page, step):
    page = admin_page
    contact = alive_contacts(demo.tenant).filter(is_organization=False).order_by("-created_at", "-id").first()
    name = contact.display_name

    page.goto("/admin/contacts/contact/")
    run_action(page, "mark_deleted", name)
    step("marked deleted")
    expect(messages(page)).to_contain_text("1 marked deleted.")
    expect(page.locator("#result_list tbody")).not_to_contain_text(name)
    contact.refresh_from_db()
    assert contact.is_deleted is True

    page.goto("/admin/contacts/contact/?deleted=yes")
    expect(page.locator("#result_list tbody tr", has_text=name)).to_have_count(1)
    run_action(page, "restore_selected", name)
    step("restored")
    expect(messages(page)).to_contain_text("1 restored.")
    page.goto("/admin/contacts/contact/")
    expect(page.locator("#result_list tbody tr", has_text=name)).to_have_count(1)
    contact.refresh_from_db()
    assert contact.is_deleted is False


def test_a_campaign_is_created_from_a_template_and_published(demo, admin_page, step):
    page = admin_page
    template = CampaignTemplate.objects.get(tenant__isnull=True, key="estimate-follow-up")
    assert not Campaign.objects.filter(tenant=demo.tenant, name=template.name).exists()

    page.goto("/admin/campaigns/campaigntemplate/")
    run_action(page, "create_campaign", template.name)
    step("draft created from the template")
    expect(messages(page)).to_contain_text(f"Draft campaign “{template.name}” created from “{template.name}”.")
    campaign = Campaign.objects.get(tenant=demo.tenant, name=template.name)
    assert campaign.status == "draft"

    page.goto("/admin/campaigns/campaign/")
    expect(page.locator("#result_list tbody tr", has_text=template.name)).to_contain_text("Draft")
    run_action(page, "publish_selected", template.name)
    step("published")
    expect(messages(page)).to_contain_text("1 published.")
    expect(page.locator("#result_list tbody tr", has_text=template.name)).to_contain_text("Active")
    campaign.refresh_from_db()
    version = campaign.versions.get()
    assert (campaign.status, campaign.active_version_id, version.status, version.published_by) == (
        "active",
        version.pk,
        VersionStatus.PUBLISHED,
        demo.admin,
    )
    assert version.steps.count() == len(template.steps)


def test_a_saved_filter_is_refused_on_its_criteria_then_saved(demo, admin_page, step):
    page = admin_page
    name = "Hail leads in Aurora"
    wrong = {"and": [{"field": "roof_colour", "op": "equals", "value": "red"}]}
    right = {
        "and": [
            {"field": "stage", "op": "in", "value": ["new", "contacted"]},
            {"field": "address_city", "op": "equals", "value": "Aurora"},
        ]
    }

    page.goto("/admin/filters/savedfilter/add/")
    page.select_option("#id_tenant", label=demo.tenant.name)
    page.select_option("#id_entity_type", "contacts")
    page.fill("#id_name", name)
    page.fill("#id_filter_criteria", json.dumps(wrong))
    page.check("#id_is_shared")
    page.click("input[name=_save]")
    step("saved with an unknown field")
    expect(page.locator(".field-filter_criteria .errorlist")).to_contain_text("roof_colour")
    assert not SavedFilter.objects.filter(name=name).exists()

    page.fill("#id_filter_criteria", json.dumps(right))
    page.click("input[name=_save]")
    step("saved")
    expect(messages(page)).to_contain_text(name)
    expect(page.locator("#result_list tbody tr", has_text=name)).to_contain_text(ADMIN)
    saved = SavedFilter.objects.get(name=name)
    assert (saved.tenant, saved.created_by, saved.entity_type, saved.is_shared, saved.is_stale) == (
        demo.tenant,
        demo.admin,
        "contacts",
        True,
        False,
    )
    assert saved.filter_criteria == right
