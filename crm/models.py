"""Core domain: users, tenants (roofing companies), memberships, projects and activities."""

import re
import zoneinfo
from email.utils import getaddresses
from functools import cache

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator, validate_email
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.timezone import now
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS as KNOX

from crm.fields import DatabaseKeptBooleanField, JSONDocumentField, choices_check, non_negative_check


class User(AbstractUser):  # type: ignore[django-manager-missing]  # AuthToken.user: knox ships no types
    """Ridgeline's user; one person may work for several tenants (see Membership)."""

    class Meta:
        db_table = "users"
        constraints = [
            models.UniqueConstraint(
                models.functions.Lower("email"),
                condition=~Q(email=""),
                name="users_email_unique_ci",
                violation_error_message="A user with this email already exists.",
            )
        ]


class AuthToken(AbstractAuthToken):
    """An API token (django-rest-knox): only its SHA-512 digest is stored.

    `expiry` moves forward on use (`crm.auth.TokenAuthentication`), never past
    `max_expiry` when that is set. A database trigger (crm migration 0008) deletes a
    user's tokens when their password changes or they are deactivated, whatever path
    made the change.
    """

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=KNOX.DIGEST_LENGTH, unique=True)
    expiry = models.DateTimeField(help_text="The token stops working at this time unless it is used before.")
    max_expiry = models.DateTimeField(
        null=True, blank=True, help_text="Use never extends the token past this time (empty: no limit)."
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "auth_tokens"
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["expiry"], name="auth_tokens_expiry_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_expiry__isnull=True) | Q(expiry__lte=models.F("max_expiry")),
                name="auth_tokens_expiry_within_max",
            )
        ]

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.user})"


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _timezones():
        raise ValidationError(
            "%(value)s is not an IANA time zone (e.g. America/New_York).",
            code="invalid_timezone",
            params={"value": value},
        )


non_negative = MinValueValidator(0)
hex_color = RegexValidator(re.compile(r"^#[0-9a-fA-F]{6}$"), "Use a hex color like #1f6feb.")


# A tenant's subdomain is one DNS label of ours: 1-63 lowercase letters, digits and hyphens,
# neither starting nor ending with a hyphen. It is never all digits (`X-Tenant: 12` names the
# tenant with id 12, and no subdomain may capture it) and never a name the platform serves.
SUBDOMAIN_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ALL_DIGITS_PATTERN = r"^[0-9]+$"
RESERVED_SUBDOMAINS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "auth",
        "billing",
        "cdn",
        "dashboard",
        "docs",
        "ftp",
        "help",
        "imap",
        "login",
        "mail",
        "media",
        "ns1",
        "ns2",
        "ops",
        "pop",
        "portal",
        "smtp",
        "sso",
        "static",
        "status",
        "support",
        "webmail",
        "www",
    }
)
SUBDOMAIN_RULE = (
    "A subdomain is 1-63 lowercase letters, digits and hyphens, not starting or ending with a hyphen, "
    "not all digits, and not a name Ridgeline keeps for itself (www, api, admin, app, static, ...)."
)


def validate_subdomain(value: str) -> None:
    """The field's check, with a message saying which part of SUBDOMAIN_RULE `value` breaks."""
    if not re.fullmatch(SUBDOMAIN_PATTERN, value):
        raise ValidationError(
            "%(value)s is not a valid subdomain: use 1-63 lowercase letters, digits and hyphens, "
            "not starting or ending with a hyphen.",
            code="invalid_subdomain",
            params={"value": value},
        )
    if re.fullmatch(ALL_DIGITS_PATTERN, value):
        raise ValidationError(
            "A subdomain cannot be all digits (X-Tenant reads digits as a tenant id).",
            code="invalid_subdomain",
        )
    if value in RESERVED_SUBDOMAINS:
        raise ValidationError(
            "%(value)s is reserved: choose another subdomain.", code="reserved_subdomain", params={"value": value}
        )


