"""Campaigns built through the services, as an office would build them."""

from typing import Any

import pytest

from campaigns.defaults import default_templates_ensure
from campaigns.models import Campaign
from campaigns.services import campaign_create, campaign_publish, step_create, trigger_create
from crm.actor import Actor, Source

TASK = {"step_type": "create_task", "step_config": {"title": "Call {{ contact.first_name }}"}}
EMAIL = {
    "step_type": "send_email",
    "step_config": {"subject": "Hello {{ contact.first_name }}", "body": "From {{ tenant.name }}"},
}
SMS = {"step_type": "send_sms", "step_config": {"body": "Hi {{ contact.first_name }}"}}
WAIT_DAYS = {"step_type": "wait", "delay_value": 3, "delay_unit": "days", "step_config": {}}


@pytest.fixture
def default_templates(db):
    """The six defaults as the data migration writes them. A transactional test elsewhere in the
    run flushes every table, data-migration rows included, so they are put back when missing."""
    default_templates_ensure()


@pytest.fixture
def actor(tenant, manager):
    return Actor(tenant=tenant, user=manager, source=Source.API)


def build(
    actor: Actor,
    *,
    steps: list[dict[str, Any]] | None = None,
    triggers: list[dict[str, Any]] | None = None,
    publish: bool = True,
    **fields: Any,
) -> Campaign:
    campaign = campaign_create(actor=actor, name=fields.pop("name", "Welcome"), **fields)
    for step in steps if steps is not None else [TASK]:
        step_create(actor=actor, campaign=campaign, **step)
    for trigger in triggers or []:
        trigger_create(actor=actor, campaign=campaign, **trigger)
    if publish:
        campaign_publish(campaign=campaign, actor=actor)
    campaign.refresh_from_db()
    return campaign
