import logging

from celery import shared_task

from contacts.services import contacts_reassign
from crm.actor import actor_from_ids
from crm.models import User

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def contacts_reassign_task(
    *, tenant_id: int, user_id: int | None, real_user_id: int | None, from_user_id: int, to_user_id: int | None
) -> int:
    actor = actor_from_ids(tenant_id=tenant_id, user_id=user_id, real_user_id=real_user_id)
    users = User.objects.in_bulk([pk for pk in (from_user_id, to_user_id) if pk is not None])
    missing = [pk for pk in (from_user_id, to_user_id) if pk is not None and pk not in users]
    if missing:
        # A user deleted since the request: moving to nobody would silently unassign.
        logger.warning("contacts_reassign_task: user(s) %s no longer exist; nothing moved", missing)
        return 0
    return contacts_reassign(actor=actor, from_user=users[from_user_id], to_user=users.get(to_user_id))
