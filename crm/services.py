"""Writes to projects, activities, memberships and API tokens."""

import logging
import smtplib
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from contacts.models import Contact
from crm.actor import Actor
from crm.constraints import constraint_violation
from crm.errors import ApplicationError, Conflict, Forbidden, NotFound
from crm.invitations import invitation_email_send, invitation_from_token
from crm.models import (
    Activity,
    ActivityType,
    AuthToken,
    Membership,
    MembershipStatus,
    Project,
    ProjectContact,
    Role,
    Tenant,
    User,
)
from crm.records import (
    record_assign,
    record_check_links,
    record_check_named_substatus,
    record_purge,
    record_restore,
    record_save,
    record_soft_delete,
    record_writable_fields,
)

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    # Projects reach substatus only through the foreign key; the type names its model.
    from substatus.models import SubstatusConfig

PROJECT_WRITABLE_FIELDS = record_writable_fields(Project)
# Kept by the database (the substatus triggers): read back after a write that may change them.
PROJECT_DATABASE_KEPT_FIELDS = ["substatus", "substatus_since"]
# A recipient makes a notice: written only by `notice_send`.
ACTIVITY_WRITABLE_FIELDS = record_writable_fields(
    Activity, exclude=frozenset({"performed_by", "on_behalf_of", "recipient"})
)
PROJECT_CONTACT_WRITABLE_FIELDS = frozenset({"contact", "role"})
MEMBERSHIP_WRITABLE_FIELDS = frozenset({"role", "status", "deactivated_reason"})

# What each service accepts as keywords; a test keeps their keys equal to the sets above.


class ProjectFields(TypedDict, total=False):
    """PROJECT_WRITABLE_FIELDS, for project_create and project_update."""

    contact: Contact | None
    parent_project: Project | None
    name: str
    project_number: str | None
    status: str
    type: str | None
    estimated_value: Decimal | None
    approved_value: Decimal | None
    final_value: Decimal | None
    materials_cost: Decimal | None
    labor_cost: Decimal | None
    overhead_cost: Decimal | None
    profit_margin: Decimal | None
    estimated_start: date | None
    scheduled_start: date | None
    actual_start: date | None
    estimated_completion: date | None
    actual_completion: date | None
    description: str | None
    scope_of_work: str | None
    materials_list: list[Any]
    insurance_approved: bool
    insurance_approval_amount: Decimal | None
    deductible_collected: bool
    supplements: list[Any]
    crew_assigned: list[Any]
    weather_delays: int
    quality_score: int | None
    custom_fields: dict[str, Any]
    quickbooks_id: str | None
    quickbooks_sync_status: str | None
    substatus: "SubstatusConfig | None"


class ProjectContactFields(TypedDict, total=False):
    """PROJECT_CONTACT_WRITABLE_FIELDS, for project_contact_update."""

    contact: Contact
    role: str


class ActivityFields(TypedDict, total=False):
    """ACTIVITY_WRITABLE_FIELDS, for activity_create and activity_update."""

    contact: Contact | None
    project: Project | None
    type: str
    subtype: str | None
    subject: str | None
    content: str | None
    direction: str | None
    from_address: str | None
    to_address: str | None
    outcome: str | None
    outcome_details: dict[str, Any]
    duration_seconds: int | None
    recording_url: str | None
    transcript: str | None
    scheduled_at: datetime | None
    completed_at: datetime | None
    reminder_at: datetime | None
    external_id: str | None


class MembershipFields(TypedDict, total=False):
    """MEMBERSHIP_WRITABLE_FIELDS, for membership_update."""

    role: str
    status: str
    deactivated_reason: str | None


def _check_parent(project: Project, parent: Project | None) -> None:
    seen = {project.pk}
    while parent is not None:
        if parent.pk in seen:
            raise ApplicationError("A project cannot be its own parent.", code="cycle", attr="parent_project")
        seen.add(parent.pk)
        parent = parent.parent_project


def _check_project(project: Project, fields: ProjectFields) -> None:
    record_check_links(project, fields)
    record_check_named_substatus(project, fields, status_field="status")
    if "parent_project" in fields:
        _check_parent(project, fields["parent_project"])


def project_create(*, actor: Actor, reason: str = "", **fields: Unpack[ProjectFields]) -> Project:
    """A new project; without a `substatus` the database gives its status's default."""
    project = Project(tenant=actor.require_tenant(), created_by=actor.user)
    _check_project(project, fields)
    record_assign(project, fields, allowed=PROJECT_WRITABLE_FIELDS)
    record_save(project, actor=actor, reason=reason)
    project.refresh_from_db(fields=PROJECT_DATABASE_KEPT_FIELDS)
    return project