# The keys of `tenants.settings` the core declares, with the type each holds; other keys (a
# feature's own, such as "ai") are kept as given.
NOTIFY_IMPERSONATED_USERS = "notify_impersonated_users"
EMAIL_FROM = "email_from"  # the sender of the tenant's campaign email, e.g. "Summit Roofing <office@summit.example>"
SMS_FROM = "sms_from"  # the number the tenant's campaign SMS come from (E.164), e.g. "+15550100"
TENANT_SETTINGS: dict[str, type] = {NOTIFY_IMPERSONATED_USERS: bool, EMAIL_FROM: str, SMS_FROM: str}
E164_PATTERN = r"\+[1-9][0-9]{6,14}"
TENANT_SETTINGS_HELP = (
    f"The tenant's settings (a JSON object). `{NOTIFY_IMPERSONATED_USERS}` (true or false, default false): "
    "when an admin starts impersonating a member, that member gets a notice on their activity feed "
    "saying who viewed their account and why."
)


def validate_tenant_settings(value: object) -> None:
    if not isinstance(value, dict):
        return
    for key, kind in TENANT_SETTINGS.items():
        if key in value and not isinstance(value[key], kind):
            raise ValidationError(
                "%(key)s is %(kind)s.",
                code="invalid_setting",
                params={"key": f"settings.{key}", "kind": "true or false" if kind is bool else "text"},
            )
    if EMAIL_FROM in value:
        validate_sender(value[EMAIL_FROM])
    if SMS_FROM in value and not re.fullmatch(E164_PATTERN, value[SMS_FROM]):
        raise ValidationError(
            "settings.sms_from is a phone number in E.164 form, like +15550100.", code="invalid_setting"
        )


def validate_sender(value: str) -> None:
    """An email sender ("Name <address>" or an address) on one line, at a domain Ridgeline may send for."""
    parsed = getaddresses([value])
    address = parsed[0][1] if len(parsed) == 1 else ""
    if not address or "\n" in value or "\r" in value or len(value) > 320:
        raise ValidationError(
            "settings.email_from is an email address, optionally with a name: Summit Roofing <office@summit.example>.",
            code="invalid_setting",
        )
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationError(
            "settings.email_from: %(value)s is not a valid email address.",
            code="invalid_setting",
            params={"value": value},
        ) from None
    domain = address.rsplit("@", 1)[1].lower()
    allowed = settings.TENANT_EMAIL_FROM_DOMAINS
    if allowed and not any(domain == entry or domain.endswith(f".{entry}") for entry in allowed):
        raise ValidationError(
            "settings.email_from: Ridgeline does not send for %(domain)s; use an address at %(allowed)s.",
            code="invalid_setting",
            params={"domain": domain, "allowed": ", ".join(allowed)},
        )


class SubscriptionStatus(models.TextChoices):
    TRIAL = "trial"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"


