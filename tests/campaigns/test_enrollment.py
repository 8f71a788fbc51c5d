"""Who gets in: caps, re-enrollment, deleted contacts, and the counters the database keeps."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, CampaignEnrollment
from campaigns.services import campaign_archive, campaign_enroll, campaign_unenroll, enrollment_delete, enrollment_exit
from crm.errors import Conflict
from tests.campaigns.conftest import build
from tests.factories import ContactFactory


def counters(campaign: Campaign) -> tuple[int, int]:
    campaign.refresh_from_db()
    return campaign.total_enrolled, campaign.total_completed


def test_enroll_creates_one_enrollment_per_contact_at_the_first_step(actor, tenant):
    campaign = build(actor)
    contacts = ContactFactory.create_batch(3, tenant=tenant)

    result = campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)

    assert result.count == 3
    assert result.refused == {}
    rows = CampaignEnrollment.objects.filter(campaign=campaign).order_by("contact_id")
    first = campaign.active_version.steps.get()
    assert [(e.contact_id, e.rotation, e.status, e.current_step_id, e.version_id, e.enrolled_by_id) for e in rows] == [
        (contact.pk, 1, "active", first.pk, campaign.active_version_id, actor.user.pk) for contact in contacts
    ]
    assert counters(campaign) == (3, 0)


def test_dry_run_writes_nothing_and_gives_each_reason(actor, tenant):
    campaign = build(actor, max_enrollments=3)
    inside, fresh, other_fresh, later = ContactFactory.create_batch(4, tenant=tenant)
    deleted = ContactFactory(tenant=tenant, is_deleted=True)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[inside])

    result = campaign_enroll(
        campaign=campaign, actor=actor, contacts=[inside, deleted, fresh, other_fresh, later], dry_run=True
    )

    assert [contact.pk for contact in result.entered] == [fresh.pk, other_fresh.pk]
    assert result.refused == {inside.pk: "already_active", deleted.pk: "deleted", later.pk: "cap_reached"}
    assert CampaignEnrollment.objects.filter(campaign=campaign).count() == 1
    assert counters(campaign) == (1, 0)


def test_max_enrollments_counts_every_enrollment_ever(actor, tenant):
    campaign = build(actor, max_enrollments=2, allow_re_enrollment=True)
    first, second, third = ContactFactory.create_batch(3, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[first, second])
    campaign_unenroll(campaign=campaign, actor=actor, contacts=[first])

    result = campaign_enroll(campaign=campaign, actor=actor, contacts=[third])

    assert result.refused == {third.pk: "cap_reached"}
    assert counters(campaign) == (2, 0)


def test_without_re_enrollment_a_contact_enters_once(actor, tenant):
    campaign = build(actor)
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    campaign_unenroll(campaign=campaign, actor=actor, contacts=[contact])

    assert campaign_enroll(campaign=campaign, actor=actor, contacts=[contact]).refused == {
        contact.pk: "already_enrolled"
    }


def test_re_enrollment_waits_for_the_delay_then_opens_a_new_rotation(actor, tenant):
    campaign = build(actor, allow_re_enrollment=True, re_enrollment_delay_days=30)
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    campaign_unenroll(campaign=campaign, actor=actor, contacts=[contact])

    assert campaign_enroll(campaign=campaign, actor=actor, contacts=[contact]).refused == {
        contact.pk: "re_enrollment_delay"
    }

    CampaignEnrollment.objects.filter(contact=contact).update(exited_at=timezone.now() - dt.timedelta(days=31))
    result = campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    assert result.count == 1
    assert list(
        CampaignEnrollment.objects.filter(contact=contact).order_by("rotation").values_list("rotation", "status")
    ) == [(1, "exited"), (2, "active")]
    assert counters(campaign) == (2, 0)


def test_the_database_allows_one_active_enrollment_per_campaign_and_contact(actor, tenant):
    campaign = build(actor, allow_re_enrollment=True)
    contact = ContactFactory(tenant=tenant)
    enrollment = campaign_enroll(campaign=campaign, actor=actor, contacts=[contact]).enrollments[0]

    with pytest.raises(Exception, match="campaign_enrollments_one_active"), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO campaign_enrollments (tenant_id, campaign_id, version_id, contact_id, rotation, "
            "enrollment_source, status) VALUES (%s, %s, %s, %s, 2, 'api', 'active')",
            [tenant.pk, campaign.pk, enrollment.version_id, contact.pk],
        )


def test_counters_follow_inserts_completions_and_deletes_on_every_path(actor, tenant):
    campaign = build(actor)
    a, b, c = ContactFactory.create_batch(3, tenant=tenant)
    enrollments = campaign_enroll(campaign=campaign, actor=actor, contacts=[a, b]).enrollments
    assert counters(campaign) == (2, 0)

    with connection.cursor() as cursor:  # raw SQL: a completion, and a row of its own
        cursor.execute("UPDATE campaign_enrollments SET status = 'completed' WHERE id = %s", [enrollments[0].pk])
        cursor.execute(
            "INSERT INTO campaign_enrollments (tenant_id, campaign_id, version_id, contact_id, rotation, "
            "enrollment_source, status) VALUES (%s, %s, %s, %s, 1, 'bulk_import', 'completed')",
            [tenant.pk, campaign.pk, campaign.active_version_id, c.pk],
        )
    assert counters(campaign) == (3, 2)

    CampaignEnrollment.objects.filter(pk=enrollments[0].pk).update(status="active")  # undone
    assert counters(campaign) == (3, 1)

    enrollment_delete(enrollment=enrollments[1], actor=actor)
    CampaignEnrollment.objects.filter(contact=c).delete()
    assert counters(campaign) == (1, 0)


def test_exit_keeps_the_counts_and_refuses_a_finished_enrollment(actor, tenant):
    campaign = build(actor)
    enrollment = campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)]).enrollments[
        0
    ]

    exited = enrollment_exit(enrollment=enrollment, actor=actor, reason="goal")

    assert (exited.status, exited.exit_reason, exited.goal_achieved) == ("exited", "goal", True)
    assert counters(campaign) == (1, 0)
    with pytest.raises(Conflict, match="already exited"):
        enrollment_exit(enrollment=enrollment, actor=actor)


def test_archive_exits_everyone_in_flight_and_takes_no_one_new(actor, tenant):
    campaign = build(actor)
    contacts = ContactFactory.create_batch(2, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)

    campaign_archive(campaign=campaign, actor=actor)

    assert set(CampaignEnrollment.objects.values_list("status", "exit_reason")) == {("exited", "archived")}
    with pytest.raises(Conflict, match="this one is archived"):
        campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])


def test_a_draft_campaign_takes_no_enrollment(actor, tenant):
    campaign = build(actor, publish=False)

    with pytest.raises(Conflict, match="this one is draft"):
        campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    assert not CampaignEnrollment.objects.exists()