def project_update(*, project: Project, actor: Actor, reason: str = "", **fields: Unpack[ProjectFields]) -> Project:
    """Change the given fields; a new `status` without a `substatus` takes the status's default."""
    _check_project(project, fields)
    changed = record_assign(project, fields, allowed=PROJECT_WRITABLE_FIELDS)
    record_save(project, actor=actor, update_fields=changed, reason=reason)
    if {"status", "substatus"} & set(changed):
        project.refresh_from_db(fields=PROJECT_DATABASE_KEPT_FIELDS)
    return project


def project_delete(*, project: Project, actor: Actor) -> Project:
    return record_soft_delete(record=project, actor=actor)


def project_restore(*, project: Project, actor: Actor) -> Project:
    return record_restore(record=project, actor=actor)


def project_purge(*, project: Project, actor: Actor) -> None:
    record_purge(record=project, actor=actor)


# A job's other parties ------------------------------------------------------------------


def project_contact_add(*, actor: Actor, project: Project, contact: Contact, role: str) -> ProjectContact:
    """Record `contact` as a party of `project` (the adjuster, a sub-contractor, ...)."""
    party = ProjectContact(tenant=actor.require_tenant(), created_by=actor.user)
    fields = {"project": project, "contact": contact, "role": role}
    record_check_links(party, fields)
    record_assign(party, fields, allowed=frozenset(fields))
    return record_save(party, actor=actor)


def project_contact_update(
    *, actor: Actor, project_contact: ProjectContact, **fields: Unpack[ProjectContactFields]
) -> ProjectContact:
    """Change a party's `contact` and/or `role`."""
    record_check_links(project_contact, fields)
    changed = record_assign(project_contact, fields, allowed=PROJECT_CONTACT_WRITABLE_FIELDS)
    return record_save(project_contact, actor=actor, update_fields=changed)


def project_contact_remove(*, actor: Actor, project_contact: ProjectContact) -> None:
    with actor.atomic():
        project_contact.delete()


def _check_not_notice(activity: Activity, fields: ActivityFields) -> None:
    """Notices are written by `notice_send` only: no activity becomes one, and none is changed."""
    if activity.type == ActivityType.NOTICE and not activity._state.adding:
        raise ApplicationError("A notice is written by Ridgeline and cannot be changed.", code="notice", attr="type")
    if fields.get("type") == ActivityType.NOTICE:
        raise ApplicationError("Notices are written by Ridgeline only.", code="notice", attr="type")


def activity_create(*, actor: Actor, **fields: Unpack[ActivityFields]) -> Activity:
    """Record an activity performed by the actor's effective user (and the admin behind them)."""
    activity = Activity(
        tenant=actor.require_tenant(),
        created_by=actor.user,
        performed_by=actor.user,
        on_behalf_of=actor.on_behalf_of,
    )
    _check_not_notice(activity, fields)
    record_check_links(activity, fields)
    record_assign(activity, fields, allowed=ACTIVITY_WRITABLE_FIELDS)
    return record_save(activity, actor=actor)


def activity_update(*, activity: Activity, actor: Actor, **fields: Unpack[ActivityFields]) -> Activity:
    _check_not_notice(activity, fields)
    record_check_links(activity, fields)
    changed = record_assign(activity, fields, allowed=ACTIVITY_WRITABLE_FIELDS)
    return record_save(activity, actor=actor, update_fields=changed)


def activity_delete(*, activity: Activity, actor: Actor) -> None:
    with actor.atomic():
        activity.delete()


def notice_send(
    *,
    actor: Actor,
    recipient: User,
    subject: str,
    content: str,
    contact: Contact | None = None,
    project: Project | None = None,
) -> Activity:
    """A notice on `recipient`'s activity feed, which only they see, from the actor's user
    (none: from Ridgeline), about `contact` or `project` when given.

    Precondition: `recipient` is a member of the actor's tenant, and `contact` and `project`
    belong to it (the caller checked them).
    """
    notice = Activity(
        tenant=actor.require_tenant(),
        type=ActivityType.NOTICE,
        recipient=recipient,
        contact=contact,
        project=project,
        subject=subject,
        content=content,
        created_by=actor.user,
        performed_by=actor.user,
        on_behalf_of=actor.on_behalf_of,
    )
    return record_save(notice, actor=actor)


# Tenants ------------------------------------------------------------------------------

TENANT_WRITABLE_FIELDS = frozenset(
    f.name for f in Tenant._meta.concrete_fields if f.name not in {"id", "created_at", "updated_at"}
)


