from celery import shared_task

from impersonation.services import impersonation_end_stale


@shared_task(acks_late=True)
def impersonation_end_stale_task() -> int:
    """End sessions that expired or lost their admin, target, membership or credential."""
    return impersonation_end_stale()
