from celery import shared_task

from crm.services import auth_tokens_purge_expired


@shared_task(acks_late=True)
def auth_tokens_purge_expired_task() -> int:
    """Periodic (Celery beat, daily): delete expired API tokens."""
    return auth_tokens_purge_expired()
