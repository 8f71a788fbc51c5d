"""The campaigns API: roles, the draft-publish cycle, enrollment with its dry run, simulate."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils.dateparse import parse_datetime

from campaigns.models import Campaign, CampaignEnrollment, CampaignTemplate
from tests.api import assert_error, tables
from tests.campaigns.conftest import EMAIL, SMS, TASK, build
from tests.conftest import client_for
from tests.factories import ContactFactory

URL = "/api/v1/campaigns/"


@pytest.mark.parametrize(
    ("persona", "read", "write"),
    [("viewer", 403, 403), ("member_user", 200, 403), ("manager", 200, 201), ("owner", 200, 201)],
)
def test_members_read_and_managers_write(request, persona, read, write):
    client = client_for(request.getfixturevalue(persona))

    assert client.get(URL).status_code == read
    response = client.post(URL, {"name": "Storm follow-up"}, format="json")

    assert response.status_code == write
    assert Campaign.objects.count() == (1 if write == 201 else 0)


def test_spreading_the_catch_up_needs_its_hours(manager):
    response = client_for(manager).post(URL, {"name": "x", "catch_up_policy": "spread_over_hours"}, format="json")

    assert_error(
        response,
        400,
        code="campaigns_catch_up_hours",
        detail="Spreading over hours needs the number of hours.",
        attr="catch_up_hours",
        type="validation_error",
    )
    assert not Campaign.objects.exists()


def test_a_campaign_is_built_published_and_enrolled_through_the_api(tenant, manager):
    client = client_for(manager)
    campaign = client.post(URL, {"name": "Welcome", "max_enrollments": 10}, format="json").json()
    assert (campaign["status"], campaign["active_version"]) == ("draft", None)
    steps = f"{URL}{campaign['id']}/steps/"
    first = client.post(steps, TASK, format="json")
    second = client.post(steps, {"step_type": "wait", "delay_value": 2, "delay_unit": "days"}, format="json")
    assert (first.status_code, second.status_code) == (201, 201), second.content
    assert [s["step_order"] for s in client.get(steps).json()] == [1, 2]

    published = client.post(f"{URL}{campaign['id']}/publish/", {}, format="json")

    assert published.status_code == 200, published.content
    assert (published.json()["status"], published.json()["active_version"]) == ("active", campaign["draft_version"])
    assert published.json()["draft_version"] is None
    inside, fresh = ContactFactory.create_batch(2, tenant=tenant)
    client.post(f"{URL}{campaign['id']}/enroll/", {"contacts": [inside.pk]}, format="json")
    before = tables()

    dry = client.post(f"{URL}{campaign['id']}/enroll/?dry_run=true", {"contacts": [inside.pk, fresh.pk]}, format="json")

    assert dry.status_code == 200
    assert dry.json() == {
        "dry_run": True,
        "count": 1,
        "entering": [{"id": fresh.pk, "display_name": fresh.display_name}],
        "refused_counts": {"already_active": 1},
        "refused": [{"contact": {"id": inside.pk, "display_name": inside.display_name}, "reason": "already_active"}],
    }
    assert tables() == before

    unenrolled = client.post(f"{URL}{campaign['id']}/unenroll/", {"contacts": [inside.pk]}, format="json")

    assert unenrolled.json() == {"unenrolled": 1}
    listed = client.get(f"/api/v1/campaign-enrollments/?campaign={campaign['id']}&exit_reason=unenrolled").json()
    assert [(row["contact"], row["status"]) for row in listed["results"]] == [(inside.pk, "exited")]
    assert client.get(f"{URL}{campaign['id']}/").json()["total_enrolled"] == 1


@pytest.mark.parametrize(
    ("mapping", "detail"),
    [
        ({"x1": 2}, "Keys are step ids; got 'x1'."),
        ({"": 2}, "Keys are step ids; got ''."),
        ({"\u00b2": 2}, "Keys are step ids; got '\u00b2'."),
        ({str(2**63): 2}, f"Keys are step ids; got '{2**63}'."),
        ({"3": 2**63}, "Step 3: Ensure this value is less than or equal to 9223372036854775807."),
        ({"3": -5}, "Step 3: Ensure this value is greater than or equal to 1."),
        ({"3": "two"}, "Step 3: A valid integer is required."),
    ],
)
def test_a_bad_step_mapping_is_400_on_step_mapping(manager, mapping, detail):
    client = client_for(manager)
    campaign = client.post(URL, {"name": "Mapped"}, format="json").json()
    before = tables()

    response = client.post(f"{URL}{campaign['id']}/publish/", {"step_mapping": mapping}, format="json")

    assert_error(response, 400, code="invalid", detail=detail, attr="step_mapping", type="validation_error")
    assert tables() == before


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ({"activity_type": "notice"}, "trigger_config.activity_type: one of ['call', "),
        ({"activity_type": "meeting", "subtype": 5}, "trigger_config.subtype: text of at most 50 characters."),
        ({"activity_type": "meeting", "who": "me"}, "trigger_config: unknown key(s) ['who']"),
    ],
    ids=["notices start no campaign", "subtype", "unknown key"],
)
def test_a_bad_event_trigger_is_400_on_trigger_config(manager, config, detail):
    campaign = client_for(manager).post(URL, {"name": "Welcome"}, format="json").json()
    before = tables()

    response = client_for(manager).post(
        f"{URL}{campaign['id']}/triggers/", {"trigger_type": "event", "trigger_config": config}, format="json"
    )

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["attr"], error["detail"][: len(detail)]) == ("trigger_config", detail)
    assert "notice" not in error["detail"]
    assert tables() == before


def test_publishing_an_invalid_graph_is_400_naming_the_step(manager):
    client = client_for(manager)
    campaign = client.post(URL, {"name": "Branchy"}, format="json").json()
    client.post(f"{URL}{campaign['id']}/steps/", {"step_type": "conditional"}, format="json")
    before = tables()

    response = client.post(f"{URL}{campaign['id']}/publish/", {}, format="json")

    assert_error(
        response,
        400,
        code="required",
        detail="steps[1].conditions: a conditional step needs conditions.",
        attr="steps",
        type="validation_error",
    )
    assert tables() == before


def test_a_published_step_is_409_and_a_new_step_opens_a_draft(actor, manager):
    campaign = build(actor)
    step = campaign.active_version.steps.get()
    client = client_for(manager)

    refused = client.patch(f"{URL}{campaign.pk}/steps/{step.pk}/", {"delay_value": 4}, format="json")
    added = client.post(f"{URL}{campaign.pk}/steps/", TASK, format="json")

    assert_error(
        refused,
        409,
        code="published_version",
        detail="Version 1 is published: edit the draft version instead.",
    )
    assert added.status_code == 201
    versions = client.get(f"{URL}{campaign.pk}/versions/").json()
    assert [(v["number"], v["status"]) for v in versions] == [(2, "draft"), (1, "published")]
    assert [s["step_order"] for s in client.get(f"{URL}{campaign.pk}/steps/").json()] == [1, 2]
    assert len(client.get(f"{URL}{campaign.pk}/steps/?version={step.version_id}").json()) == 1


def test_pause_resume_archive(actor, manager):
    campaign = build(actor)
    client = client_for(manager)

    assert client.post(f"{URL}{campaign.pk}/resume/").status_code == 409
    assert client.post(f"{URL}{campaign.pk}/pause/").json()["status"] == "paused"
    assert client.post(f"{URL}{campaign.pk}/resume/").json()["status"] == "active"
    assert client.post(f"{URL}{campaign.pk}/archive/").json()["status"] == "archived"
    assert client.patch(f"{URL}{campaign.pk}/", {"name": "Again"}, format="json").status_code == 409


def test_from_template_makes_an_editable_draft(manager, default_templates):
    template = CampaignTemplate.objects.get(key="estimate-follow-up")

    response = client_for(manager).post(
        f"{URL}from-template/", {"template": template.pk, "name": "Estimates 2026"}, format="json"
    )

    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert (campaign.name, campaign.status, campaign.campaign_type, campaign.goal_type) == (
        "Estimates 2026",
        "draft",
        "event",
        "deals",
    )
    assert campaign.steps.count() == 6
    assert list(campaign.triggers.values_list("trigger_type", "trigger_config")) == [
        ("event", {"activity_type": "email", "subtype": "estimate_sent"})
    ]


def test_simulate_shows_the_timeline_and_writes_nothing(actor, tenant, manager):
    wait = {"step_type": "wait", "delay_value": 3, "delay_unit": "days", "step_config": {}}
    later = {**TASK, "delay_value": 2, "delay_unit": "hours"}
    campaign = build(actor, steps=[TASK, wait, later])
    contacts = ContactFactory.create_batch(2, tenant=tenant)
    before = tables()

    response = client_for(manager).post(f"{URL}{campaign.pk}/simulate/", {"days": 30}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert tables() == before
    assert (body["sample"], body["entering"], body["refused"]) == (2, 2, [])
    start = parse_datetime(body["from"])
    first = body["contacts"][0]
    assert first["contact"] == contacts[0].pk
    offsets = [parse_datetime(entry["at"]) - start for entry in first["timeline"]]
    assert offsets == [dt.timedelta(0), dt.timedelta(days=3), dt.timedelta(days=3, hours=2)]
    assert first["timeline"][0]["title"] == f"Call {contacts[0].first_name}"
    assert not CampaignEnrollment.objects.exists()


def test_simulate_stops_at_the_horizon(actor, tenant, manager):
    wait = {"step_type": "wait", "delay_value": 3, "delay_unit": "weeks", "step_config": {}}
    campaign = build(actor, steps=[TASK, wait, TASK])
    ContactFactory(tenant=tenant)

    body = client_for(manager).post(f"{URL}{campaign.pk}/simulate/", {"days": 7}, format="json").json()

    assert [entry["step_order"] for entry in body["contacts"][0]["timeline"]] == [1]


def test_simulate_applies_business_hours_and_the_daily_cap_in_each_contacts_zone(actor, tenant, manager):
    weekdays = {day: {"start": "08:00", "end": "18:00"} for day in ("mon", "tue", "wed", "thu", "fri")}
    campaign = build(
        actor, steps=[EMAIL, SMS], respect_business_hours=True, business_hours=weekdays, max_messages_per_day=1
    )
    local_contact = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="(303) 555-0100")
    paris_contact = ContactFactory(
        tenant=tenant, sms_opt_in=True, mobile_phone="(303) 555-0101", timezone="Europe/Paris"
    )

    body = client_for(manager).post(f"{URL}{campaign.pk}/simulate/", {"days": 14}, format="json").json()

    for contact, zone in ((local_contact, ZoneInfo(tenant.timezone)), (paris_contact, ZoneInfo("Europe/Paris"))):
        row = next(row for row in body["contacts"] if row["contact"] == contact.pk)
        email, sms = (parse_datetime(entry["at"]).astimezone(zone) for entry in row["timeline"])
        for sent in (email, sms):
            assert sent.weekday() < 5
            assert dt.time(8) <= sent.time() < dt.time(18)
        assert sms.time() == dt.time(8)  # the cap moved it to the next opening
        assert sms.date() > email.date()
        assert [entry["step_type"] for entry in row["timeline"]] == ["send_email", "send_sms"]
    assert sum(count for day in body["sends_per_day"].values() for count in day.values()) == 4
