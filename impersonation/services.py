"""Impersonation's rules: who may impersonate whom, and a session's start, life and end.

Every entry point (the API, the admin, the periodic task) goes through these functions;
`impersonation_check` is the one place that says who may impersonate whom.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.db.models.functions import Now
from django.utils import timezone
from knox.crypto import hash_token

from crm.actor import Actor
from crm.errors import ApplicationError, Conflict, Forbidden
from crm.models import Activity, AuthToken, Membership, Role, Tenant, User
from crm.rls import cross_tenant
from crm.services import notice_send
from impersonation.models import STATUS_FOR_REASON, EndReason, ImpersonationLog, ImpersonationStatus

TOKEN_PREFIX = "rdgimp_"  # noqa: S105 (a prefix, not a secret)
MIN_REASON_LENGTH = 10
DEFAULT_DURATION_MINUTES = 30
MAX_DURATION_MINUTES = 240  # the old system's 4 hours
NOTICE_SUBJECT_LENGTH = Activity._meta.get_field("subject").max_length or 255
IMPERSONATOR_ROLES = (Role.OWNER, Role.ADMIN)
# Who owners and admins may impersonate: never a peer, a higher role or an owner.
TARGET_ROLES = (Role.MANAGER, Role.MEMBER, Role.VIEWER)


class NotFound(ApplicationError):
    """What does not exist for the caller: another tenant's user answers like a missing one."""

    status_code = HTTPStatus.NOT_FOUND
    default_code = "not_found"


def impersonation_check(*, impersonator: User, target: User, tenant: Tenant) -> Membership:
    """Refuse unless `impersonator` may impersonate `target` in `tenant`; the target's membership.

    Owners and admins impersonate the tenant's managers, members and viewers (never an
    admin or an owner: a peer or a higher role); superusers anyone but a superuser. Never oneself, never an
    inactive user or membership. A target outside the tenant is a 404, as if it did not exist.
    """
    membership = Membership.objects.filter(tenant=tenant, user=target).select_related("tenant").first()
    if membership is None:
        raise NotFound(f'User "{target.pk}" does not exist.', attr="target")
    if impersonator.pk == target.pk:
        raise Forbidden("You cannot impersonate yourself.", code="impersonate_self", attr="target")
    if not impersonator.is_active:
        raise Forbidden("Your user is inactive.", code="inactive_user")
    if target.is_superuser:
        raise Forbidden("Nobody can impersonate a superuser.", code="impersonate_superuser", attr="target")
    if not target.is_active:
        raise Forbidden("This user is inactive.", code="inactive_user", attr="target")
    if membership.status != Membership.Status.ACTIVE or not tenant.is_active:
        raise Forbidden("This user's membership is not active.", code="inactive_membership", attr="target")
    if impersonator.is_superuser:
        return membership
    own = Membership.objects.active().filter(tenant=tenant, user=impersonator).first()
    if own is None or own.role_enum not in IMPERSONATOR_ROLES:
        raise Forbidden("Only the tenant's owners and admins can impersonate.", code="not_an_impersonator")
    if membership.role_enum not in TARGET_ROLES:
        raise Forbidden(
            f"You cannot impersonate a user with the {membership.role} role: only managers, members and viewers.",
            code="impersonate_peer_or_higher",
            attr="target",
        )
    return membership


@dataclass(frozen=True)
class Credential:
    """What the admin is signed in with; the session ends when it does."""

    token_digest: str | None = None
    session_key: str | None = None


@dataclass(frozen=True)
class StartedImpersonation:
    log: ImpersonationLog
    token: str | None  # the SPA's impersonation token (shown once); None for the admin's session


def impersonation_start(
    *,
    impersonator: User,
    target: User,
    tenant: Tenant,
    reason: str,
    credential: Credential,
    ticket: str = "",
    duration_minutes: int = DEFAULT_DURATION_MINUTES,
    allow_writes: bool = False,
    issue_token: bool = True,
    impersonating: bool = False,
    ip_address: str | None = None,
    user_agent: str = "",
) -> StartedImpersonation:
    """Start a session; the admin's other active session ends first (`replaced`).

    `impersonating`: the caller's request is itself impersonated (nesting is refused).
    """
    if impersonating:
        raise Conflict("You are impersonating someone: stop that session first.", code="nested_impersonation")
    reason = reason.strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise ApplicationError(
            f"Give a reason of at least {MIN_REASON_LENGTH} characters.", code="min_length", attr="reason"
        )
    if not 1 <= duration_minutes <= MAX_DURATION_MINUTES:
        raise ApplicationError(
            f"The duration is between 1 and {MAX_DURATION_MINUTES} minutes.", code="invalid", attr="duration_minutes"
        )
    impersonation_check(impersonator=impersonator, target=target, tenant=tenant)
    if allow_writes and not (
        impersonator.is_superuser
        or Membership.objects.active().filter(tenant=tenant, user=impersonator, role=Role.OWNER).exists()
    ):
        raise Forbidden("Only owners can allow writes while impersonating.", code="allow_writes", attr="allow_writes")
    if credential.token_digest is None and credential.session_key is None:
        raise ValueError("an impersonation is bound to the admin's token or session")
    token = f"{TOKEN_PREFIX}{secrets.token_hex(32)}" if issue_token else None
    started = timezone.now()
    with transaction.atomic():
        # The admin's session may be in another tenant (row-level security hides it otherwise).
        with cross_tenant("impersonation: a new session replaces the admin's active one, in any tenant"):
            for previous in ImpersonationLog.objects.active().filter(admin_user=impersonator).select_for_update():
                impersonation_end(log=previous, reason=EndReason.REPLACED)
        log = ImpersonationLog.objects.create(
            tenant=tenant,
            admin_user=impersonator,
            impersonated_user=target,
            started_at=started,
            expires_at=started + timedelta(minutes=duration_minutes),
            reason=reason,
            ticket=ticket.strip(),
            allow_writes=allow_writes,
            ip_address=ip_address or None,
            user_agent=user_agent[:1000],
            token_digest=hash_token(token) if token else None,
            admin_token_digest=credential.token_digest,
            admin_session_key=credential.session_key,
        )
        if tenant.notifies_impersonated_users:
            _notify_target(log)
    return StartedImpersonation(log=log, token=token)


