"""Enrolling asks for a claim after its commit when the first step is due now (the real broker)."""

import json

import pytest
import redis
from django.conf import settings

from campaigns.models import CampaignStepExecution
from campaigns.services import campaign_enroll
from tests.campaigns.conftest import TASK, build
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CLAIM = "campaigns.tasks.campaign_executions_claim_task"


@pytest.fixture
def queue():
    """The tasks this test process sent to the broker (its own queue), emptied before and after."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    broker.delete(name)

    def sent() -> list[str]:
        return [json.loads(raw)["headers"]["task"] for raw in broker.lrange(name, 0, -1)]

    yield sent
    broker.delete(name)


def test_a_first_step_due_now_is_claimed_after_the_commit(actor, tenant, queue, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[TASK])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(3, tenant=tenant))
        assert queue() == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    assert queue() == [CLAIM]  # one claim for the batch, not one task a row
    assert CampaignStepExecution.objects.filter(enrollment__campaign=campaign, status="pending").count() == 3


def test_a_first_step_due_later_waits_for_beat(actor, tenant, queue, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[{**TASK, "delay_value": 1, "delay_unit": "days"}])

    with django_capture_on_commit_callbacks(execute=True):
        campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])

    assert queue() == []
