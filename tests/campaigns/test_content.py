"""Merge fields in a sandbox, step configuration per type, templates and their preview."""

import pytest

from campaigns.content import MergeContext, render
from campaigns.models import CampaignTemplate
from campaigns.services import campaign_from_template, campaign_publish, step_create
from crm.errors import ApplicationError
from tests.api import assert_invalid
from tests.campaigns.conftest import build
from tests.conftest import client_for
from tests.factories import ContactFactory, ProjectFactory

pytestmark = pytest.mark.usefixtures("default_templates")

DEFAULT_NAMES = [
    "Customer Review Request",
    "Estimate Follow-up Sequence",
    "New Lead Welcome Series",
    "Post-Inspection Follow-up",
    "Storm Damage Outreach",
    "Win-back Inactive Leads",
]


def test_render_fills_the_merge_fields(tenant, manager):
    contact = ContactFactory(tenant=tenant, first_name="Dana")
    project = ProjectFactory(tenant=tenant, contact=contact, name="Hail repair")
    context = MergeContext(tenant=tenant, contact=contact, project=project, user=manager, unsubscribe_url="https://u/x")

    text = render("Hi {{contact.first_name}}, {{ project.name }} by {{ tenant.name }}. {{ unsubscribe_url }}", context)

    assert text == "Hi Dana, Hail repair by Summit Roofing. https://u/x"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{{ contact.ssn }}",
            "step_config.body: unknown merge field {{ contact.ssn }}; use one of: contact.first_name, "
            "contact.last_name, contact.display_name, contact.company, contact.address_street, "
            "contact.address_city, project.name, project.project_number, tenant.name, user.first_name, "
            "user.last_name, user.email, unsubscribe_url.",
        ),
        ("{{ contact.__class__ }}", None),
        ("{{ contact.tenant.name }}", None),
        ("{{ contact.first_name|upper }}", None),
        (
            "{% load static %}",
            "step_config.body: only merge fields like {{ contact.first_name }} are allowed, not '{%'.",
        ),
        ("{{ contact.first_name", "step_config.body: an unclosed {{ ... }}."),
    ],
)
def test_anything_but_a_merge_field_is_refused_naming_it(actor, body, message):
    campaign = build(actor, publish=False, steps=[])

    with pytest.raises(ApplicationError) as raised:
        step_create(actor=actor, campaign=campaign, step_type="send_email", step_config={"subject": "Hi", "body": body})

    assert raised.value.attr == "step_config"
    assert raised.value.code in {"unknown_merge_field", "template_syntax"}
    if message:
        assert raised.value.message == message
    else:
        assert body.strip("{} ") in raised.value.message


@pytest.mark.parametrize(
    ("step_type", "config", "message"),
    [
        ("send_sms", {}, "step_config.body: required text."),
        ("send_email", {"body": "x"}, "step_config.subject: required text."),
        (
            "update_field",
            {"field": "is_deleted", "value": True},
            "step_config.field: 'is_deleted' is not a contact field a campaign may change.",
        ),
        (
            "update_field",
            {"field": "lead_score", "value": "many"},
            "step_config.value: “many” value must be an integer.",
        ),
        ("manage_tags", {}, "step_config: tags to add or remove."),
        ("notify", {"message": "x"}, "step_config: name a user or a role (one of them)."),
        (
            "notify",
            {"message": "x", "role": "boss"},
            "step_config.role: one of ['owner', 'admin', 'manager', 'member', 'viewer'].",
        ),
        ("webhook", {"url": "ftp://example.com/x"}, "step_config.url: an http(s) URL."),
        ("wait", {"weekday": "tue"}, "step_config.time: a weekday needs a time of day."),
        ("wait", {"until_date": "2026-13-01"}, "step_config.until_date: a date (YYYY-MM-DD)."),
        ("exit_campaign", {"why": 1}, "step_config: unknown key(s) ['why']; allowed: []."),
    ],
)
def test_step_config_is_checked_per_type(actor, step_type, config, message):
    campaign = build(actor, publish=False, steps=[])

    with pytest.raises(ApplicationError) as raised:
        step_create(actor=actor, campaign=campaign, step_type=step_type, step_config=config)

    assert raised.value.message == message


def test_a_user_of_another_tenant_to_notify_is_refused(actor, other_user):
    campaign = build(actor, publish=False, steps=[])

    with pytest.raises(ApplicationError) as raised:
        step_create(
            actor=actor, campaign=campaign, step_type="notify", step_config={"message": "x", "user": other_user.pk}
        )

    assert raised.value.message == f'step_config.user: User "{other_user.pk}" is not an active member of this tenant.'
    assert raised.value.code == "does_not_exist"


