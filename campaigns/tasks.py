from celery import shared_task
from django.conf import settings

from campaigns.ab import ab_tests_decide
from campaigns.analytics import campaign_analytics_refresh
from campaigns.engine import executions_claim, executions_reap, executions_run
from campaigns.scan import campaign_triggers_scan, campaigns_check_exits


@shared_task(acks_late=True)
def campaign_triggers_scan_task() -> int:
    """Periodic (Celery beat): enroll the contacts whose changes the active triggers match."""
    return campaign_triggers_scan()


@shared_task(acks_late=True)
def campaigns_check_exits_task() -> dict[str, int]:
    """Periodic (Celery beat): exit enrollments that met their goal or match an exclusion."""
    return campaigns_check_exits()


@shared_task(acks_late=True)
def campaign_executions_run_task(ids: list[int]) -> dict[str, int]:
    """Run a batch of claimed executions; redelivered, it finds the rows no longer its claim's."""
    return executions_run(ids=ids)


def _enqueue(ids: list[int]) -> None:
    campaign_executions_run_task.delay(ids)


@shared_task(acks_late=True)
def campaign_executions_claim_task() -> int:
    """Periodic (Celery beat, every few seconds): claim the due executions, one run task per batch."""
    return executions_claim(
        enqueue=_enqueue,
        batch_size=settings.CAMPAIGN_CLAIM_BATCH_SIZE,
        max_outstanding=settings.CAMPAIGN_CLAIM_MAX_OUTSTANDING,
    )


@shared_task(acks_late=True)
def campaign_executions_reap_task() -> dict[str, int]:
    """Periodic (Celery beat, every minute): expired claims back to pending, expired sends to unknown."""
    return executions_reap()


@shared_task(acks_late=True)
def campaign_ab_tests_decide_task() -> int:
    """Periodic (Celery beat, every minute): decide the A/B tests whose figures allow it."""
    return ab_tests_decide()


@shared_task(acks_late=True)
def campaign_analytics_refresh_task() -> dict[str, int]:
    """Periodic (Celery beat, every 5 minutes): count into campaign_analytics what changed since the last run."""
    return campaign_analytics_refresh()
