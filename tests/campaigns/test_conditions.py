"""Conditions in the filter language: who may enter, who is kept out or leaves, the goal, and
conditional branches (the filters app's service decides; these tests need it)."""

import pytest

from campaigns.models import CampaignEnrollment
from campaigns.scan import campaigns_check_exits
from campaigns.services import campaign_enroll, trigger_create
from crm.errors import ApplicationError
from crm.models import Project
from tests.campaigns.conftest import build
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory

QUALIFIED = {"field": "stage", "op": "in", "value": ["qualified"]}
LOST = {"field": "stage", "op": "in", "value": ["lost"]}


def manual(**conditions):
    return {"trigger_type": "manual", "trigger_config": {}, **conditions}


def test_enrollment_and_exclusion_conditions_decide_who_enters(actor, tenant):
    campaign = build(
        actor, triggers=[manual(enrollment_conditions={"or": [QUALIFIED, LOST]}, exclusion_conditions=LOST)]
    )
    qualified = ContactFactory(tenant=tenant, stage="qualified")
    lost = ContactFactory(tenant=tenant, stage="lost")
    new = ContactFactory(tenant=tenant, stage="new")

    result = campaign_enroll(campaign=campaign, actor=actor, contacts=[qualified, lost, new])

    assert [contact.pk for contact in result.entered] == [qualified.pk]
    assert result.refused == {lost.pk: "excluded", new.pk: "not_eligible"}


def test_coming_to_match_an_exclusion_exits_the_enrollment(actor, tenant):
    campaign = build(actor, triggers=[manual(exclusion_conditions=LOST)])
    staying, leaving = ContactFactory.create_batch(2, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[staying, leaving])
    leaving.stage = "lost"
    leaving.save()

    assert campaigns_check_exits() == {"goal": 0, "excluded": 1}

    assert dict(CampaignEnrollment.objects.values_list("contact_id", "exit_reason")) == {
        staying.pk: None,
        leaving.pk: "excluded",
    }


@pytest.mark.parametrize("goal", ["appointments", "deals"])
def test_meeting_the_goal_exits_with_goal(actor, tenant, goal):
    campaign = build(actor, goal_type=goal)
    met, waiting = ContactFactory.create_batch(2, tenant=tenant)
    project = ProjectFactory(tenant=tenant, contact=met)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[met, waiting])
    ActivityFactory(tenant=tenant, contact=waiting, type="call")  # not a goal
    if goal == "appointments":
        ActivityFactory(tenant=tenant, contact=met, type="meeting")
    else:
        Project.objects.filter(pk=project.pk).update(status="approved")

    assert campaigns_check_exits() == {"goal": 1, "excluded": 0}

    row = CampaignEnrollment.objects.get(contact=met)
    assert (row.status, row.exit_reason, row.goal_achieved, row.goal_achieved_at is not None) == (
        "exited",
        "goal",
        True,
        True,
    )
    assert CampaignEnrollment.objects.get(contact=waiting).status == "active"


def test_a_bad_tree_is_refused_with_its_path(actor):
    campaign = build(actor, publish=False)

    with pytest.raises(ApplicationError) as raised:
        trigger_create(
            actor=actor,
            campaign=campaign,
            trigger_type="manual",
            enrollment_conditions={"and": [QUALIFIED, {"field": "shoe_size", "op": "equals", "value": 9}]},
        )

    assert raised.value.attr == "enrollment_conditions"
    assert raised.value.message.startswith("enrollment_conditions: ")
    assert "and[1]" in raised.value.message


def test_a_filter_value_of_another_tenant_is_400(actor, manager, other_user):
    campaign = build(actor, publish=False)
    tree = {"field": "assigned_to", "op": "equals", "value": other_user.pk}

    response = client_for(manager).post(
        f"/api/v1/campaigns/{campaign.pk}/triggers/",
        {"trigger_type": "manual", "enrollment_conditions": tree},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["attr"] == "enrollment_conditions"
    assert not campaign.triggers.exists()


def test_enroll_by_filter_through_the_api(actor, tenant, manager):
    campaign = build(actor)
    qualified = ContactFactory.create_batch(2, tenant=tenant, stage="qualified")
    ContactFactory(tenant=tenant, stage="new")

    response = client_for(manager).post(
        f"/api/v1/campaigns/{campaign.pk}/enroll/", {"filter": QUALIFIED}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 2
    assert sorted(CampaignEnrollment.objects.values_list("contact_id", flat=True)) == sorted(c.pk for c in qualified)


def test_simulate_follows_the_conditional_branch_each_contact_takes(actor, tenant, manager):
    from campaigns.models import CampaignStep
    from campaigns.services import campaign_publish, step_create

    campaign = build(actor, publish=False, steps=[])
    branch = step_create(actor=actor, campaign=campaign, step_type="conditional", conditions=QUALIFIED)
    yes = step_create(actor=actor, campaign=campaign, step_type="create_task", step_config={"title": "Qualified"})
    no = step_create(actor=actor, campaign=campaign, step_type="exit_campaign")
    CampaignStep.objects.filter(pk=branch.pk).update(true_path_step=yes, false_path_step=no)
    campaign_publish(campaign=campaign, actor=actor)
    hot = ContactFactory(tenant=tenant, stage="qualified")
    cold = ContactFactory(tenant=tenant, stage="new")

    body = client_for(manager).post(f"/api/v1/campaigns/{campaign.pk}/simulate/", {}, format="json").json()

    paths = {row["contact"]: [entry["step_order"] for entry in row["timeline"]] for row in body["contacts"]}
    assert paths == {hot.pk: [1, 2, 3], cold.pk: [1, 3]}
