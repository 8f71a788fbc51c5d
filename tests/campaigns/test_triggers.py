"""Triggers see changes on every write path (they read what the database records), once."""

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from campaigns.models import CampaignEnrollment, CampaignTrigger
from campaigns.scan import campaign_triggers_scan, trigger_scan
from campaigns.services import campaign_pause
from campaigns.tasks import campaign_triggers_scan_task
from contacts.models import Contact
from crm.actor import Actor
from crm.celery import app
from crm.models import Activity, Project, Role
from substatus.models import SubstatusConfig, SubstatusHistory
from substatus.tasks import substatus_auto_transition_task
from tests.admin import admin_url, post_page, staff_client
from tests.campaigns.conftest import build
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory

TO_QUALIFIED = {"trigger_type": "stage_change", "trigger_config": {"entity": "contact", "to": "qualified"}}
PROJECT_COMPLETED = {"trigger_type": "stage_change", "trigger_config": {"entity": "project", "to": "completed"}}
INSPECTION = {"trigger_type": "event", "trigger_config": {"activity_type": "meeting", "subtype": "roof_inspection"}}


def enrolled(campaign) -> list[tuple[int, str | None, str]]:
    return list(
        CampaignEnrollment.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("contact_id", "enrollment_source", "status")
    )


def test_a_stage_change_through_the_api_enrolls_once(actor, tenant, member_user):
    campaign = build(actor, triggers=[TO_QUALIFIED])
    contact = ContactFactory(tenant=tenant)

    response = client_for(member_user).patch(f"/api/v1/contacts/{contact.pk}/", {"stage": "qualified"})
    assert response.status_code == 200

    assert campaign_triggers_scan() == 1
    assert campaign_triggers_scan() == 0  # seen once, however often the scan runs
    assert enrolled(campaign) == [(contact.pk, "automatic_trigger", "active")]
    row = CampaignEnrollment.objects.get()
    history = SubstatusHistory.objects.filter(entity="contact", record_id=contact.pk).latest("id")
    assert (row.trigger_event, row.trigger.trigger_type) == (f"history:{history.pk}", "stage_change")


def test_a_stage_change_through_the_admin_enrolls(actor, tenant):
    campaign = build(actor, triggers=[TO_QUALIFIED])
    contact = ContactFactory(tenant=tenant, first_name="Dana")
    client, _ = staff_client(tenant, Role.MEMBER)
    response = post_page(client, admin_url("change", Contact, contact.pk), {"stage": "qualified"})
    assert response.status_code == 302

    assert campaign_triggers_scan() == 1
    assert enrolled(campaign) == [(contact.pk, "automatic_trigger", "active")]


def test_a_stage_change_in_raw_sql_enrolls(actor, tenant):
    campaign = build(actor, triggers=[TO_QUALIFIED])
    contact = ContactFactory(tenant=tenant)
    untouched = ContactFactory(tenant=tenant)

    with connection.cursor() as cursor:
        cursor.execute("UPDATE contacts SET stage = 'qualified' WHERE id = %s", [contact.pk])

    assert campaign_triggers_scan() == 1
    assert enrolled(campaign) == [(contact.pk, "automatic_trigger", "active")]
    assert untouched.pk not in {row[0] for row in enrolled(campaign)}


def test_changes_before_the_publish_are_not_replayed(actor, tenant):
    ContactFactory(tenant=tenant, stage="qualified")
    campaign = build(actor, triggers=[TO_QUALIFIED])
    trigger = CampaignTrigger.objects.get(version=campaign.active_version)
    assert trigger.watermark_id == SubstatusHistory.objects.latest("id").pk

    # Outside the late-commit window, the old change is not seen again.
    assert trigger_scan(trigger_id=trigger.pk, now=timezone.now() + dt.timedelta(hours=1)) == 0
    assert enrolled(campaign) == []


def test_a_project_reaching_completed_enrolls_its_contact_with_the_project(actor, tenant):
    campaign = build(actor, triggers=[PROJECT_COMPLETED])
    project = ProjectFactory(tenant=tenant)

    Project.objects.filter(pk=project.pk).update(status="completed")

    assert campaign_triggers_scan() == 1
    row = CampaignEnrollment.objects.get(campaign=campaign)
    assert (row.contact_id, row.project_id) == (project.contact_id, project.pk)


def test_the_from_status_narrows_the_trigger(actor, tenant):
    campaign = build(
        actor,
        triggers=[
            {"trigger_type": "stage_change", "trigger_config": {"entity": "contact", "from": "new", "to": "lost"}}
        ],
    )
    from_new = ContactFactory(tenant=tenant)
    from_qualified = ContactFactory(tenant=tenant, stage="qualified")

    Contact.objects.filter(pk__in=[from_new.pk, from_qualified.pk]).update(stage="lost")

    assert campaign_triggers_scan() == 1
    assert enrolled(campaign) == [(from_new.pk, "automatic_trigger", "active")]


def test_an_event_through_the_api_and_in_raw_sql_enrolls(actor, tenant, member_user):
    campaign = build(actor, triggers=[INSPECTION])
    by_api, by_sql, other_subtype = ContactFactory.create_batch(3, tenant=tenant)

    response = client_for(member_user).post(
        "/api/v1/activities/", {"type": "meeting", "subtype": "roof_inspection", "contact": by_api.pk}
    )
    assert response.status_code == 201, response.content
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO activities (tenant_id, contact_id, type, subtype, outcome_details) "
            "VALUES (%s, %s, 'meeting', 'roof_inspection', '{}')",
            [tenant.pk, by_sql.pk],
        )
    ActivityFactory(tenant=tenant, contact=other_subtype, type="meeting", subtype="walkthrough")

    assert campaign_triggers_scan() == 2
    assert {row[0] for row in enrolled(campaign)} == {by_api.pk, by_sql.pk}
    assert campaign_triggers_scan() == 0


