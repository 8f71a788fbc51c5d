"""The staff pages: campaigns saved through the services, steps edited inline on the draft
version only, enrollments listed and taken out, a campaign created from a template."""

from campaigns.models import (
    Campaign,
    CampaignEnrollment,
    CampaignStep,
    CampaignStepExecution,
    CampaignTemplate,
    CampaignVersion,
)
from campaigns.services import campaign_enroll
from crm.models import Role
from tests.admin import admin_url, form_errors, post_page, staff_client
from tests.campaigns.conftest import EMAIL, TASK, build
from tests.factories import ContactFactory


def test_adding_a_campaign_creates_its_draft_version(tenant):
    client, user = staff_client(tenant, Role.MANAGER)

    response = post_page(client, admin_url("add", Campaign), {"tenant": tenant.pk, "name": "Hail 2026"})

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.name, campaign.created_by_id) == ("Hail 2026", user.pk)
    assert list(campaign.versions.values_list("number", "status")) == [(1, "draft")]


def test_a_member_cannot_change_campaigns(actor, tenant):
    campaign = build(actor)
    client, _ = staff_client(tenant, Role.MEMBER)

    assert client.get(admin_url("change", Campaign, campaign.pk)).context["has_change_permission"] is False


def test_steps_are_added_inline_on_the_draft_through_the_service(actor, tenant):
    campaign = build(actor, publish=False, steps=[])
    draft = campaign.versions.get()
    client, _ = staff_client(tenant, Role.MANAGER)

    response = post_page(
        client,
        admin_url("change", CampaignVersion, draft.pk),
        {
            "steps-TOTAL_FORMS": "1",
            "steps-0-step_order": "1",
            "steps-0-step_type": "send_sms",
            "steps-0-delay_value": "0",
            "steps-0-delay_unit": "hours",
            "steps-0-step_config": '{"body": "Hi {{ contact.first_name }}"}',
            "steps-0-variants": "[]",
            "steps-0-conditions": "null",
        },
    )

    assert response.status_code == 302, form_errors(response)
    assert list(CampaignStep.objects.values_list("version_id", "step_type", "step_config")) == [
        (draft.pk, "send_sms", {"body": "Hi {{ contact.first_name }}"})
    ]


def test_a_refused_inline_step_is_shown_on_its_row_and_nothing_is_saved(actor, tenant):
    campaign = build(actor, publish=False, steps=[])
    draft = campaign.versions.get()
    client, _ = staff_client(tenant, Role.MANAGER)

    response = post_page(
        client,
        admin_url("change", CampaignVersion, draft.pk),
        {
            "steps-TOTAL_FORMS": "1",
            "steps-0-step_order": "1",
            "steps-0-step_type": "send_sms",
            "steps-0-delay_value": "0",
            "steps-0-delay_unit": "hours",
            "steps-0-step_config": '{"body": "Hi {{ contact.secret }}"}',
            "steps-0-variants": "[]",
            "steps-0-conditions": "null",
        },
    )

    assert any("unknown merge field {{ contact.secret }}" in message for _, message in form_errors(response))
    assert not CampaignStep.objects.exists()


def test_a_published_version_is_read_only(actor, tenant):
    campaign = build(actor)
    client, _ = staff_client(tenant, Role.MANAGER)

    page = client.get(admin_url("change", CampaignVersion, campaign.active_version_id))

    inlines = page.context["inline_admin_formsets"]
    assert [(i.has_add_permission, i.has_change_permission, i.has_delete_permission) for i in inlines] == [
        (False, False, False),
        (False, False, False),
    ]


def test_enrollments_are_listed_by_status_and_taken_out(actor, tenant):
    campaign = build(actor)
    contacts = ContactFactory.create_batch(2, tenant=tenant)
    enrollments = campaign_enroll(campaign=campaign, actor=actor, contacts=contacts).enrollments
    client, _ = staff_client(tenant, Role.MANAGER)

    response = client.post(
        admin_url("changelist", CampaignEnrollment),
        {"action": "unenroll_selected", "_selected_action": [enrollments[0].pk]},
    )

    assert response.status_code == 302
    assert dict(CampaignEnrollment.objects.values_list("pk", "exit_reason")) == {
        enrollments[0].pk: "unenrolled",
        enrollments[1].pk: None,
    }
    listed = client.get(admin_url("changelist", CampaignEnrollment) + "?status__exact=active")
    assert [row.pk for row in listed.context["cl"].result_list] == [enrollments[1].pk]


def test_create_from_template_makes_a_draft_in_the_managers_tenant(tenant, default_templates):
    client, _ = staff_client(tenant, Role.MANAGER)
    template = CampaignTemplate.objects.get(key="post-inspection-follow-up")

    response = client.post(
        admin_url("changelist", CampaignTemplate), {"action": "create_campaign", "_selected_action": [template.pk]}
    )

    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.tenant_id, campaign.name, campaign.status, campaign.steps.count()) == (
        tenant.pk,
        "Post-Inspection Follow-up",
        "draft",
        3,
    )


def test_default_templates_are_read_only_in_the_admin(tenant, default_templates):
    client, _ = staff_client(tenant, Role.OWNER)
    template = CampaignTemplate.objects.get(key="post-inspection-follow-up")

    page = client.get(admin_url("change", CampaignTemplate, template.pk))

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False


def test_the_ledger_lists_unknown_sends_first_and_resolves_them(actor, tenant):
    campaign = build(actor, steps=[EMAIL, TASK])
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(3, tenant=tenant))
    first, unknown, last = CampaignStepExecution.objects.order_by("pk")
    CampaignStepExecution.objects.filter(pk=unknown.pk).update(status="unknown")
    client, user = staff_client(tenant, Role.MANAGER)

    listed = client.get(admin_url("changelist", CampaignStepExecution)).context["cl"].result_list
    response = client.post(
        admin_url("changelist", CampaignStepExecution),
        {"action": "mark_sent", "_selected_action": [unknown.pk, first.pk]},
    )

    assert [row.pk for row in listed] == [unknown.pk, last.pk, first.pk]
    assert response.status_code == 302
    assert dict(CampaignStepExecution.objects.filter(step__step_order=1).values_list("pk", "status")) == {
        first.pk: "pending",  # not unknown: refused, unchanged
        unknown.pk: "completed",
        last.pk: "pending",
    }
    assert CampaignStepExecution.objects.get(pk=unknown.pk).result_data["resolved"]["by"] == user.pk


def test_the_ledger_is_read_only(actor, tenant):
    campaign = build(actor)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    row = CampaignStepExecution.objects.get()
    client, _ = staff_client(tenant, Role.OWNER)

    page = client.get(admin_url("change", CampaignStepExecution, row.pk))

    assert page.status_code == 200
    assert page.context["has_add_permission"] is False
    assert page.context["has_delete_permission"] is False
    assert client.get(admin_url("add", CampaignStepExecution)).status_code == 403