class Tenant(models.Model):
    """A roofing company using Ridgeline."""

    SubscriptionStatus = SubscriptionStatus

    name = models.CharField(max_length=255)
    # varchar(100), the old system's width; a valid subdomain (a DNS label) has 63 at most.
    subdomain = models.SlugField(max_length=100, unique=True, validators=[validate_subdomain], help_text=SUBDOMAIN_RULE)
    custom_domain = models.CharField(max_length=255, null=True, blank=True, unique=True)  # noqa: DJ001
    settings = JSONDocumentField(
        default=dict, db_default={}, blank=True, validators=[validate_tenant_settings], help_text=TENANT_SETTINGS_HELP
    )
    features = JSONDocumentField(default=dict, db_default={}, blank=True)
    subscription_status = models.CharField(
        max_length=20,
        choices=SubscriptionStatus.choices,
        default=SubscriptionStatus.TRIAL,
        db_default=SubscriptionStatus.TRIAL,
    )
    subscription_expires_at = models.DateTimeField(null=True, blank=True)
    logo_url = models.URLField(max_length=500, null=True, blank=True)  # noqa: DJ001
    primary_color = models.CharField(max_length=7, null=True, blank=True, validators=[hex_color])  # noqa: DJ001
    secondary_color = models.CharField(max_length=7, null=True, blank=True, validators=[hex_color])  # noqa: DJ001
    is_active = models.BooleanField(default=True, db_default=True)
    timezone = models.CharField(
        max_length=64,
        default="America/New_York",
        db_default="America/New_York",
        validators=[validate_timezone],
        help_text="IANA time zone used for dates shown to this tenant's staff.",
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "tenants"
        ordering = ["name"]
        constraints = [
            choices_check("subscription_status", SubscriptionStatus, "tenants_subscription_status_valid"),
            models.CheckConstraint(
                condition=Q(subdomain__regex=SUBDOMAIN_PATTERN)
                & ~Q(subdomain__regex=ALL_DIGITS_PATTERN)
                & ~Q(subdomain__in=sorted(RESERVED_SUBDOMAINS)),
                name="tenants_subdomain_valid",
                violation_error_message=SUBDOMAIN_RULE,
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def notifies_impersonated_users(self) -> bool:
        return isinstance(self.settings, dict) and self.settings.get(NOTIFY_IMPERSONATED_USERS) is True


class Role(models.TextChoices):
    """Membership roles, from most to least powerful."""

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def at_least(self, other: "Role") -> bool:
        return ROLE_RANK[self] >= ROLE_RANK[Role(other)]


ROLE_RANK = {Role.OWNER: 5, Role.ADMIN: 4, Role.MANAGER: 3, Role.MEMBER: 2, Role.VIEWER: 1}


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> "MembershipQuerySet":
        return self.filter(status=Membership.Status.ACTIVE, tenant__is_active=True)


class MembershipStatus(models.TextChoices):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    SUSPENDED = "suspended"
    PENDING = "pending"


class Membership(models.Model):
    """A user's role in a tenant. Only `active` memberships grant access.

    An invitation is a `pending` membership for an email (`invited_email`), with no user
    until the owner of that email accepts it (crm.invitations): until then it grants
    nothing and says nothing about whether the email has an account.
    """

    Status = MembershipStatus

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER, db_default=Role.MEMBER)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE, db_default=Status.ACTIVE)
    joined_at = models.DateTimeField(default=now, db_default=Now())
    invited_email = models.EmailField(null=True, blank=True, help_text="Whom a pending invitation is for.")  # noqa: DJ001
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    invited_at = models.DateTimeField(
        null=True, blank=True, help_text="When the invitation was last sent; a link sent before no longer works."
    )
    deactivated_at = models.DateTimeField(null=True, blank=True)
    deactivated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deactivated_reason = models.TextField(null=True, blank=True)  # noqa: DJ001

    objects = MembershipQuerySet.as_manager()

    class Meta:
        db_table = "tenant_users"
        ordering = ["tenant", "user"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="tenant_users_unique_tenant_user"),
            models.UniqueConstraint(
                "tenant",
                models.functions.Lower("invited_email"),
                condition=Q(status=MembershipStatus.PENDING, user__isnull=True),
                name="tenant_users_one_invitation_per_email",
                violation_error_message="This email has already been invited: resend the invitation instead.",
            ),
            models.CheckConstraint(
                condition=Q(user__isnull=False) | Q(status=MembershipStatus.PENDING, invited_email__isnull=False),
                name="tenant_users_user_or_invitation",
                violation_error_message="A membership without a user is a pending invitation for an email.",
            ),
            choices_check("role", Role, "tenant_users_role_valid"),
            choices_check("status", MembershipStatus, "tenant_users_status_valid"),
        ]

    def __str__(self) -> str:
        who = self.user if self.user_id is not None else self.invited_email
        return f"{who} @ {self.tenant} ({self.role})"

    @property
    def email(self) -> str:
        """The invitation's email while pending, else the member's."""
        if self.invited_email:
            return self.invited_email
        return self.user.email if self.user is not None else ""

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class SoftDeleteQuerySet(models.QuerySet):
    def alive(self) -> "SoftDeleteQuerySet":
        return self.filter(is_deleted=False)

    def deleted(self) -> "SoftDeleteQuerySet":
        return self.filter(is_deleted=True)