def test_the_six_defaults_are_every_tenants(tenant, other_tenant, member_user, other_user):
    for user in (member_user, other_user):
        response = client_for(user).get("/api/v1/campaign-templates/")
        assert response.status_code == 200
        assert [row["name"] for row in response.json()["results"]] == DEFAULT_NAMES
        assert all(row["is_default"] for row in response.json()["results"])


def test_the_defaults_have_their_steps_and_triggers():
    welcome = CampaignTemplate.objects.get(key="new-lead-welcome")
    review = CampaignTemplate.objects.get(key="customer-review-request")

    assert [(s["step_type"], s["delay_value"], s["delay_unit"]) for s in welcome.steps] == [
        ("send_email", 0, "hours"),
        ("create_task", 2, "hours"),
        ("wait", 3, "days"),
        ("send_email", 0, "hours"),
        ("wait", 3, "days"),
        ("send_email", 0, "hours"),
    ]
    assert (welcome.campaign_type, welcome.goal_type, welcome.goal_target) == ("drip", "appointments", 50)
    assert review.triggers == [
        {"trigger_type": "stage_change", "trigger_config": {"entity": "project", "to": "completed"}}
    ]


@pytest.mark.parametrize(
    "key",
    [
        "new-lead-welcome",
        "estimate-follow-up",
        "post-inspection-follow-up",
        "win-back-inactive",
        "customer-review-request",
        "storm-damage-outreach",
    ],
)
def test_each_default_makes_a_draft_that_publishes(actor, key):
    template = CampaignTemplate.objects.get(key=key)
    campaign = campaign_from_template(actor=actor, template=template)

    assert campaign.status == "draft"
    draft = campaign.versions.get()
    assert draft.steps.count() == len(template.steps)
    assert draft.triggers.count() == len(template.triggers)
    campaign_publish(campaign=campaign, actor=actor)
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_preview_renders_every_step_for_the_chosen_contact(tenant, manager):
    contact = ContactFactory(tenant=tenant, first_name="Dana", address_city="Golden")
    template = CampaignTemplate.objects.get(key="storm-damage-outreach")

    response = client_for(manager).post(
        f"/api/v1/campaign-templates/{template.pk}/preview/", {"contact": contact.pk}, format="json"
    )

    assert response.status_code == 200, response.content
    steps = response.json()["steps"]
    assert steps[0]["subject"] == "Storm damage? Free roof inspection"
    assert steps[0]["body"].startswith("Hi Dana,\n\nThe recent storm damaged many roofs around Golden.")
    assert steps[2] == {
        "position": 3,
        "step_type": "send_sms",
        "delay_value": 0,
        "delay_unit": "hours",
        "body": "Summit Roofing: free storm-damage roof inspections this week. Reply YES to book. "
        "Reply STOP to opt out.",
    }
    assert steps[5]["title"] == "Call Dana about storm damage"


def test_preview_for_another_tenants_contact_is_400(tenant, other_tenant, manager):
    foreign = ContactFactory(tenant=other_tenant)
    template = CampaignTemplate.objects.get(key="storm-damage-outreach")

    response = client_for(manager).post(
        f"/api/v1/campaign-templates/{template.pk}/preview/", {"contact": foreign.pk}, format="json"
    )

    assert_invalid(
        response, attr="contact", code="does_not_exist", detail=f'Invalid pk "{foreign.pk}" - object does not exist.'
    )


def test_a_template_with_an_unknown_merge_field_is_400_naming_it(manager):
    body = {
        "key": "ours",
        "name": "Ours",
        "campaign_type": "drip",
        "steps": [{"step_type": "send_sms", "step_config": {"body": "Hi {{ contact.password }}"}}],
    }

    response = client_for(manager).post("/api/v1/campaign-templates/", body, format="json")

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["attr"] == "steps"
    assert error["detail"].startswith("steps[0].step_config.body: unknown merge field {{ contact.password }}")
    assert not CampaignTemplate.objects.filter(key="ours").exists()


def test_a_default_template_cannot_be_changed_or_deleted(manager):
    template = CampaignTemplate.objects.get(key="win-back-inactive")
    client = client_for(manager)

    assert (
        client.patch(f"/api/v1/campaign-templates/{template.pk}/", {"name": "Mine"}, format="json").status_code == 409
    )
    assert client.delete(f"/api/v1/campaign-templates/{template.pk}/").status_code == 409
    template.refresh_from_db()
    assert template.name == "Win-back Inactive Leads"