class TenantFields(TypedDict, total=False):
    """TENANT_WRITABLE_FIELDS, for tenant_create and tenant_update."""

    name: str
    subdomain: str
    custom_domain: str | None
    settings: dict[str, Any]
    features: dict[str, Any]
    subscription_status: str
    subscription_expires_at: datetime | None
    logo_url: str | None
    primary_color: str | None
    secondary_color: str | None
    is_active: bool
    timezone: str


# Who changes what of a tenant, in the admin and the API alike: its admins and owners the
# profile, its owners also its addresses, and Ridgeline's operators (superusers) the
# subscription, the limits (`features`) and whether it is active at all.
TENANT_PROFILE_FIELDS = frozenset({"name", "logo_url", "primary_color", "secondary_color", "timezone", "settings"})
TENANT_ADDRESS_FIELDS = frozenset({"subdomain", "custom_domain"})
TENANT_OPS_FIELDS = frozenset({"subscription_status", "subscription_expires_at", "features", "is_active"})


def _is_superuser(actor: Actor) -> bool:
    return actor.user is not None and actor.user.is_active and actor.user.is_superuser


def tenant_editable_fields(*, actor: Actor, tenant: Tenant) -> frozenset[str]:
    """The fields of `tenant` the actor may change (empty for anyone below admin)."""
    if _is_superuser(actor):
        return TENANT_WRITABLE_FIELDS
    membership = Membership.objects.active().filter(tenant=tenant, user=actor.user).first()
    if membership is None or not membership.role_enum.at_least(Role.ADMIN):
        return frozenset()
    if membership.role_enum.at_least(Role.OWNER):
        return TENANT_PROFILE_FIELDS | TENANT_ADDRESS_FIELDS
    return TENANT_PROFILE_FIELDS


def _tenant_check(actor: Actor, tenant: Tenant, fields: TenantFields) -> None:
    """Refuse the first field whose value changes and the actor may not change (403 naming it)."""
    editable = tenant_editable_fields(actor=actor, tenant=tenant)
    for name in sorted(fields):
        if name in editable or getattr(tenant, name) == fields[name]:  # type: ignore[literal-required]
            continue
        if name in TENANT_OPS_FIELDS:
            raise Forbidden(f"Only Ridgeline's operators change a tenant's {name}.", attr=name)
        needed = Role.OWNER if name in TENANT_ADDRESS_FIELDS else Role.ADMIN
        raise Forbidden(f"Changing the tenant's {name} needs the {needed.value} role.", attr=name)


def tenant_create(*, actor: Actor, **fields: Unpack[TenantFields]) -> Tenant:
    """A new tenant; only Ridgeline's operators (superusers) create them."""
    if not _is_superuser(actor):
        raise Forbidden("Only Ridgeline's operators create tenants.")
    tenant = Tenant()
    record_assign(tenant, fields, allowed=TENANT_WRITABLE_FIELDS)
    return record_save(tenant, actor=actor)


def tenant_update(*, tenant: Tenant, actor: Actor, **fields: Unpack[TenantFields]) -> Tenant:
    """Change the given fields; a field whose value changes needs the role that may change it
    (tenant_editable_fields). Sending a field's current value back changes nothing and is allowed."""
    _tenant_check(actor, tenant, fields)
    changed = record_assign(tenant, fields, allowed=TENANT_WRITABLE_FIELDS)
    return record_save(tenant, actor=actor, update_fields=changed)


# Memberships -------------------------------------------------------------------------


def _actor_role(actor: Actor, tenant: Tenant) -> Role:
    if actor.user is not None and actor.user.is_superuser:
        return Role.OWNER
    membership = Membership.objects.active().filter(tenant=tenant, user=actor.user).first()
    if membership is None:
        raise Forbidden("You are not an active member of this tenant.")
    return membership.role_enum


def _ensure_owner_remains(tenant: Tenant, *, losing: Membership) -> None:
    if losing.role != Role.OWNER or losing.status != MembershipStatus.ACTIVE:
        return
    # A usable owner: the membership is active and so is the account (a disabled user cannot log in).
    others = (
        Membership.objects.active().filter(tenant=tenant, role=Role.OWNER, user__is_active=True).exclude(pk=losing.pk)
    )
    if not others.exists():
        raise Conflict("A tenant keeps at least one active owner: make someone else owner first.", code="last_owner")


