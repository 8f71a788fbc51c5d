"""The automatic transitions in a real Celery worker, against Redis and the test database."""

import datetime as dt
import io
import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from crm.celery import app
from crm.models import Project
from substatus.models import SubstatusConfig, SubstatusHistory, SubstatusStay, SubstatusStaysWatermark
from substatus.tasks import substatus_auto_transition_task, substatus_stays_refresh_task
from tests.factories import ProjectFactory
from tests.substatus.kinds import PROJECT, config, state


def test_beat_runs_the_task_every_quarter_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["substatus-auto-transition"]

    assert entry == {"task": substatus_auto_transition_task.name, "schedule": 900}
    assert entry["task"] in app.tasks


def wait_for(condition, *, seconds: float = 30) -> None:
    """Poll the database until the worker's work shows (or give up; the assertions then tell)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_a_worker_moves_due_projects_once_with_task_history(tenant):
    measured, quoted = config(tenant, PROJECT, "measurements_taken"), config(tenant, PROJECT, "quote_prepared")
    SubstatusConfig.objects.filter(pk=measured.pk).update(auto_transition_to=quoted, auto_transition_delay_hours=48)
    due = ProjectFactory(tenant=tenant, substatus=measured)
    fresh = ProjectFactory(tenant=tenant, substatus=measured)
    Project.objects.filter(pk=due.pk).update(substatus_since=timezone.now() - dt.timedelta(hours=49))
    moved: list[int] = []  # what each run returned, as the worker (a thread of this process) finishes it

    def finished(sender=None, retval=None, **kwargs) -> None:
        if getattr(sender, "name", None) == substatus_auto_transition_task.name:
            moved.append(retval)

    task_postrun.connect(finished, weak=False)
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
            substatus_auto_transition_task.delay()
            wait_for(lambda: len(moved) == 1)
            substatus_auto_transition_task.delay()  # a second run (or a redelivery) finds nothing due
            wait_for(lambda: len(moved) == 2)
    finally:
        task_postrun.disconnect(finished)

    assert moved == [1, 0]
    assert state(PROJECT, due.pk) == ("estimate", "quote_prepared")
    assert state(PROJECT, fresh.pk) == ("estimate", "measurements_taken")
    rows = SubstatusHistory.objects.filter(source="task")
    assert [
        (row.record_id, row.from_substatus_id, row.to_substatus_id, row.reason, row.changed_by_id) for row in rows
    ] == [(due.pk, measured.pk, quoted.pk, "auto-transition after 48 h", None)]


def test_beat_rolls_the_stays_up_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["substatus-stays-refresh"]

    assert entry == {"task": substatus_stays_refresh_task.name, "schedule": 60}
    assert entry["task"] in app.tasks


@pytest.mark.django_db
def test_the_task_and_the_command_roll_up_only_what_is_new(tenant):
    project = ProjectFactory(tenant=tenant)
    rows = SubstatusHistory.objects.count()

    assert (
        substatus_stays_refresh_task.apply().get()
        == SubstatusHistory.objects.values("record_id", "entity").distinct().count()
    )
    assert SubstatusStay.objects.filter(entity="project", record_id=project.pk).count() == 2  # substatus and status
    assert SubstatusStaysWatermark.objects.get().history_id == SubstatusHistory.objects.order_by("id").last().pk
    out = io.StringIO()
    call_command("substatus_stays_refresh", stdout=out)
    assert out.getvalue().startswith("0 record(s) rolled up")
    assert SubstatusHistory.objects.count() == rows
