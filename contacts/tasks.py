from celery import shared_task

from contacts.services import contacts_reassign
from crm.actor import actor_from_ids
from crm.models import User


@shared_task(acks_late=True)
def contacts_reassign_task(
    *, tenant_id: int, user_id: int | None, real_user_id: int | None, from_user_id: int, to_user_id: int | None
) -> int:
    actor = actor_from_ids(tenant_id=tenant_id, user_id=user_id, real_user_id=real_user_id)
    users = User.objects.in_bulk([pk for pk in (from_user_id, to_user_id) if pk is not None])
    return contacts_reassign(actor=actor, from_user=users[from_user_id], to_user=users.get(to_user_id))