class SoftDeleteRecord(models.Model):
    """A tenant's record that is soft-deleted and remembers who created and last changed it.

    The services (crm.records) write `updated_by` from the actor; `objects.alive()` hides
    deleted rows.
    """

    is_deleted = models.BooleanField(default=False, db_default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    objects = SoftDeleteQuerySet.as_manager()

    class Meta:
        abstract = True


class ProjectStatus(models.TextChoices):
    ESTIMATE = "estimate"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ProjectType(models.TextChoices):
    REPAIR = "repair"
    REPLACEMENT = "replacement"
    MAINTENANCE = "maintenance"
    EMERGENCY = "emergency"


class Project(SoftDeleteRecord):
    """A roofing job for a contact."""

    Status = ProjectStatus
    Type = ProjectType

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="projects")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="projects"
    )
    parent_project = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="subprojects"
    )
    name = models.CharField(max_length=255)
    project_number = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.ESTIMATE, db_default=Status.ESTIMATE
    )
    type = models.CharField(max_length=20, choices=Type.choices, null=True, blank=True)  # noqa: DJ001
    estimated_value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative]
    )
    approved_value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative]
    )
    final_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative])
    materials_cost = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative]
    )
    labor_cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative])
    overhead_cost = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative]
    )
    profit_margin = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, help_text="Percent of the final value."
    )
    estimated_start = models.DateField(null=True, blank=True)
    scheduled_start = models.DateField(null=True, blank=True)
    actual_start = models.DateField(null=True, blank=True)
    estimated_completion = models.DateField(null=True, blank=True)
    actual_completion = models.DateField(null=True, blank=True)
    description = models.TextField(null=True, blank=True)  # noqa: DJ001
    scope_of_work = models.TextField(null=True, blank=True)  # noqa: DJ001
    materials_list = JSONDocumentField(default=list, db_default=[], blank=True)
    insurance_approved = models.BooleanField(default=False, db_default=False)
    insurance_approval_amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[non_negative]
    )
    deductible_collected = models.BooleanField(default=False, db_default=False)
    supplements = JSONDocumentField(default=list, db_default=[], blank=True)
    crew_assigned = JSONDocumentField(default=list, db_default=[], blank=True)
    weather_delays = models.PositiveSmallIntegerField(default=0, db_default=0, help_text="Days lost to weather.")
    quality_score = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100)], help_text="0 to 100."
    )
    custom_fields = JSONDocumentField(default=dict, db_default={}, blank=True)
    quickbooks_id = models.CharField(  # noqa: DJ001
        max_length=100, null=True, blank=True, verbose_name="QuickBooks id", help_text="The job's id in QuickBooks."
    )
    quickbooks_sync_status = models.CharField(  # noqa: DJ001
        max_length=50,
        null=True,
        blank=True,
        verbose_name="QuickBooks sync status",
        help_text="As the QuickBooks sync reports it (e.g. synced, pending, error).",
    )
    substatus = models.ForeignKey(
        "substatus.SubstatusConfig",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # projects_substatus_since_idx leads with it
        related_name="projects",
        help_text="The step within the status; the database gives the status's default when none is named.",
    )
    substatus_since = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When it entered its substatus (kept by the database)."
    )

    class Meta:
        db_table = "projects"
        ordering = ["-created_at", "-id"]
        constraints = [
            choices_check("status", ProjectStatus, "projects_status_valid"),
            choices_check("type", ProjectType, "projects_type_valid"),
            *non_negative_check(
                [
                    "estimated_value",
                    "approved_value",
                    "final_value",
                    "materials_cost",
                    "labor_cost",
                    "overhead_cost",
                    "insurance_approval_amount",
                ],
                "projects",
            ),
            models.CheckConstraint(condition=Q(quality_score__lte=100), name="projects_quality_score_range"),
            models.UniqueConstraint(
                fields=["tenant", "project_number"],
                condition=Q(project_number__isnull=False),
                name="projects_number_unique_per_tenant",
                violation_error_message="Another project of this tenant has this project number.",
            ),
        ]
        indexes = [
            models.Index(
                "tenant",
                models.F("created_at").desc(),
                models.F("id").desc(),
                condition=Q(is_deleted=False),
                name="projects_tenant_recent_idx",
            ),
            models.Index(fields=["tenant", "status"], name="projects_tenant_status_idx"),
            # The list's COUNT(*) reads this small index.
            models.Index(fields=["tenant"], condition=Q(is_deleted=False), name="projects_tenant_alive_idx"),
            models.Index(fields=["substatus", "substatus_since"], name="projects_substatus_since_idx"),
            # The substatus analytics count the live projects per status and substatus from it
            # (an index-only scan instead of reading the table).
            models.Index(
                fields=["tenant", "status", "substatus"],
                condition=Q(is_deleted=False),
                name="projects_alive_substatus_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProjectContactRole(models.TextChoices):
    """A party's role on a job: every contacts.ContactCategory (a test keeps them in step; the
    models cannot import each other), plus the organization the job came through and the
    homeowner's insurance company."""

    HOMEOWNER = "homeowner"
    ADJUSTER = "adjuster"
    SUB_CONTRACTOR = "sub_contractor", "Sub-contractor"
    PROPERTY_MANAGER = "property_manager"
    REAL_ESTATE_AGENT = "real_estate_agent"
    DEVELOPER = "developer"
    LOCAL_BUSINESS = "local_business"
    OTHER = "other"
    ORGANIZATION = "organization"
    INSURANCE_COMPANY = "insurance_company"


class ProjectContact(models.Model):
    """Another party on a job besides its contact: the adjuster, a sub-contractor, the organization."""

    Role = ProjectContactRole

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="parties")
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="project_parts",
        db_index=False,  # the unique (contact, role, project) index serves lookups by contact
    )
    role = models.CharField(max_length=30, choices=ProjectContactRole.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
        db_table = "project_contacts"
        ordering = ["project", "role", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "role", "project"],
                name="project_contacts_unique",
                violation_error_message="This contact already has this role on the project.",
            ),
            choices_check("role", ProjectContactRole, "project_contacts_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} ({self.get_role_display()}) on {self.project}"


class ActivityType(models.TextChoices):
    CALL = "call"
    EMAIL = "email"
    SMS = "sms", "SMS"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"
    DOOR_KNOCK = "door_knock"
    # Addressed to one member (`recipient`), written only by services (e.g. "your account
    # was viewed"): nobody else sees it.
    NOTICE = "notice"


class ActivityDirection(models.TextChoices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ActivityQuerySet(models.QuerySet["Activity"]):
    def visible_to(self, user: "User | None") -> "ActivityQuerySet":
        """Every activity but the notices addressed to someone else (a notice is its recipient's only)."""
        return self.filter(Q(recipient__isnull=True) | Q(recipient=user))


class Activity(models.Model):
    """A call, email, SMS, meeting, note, task or door knock on a contact and/or project, or a
    notice addressed to one member (`recipient`)."""

    Type = ActivityType
    Direction = ActivityDirection

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="activities")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, null=True, blank=True, related_name="activities")
    # A notice is only its recipient's to read: it goes with their account (SET_NULL would
    # leave a notice without a recipient, which the database refuses).
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # activities_recipient_idx, partial: only notices have one
        help_text="The member a notice is addressed to (only they see it); empty on every other activity.",
    )
    type = models.CharField(max_length=20, choices=Type.choices)
    subtype = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    subject = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    content = models.TextField(null=True, blank=True)  # noqa: DJ001
    direction = models.CharField(max_length=10, choices=Direction.choices, null=True, blank=True)  # noqa: DJ001
    from_address = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    to_address = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    outcome = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    outcome_details = JSONDocumentField(default=dict, db_default={}, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    recording_url = models.URLField(max_length=500, null=True, blank=True)  # noqa: DJ001
    transcript = models.TextField(null=True, blank=True)  # noqa: DJ001
    scheduled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    reminder_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    performed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The effective user (the impersonated user during an impersonation).",
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The admin who acted while impersonating; empty otherwise.",
    )
    is_impersonated_action = DatabaseKeptBooleanField(
        default=False,
        db_default=False,
        editable=False,
        help_text=(
            "Done by an admin while impersonating: set by the database when on_behalf_of is, and kept "
            "(also when that admin's account is deleted later)."
        ),
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        db_table = "activities"
        verbose_name_plural = "activities"
        ordering = ["-created_at", "-id"]
        constraints = [
            choices_check("type", ActivityType, "activities_type_valid"),
            choices_check("direction", ActivityDirection, "activities_direction_valid"),
            models.CheckConstraint(
                condition=Q(contact__isnull=False) | Q(project__isnull=False) | Q(type=ActivityType.NOTICE),
                name="activities_contact_or_project",
                violation_error_message="An activity needs a contact or a project.",
            ),
            models.CheckConstraint(
                condition=Q(type=ActivityType.NOTICE, recipient__isnull=False)
                | (~Q(type=ActivityType.NOTICE) & Q(recipient__isnull=True)),
                name="activities_recipient_only_on_notices",
                violation_error_message="A notice is addressed to one member (recipient); no other activity has one.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=Q(external_id__isnull=False),
                name="activities_external_id_unique_per_tenant",
                violation_error_message="An activity with this external id already exists.",
            ),
        ]
        indexes = [
            models.Index(
                "tenant", models.F("created_at").desc(), models.F("id").desc(), name="activities_tenant_recent_idx"
            ),
            models.Index(fields=["contact", "created_at"], name="activities_contact_idx"),
            models.Index(fields=["project", "created_at"], name="activities_project_idx"),
            models.Index(fields=["recipient"], condition=Q(recipient__isnull=False), name="activities_recipient_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()}: {self.subject or ''}".strip()
