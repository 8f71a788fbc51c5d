"""The engine end to end on a real Celery worker (Redis broker, the test database)."""

import threading
import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.core import mail
from django.db import connections
from django.db.models import Count

from campaigns.models import CampaignEnrollment, CampaignStepExecution
from campaigns.services import campaign_enroll
from campaigns.tasks import (
    campaign_executions_claim_task,
    campaign_executions_reap_task,
    campaign_executions_run_task,
)
from crm.celery import app
from crm.models import Activity
from tests.campaigns.conftest import EMAIL, TASK, build
from tests.factories import ContactFactory

CONTACTS = 30


@pytest.fixture
def worker_runs(transactional_db):
    """A Celery worker thread on Redis and the test database; yields the (task, result) it ran."""
    runs: list[tuple[str, object]] = []

    def record(task=None, retval=None, **kwargs):
        runs.append((task.name, retval))
        connections.close_all()

    task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield runs
    finally:
        task_postrun.disconnect(record)


def test_three_steps_for_every_contact_run_exactly_once_on_a_worker(worker_runs, actor, tenant):
    campaign = build(actor, steps=[TASK, EMAIL, TASK])
    contacts = ContactFactory.create_batch(CONTACTS, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)
    done = threading.Event()

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done.is_set():
        campaign_executions_claim_task.delay()  # what beat does every few seconds
        time.sleep(0.5)
        if not CampaignEnrollment.objects.filter(campaign=campaign, status="active").exists():
            done.set()

    assert done.is_set(), "the enrollments never finished"
    per_key = (
        CampaignStepExecution.objects.filter(enrollment__campaign=campaign)
        .values("enrollment", "step", "visit", "status")
        .annotate(rows=Count("id"))
    )
    assert len(per_key) == CONTACTS * 3
    assert {(row["status"], row["rows"]) for row in per_key} == {("completed", 1)}
    assert sorted(message.to[0] for message in mail.outbox) == sorted(contact.email for contact in contacts)
    assert Activity.objects.filter(contact__in=contacts, type="task").count() == CONTACTS * 2
    assert {name for name, _ in worker_runs} >= {campaign_executions_claim_task.name, campaign_executions_run_task.name}


def test_beat_claims_every_few_seconds_and_reaps_every_minute():
    schedule = settings.CELERY_BEAT_SCHEDULE

    assert schedule["campaign-executions-claim"] == {"task": campaign_executions_claim_task.name, "schedule": 5}
    assert schedule["campaign-executions-reap"] == {"task": campaign_executions_reap_task.name, "schedule": 60}
    assert {campaign_executions_claim_task.name, campaign_executions_reap_task.name} <= set(app.tasks)