def _notify_target(log: ImpersonationLog) -> None:
    """The tenant asked for it: a notice on the target's feed, from the admin themselves (not an
    action done while impersonating). The log records no purpose apart from the reason, so the
    notice gives the reason as the admin wrote it."""
    admin = log.admin_user
    access = "with changes allowed" if log.allow_writes else "read-only"
    minutes = round((log.expires_at - log.started_at).total_seconds() / 60)
    content = f"Reason: {log.reason}\n"
    if log.ticket:
        content += f"Ticket: {log.ticket}\n"
    content += f"Access: {access}, for up to {minutes} minutes."
    subject = f"Your account was viewed by {admin.get_full_name() or admin.get_username()}: {log.reason}"
    if len(subject) > NOTICE_SUBJECT_LENGTH:
        subject = subject[: NOTICE_SUBJECT_LENGTH - 1] + "…"
    notice_send(
        actor=Actor(tenant=log.tenant, user=admin), recipient=log.impersonated_user, subject=subject, content=content
    )


def impersonation_end(*, log: ImpersonationLog, reason: EndReason) -> bool:
    """End an active session (no-op on an ended one); whether this call ended it."""
    status = STATUS_FOR_REASON.get(reason, ImpersonationStatus.TERMINATED)
    # A session found expired late (no request, the sweep's interval) ended at its expiry.
    ended_at = min(timezone.now(), log.expires_at)
    ended = (
        ImpersonationLog.objects.active()
        .filter(pk=log.pk)
        .update(status=status, end_reason=reason, ended_at=ended_at, updated_at=Now())
    )
    log.refresh_from_db(fields=["status", "end_reason", "ended_at", "duration_seconds", "updated_at"])
    return bool(ended)


def impersonation_stop(*, admin: User) -> int:
    """The admin stops their active session (if any); how many ended."""
    return sum(
        impersonation_end(log=log, reason=EndReason.STOPPED)
        for log in ImpersonationLog.objects.active().filter(admin_user=admin)
    )


def impersonation_logs_checked(*, now: datetime) -> QuerySet[ImpersonationLog]:
    """Active sessions with what `impersonation_end_reason` needs, read in the same query: the
    users, and whether the memberships and the admin's credential are still live at `now`."""
    members = Membership.objects.active().filter(tenant=OuterRef("tenant"))
    return (
        ImpersonationLog.objects.active()
        .select_related("admin_user", "impersonated_user", "tenant")
        .annotate(
            target_is_member=Exists(members.filter(user=OuterRef("impersonated_user"))),
            admin_is_member=Exists(members.filter(user=OuterRef("admin_user"), role__in=IMPERSONATOR_ROLES)),
            admin_token_live=Exists(AuthToken.objects.filter(digest=OuterRef("admin_token_digest"), expiry__gt=now)),
            admin_session_live=Exists(
                Session.objects.filter(session_key=OuterRef("admin_session_key"), expire_date__gt=now)
            ),
        )
    )


def impersonation_end_reason(*, log: Any, now: datetime) -> EndReason | None:
    """Why this active session must end at `now`, or None while it may go on.

    Precondition: `log` was read through `impersonation_logs_checked(now=now)`.
    """
    if log.expires_at <= now:
        return EndReason.EXPIRED
    if not log.admin_user.is_active:
        return EndReason.ADMIN_DEACTIVATED
    if not log.impersonated_user.is_active:
        return EndReason.TARGET_DEACTIVATED
    if not log.target_is_member or not (log.admin_user.is_superuser or log.admin_is_member):
        return EndReason.MEMBERSHIP_REMOVED
    if not (log.admin_token_live if log.admin_token_digest is not None else log.admin_session_live):
        return EndReason.LOGOUT
    return None


def impersonation_end_stale() -> int:
    """End every active session that must end (the periodic sweep); how many ended.

    Active sessions are few (one per admin at most), so each is checked as a request would.
    """
    now = timezone.now()
    ended = 0
    for log in impersonation_logs_checked(now=now):
        reason = impersonation_end_reason(log=log, now=now)
        if reason is not None:
            ended += impersonation_end(log=log, reason=reason)
    return ended


def impersonation_record_request(*, log: ImpersonationLog, write: bool) -> None:
    """Count a request made in the session (and a write that succeeded)."""
    ImpersonationLog.objects.filter(pk=log.pk).update(
        request_count=F("request_count") + 1, write_count=F("write_count") + int(write), updated_at=Now()
    )
