from celery import shared_task

from ai_chat.services import conversations_retention


@shared_task(acks_late=True)
def conversations_retention_task() -> int:
    """Periodic (Celery beat, daily): delete archived and deleted conversations past their tenant's retention."""
    return conversations_retention()
