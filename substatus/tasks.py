from celery import shared_task

from substatus.services import substatus_auto_transition


@shared_task(acks_late=True)
def substatus_auto_transition_task() -> int:
    """Periodic (Celery beat): move records whose substatus's automatic transition is due."""
    return substatus_auto_transition()