def membership_check(
    *,
    actor: Actor,
    membership: Membership | None,
    role: str | None = None,
    status: str | None = None,
    remove: bool = False,
) -> None:
    """Refuse a membership change the actor may not make (ApplicationError naming the field).

    Admins and owners manage members, never granting a role above their own nor touching a
    member above them, and a tenant never loses its last active owner. The membership
    services call it under the tenant lock.
    """
    tenant = actor.require_tenant()
    actor_role = _actor_role(actor, tenant)
    if not actor_role.at_least(Role.ADMIN):
        raise Forbidden("Managing members needs the admin or owner role.")
    if membership is not None and not actor_role.at_least(membership.role_enum):
        raise Forbidden(f"You cannot change a member whose role ({membership.role}) is above yours.", attr="role")
    if role is not None and not actor_role.at_least(Role(role)):
        raise Forbidden(f"You cannot grant the {role} role: it is above yours.", attr="role")
    loses_ownership = remove or role not in (None, Role.OWNER) or status not in (None, MembershipStatus.ACTIVE)
    if membership is not None and loses_ownership:
        _ensure_owner_remains(tenant, losing=membership)


def _membership_reload(membership: Membership) -> None:
    """Read the membership again under the tenant lock; one removed meanwhile is a NotFound (404)."""
    try:
        membership.refresh_from_db()
    except Membership.DoesNotExist:
        raise NotFound(f"Membership {membership.pk} no longer exists.") from None


def _lock_tenant(tenant: Tenant) -> None:
    """Serialise membership changes of one tenant, so two admins cannot both demote the last owners."""
    Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk", flat=True).get()


def _invitation_deliverable(email: str) -> bool:
    """A superuser is never invited through a tenant: their address gets no email (and they
    cannot accept), while the admin's answer stays the one any other address gets."""
    return not User.objects.filter(email__iexact=email, is_superuser=True).exists()


def _invitation_deliver(membership: Membership) -> None:
    """Send the invitation's email; a mail server that fails is logged, not the request's
    error: the invitation stands, and an admin can send it again."""
    try:
        invitation_email_send(membership)
    except (smtplib.SMTPException, OSError):
        logger.exception("Sending invitation %s to its email failed; it can be sent again.", membership.pk)


def _send_invitation_after_commit(membership: Membership) -> None:
    if _invitation_deliverable(membership.email):
        transaction.on_commit(lambda: _invitation_deliver(membership))


def membership_invite(*, actor: Actor, email: str, role: str) -> Membership:
    """Invite `email` to the actor's tenant with `role`: a pending membership, and an email
    with a signed link to accept it. The answer is the same whether the email has an
    account or not; the pending membership grants nothing until accepted."""
    tenant = actor.require_tenant()
    email = email.strip()
    with actor.atomic():
        _lock_tenant(tenant)
        membership_check(actor=actor, membership=None, role=role)
        if Membership.objects.active().filter(tenant=tenant, user__email__iexact=email).exists():
            raise Conflict(f"{email} is already a member of {tenant.name}.", code="already_member", attr="email")
        invitation = Membership(
            tenant=tenant,
            user=None,
            role=role,
            status=MembershipStatus.PENDING,
            invited_email=email,
            invited_by=actor.user,
            invited_at=timezone.now(),
        )
        try:
            with transaction.atomic():
                invitation.save()
        except IntegrityError as exc:
            error = constraint_violation(exc)
            raise Conflict(error.message, code="already_invited", attr="email") from exc
        _send_invitation_after_commit(invitation)
    return invitation


def membership_invitation_resend(*, actor: Actor, membership: Membership) -> Membership:
    """Send a pending invitation again, with a new link (the earlier links stop working)."""
    tenant = actor.require_tenant()
    with actor.atomic():
        _lock_tenant(tenant)
        _membership_reload(membership)
        membership_check(actor=actor, membership=membership)
        if membership.status != MembershipStatus.PENDING:
            raise Conflict("Only a pending invitation can be sent again.", code="not_pending")
        membership.invited_at = timezone.now()
        membership.invited_by = actor.user
        membership.save(update_fields=["invited_at", "invited_by"])
        _send_invitation_after_commit(membership)
    return membership


class NewAccountFields(TypedDict):
    """The account a person creates when accepting an invitation without one."""

    username: str
    password: str
    first_name: str
    last_name: str


def _account_create(email: str, fields: NewAccountFields) -> User:
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(
            "An account with this email exists already: log in with it and accept the invitation.",
            code="account_exists",
            attr="username",
        )
    user = User(
        username=fields["username"], email=email, first_name=fields["first_name"], last_name=fields["last_name"]
    )
    try:
        password_validation.validate_password(fields["password"], user=user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.error_list}) from exc
    user.set_password(fields["password"])
    user.full_clean(exclude=["password"])
    user.save()
    return user


