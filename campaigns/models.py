"""Campaigns: what a campaign is (versions of steps and triggers), its templates, and who is in it.

A campaign's steps and triggers belong to a version. The draft version is edited; publishing
freezes it (a database trigger refuses changes to a published version's steps and triggers)
and makes it the campaign's active version. Enrollments stay on the version they entered.

The counters (`Campaign.total_enrolled`, `total_completed`) are kept by database triggers on
`campaign_enrollments`, in the transaction of the change they count (campaigns/triggers.py).
"""

from datetime import date
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Now
from django.utils.timezone import now

from crm.fields import choices_check, non_negative_check
from crm.models import SoftDeleteRecord


class CampaignType(models.TextChoices):
    DRIP = "drip"
    EVENT = "event"
    REENGAGEMENT = "reengagement", "Re-engagement"
    RETENTION = "retention"
    NURTURE = "nurture"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class GoalType(models.TextChoices):
    APPOINTMENTS = "appointments", "Appointments (a meeting activity)"
    DEALS = "deals", "Deals (a project reaching approved)"
    REVIEWS = "reviews", "Reviews (a review-request link clicked)"
    NONE = "none"


class EnrollmentType(models.TextChoices):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class CatchUpPolicy(models.TextChoices):
    SKIP_OVERDUE = "skip_overdue", "Skip what fell due while paused"
    SEND_NOW = "send_now", "Send what fell due at once"
    SPREAD_OVER_HOURS = "spread_over_hours", "Spread what fell due over some hours"


class Campaign(SoftDeleteRecord):
    Type = CampaignType
    Status = CampaignStatus
    Goal = GoalType

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", db_default="")
    campaign_type = models.CharField(
        max_length=20, choices=CampaignType.choices, default=CampaignType.DRIP, db_default=CampaignType.DRIP
    )
    status = models.CharField(
        max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT, db_default=CampaignStatus.DRAFT
    )
    goal_type = models.CharField(
        max_length=20, choices=GoalType.choices, default=GoalType.NONE, db_default=GoalType.NONE
    )
    goal_target = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    allow_re_enrollment = models.BooleanField(default=False, db_default=False)
    re_enrollment_delay_days = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Days after leaving before a contact may enter again."
    )
    respect_business_hours = models.BooleanField(default=False, db_default=False)
    business_hours = models.JSONField(
        default=dict,
        db_default={},
        blank=True,
        help_text='Per weekday: {"mon": {"start": "08:00", "end": "18:00"}, ...}; a missing day sends nothing. '
        "In the contact's time zone, else the tenant's.",
    )
    enrollment_type = models.CharField(
        max_length=20,
        choices=EnrollmentType.choices,
        default=EnrollmentType.AUTOMATIC,
        db_default=EnrollmentType.AUTOMATIC,
    )
    max_enrollments = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no limit."
    )
    total_enrolled = models.IntegerField(default=0, db_default=0, editable=False)
    total_completed = models.IntegerField(default=0, db_default=0, editable=False)
    total_revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0, editable=False)
    active_version = models.ForeignKey(
        "CampaignVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    max_messages_per_day = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Most marketing messages a contact receives per day, across the tenant's campaigns.",
    )
    max_messages_per_week = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    catch_up_policy = models.CharField(
        max_length=20,
        choices=CatchUpPolicy.choices,
        default=CatchUpPolicy.SKIP_OVERDUE,
        db_default=CatchUpPolicy.SKIP_OVERDUE,
    )
    catch_up_hours = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="For spread_over_hours."
    )

    class Meta:
        db_table = "campaigns"
        ordering = ["name", "id"]
        constraints = [
            choices_check("campaign_type", CampaignType, "campaigns_campaign_type_valid"),
            choices_check("status", CampaignStatus, "campaigns_status_valid"),
            choices_check("goal_type", GoalType, "campaigns_goal_type_valid"),
            choices_check("enrollment_type", EnrollmentType, "campaigns_enrollment_type_valid"),
            choices_check("catch_up_policy", CatchUpPolicy, "campaigns_catch_up_policy_valid"),
            models.CheckConstraint(
                condition=Q(goal_target__isnull=True) | Q(goal_target__gt=0),
                name="campaigns_goal_target_positive",
                violation_error_message="The goal target must be empty or above 0.",
            ),
            models.CheckConstraint(
                condition=Q(max_enrollments__isnull=True) | Q(max_enrollments__gt=0),
                name="campaigns_max_enrollments_positive",
                violation_error_message="The most enrollments must be empty or above 0.",
            ),
            models.CheckConstraint(
                # NULL > 0 would pass a CHECK: the hours must be there and positive.
                condition=~Q(catch_up_policy=CatchUpPolicy.SPREAD_OVER_HOURS)
                | Q(catch_up_hours__isnull=False, catch_up_hours__gt=0),
                name="campaigns_catch_up_hours",
                violation_error_message="Spreading over hours needs the number of hours.",
            ),
            *non_negative_check(["re_enrollment_delay_days", "total_enrolled", "total_completed"], "campaigns"),
        ]
        indexes = [models.Index(fields=["tenant", "status"], name="campaigns_tenant_status_idx")]

    def __str__(self) -> str:
        return self.name


