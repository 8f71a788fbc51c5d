"""Versions: drafts edited and published, published ones frozen, enrollments pinned or mapped;
the step graph validated on publish with errors naming the step."""

import pytest
from django.db import IntegrityError, connection, transaction

from campaigns.models import CampaignEnrollment, CampaignStep, CampaignVersion
from campaigns.services import (
    campaign_draft,
    campaign_enroll,
    campaign_publish,
    step_create,
    step_update,
)
from crm.errors import ApplicationError, Conflict
from tests.campaigns.conftest import EMAIL, TASK, WAIT_DAYS, build
from tests.factories import ContactFactory


def test_publish_freezes_the_version_and_makes_it_active(actor):
    campaign = build(actor, publish=False)
    draft = CampaignVersion.objects.get(campaign=campaign)

    result = campaign_publish(campaign=campaign, actor=actor)

    campaign.refresh_from_db()
    draft.refresh_from_db()
    assert (campaign.status, campaign.active_version_id) == ("active", draft.pk)
    assert (draft.status, draft.published_by_id, result.moved) == ("published", actor.user.pk, 0)


def test_a_published_version_refuses_changes_on_every_path(actor):
    campaign = build(actor)
    step = campaign.active_version.steps.get()

    with pytest.raises(Conflict, match="published: edit the draft version"):
        step_update(step=step, actor=actor, delay_value=5)
    with pytest.raises(IntegrityError, match="campaign_steps_published_frozen"), transaction.atomic():
        CampaignStep.objects.filter(pk=step.pk).update(step_config={"title": "changed"})
    with (
        pytest.raises(IntegrityError, match="campaign_versions_published_stays"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE campaign_versions SET status = 'draft' WHERE id = %s", [step.version_id])
    CampaignStep.objects.filter(pk=step.pk).update(total_executed=3)  # the counters still move
    step.refresh_from_db()
    assert (step.total_executed, step.step_config) == (3, TASK["step_config"])


def test_editing_a_published_campaign_makes_a_draft_copy_with_paths_relinked(actor):
    campaign = build(actor, publish=False, steps=[])
    first = step_create(actor=actor, campaign=campaign, step_order=1, **EMAIL)
    branch = step_create(
        actor=actor,
        campaign=campaign,
        step_order=2,
        step_type="conditional",
        conditions=None,
    )
    yes = step_create(actor=actor, campaign=campaign, step_order=3, **TASK)
    no = step_create(actor=actor, campaign=campaign, step_order=4, step_type="exit_campaign")
    CampaignStep.objects.filter(pk=branch.pk).update(
        true_path_step=yes, false_path_step=no, conditions={"and": []}
    )  # conditions checked by the filters app; the graph is what this test is about
    CampaignStep.objects.filter(pk=yes.pk).update(step_type="exit_campaign", step_config={})
    campaign_publish(campaign=campaign, actor=actor)
    campaign.refresh_from_db()

    draft = campaign_draft(campaign=campaign, actor=actor)

    copies = {step.step_order: step for step in draft.steps.all()}
    assert draft.number == 2
    assert sorted(copies) == [1, 2, 3, 4]
    assert {copy.pk for copy in copies.values()}.isdisjoint({first.pk, branch.pk, yes.pk, no.pk})
    assert (copies[2].true_path_step_id, copies[2].false_path_step_id) == (copies[3].pk, copies[4].pk)


def test_in_flight_enrollments_stay_on_their_version_unless_mapped(actor, tenant):
    campaign = build(actor, steps=[TASK, WAIT_DAYS])
    v1 = campaign.active_version
    old_first, old_wait = v1.steps.order_by("step_order")
    pinned, mapped = ContactFactory.create_batch(2, tenant=tenant)
    enrollments = campaign_enroll(campaign=campaign, actor=actor, contacts=[pinned, mapped]).enrollments
    CampaignEnrollment.objects.filter(pk=enrollments[1].pk).update(current_step=old_wait, current_step_order=2)
    new_step = step_create(actor=actor, campaign=campaign, step_order=3, **TASK)
    draft = new_step.version

    result = campaign_publish(campaign=campaign, actor=actor, step_mapping={old_wait.pk: new_step.pk})

    assert result.moved == 1
    rows = dict(CampaignEnrollment.objects.values_list("contact_id", "version_id"))
    assert rows == {pinned.pk: v1.pk, mapped.pk: draft.pk}
    moved = CampaignEnrollment.objects.get(contact=mapped)
    assert (moved.current_step_id, moved.current_step_order) == (new_step.pk, 3)
    newcomer = campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)]).enrollments
    assert newcomer[0].version_id == draft.pk


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("unknown-old", "not a step of an earlier version of this campaign"),
        ("unknown-new", "is not a step of the version being published"),
    ],
)
def test_a_bad_step_mapping_is_refused_and_nothing_moves(actor, tenant, mapping, message):
    campaign = build(actor)
    old = campaign.active_version.steps.get()
    new_step = step_create(actor=actor, campaign=campaign, **TASK)
    body = {old.pk + 10_000: new_step.pk} if mapping == "unknown-old" else {old.pk: old.pk}

    with pytest.raises(ApplicationError, match=message):
        campaign_publish(campaign=campaign, actor=actor, step_mapping=body)
    assert new_step.version.status == "draft"
    assert CampaignVersion.objects.get(pk=new_step.version_id).status == "draft"


def _graph(actor, steps):
    campaign = build(actor, publish=False, steps=[])
    made = [
        step_create(actor=actor, campaign=campaign, step_order=order, **step) for order, step in enumerate(steps, 1)
    ]
    return campaign, made


def test_publishing_needs_a_step(actor):
    campaign, _ = _graph(actor, [])

    with pytest.raises(ApplicationError, match="at least one step") as raised:
        campaign_publish(campaign=campaign, actor=actor)
    assert raised.value.attr == "steps"


def test_a_conditional_needs_both_paths(actor):
    campaign, made = _graph(actor, [TASK, {"step_type": "conditional"}, TASK])
    CampaignStep.objects.filter(pk=made[1].pk).update(conditions={"and": []}, true_path_step=made[2])

    with pytest.raises(ApplicationError) as raised:
        campaign_publish(campaign=campaign, actor=actor)
    assert raised.value.message == ("steps[2].false_path_step: a conditional step needs both paths, in this version.")


def test_a_cycle_is_refused_with_its_path(actor):
    campaign, made = _graph(actor, [TASK, TASK, {"step_type": "conditional"}, {"step_type": "exit_campaign"}])
    CampaignStep.objects.filter(pk=made[2].pk).update(
        conditions={"and": []}, true_path_step=made[0], false_path_step=made[3]
    )

    with pytest.raises(ApplicationError) as raised:
        campaign_publish(campaign=campaign, actor=actor)
    assert raised.value.message == (
        "steps[3].true_path_step: leads back to step 1, a cycle (1 -> 2 -> 3 -> 1): every path must end."
    )
    assert CampaignVersion.objects.get(campaign=campaign).status == "draft"


def test_paths_into_another_version_are_refused(actor):
    other = build(actor, name="Other")
    campaign, made = _graph(actor, [{"step_type": "conditional"}])

    with pytest.raises(ApplicationError, match="belongs to another version") as raised:
        step_update(step=made[0], actor=actor, true_path_step=other.active_version.steps.get())
    assert raised.value.attr == "true_path_step"
