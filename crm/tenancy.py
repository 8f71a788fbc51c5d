"""Which tenant a request acts in, and the user's membership there."""

import re
from typing import Any

from crm.errors import ApplicationError
from crm.models import Membership, Tenant, User

# What X-Tenant may hold: a tenant's id when all digits (no subdomain is all digits, see
# crm.models.validate_subdomain), otherwise its subdomain (a DNS label, any case).
_HEADER = re.compile(r"[-a-zA-Z0-9]{1,63}")
_DIGITS = re.compile(r"[0-9]+")
_MAX_ID_DIGITS = 18  # a bigint


class TenantResolutionError(Exception):
    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def tenant_resolve(*, user: User, header: str | None) -> tuple[Tenant, Membership]:
    """The tenant named by `X-Tenant` (digits: its id; anything else: its subdomain), else the
    user's only active one."""
    memberships = Membership.objects.active().filter(user=user).select_related("tenant")
    header = (header or "").strip()
    if header:
        if not _HEADER.fullmatch(header):
            raise TenantResolutionError("X-Tenant must be a tenant's subdomain or numeric id.", status=400)
        if not _DIGITS.fullmatch(header):
            membership = memberships.filter(tenant__subdomain=header.lower()).first()
        elif len(header) <= _MAX_ID_DIGITS:
            membership = memberships.filter(tenant_id=int(header)).first()
        else:
            membership = None
        if membership is None:
            raise TenantResolutionError(f"You are not an active member of tenant {header!r}.", status=403)
        return membership.tenant, membership
    found = list(memberships[:2])
    if not found:
        raise TenantResolutionError("Your user is not an active member of any tenant.", status=403)
    if len(found) > 1:
        raise TenantResolutionError(
            "You belong to several tenants: send the X-Tenant header with the tenant's subdomain or id.",
            status=400,
        )
    return found[0].tenant, found[0]


def tenant_ensure_owns(tenant: Tenant, **rows: Any) -> None:
    """Refuse a foreign key to another tenant's row, naming the field (as if it did not exist)."""
    for attr, row in rows.items():
        if row is not None and row.tenant_id != tenant.pk:
            raise ApplicationError(f'Invalid pk "{row.pk}" - object does not exist.', code="does_not_exist", attr=attr)


def tenant_ensure_members(tenant: Tenant, **users: Any) -> None:
    """Refuse a user who is not an active member of the tenant, naming the field."""
    wanted = {attr: user for attr, user in users.items() if user is not None}
    if not wanted:
        return
    members = set(
        Membership.objects.active()
        .filter(tenant=tenant, user__in=[user.pk for user in wanted.values()])
        .values_list("user_id", flat=True)
    )
    for attr, user in wanted.items():
        if user.pk not in members:
            raise ApplicationError(
                f'User "{user.pk}" is not an active member of this tenant.', code="does_not_exist", attr=attr
            )