def test_an_event_logged_in_the_admin_enrolls(actor, tenant):
    campaign = build(actor, triggers=[INSPECTION])
    contact = ContactFactory(tenant=tenant)
    client, _ = staff_client(tenant, Role.MEMBER)

    response = post_page(
        client,
        admin_url("add", Activity),
        {"tenant": tenant.pk, "type": "meeting", "subtype": "roof_inspection", "contact": contact.pk},
    )
    assert response.status_code == 302

    assert campaign_triggers_scan() == 1
    assert enrolled(campaign) == [(contact.pk, "automatic_trigger", "active")]


def test_a_time_based_trigger_enrolls_on_the_day_once(actor, tenant):
    today = timezone.localdate(timezone=ZoneInfo(tenant.timezone))  # the tenant's day, not UTC's
    campaign = build(
        actor,
        triggers=[
            {
                "trigger_type": "time_based",
                "trigger_config": {"entity": "project", "field": "actual_completion", "offset_days": 180},
            }
        ],
    )
    due = ProjectFactory(tenant=tenant, actual_completion=today - dt.timedelta(days=180))
    ProjectFactory(tenant=tenant, actual_completion=today - dt.timedelta(days=179))
    ProjectFactory(tenant=tenant, actual_completion=today - dt.timedelta(days=400))

    assert campaign_triggers_scan() == 1
    assert campaign_triggers_scan() == 0
    row = CampaignEnrollment.objects.get(campaign=campaign)
    assert (row.contact_id, row.project_id) == (due.contact_id, due.pk)
    assert row.trigger_event == f"time:project:{due.pk}:{today.isoformat()}"


def test_a_fixed_date_enrolls_every_live_contact_once_on_the_day(actor, tenant, other_tenant):
    today = timezone.localdate(timezone=ZoneInfo(tenant.timezone))
    campaign = build(actor, triggers=[{"trigger_type": "time_based", "trigger_config": {"date": today.isoformat()}}])
    live = ContactFactory.create_batch(2, tenant=tenant)
    ContactFactory(tenant=tenant, is_deleted=True)
    ContactFactory(tenant=other_tenant)

    assert campaign_triggers_scan() == 2
    assert campaign_triggers_scan() == 0
    assert sorted(row[0] for row in enrolled(campaign)) == sorted(contact.pk for contact in live)
    assert set(CampaignEnrollment.objects.values_list("trigger_event", flat=True)) == {f"date:{today.isoformat()}"}


def test_paused_campaigns_and_inactive_triggers_enroll_no_one(actor, tenant):
    paused = build(actor, name="Paused", triggers=[TO_QUALIFIED])
    campaign_pause(campaign=paused, actor=actor)
    contact = ContactFactory(tenant=tenant)

    Contact.objects.filter(pk=contact.pk).update(stage="qualified")

    assert campaign_triggers_scan() == 0
    assert not CampaignEnrollment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_enroll_each_change_once(tenant, manager):
    actor = Actor(tenant=tenant, user=manager)
    campaign = build(actor, triggers=[TO_QUALIFIED])
    contacts = ContactFactory.create_batch(20, tenant=tenant)
    Contact.objects.filter(pk__in=[c.pk for c in contacts]).update(stage="qualified")
    created: list[int] = []
    barrier = threading.Barrier(2)

    def scan() -> None:
        try:
            barrier.wait()
            created.append(campaign_triggers_scan())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scan) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(created) == 20
    assert CampaignEnrollment.objects.filter(campaign=campaign).count() == 20
    campaign.refresh_from_db()
    assert campaign.total_enrolled == 20


def test_beat_scans_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["campaign-triggers-scan"]

    assert entry == {"task": campaign_triggers_scan_task.name, "schedule": 60}
    assert entry["task"] in app.tasks


@pytest.fixture
def worker_runs(transactional_db):
    """A Celery worker thread on Redis and the test database; yields the (task, result) it ran."""
    runs: list[tuple[str, object]] = []
    finished = threading.Semaphore(0)

    def record(task=None, retval=None, **kwargs):
        runs.append((task.name, retval))
        connections.close_all()
        finished.release()

    task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield runs, finished
    finally:
        task_postrun.disconnect(record)


def test_a_substatus_moved_by_a_celery_task_enrolls_through_the_scan_task(worker_runs, tenant, manager):
    runs, finished = worker_runs
    actor = Actor(tenant=tenant, user=manager)
    measured = SubstatusConfig.objects.get(tenant=tenant, entity="project", key="measurements_taken")
    quoted = SubstatusConfig.objects.get(tenant=tenant, entity="project", key="quote_prepared")
    SubstatusConfig.objects.filter(pk=measured.pk).update(auto_transition_to=quoted, auto_transition_delay_hours=48)
    campaign = build(
        actor,
        triggers=[
            {
                "trigger_type": "stage_change",
                "trigger_config": {"entity": "project", "to": "estimate", "substatus": quoted.pk},
            }
        ],
    )
    project = ProjectFactory(tenant=tenant, substatus=measured)
    Project.objects.filter(pk=project.pk).update(substatus_since=timezone.now() - dt.timedelta(hours=49))

    substatus_auto_transition_task.delay()
    assert finished.acquire(timeout=60)
    campaign_triggers_scan_task.delay()
    assert finished.acquire(timeout=60)

    assert runs == [(substatus_auto_transition_task.name, 1), (campaign_triggers_scan_task.name, 1)]
    row = CampaignEnrollment.objects.get(campaign=campaign)
    assert (row.contact_id, row.project_id, row.enrollment_source) == (
        project.contact_id,
        project.pk,
        "automatic_trigger",
    )
