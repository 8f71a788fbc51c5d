"""Reads: the log as a tenant's owners and admins (or the impersonated user) may see it."""

from collections import defaultdict
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from crm.models import Activity, Membership, Role, Tenant, User
from impersonation.models import ImpersonationLog

LOG_READER_ROLES = (Role.OWNER, Role.ADMIN)


def impersonation_logs_for(*, tenant: Tenant, user: User, mine: bool) -> QuerySet[ImpersonationLog]:
    """The tenant's sessions: every one for its owners and admins; with `mine`, those about `user`.

    Anyone else gets none (the view answers 403 before asking).
    """
    logs = ImpersonationLog.objects.filter(tenant=tenant).select_related("admin_user", "impersonated_user")
    if mine:
        return logs.filter(impersonated_user=user)
    return logs


def impersonation_logs_readable(*, tenant: Tenant, user: User) -> bool:
    return Membership.objects.active().filter(tenant=tenant, user=user, role__in=LOG_READER_ROLES).exists()


# Substatus history is read from its table: impersonation imports no other feature app.
_HISTORY_SQL = """
SELECT id, entity, record_id, to_status, changed_by_id, impersonated_by_id, changed_at
FROM substatus_history
WHERE tenant_id = %s AND impersonated_by_id = ANY(%s) AND changed_at >= %s AND changed_at <= %s
ORDER BY changed_at, id
"""


def impersonation_writes(*, logs: list[ImpersonationLog]) -> dict[int, list[dict[str, Any]]]:
    """Each session's writes, from the attribution columns: activities the admin performed as the
    target and substatus changes recorded with both. One query per kind for the whole page."""
    writes: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not logs:
        return writes
    now = timezone.now()
    start = min(log.started_at for log in logs)
    end = max(log.ended_at or now for log in logs)
    tenant_id = logs[0].tenant_id
    admins = sorted({log.admin_user_id for log in logs})

    def owner(admin_id: int, user_id: int | None, at: Any) -> ImpersonationLog | None:
        for log in logs:
            if (
                log.admin_user_id == admin_id
                and log.impersonated_user_id == user_id
                and log.started_at <= at <= (log.ended_at or now)
            ):
                return log
        return None

    activities = Activity.objects.filter(
        tenant_id=tenant_id, on_behalf_of__in=admins, created_at__gte=start, created_at__lte=end
    ).values("id", "type", "contact_id", "project_id", "performed_by_id", "on_behalf_of_id", "created_at")
    for activity in activities:
        log = owner(activity["on_behalf_of_id"], activity["performed_by_id"], activity["created_at"])
        if log is not None:
            writes[log.pk].append(
                {
                    "kind": "activity",
                    "id": activity["id"],
                    "what": f"{activity['type']} on "
                    + (
                        f"contact {activity['contact_id']}"
                        if activity["contact_id"]
                        else f"project {activity['project_id']}"
                    ),
                    "at": activity["created_at"],
                }
            )
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, [tenant_id, admins, start, end])
        for pk, entity, record_id, to_status, changed_by, impersonated_by, changed_at in cursor.fetchall():
            log = owner(impersonated_by, changed_by, changed_at)
            if log is not None:
                writes[log.pk].append(
                    {
                        "kind": "substatus_change",
                        "id": pk,
                        "what": f"{entity} {record_id} to {to_status}",
                        "at": changed_at,
                    }
                )
    for entries in writes.values():
        entries.sort(key=lambda entry: (entry["at"], entry["kind"], entry["id"]))
    return writes
