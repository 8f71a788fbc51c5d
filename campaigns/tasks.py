from celery import shared_task

from campaigns.scan import campaign_triggers_scan, campaigns_check_exits


@shared_task(acks_late=True)
def campaign_triggers_scan_task() -> int:
    """Periodic (Celery beat): enroll the contacts whose changes the active triggers match."""
    return campaign_triggers_scan()


@shared_task(acks_late=True)
def campaigns_check_exits_task() -> dict[str, int]:
    """Periodic (Celery beat): exit enrollments that met their goal or match an exclusion."""
    return campaigns_check_exits()
