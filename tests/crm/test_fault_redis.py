"""Redis stopped: the API keeps serving and writing from PostgreSQL, `/healthz` says the broker is
down, and campaign work due meanwhile waits in PostgreSQL and runs once Redis is back.

Each test runs its own redis-server (no persistence) and stops it; the shared Redis is never touched.
"""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from campaigns.engine import executions_claim
from campaigns.models import CampaignStepExecution
from campaigns.services import campaign_enroll
from campaigns.tasks import campaign_executions_run_task
from contacts.models import Contact
from crm.actor import Actor, Source
from crm.api.errors import BROKER_UNAVAILABLE
from crm.celery import app
from crm.models import Activity, AuthToken
from tests.campaigns.conftest import TASK, build
from tests.crm.test_auth import PASSWORD
from tests.factories import ContactFactory
from tests.live import ROOT, RedisServer, database_url, live_server, wait_until

STAGE_NEW = json.dumps({"and": [{"field": "stage", "op": "in", "value": ["new"]}]})


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def test_the_api_serves_and_writes_while_redis_is_down(transactional_db, redis_server, tenant, owner):
    ContactFactory.create_batch(2, tenant=tenant, stage="new")
    ContactFactory(tenant=tenant, stage="won")
    _, secret = AuthToken.objects.create(user=owner)
    token = {"Authorization": f"Token {secret}"}
    # The test settings put the cache, the broker and the filter usage queue on this one Redis.
    env = {"DJANGO_SETTINGS_MODULE": "crm.settings.test", "TEST_CELERY_BROKER_URL": redis_server.url}

    with live_server(**env) as server:
        assert server.request("GET", "/healthz").json() == {"database": "ok", "broker": "ok"}

        redis_server.stop()

        health = server.request("GET", "/healthz")
        listed = server.request("GET", "/api/v1/contacts/", headers=token)
        filtered = server.request("GET", "/api/v1/contacts/", headers=token, params={"filter": STAGE_NEW})
        created = server.request("POST", "/api/v1/contacts/", headers=token, json={"first_name": "Ada"})
        # Log-in throttling fails open: a wrong password is refused as usual, the right one works.
        refused = server.request("POST", "/api/v1/auth/token/", json={"username": "owner", "password": "nope"})
        logged_in = server.request("POST", "/api/v1/auth/token/", json={"username": "owner", "password": PASSWORD})
        # Work that only a task does cannot be accepted: nothing is written, the client may retry.
        reassign = server.request(
            "POST", "/api/v1/contacts/reassign/", headers=token, json={"from_user": owner.pk, "to_user": None}
        )

        redis_server.start()  # the same port, empty
        back = server.request("GET", "/healthz")

    assert health.status_code == 503
    assert health.json() == {"database": "ok", "broker": "unreachable: ConnectionError"}
    assert (listed.status_code, listed.json()["count"]) == (200, 3)
    assert (filtered.status_code, filtered.json()["count"]) == (200, 2)
    assert (created.status_code, created.json()["first_name"]) == (201, "Ada")
    assert Contact.objects.filter(tenant=tenant, first_name="Ada").count() == 1
    assert (refused.status_code, refused.json()["errors"][0]["code"]) == (400, "authorization")
    assert logged_in.status_code == 200
    assert logged_in.json()["token"].startswith("rdg_")
    assert (reassign.status_code, reassign.headers["Retry-After"], reassign.json()) == (
        503,
        "5",
        {
            "type": "server_error",
            "errors": [{"code": "broker_unavailable", "detail": BROKER_UNAVAILABLE, "attr": None}],
        },
    )
    assert (back.status_code, back.json()) == (200, {"database": "ok", "broker": "ok"})


@pytest.fixture
def due_execution(transactional_db, tenant, manager):
    """A campaign's first step, due now: one `pending` row in PostgreSQL."""
    actor = Actor(tenant=tenant, user=manager, source=Source.API)
    campaign = build(actor, steps=[TASK])
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    execution = CampaignStepExecution.objects.get(enrollment__contact=contact)
    CampaignStepExecution.objects.filter(pk=execution.pk).update(scheduled_at=timezone.now() - timedelta(minutes=1))
    return execution


def test_a_claim_the_broker_refuses_goes_back_to_pending_at_once(due_execution, redis_server):
    redis_server.stop()

    with app.connection_for_write(redis_server.url) as broker, pytest.raises(BrokerError):
        executions_claim(
            enqueue=lambda ids: campaign_executions_run_task.apply_async((ids,), connection=broker),
            batch_size=10,
            max_outstanding=10,
        )

    due_execution.refresh_from_db()
    assert (due_execution.status, due_execution.lease_until, due_execution.attempts) == ("pending", None, 0)


def start_worker_with_beat(broker_url: str, schedule_file: str) -> subprocess.Popen:
    """What production runs (a worker and beat, here in one process), on `broker_url` and the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings.base",
        "DEBUG": "false",
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_DEFAULT_QUEUE": "ridgeline-fault-test",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "celery", "-A", "crm.celery", "worker", "--beat", "--schedule", schedule_file]
    command += ["--pool=solo", "--without-mingle", "--without-gossip", "-l", "warning"]
    return subprocess.Popen(command, env=env, start_new_session=True, cwd=ROOT)  # noqa: S603


def test_work_due_while_redis_is_down_runs_once_it_is_back(due_execution, redis_server, tmp_path):
    redis_server.stop()
    worker = start_worker_with_beat(redis_server.url, str(tmp_path / "beat-schedule"))
    try:
        time.sleep(3)  # beat cannot send its claim meanwhile: the row waits, due, in PostgreSQL
        due_execution.refresh_from_db()
        assert (worker.poll(), due_execution.status) == (None, "pending")

        redis_server.start()

        def ran() -> bool:
            due_execution.refresh_from_db()
            return due_execution.status == "completed"

        wait_until(ran, seconds=90, what="the due step running after Redis returned")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    assert due_execution.attempts == 0
    assert Activity.objects.filter(contact=due_execution.enrollment.contact, type="task").count() == 1
    assert settings.CELERY_BEAT_SCHEDULE["campaign-executions-claim"]["schedule"] == 5
