"""Campaign engine throughput: 20,000 enrollments whose first step (an email) is due now.

Builds a tenant with 20,000 contacts (`--small`: 2,000) and a published campaign whose only
step is an email, enrolls them all (each enrollment writes its first execution, due now), and
starts one Celery worker with 2 prefork processes on Redis, the locmem email backend in each.

- the ceiling (baseline), measured first on the same worker: as many plain Celery tasks, each
  doing one primary-key UPDATE of an execution row, enqueued one by one; the time from the
  first enqueue until the last UPDATE is seen;
- the figure: this process claims due rows as beat's claim task does (batches of 100 rows,
  `SELECT ... FOR UPDATE SKIP LOCKED`, one run task per batch enqueued after commit, at most
  400 rows claimed and not yet run), claiming again every 50 ms; the time from the first claim
  until every row is `completed`.

Prints executions per second, the ceiling's tasks per second, their ratio, the duplicates
(idempotency keys with more than one row, rows sent more than once by Message-ID, rows not
completed: all must be 0) and the claim-to-send latency p50/p95 (claim committed -> row
recorded `completed`, after the email went to the backend). Goal (issue 16): ratio >= 0.8.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, django_setup, p50, p95, parse_args, progress, result_line, step

DATABASE = "ridgeline_bench_campaigns"
QUEUE = "ridgeline-bench-campaigns"
GOAL = 0.8
BATCH = 100
OUTSTANDING = 4 * BATCH  # claimed and not yet run: enough to keep both processes busy

args = parse_args(__doc__.splitlines()[0], iterations=20, small_iterations=20)
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE
database_url = django_setup(DATABASE)

# Django is set up only now, so these imports come after it.
import _campaigns_ceiling  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from campaigns.engine import executions_claim  # noqa: E402
from campaigns.models import CampaignStepExecution  # noqa: E402
from campaigns.services import campaign_create, campaign_enroll, campaign_publish, step_create  # noqa: E402
from campaigns.tasks import campaign_executions_run_task  # noqa: E402
from contacts.models import Contact  # noqa: E402
from crm.actor import Actor  # noqa: E402
from crm.celery import app  # noqa: E402
from crm.models import Tenant  # noqa: E402

ENROLLMENTS = 2_000 if args.small else 20_000


def build() -> list[int]:
    """The tenant, its contacts, the campaign and the enrollments; the executions' ids."""
    with step(f"tenant, {ENROLLMENTS:,} contacts, a one-email campaign"):
        tenant = Tenant.objects.create(name="Bench Roofing", subdomain="bench")
        Contact.objects.bulk_create(
            (
                Contact(tenant=tenant, first_name=f"Pat{n}", last_name="Bench", email=f"pat{n}@example.com")
                for n in range(ENROLLMENTS)
            ),
            batch_size=2_000,
        )
        actor = Actor(tenant=tenant, user=None)
        campaign = campaign_create(actor=actor, name="Storm follow-up")
        step_create(
            actor=actor,
            campaign=campaign,
            step_type="send_email",
            step_config={"subject": "Hi {{ contact.first_name }}", "body": "From {{ tenant.name }}"},
        )
        campaign_publish(campaign=campaign, actor=actor)
        campaign.refresh_from_db()
    with step(f"enroll {ENROLLMENTS:,} contacts (each enrollment writes its first execution)"):
        contacts = list(Contact.objects.filter(tenant=tenant).order_by("pk"))
        for start in range(0, len(contacts), 2_000):
            campaign_enroll(campaign=campaign, actor=actor, contacts=contacts[start : start + 2_000])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE campaign_step_executions")
    return list(CampaignStepExecution.objects.order_by("pk").values_list("pk", flat=True))


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parent),
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    command = [sys.executable, "-m", "celery", "-A", "crm.celery", "worker", "--pool=prefork", "--concurrency=2"]
    command += ["-Q", QUEUE, "--include", "_campaigns_ceiling", "--without-mingle", "--without-gossip", "-l", "error"]
    return subprocess.Popen(command, env=env, cwd=REPO)  # noqa: S603


def wait_until(done: callable, *, timeout: float = 3600) -> None:
    """Wait for `done`; the timeout only guards a hang (on a shared 2-core machine the 20,000
    plain tasks of the ceiling alone took over 600 s)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the worker")
        time.sleep(0.05)


def ceiling(ids: list[int]) -> float:
    """Plain tasks per second, each one primary-key UPDATE."""
    began = time.perf_counter()
    for pk in ids:
        _campaigns_ceiling.pk_update.delay(pk)
    wait_until(lambda: not CampaignStepExecution.objects.filter(attempts=0).exists())
    return len(ids) / (time.perf_counter() - began)


def engine() -> tuple[float, list[float]]:
    """Executions per second through claim -> run task -> email -> completed; the latencies (ms)."""
    claimed_at: dict[int, float] = {}

    def enqueue(batch: list[int]) -> None:
        now = time.time()
        claimed_at.update(dict.fromkeys(batch, now))
        campaign_executions_run_task.delay(batch)

    pending = CampaignStepExecution.objects.exclude(status__in=["completed", "failed", "skipped", "unknown"])
    began = time.perf_counter()
    while pending.exists():
        if executions_claim(enqueue=enqueue, batch_size=BATCH, max_outstanding=OUTSTANDING) == 0:
            time.sleep(0.05)
    elapsed = time.perf_counter() - began
    finished = dict(CampaignStepExecution.objects.values_list("pk", "completed_at"))
    latencies = [(finished[pk].timestamp() - claimed) * 1000 for pk, claimed in claimed_at.items()]
    return len(finished) / elapsed, latencies


app.control.purge()
ids = build()
app.control.purge()  # the claims enrolling asked for after each commit: this run drives the claims itself
worker = start_worker()
try:
    with step(f"ceiling: {len(ids):,} plain tasks, one primary-key UPDATE each"):
        baseline = ceiling(ids)
    progress(f"ceiling: {baseline:,.0f} tasks/s")
    with step(f"engine: {len(ids):,} executions (claim, run, email, complete)"):
        figure, latencies = engine()
    progress(f"engine: {figure:,.0f} executions/s")
finally:
    worker.terminate()
    worker.wait(timeout=60)

rows = CampaignStepExecution.objects.all()
duplicate_keys = rows.values("enrollment", "step", "visit").annotate(n=Count("id")).filter(n__gt=1).count()
resent = rows.values("provider_message_id").annotate(n=Count("id")).filter(n__gt=1).count()
not_completed = rows.exclude(status="completed").count()
result_line(
    bench="campaigns",
    figure=figure,
    baseline=baseline,
    goal=GOAL,
    unit="executions/s vs plain one-UPDATE tasks/s",
    enrollments=len(ids),
    duplicates=duplicate_keys + resent,
    not_completed=not_completed,
    latency_p50_ms=p50(latencies),
    latency_p95_ms=p95(latencies),
)