class VersionStatus(models.TextChoices):
    DRAFT = "draft"
    PUBLISHED = "published"


class CampaignVersion(models.Model):
    """A campaign's step graph and triggers; published versions never change."""

    Status = VersionStatus

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(
        max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT, db_default=VersionStatus.DRAFT
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    step_mapping = models.JSONField(
        default=dict, db_default={}, blank=True, help_text="On publish: old step id -> new step id, moved in flight."
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
        db_table = "campaign_versions"
        ordering = ["campaign", "-number"]
        constraints = [
            choices_check("status", VersionStatus, "campaign_versions_status_valid"),
            models.UniqueConstraint(fields=["campaign", "number"], name="campaign_versions_number_unique"),
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(status=VersionStatus.DRAFT),
                name="campaign_versions_one_draft",
                violation_error_message="The campaign already has a draft version.",
            ),
            models.CheckConstraint(
                condition=Q(status=VersionStatus.DRAFT) | Q(published_at__isnull=False),
                name="campaign_versions_published_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} v{self.number} ({self.status})"


class StepType(models.TextChoices):
    SEND_EMAIL = "send_email"
    SEND_SMS = "send_sms", "Send SMS"
    CREATE_TASK = "create_task"
    WAIT = "wait"
    UPDATE_FIELD = "update_field"
    MANAGE_TAGS = "manage_tags"
    NOTIFY = "notify"
    WEBHOOK = "webhook"
    CONDITIONAL = "conditional"
    EXIT_CAMPAIGN = "exit_campaign"


MESSAGE_STEPS = frozenset({StepType.SEND_EMAIL, StepType.SEND_SMS})


class AbMetric(models.TextChoices):
    NONE = "", "None (keep the split)"
    OPEN = "open", "Opens"
    CLICK = "click", "Clicks"
    REPLY = "reply", "Replies"
    GOAL = "goal", "The campaign's goal"


class DelayUnit(models.TextChoices):
    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"


class CampaignStep(models.Model):
    Type = StepType
    DelayUnit = DelayUnit

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    version = models.ForeignKey(CampaignVersion, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=255, blank=True, default="", db_default="")
    step_order = models.PositiveIntegerField()
    parent_step = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="children")
    step_type = models.CharField(max_length=20, choices=StepType.choices)
    step_config = models.JSONField(default=dict, db_default={}, blank=True)
    delay_value = models.PositiveIntegerField(default=0, db_default=0)
    delay_unit = models.CharField(
        max_length=10, choices=DelayUnit.choices, default=DelayUnit.HOURS, db_default=DelayUnit.HOURS
    )
    conditions = models.JSONField(null=True, blank=True, help_text="A filter tree (the filters app's language).")
    true_path_step = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    false_path_step = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    variants = models.JSONField(
        default=list, db_default=[], blank=True, help_text="A/B variants: [{key, weight, subject?, body}]."
    )
    ab_metric = models.CharField(
        max_length=10,
        choices=AbMetric.choices,
        blank=True,
        default="",
        db_default="",
        help_text="What picks the A/B winner (empty: the variants stay split by weight).",
    )
    ab_test_size = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(2)], help_text="Sends in the test before it ends."
    )
    ab_window_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Hours from the step's first send until the test ends.",
    )
    ab_fallback_variant = models.CharField(
        max_length=50, blank=True, default="", db_default="", help_text="Sent after a test with no significant winner."
    )
    total_executed = models.IntegerField(default=0, db_default=0, editable=False)
    total_succeeded = models.IntegerField(default=0, db_default=0, editable=False)
    total_failed = models.IntegerField(default=0, db_default=0, editable=False)
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "campaign_steps"
        ordering = ["version", "step_order"]
        constraints = [
            choices_check("step_type", StepType, "campaign_steps_step_type_valid"),
            choices_check("delay_unit", DelayUnit, "campaign_steps_delay_unit_valid"),
            models.UniqueConstraint(
                fields=["version", "step_order"],
                name="campaign_steps_order_unique",
                violation_error_message="Another step of this version has this order.",
            ),
            models.CheckConstraint(
                condition=~Q(true_path_step=F("pk")) & ~Q(false_path_step=F("pk")),
                name="campaign_steps_no_self_path",
                violation_error_message="A conditional step cannot lead to itself.",
            ),
            *non_negative_check(["total_executed", "total_succeeded", "total_failed"], "campaign_steps"),
            choices_check("ab_metric", AbMetric, "campaign_steps_ab_metric_valid"),
            models.CheckConstraint(
                condition=Q(ab_metric="") | Q(ab_test_size__isnull=False) | Q(ab_window_hours__isnull=False),
                name="campaign_steps_ab_test_ends",
                violation_error_message="An A/B winner metric needs a test size or a window.",
            ),
            models.CheckConstraint(
                condition=Q(ab_test_size__isnull=True) | Q(ab_test_size__gte=2),
                name="campaign_steps_ab_test_size_valid",
                violation_error_message="An A/B test needs at least 2 sends.",
            ),
            models.CheckConstraint(
                condition=Q(ab_window_hours__isnull=True) | Q(ab_window_hours__gte=1),
                name="campaign_steps_ab_window_valid",
                violation_error_message="An A/B window is at least 1 hour.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step_order}. {self.name or self.get_step_type_display()}"


class TriggerType(models.TextChoices):
    STAGE_CHANGE = "stage_change"
    TIME_BASED = "time_based"
    EVENT = "event"
    MANUAL = "manual"


class CampaignTrigger(models.Model):
    Type = TriggerType

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="triggers")
    version = models.ForeignKey(CampaignVersion, on_delete=models.CASCADE, related_name="triggers")
    trigger_type = models.CharField(max_length=20, choices=TriggerType.choices)
    trigger_config = models.JSONField(default=dict, db_default={}, blank=True)
    enrollment_conditions = models.JSONField(null=True, blank=True, help_text="A filter tree: who may enter.")
    exclusion_conditions = models.JSONField(
        null=True, blank=True, help_text="A filter tree: who is kept out, or leaves when they come to match."
    )
    priority = models.IntegerField(default=0, db_default=0)
    is_active = models.BooleanField(default=True, db_default=True)
    # What the scan has seen: the last history or activity id, or the last day scanned.
    watermark_id = models.BigIntegerField(null=True, blank=True, editable=False)
    watermark_date = models.DateField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "campaign_triggers"
        ordering = ["version", "-priority", "id"]
        constraints = [choices_check("trigger_type", TriggerType, "campaign_triggers_trigger_type_valid")]

    def __str__(self) -> str:
        return f"{self.get_trigger_type_display()} ({self.campaign})"


class CampaignTemplate(models.Model):
    """A campaign to start from: the defaults every tenant has (no tenant), or a tenant's own."""

    tenant = models.ForeignKey(
        "crm.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="campaign_templates",
        help_text="Empty: a default every tenant has.",
    )
    key = models.SlugField(max_length=100)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", db_default="")
    campaign_type = models.CharField(max_length=20, choices=CampaignType.choices)
    goal_type = models.CharField(max_length=20, choices=GoalType.choices, default=GoalType.NONE)
    goal_target = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    steps = models.JSONField(
        default=list, db_default=[], blank=True, help_text="The steps, in order, as the steps API takes them."
    )
    triggers = models.JSONField(default=list, db_default=[], blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "campaign_templates"
        ordering = ["name", "id"]
        constraints = [
            choices_check("campaign_type", CampaignType, "campaign_templates_campaign_type_valid"),
            choices_check("goal_type", GoalType, "campaign_templates_goal_type_valid"),
            models.UniqueConstraint(
                fields=["key", "tenant"],
                nulls_distinct=False,
                name="campaign_templates_key_unique",
                violation_error_message="A template with this key exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EnrollmentSource(models.TextChoices):
    AUTOMATIC_TRIGGER = "automatic_trigger"
    MANUAL_ADMIN = "manual_admin"
    API = "api", "API"
    BULK_IMPORT = "bulk_import"


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXITED = "exited"
    PAUSED = "paused"
    FAILED = "failed"


IN_FLIGHT = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


class ExitReason(models.TextChoices):
    UNENROLLED = "unenrolled", "Taken out by staff"
    EXCLUDED = "excluded"
    GOAL = "goal", "Goal met"
    EXIT_STEP = "exit_step", "An exit step"
    ARCHIVED = "archived", "Campaign archived"
    CONTACT_DELETED = "contact_deleted"


ENROLLMENT_COUNTERS = [
    "steps_completed",
    "emails_sent",
    "emails_opened",
    "emails_clicked",
    "sms_sent",
    "sms_replied",
    "tasks_created",
]


def _facts(*facts: tuple[Q, int]) -> Any:
    """An integer whose bits say which facts hold for the row (the analytics count each once)."""
    terms = [
        Case(When(condition, then=Value(bit)), default=Value(0), output_field=models.IntegerField())
        for condition, bit in facts
    ]
    total: Any = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


class EnrollmentFact:
    ENTERED = 1
    COMPLETED = 2
    LEFT = 4  # exited or failed
    GOAL = 8


ENROLLMENT_FACTS = _facts(
    (Q(pk__isnull=False), EnrollmentFact.ENTERED),
    (Q(status=EnrollmentStatus.COMPLETED), EnrollmentFact.COMPLETED),
    (Q(status__in=[EnrollmentStatus.EXITED, EnrollmentStatus.FAILED]), EnrollmentFact.LEFT),
    (Q(goal_achieved=True), EnrollmentFact.GOAL),
)


class CampaignEnrollment(models.Model):
    Source = EnrollmentSource
    Status = EnrollmentStatus
    ExitReason = ExitReason

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey(CampaignVersion, on_delete=models.PROTECT, related_name="enrollments")
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="campaign_enrollments")
    project = models.ForeignKey(
        "crm.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="campaign_enrollments"
    )
    rotation = models.PositiveIntegerField(default=1, help_text="1 for the first time in, 2 for the second, ...")
    enrollment_source = models.CharField(max_length=20, choices=EnrollmentSource.choices)
    trigger = models.ForeignKey(
        CampaignTrigger, on_delete=models.SET_NULL, null=True, blank=True, related_name="enrollments"
    )
    trigger_event = models.CharField(  # noqa: DJ001
        max_length=100,
        null=True,
        blank=True,
        help_text="The change that caused it (e.g. history:123): one enrollment per change.",
    )
    enrolled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    enrolled_at = models.DateTimeField(default=now, db_default=Now())
    status = models.CharField(
        max_length=20,
        choices=EnrollmentStatus.choices,
        default=EnrollmentStatus.ACTIVE,
        db_default=EnrollmentStatus.ACTIVE,
    )
    current_step = models.ForeignKey(CampaignStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    current_step_order = models.PositiveIntegerField(null=True, blank=True)
    exit_reason = models.CharField(max_length=20, choices=ExitReason.choices, null=True, blank=True)  # noqa: DJ001
    exited_at = models.DateTimeField(null=True, blank=True)
    steps_completed = models.IntegerField(default=0, db_default=0)
    emails_sent = models.IntegerField(default=0, db_default=0)
    emails_opened = models.IntegerField(default=0, db_default=0)
    emails_clicked = models.IntegerField(default=0, db_default=0)
    sms_sent = models.IntegerField(default=0, db_default=0)
    sms_replied = models.IntegerField(default=0, db_default=0)
    tasks_created = models.IntegerField(default=0, db_default=0)
    goal_achieved = models.BooleanField(default=False, db_default=False)
    goal_achieved_at = models.DateTimeField(null=True, blank=True)
    revenue_attributed = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)
    deals_attributed = models.IntegerField(
        default=0, db_default=0, editable=False, help_text="Projects approved within the attribution window."
    )
    analytics_counted = models.PositiveSmallIntegerField(
        default=0, db_default=0, editable=False, help_text="The facts campaign_analytics has counted (bits)."
    )
    last_step_executed_at = models.DateTimeField(null=True, blank=True)
    next_step_scheduled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "campaign_enrollments"
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            choices_check("enrollment_source", EnrollmentSource, "campaign_enrollments_source_valid"),
            choices_check("status", EnrollmentStatus, "campaign_enrollments_status_valid"),
            choices_check("exit_reason", ExitReason, "campaign_enrollments_exit_reason_valid"),
            models.UniqueConstraint(
                fields=["contact", "campaign"],
                condition=Q(status__in=IN_FLIGHT),
                name="campaign_enrollments_one_active",
                violation_error_message="The contact is already in this campaign.",
            ),
            models.UniqueConstraint(
                fields=["campaign", "contact", "rotation"], name="campaign_enrollments_rotation_unique"
            ),
            models.UniqueConstraint(
                fields=["trigger", "trigger_event", "contact"],
                condition=Q(trigger_event__isnull=False),
                name="campaign_enrollments_once_per_change",
            ),
            models.CheckConstraint(condition=Q(rotation__gte=1), name="campaign_enrollments_rotation_positive"),
            *non_negative_check(ENROLLMENT_COUNTERS, "campaign_enrollments"),
        ]
        indexes = [
            models.Index(fields=["tenant", "campaign", "status"], name="enrollments_status_idx"),
            models.Index(fields=["contact", "campaign", "rotation"], name="enrollments_contact_idx"),
            # The analytics task's work: rows with facts it has not counted yet (a small index).
            models.Index(
                fields=["id"], condition=~Q(analytics_counted=ENROLLMENT_FACTS), name="enrollments_uncounted_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.campaign} ({self.status})"


class ExecutionStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running", "Running (claimed by a worker)"
    SENDING = "sending", "Sending (handed to the channel)"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown", "Unknown (the worker died while sending: a person decides)"


class SkipReason(models.TextChoices):
    QUIET_HOURS_MOVED = "quiet_hours_moved"
    FREQUENCY_CAP = "frequency_cap"
    NO_CONSENT = "no_consent"
    SUPPRESSED = "suppressed"
    GOAL_MET = "goal_met"
    EXCLUDED = "excluded"
    PAUSED = "paused"
    ARCHIVED = "archived"
    CONTACT_DELETED = "contact_deleted"


class ExecutionFact:
    FINISHED = 1  # completed, failed or skipped
    OPENED = 2
    CLICKED = 4
    REPLIED = 8


FINISHED = ("completed", "failed", "skipped")
EXECUTION_FACTS = _facts(
    (Q(status__in=FINISHED), ExecutionFact.FINISHED),
    (Q(opened_at__isnull=False), ExecutionFact.OPENED),
    (Q(clicked_at__isnull=False), ExecutionFact.CLICKED),
    (Q(replied_at__isnull=False), ExecutionFact.REPLIED),
)


class CampaignStepExecution(models.Model):
    """One visit of an enrollment to a step: the schedule (PostgreSQL holds it) and the send ledger.

    (enrollment, step, visit) is the idempotency key: the database refuses a second row for it,
    so a step is run at most once per visit however many workers race or crash.
    """

    Status = ExecutionStatus
    SkipReason = SkipReason

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    enrollment = models.ForeignKey(CampaignEnrollment, on_delete=models.CASCADE, related_name="executions")
    step = models.ForeignKey(CampaignStep, on_delete=models.CASCADE, related_name="executions")
    visit = models.PositiveIntegerField(default=1, db_default=1)
    variant = models.CharField(max_length=50, blank=True, default="", db_default="")
    status = models.CharField(
        max_length=20,
        choices=ExecutionStatus.choices,
        default=ExecutionStatus.PENDING,
        db_default=ExecutionStatus.PENDING,
    )
    scheduled_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    result_data = models.JSONField(default=dict, db_default={}, blank=True)
    error_message = models.TextField(blank=True, default="", db_default="")
    skip_reason = models.CharField(  # noqa: DJ001
        max_length=20, choices=SkipReason.choices, null=True, blank=True
    )
    provider_message_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    analytics_counted = models.PositiveSmallIntegerField(
        default=0, db_default=0, editable=False, help_text="The facts campaign_analytics has counted (bits)."
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "campaign_step_executions"
        ordering = ["-scheduled_at", "-id"]
        constraints = [
            choices_check("status", ExecutionStatus, "campaign_step_executions_status_valid"),
            choices_check("skip_reason", SkipReason, "campaign_step_executions_skip_reason_valid"),
            models.UniqueConstraint(
                fields=["enrollment", "step", "visit"],
                name="campaign_step_executions_once",
                violation_error_message="This step already has an execution for this visit.",
            ),
            models.CheckConstraint(condition=Q(visit__gte=1), name="campaign_step_executions_visit_positive"),
            models.CheckConstraint(
                condition=~Q(status__in=[ExecutionStatus.RUNNING, ExecutionStatus.SENDING])
                | Q(lease_until__isnull=False),
                name="campaign_step_executions_leased",
                violation_error_message="A claimed execution needs a lease.",
            ),
        ]
        indexes = [
            # The claim query: due pending rows, oldest first (a small index: only pending rows).
            models.Index(fields=["scheduled_at"], condition=Q(status="pending"), name="executions_due_idx"),
            # The reaper: claims and sends whose lease ran out.
            models.Index(
                fields=["lease_until"], condition=Q(status__in=["running", "sending"]), name="executions_lease_idx"
            ),
            models.Index(fields=["tenant", "status", "skip_reason"], name="executions_ledger_idx"),
            # The analytics task's work: rows with facts it has not counted yet (a small index).
            models.Index(
                fields=["id"], condition=~Q(analytics_counted=EXECUTION_FACTS), name="executions_uncounted_idx"
            ),
            # The A/B figures: a step's sends by variant.
            models.Index(fields=["step", "variant"], condition=~Q(variant=""), name="executions_variant_idx"),
            # Providers' webhooks find the message they report on by its id (sent rows only).
            models.Index(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="executions_provider_id_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step} for enrollment {self.enrollment_id} (visit {self.visit}): {self.status}"


class AbDecisionReason(models.TextChoices):
    SIGNIFICANT = "significant", "A variant won (two-proportion z-test, 95%)"
    FALLBACK = "fallback", "No significant winner by the test's end: the fallback"


class CampaignAbDecision(models.Model):
    """The end of a step's A/B test: the variant everyone gets from then on, and the figures behind it."""

    Reason = AbDecisionReason

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ab_decisions")
    step = models.OneToOneField(CampaignStep, on_delete=models.CASCADE, related_name="ab_decision")
    metric = models.CharField(max_length=10, choices=AbMetric.choices)
    winner = models.CharField(max_length=50)
    reason = models.CharField(max_length=20, choices=AbDecisionReason.choices)
    z_score = models.FloatField(
        null=True, blank=True, help_text="The best against the runner-up (empty: not computable)."
    )
    p_value = models.FloatField(null=True, blank=True)
    figures = models.JSONField(default=dict, help_text="Per variant: trials, successes, rate.")
    decided_at = models.DateTimeField(default=now, db_default=Now())

    class Meta:
        db_table = "campaign_ab_decisions"
        ordering = ["-decided_at", "-id"]
        constraints = [
            choices_check("metric", AbMetric, "campaign_ab_decisions_metric_valid"),
            choices_check("reason", AbDecisionReason, "campaign_ab_decisions_reason_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.step}: {self.winner} ({self.reason})"


class PeriodType(models.TextChoices):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    ALL_TIME = "all_time"


ALL_TIME_DATE = date(1970, 1, 1)  # the snapshot_date of every all_time row


class CampaignAnalytics(models.Model):
    """What a campaign did in a period (the tenant's days; weeks start on Monday), kept up to date
    by the analytics task from the executions and enrollments it has not counted yet.

    A row is the whole campaign (no step), one step (no variant) or one variant of a step.
    Enrollment figures are on the campaign's rows; message figures on every row. The flows
    (`new_enrollments`, `emails_sent`, ...) are what happened in the period; `total_enrolled`
    and `active_enrollments` are as of the period's end. Revenue is that of the enrollments that
    entered in the period.
    """

    PeriodType = PeriodType

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="analytics")
    snapshot_date = models.DateField(help_text="The period's first day (all_time: 1970-01-01).")
    period_type = models.CharField(max_length=10, choices=PeriodType.choices)
    step = models.ForeignKey(CampaignStep, on_delete=models.CASCADE, null=True, blank=True, related_name="analytics")
    variant = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 (null: the step as a whole)
    total_enrolled = models.IntegerField(default=0, db_default=0)
    new_enrollments = models.IntegerField(default=0, db_default=0)
    active_enrollments = models.IntegerField(default=0, db_default=0)
    completed_enrollments = models.IntegerField(default=0, db_default=0)
    exited_enrollments = models.IntegerField(default=0, db_default=0)
    emails_sent = models.IntegerField(default=0, db_default=0)
    emails_opened = models.IntegerField(default=0, db_default=0)
    emails_clicked = models.IntegerField(default=0, db_default=0)
    sms_sent = models.IntegerField(default=0, db_default=0)
    sms_replied = models.IntegerField(default=0, db_default=0)
    tasks_created = models.IntegerField(default=0, db_default=0)
    goals_achieved = models.IntegerField(default=0, db_default=0)
    executions_completed = models.IntegerField(default=0, db_default=0)
    executions_failed = models.IntegerField(default=0, db_default=0)
    executions_skipped = models.IntegerField(default=0, db_default=0)
    skipped_by_reason = models.JSONField(default=dict, db_default={}, blank=True, help_text="{reason: count}")
    open_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0, db_default=0)
    click_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0, db_default=0)
    reply_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0, db_default=0)
    conversion_rate = models.DecimalField(max_digits=7, decimal_places=4, default=0, db_default=0)
    revenue_attributed = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)
    deals_attributed = models.IntegerField(default=0, db_default=0)
    average_deal_size = models.DecimalField(max_digits=14, decimal_places=2, default=0, db_default=0)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "campaign_analytics"
        verbose_name_plural = "campaign analytics"
        ordering = ["campaign", "period_type", "-snapshot_date", "step", "variant"]
        constraints = [
            choices_check("period_type", PeriodType, "campaign_analytics_period_type_valid"),
            models.UniqueConstraint(
                fields=["campaign", "snapshot_date", "period_type"],
                condition=Q(step__isnull=True),
                name="campaign_analytics_campaign_period_unique",
            ),
            models.UniqueConstraint(
                fields=["campaign", "snapshot_date", "period_type", "step", "variant"],
                nulls_distinct=False,
                name="campaign_analytics_row_unique",
            ),
            models.CheckConstraint(
                condition=Q(variant__isnull=True) | Q(step__isnull=False), name="campaign_analytics_variant_of_a_step"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} {self.period_type} {self.snapshot_date}"
