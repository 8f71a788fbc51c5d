from celery import shared_task

from substatus.services import substatus_auto_transition, substatus_stays_refresh


@shared_task(acks_late=True)
def substatus_auto_transition_task() -> int:
    """Periodic (Celery beat): move records whose substatus's automatic transition is due."""
    return substatus_auto_transition()


@shared_task(acks_late=True)
def substatus_stays_refresh_task() -> int | None:
    """Periodic (Celery beat): roll the new substatus history up into the analytics' stays."""
    return substatus_stays_refresh()
