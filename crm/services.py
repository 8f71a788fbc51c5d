"""Writes to projects, activities, memberships and API tokens."""

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from django.utils import timezone

from contacts.models import Contact
from crm.actor import Actor
from crm.errors import ApplicationError, Conflict, Forbidden, NotFound
from crm.models import Activity, AuthToken, Membership, MembershipStatus, Project, ProjectContact, Role, Tenant, User
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

if TYPE_CHECKING:
    # Projects reach substatus only through the foreign key; the type names its model.
    from substatus.models import SubstatusConfig

PROJECT_WRITABLE_FIELDS = record_writable_fields(Project)
# Kept by the database (the substatus triggers): read back after a write that may change them.
PROJECT_DATABASE_KEPT_FIELDS = ["substatus", "substatus_since"]
ACTIVITY_WRITABLE_FIELDS = record_writable_fields(Activity, exclude=frozenset({"performed_by", "on_behalf_of"}))
PROJECT_CONTACT_WRITABLE_FIELDS = frozenset({"contact", "role"})
MEMBERSHIP_WRITABLE_FIELDS = frozenset({"role", "status"})

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


def activity_create(*, actor: Actor, **fields: Unpack[ActivityFields]) -> Activity:
    """Record an activity performed by the actor's effective user (and the admin behind them)."""
    activity = Activity(
        tenant=actor.require_tenant(),
        created_by=actor.user,
        performed_by=actor.user,
        on_behalf_of=actor.on_behalf_of,
    )
    record_check_links(activity, fields)
    record_assign(activity, fields, allowed=ACTIVITY_WRITABLE_FIELDS)
    return record_save(activity, actor=actor)


def activity_update(*, activity: Activity, actor: Actor, **fields: Unpack[ActivityFields]) -> Activity:
    record_check_links(activity, fields)
    changed = record_assign(activity, fields, allowed=ACTIVITY_WRITABLE_FIELDS)
    return record_save(activity, actor=actor, update_fields=changed)


def activity_delete(*, activity: Activity, actor: Actor) -> None:
    with actor.atomic():
        activity.delete()


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


def membership_add(*, actor: Actor, user: User, role: str) -> Membership:
    """Give an existing user a role in the actor's tenant (re-activating a past membership)."""
    tenant = actor.require_tenant()
    with actor.atomic():
        _lock_tenant(tenant)
        membership_check(actor=actor, membership=None, role=role)
        membership, created = Membership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"role": role, "status": MembershipStatus.ACTIVE}
        )
        if not created:
            if membership.status == MembershipStatus.ACTIVE:
                raise Conflict(f"{user} is already a member of {tenant.name}.", code="already_member")
            membership.role = role
            membership.status = MembershipStatus.ACTIVE
            membership.save(update_fields=["role", "status"])
    return membership


def membership_update(*, actor: Actor, membership: Membership, **fields: Unpack[MembershipFields]) -> Membership:
    """Change a member's `role` and/or `status` (see membership_check for the rules)."""
    tenant = actor.require_tenant()
    with actor.atomic():
        _lock_tenant(tenant)
        _membership_reload(membership)
        membership_check(actor=actor, membership=membership, role=fields.get("role"), status=fields.get("status"))
        changed = record_assign(membership, fields, allowed=MEMBERSHIP_WRITABLE_FIELDS)
        membership.full_clean()
        membership.save(update_fields=changed)
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