def membership_invitation_accept(
    *, token: str, user: User | None, account: NewAccountFields | None = None
) -> Membership:
    """Accept the invitation `token` carries: as `user` (signed in, with the invited email), or
    by creating the `account` for the invited email. The membership becomes active; a former
    membership of that user in the tenant is re-activated instead (the invitation goes)."""
    invitation = invitation_from_token(token)
    with transaction.atomic():
        locked = (
            Membership.objects.select_for_update().filter(pk=invitation.pk, status=MembershipStatus.PENDING).first()
        )
        if locked is None or locked.invited_at != invitation.invited_at:
            raise ApplicationError(
                "This invitation was revoked, accepted already or replaced by a newer link.",
                code="invitation_gone",
                attr="token",
            )
        email = locked.email
        if user is None:
            if account is None:
                raise ApplicationError(
                    "Log in with the invited account, or give a username and password to create one.",
                    code="required",
                    attr="username",
                )
            user = _account_create(email, account)
        elif user.email.lower() != email.lower() or locked.user_id not in (None, user.pk):
            raise Forbidden(
                "This invitation is for another email address than your account's: log in with the invited account.",
                attr="token",
            )
        if user.is_superuser:
            raise Forbidden("Superusers are not members of tenants: they reach every tenant already.", attr="token")
        former = (
            Membership.objects.select_for_update()
            .filter(tenant_id=locked.tenant_id, user=user)
            .exclude(pk=locked.pk)
            .first()
        )
        with Actor(tenant=invitation.tenant, user=user).atomic():
            if former is None:
                _membership_activate(locked, user=user, role=locked.role)
                return locked
            locked.delete()
            if former.status != MembershipStatus.ACTIVE:
                _membership_activate(former, user=user, role=locked.role)
            return former


def _membership_activate(membership: Membership, *, user: User, role: str) -> None:
    membership.user = user
    membership.role = role
    membership.status = MembershipStatus.ACTIVE
    membership.joined_at = timezone.now()
    membership.invited_email = None
    membership.deactivated_at = membership.deactivated_by = membership.deactivated_reason = None
    membership.save()


def membership_update(*, actor: Actor, membership: Membership, **fields: Unpack[MembershipFields]) -> Membership:
    """Change a member's `role`, `status` and/or `deactivated_reason` (see membership_check).

    Only accepting an invitation makes a pending membership active, and nothing makes one
    pending again. Deactivating records when, by whom and (optionally) why; re-activating
    clears it.
    """
    tenant = actor.require_tenant()
    with actor.atomic():
        _lock_tenant(tenant)
        _membership_reload(membership)
        membership_check(actor=actor, membership=membership, role=fields.get("role"), status=fields.get("status"))
        status = fields.get("status", membership.status)
        if status != membership.status and MembershipStatus.PENDING in (status, membership.status):
            raise ApplicationError(
                "A pending invitation becomes active only when it is accepted, and a membership never "
                "becomes pending again.",
                code="pending",
                attr="status",
            )
        if fields.get("deactivated_reason") and status != MembershipStatus.DEACTIVATED:
            raise ApplicationError(
                "A reason is kept only for a deactivated membership.", code="not_deactivated", attr="deactivated_reason"
            )
        changed = record_assign(membership, fields, allowed=MEMBERSHIP_WRITABLE_FIELDS)
        if "status" in fields and status != MembershipStatus.DEACTIVATED:
            membership.deactivated_at = membership.deactivated_by = membership.deactivated_reason = None
            changed += ["deactivated_at", "deactivated_by", "deactivated_reason"]
        elif status == MembershipStatus.DEACTIVATED and "status" in fields:
            membership.deactivated_at = timezone.now()
            membership.deactivated_by = actor.user
            changed += ["deactivated_at", "deactivated_by"]
        membership.full_clean()
        membership.save(update_fields=sorted(set(changed)))
    return membership


def membership_remove(*, actor: Actor, membership: Membership) -> None:
    tenant = actor.require_tenant()
    with actor.atomic():
        _lock_tenant(tenant)
        _membership_reload(membership)
        membership_check(actor=actor, membership=membership, remove=True)
        membership.delete()


def auth_token_create(*, user: User) -> tuple[AuthToken, str]:
    """A new API token for `user` (one per log-in); returns the row and the token itself,
    which is shown once and never stored."""
    return AuthToken.objects.create(user=user)


def auth_token_revoke(*, token: AuthToken) -> None:
    token.delete()


def auth_tokens_revoke_all(*, user: User) -> int:
    """End every API token of `user`; returns how many there were."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


def auth_tokens_purge_expired() -> int:
    """Delete the tokens that have expired (authentication already ignores them)."""
    deleted, _ = AuthToken.objects.filter(expiry__lte=timezone.now()).delete()
    return deleted
