"""The send ledger over the API: read by members, filtered, `unknown` rows resolved by managers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import CampaignStepExecution
from campaigns.services import campaign_enroll
from tests.api import api_errors, app_queries
from tests.campaigns.conftest import EMAIL, TASK, build
from tests.conftest import client_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/campaign-executions/"


@pytest.fixture
def rows(actor, tenant):
    campaign = build(actor, steps=[EMAIL, TASK])
    other = build(actor, name="Other", steps=[TASK])
    contacts = ContactFactory.create_batch(2, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)
    campaign_enroll(campaign=other, actor=actor, contacts=contacts[:1])
    unknown = CampaignStepExecution.objects.filter(enrollment__campaign=campaign).order_by("pk").first()
    CampaignStepExecution.objects.filter(pk=unknown.pk).update(status="unknown")
    return campaign, other, unknown


def test_members_read_the_ledger_filtered_by_campaign_and_status(rows, member_user):
    campaign, other, unknown = rows
    client = client_for(member_user)

    by_campaign = client.get(URL, {"campaign": campaign.pk}).json()
    by_status = client.get(URL, {"status": "unknown"}).json()
    by_step = client.get(URL, {"step": other.active_version.steps.get().pk}).json()

    assert by_campaign["count"] == 2
    assert {row["campaign"] for row in by_campaign["results"]} == {campaign.pk}
    assert [row["id"] for row in by_status["results"]] == [unknown.pk]
    assert [row["campaign"] for row in by_step["results"]] == [other.pk]
    assert client.get(URL, {"skip_reason": "no_consent"}).json()["count"] == 0


def test_a_manager_marks_an_unknown_send_as_sent(rows, manager):
    _campaign, _other, unknown = rows

    response = client_for(manager).post(f"{URL}{unknown.pk}/resolve/", {"resolution": "mark_sent"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["result_data"]["resolved"]["by"]) == ("completed", manager.pk)
    assert CampaignStepExecution.objects.filter(enrollment=unknown.enrollment).count() == 2  # the next step


def test_resolving_a_row_that_is_not_unknown_is_409_and_changes_nothing(rows, manager):
    campaign, _other, unknown = rows
    pending = CampaignStepExecution.objects.filter(enrollment__campaign=campaign, status="pending").first()

    response = client_for(manager).post(f"{URL}{pending.pk}/resolve/", {"resolution": "send_again"}, format="json")

    assert [error["code"] for error in api_errors(response, 409)] == ["not_unknown"]
    assert CampaignStepExecution.objects.get(pk=pending.pk).status == "pending"


def test_a_bad_resolution_is_400_naming_the_field(rows, manager):
    _campaign, _other, unknown = rows

    response = client_for(manager).post(f"{URL}{unknown.pk}/resolve/", {"resolution": "maybe"}, format="json")

    assert [error["attr"] for error in api_errors(response, 400, type="validation_error")] == ["resolution"]
    assert CampaignStepExecution.objects.get(pk=unknown.pk).status == "unknown"


def test_members_may_not_resolve_and_nobody_creates_rows(rows, member_user, manager):
    _campaign, _other, unknown = rows

    denied = client_for(member_user).post(f"{URL}{unknown.pk}/resolve/", {"resolution": "mark_sent"}, format="json")
    created = client_for(manager).post(URL, {}, format="json")

    assert denied.status_code == 403
    assert created.status_code == 405
    assert CampaignStepExecution.objects.get(pk=unknown.pk).status == "unknown"


def test_a_page_of_50_rows_costs_what_a_page_of_5_does(actor, tenant, owner):
    campaign = build(actor)
    client = client_for(owner)

    def queries() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(URL, {"page_size": 200})
        return response.json()["count"], len(app_queries(captured))

    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(5, tenant=tenant))
    few = queries()
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(45, tenant=tenant))

    assert (few, queries()) == ((5, 3), (50, 3))  # the tenant, the count, the page
