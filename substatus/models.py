"""Substatuses: a tenant's finer steps under each contact stage and project status, and their history.

The rules that keep records and substatuses consistent (defaults, validation, history rows)
are PostgreSQL triggers, so that every write path obeys them; they are declared in
`substatus/triggers.py` and installed by this app's migrations.
"""

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils.timezone import now

from contacts.models import Contact, ContactStage
from crm.actor import Source
from crm.fields import choices_check
from crm.models import Project, ProjectStatus, hex_color


class Entity(models.TextChoices):
    CONTACT = "contact"
    PROJECT = "project"


# The records that have substatuses, and the statuses each moves through (a contact's
# `stage`, a project's `status`).
RECORD_MODELS: dict[str, type[Contact | Project]] = {Entity.CONTACT: Contact, Entity.PROJECT: Project}
STATUSES: dict[str, type[models.TextChoices]] = {Entity.CONTACT: ContactStage, Entity.PROJECT: ProjectStatus}
STATUS_FIELD: dict[str, str] = {Entity.CONTACT: "stage", Entity.PROJECT: "status"}


def status_choices() -> list[tuple[str, str]]:
    """Every status of every entity (a contact stage and a project status may share a name)."""
    return sorted({(value, label) for choices in STATUSES.values() for value, label in choices.choices})


class SubstatusConfig(models.Model):
    """One substatus of a tenant, under one status of contacts or projects."""

    Entity = Entity

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.CASCADE, related_name="substatuses")
    entity = models.CharField(max_length=20, choices=Entity.choices)
    status = models.CharField(
        max_length=20, choices=status_choices(), help_text="The contact stage or project status it belongs to."
    )
    key = models.CharField(
        max_length=50,
        validators=[RegexValidator(r"^[a-z0-9_]+$", "Use lowercase letters, digits and underscores.")],
        help_text="Stable identifier for integrations and reports, e.g. `estimate_sent`.",
    )
    label = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="", db_default="")
    color = models.CharField(max_length=7, blank=True, default="", db_default="", validators=[hex_color])
    icon = models.CharField(max_length=50, blank=True, default="", db_default="")
    position = models.PositiveSmallIntegerField(default=0, db_default=0, help_text="Order within its status.")
    is_default = models.BooleanField(
        default=False, db_default=False, help_text="Given to records entering the status without a substatus."
    )
    is_terminal = models.BooleanField(
        default=False, db_default=False, help_text="The end of the road: never transitions automatically."
    )
    auto_transition_to = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="auto_transitions_from",
        help_text="Another substatus of the same status that records move to after the delay.",
    )
    auto_transition_delay_hours = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    is_active = models.BooleanField(
        default=True, db_default=True, help_text="Inactive substatuses cannot be chosen; history keeps them."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "status_substatus_configs"
        verbose_name = "substatus"
        ordering = ["entity", "status", "position", "id"]
        constraints = [
            choices_check("entity", Entity, "substatus_configs_entity_valid"),
            models.CheckConstraint(
                condition=Q(entity=Entity.CONTACT, status__in=ContactStage.values)
                | Q(entity=Entity.PROJECT, status__in=ProjectStatus.values),
                name="substatus_configs_status_valid",
                violation_error_message="This status does not exist for this kind of record.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "key", "entity", "status"],  # `key` first: the field it names
                name="substatus_configs_key_unique",
                violation_error_message="Another substatus of this status has this key.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "entity", "status"],
                condition=Q(is_default=True),
                name="substatus_configs_one_default",
                violation_error_message="This status already has a default substatus.",
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(is_active=True),
                name="substatus_configs_default_active",
                violation_error_message="The default substatus must stay active: make another one the default first.",
            ),
            models.CheckConstraint(
                condition=Q(auto_transition_to__isnull=True, auto_transition_delay_hours__isnull=True)
                | Q(
                    auto_transition_to__isnull=False,
                    auto_transition_delay_hours__isnull=False,  # NULL >= 1 would pass a CHECK
                    auto_transition_delay_hours__gte=1,
                ),
                name="substatus_configs_auto_transition_delay",
                violation_error_message="An automatic transition needs a delay of at least one hour (and only then).",
            ),
            models.CheckConstraint(
                condition=Q(is_terminal=False) | Q(auto_transition_to__isnull=True),
                name="substatus_configs_terminal_stays",
                violation_error_message="A terminal substatus cannot transition automatically.",
            ),
            models.CheckConstraint(
                condition=~Q(auto_transition_to=F("pk")),
                name="substatus_configs_no_self_transition",
                violation_error_message="A substatus cannot transition to itself.",
            ),
        ]
        indexes = [
            models.Index(
                fields=["auto_transition_to"],
                condition=Q(auto_transition_to__isnull=False),
                name="substatus_configs_rules_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.label}"


class HistorySource(models.TextChoices):
    API = Source.API, "API"
    ADMIN = Source.ADMIN
    TASK = Source.TASK
    CAMPAIGN = Source.CAMPAIGN
    MIGRATION = Source.MIGRATION
    SQL = Source.SQL, "SQL"


class SubstatusHistoryQuerySet(models.QuerySet["SubstatusHistory"]):
    """History is append-only: rows are written by the database triggers, never changed."""

    def update(self, **kwargs: object) -> int:
        raise TypeError("Substatus history is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("Substatus history is append-only.")


class SubstatusHistory(models.Model):
    """One change of a record's status or substatus, written by a trigger on every write path.

    The references are not database foreign keys: an append-only log copies values that the
    record's own constraints have just checked, and must neither block nor rewrite itself
    when a user or tenant goes away (and one foreign-key check per logged row would cost as
    much as the row itself).
    """

    Source = HistorySource

    tenant = models.ForeignKey(
        "crm.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    entity = models.CharField(max_length=20, choices=Entity.choices)
    record_id = models.BigIntegerField()
    from_status = models.CharField(max_length=20, null=True, blank=True, help_text="Empty for a new record.")  # noqa: DJ001
    to_status = models.CharField(max_length=20)
    from_substatus = models.ForeignKey(
        SubstatusConfig,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    to_substatus = models.ForeignKey(
        SubstatusConfig,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    before = models.JSONField(null=True, blank=True, help_text="The tracked fields before (empty for a new record).")
    after = models.JSONField(help_text="The tracked fields after the change.")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        help_text="The effective user (the impersonated user during an impersonation).",
    )
    impersonated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
        help_text="The admin who acted while impersonating; empty otherwise.",
    )
    reason = models.TextField(blank=True, default="", db_default="")
    source = models.CharField(max_length=20, choices=HistorySource.choices)
    changed_at = models.DateTimeField()

    objects = SubstatusHistoryQuerySet.as_manager()

    class Meta:
        db_table = "substatus_history"
        verbose_name = "substatus change"
        verbose_name_plural = "substatus history"
        ordering = ["-changed_at", "-id"]
        constraints = [
            choices_check("entity", Entity, "substatus_history_entity_valid"),
            choices_check("source", HistorySource, "substatus_history_source_valid"),
        ]
        indexes = [
            # A record's history (read backwards for newest first), and analytics' windows by record.
            models.Index(
                fields=["tenant", "entity", "record_id", "changed_at", "id"], name="substatus_history_record_idx"
            ),
            models.Index(fields=["tenant", "entity", "changed_at"], name="substatus_history_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.record_id}: {self.from_status or '-'} -> {self.to_status}"

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise TypeError("Substatus history is append-only.")


class SubstatusStay(models.Model):
    """One stay of a record in a status (`whole_status`) or in a substatus, as the analytics count it.

    A copy of what the history says, rolled up by `substatus_stays_refresh` (Celery beat) from the
    history rows up to the watermark (`SubstatusStaysWatermark`), so that the analytics read one
    row per stay instead of ordering the history. A stay still running at the watermark has no
    `left_at`, `seconds` nor `next_status`. Not kept by the history triggers: their cost is
    measured (bench/substatus.py). Counted per period in SubstatusStayCount, SubstatusStayBucket,
    SubstatusOpenStayCount and SubstatusOpenStayDayCount in the same transaction.
    """

    tenant = models.ForeignKey(
        "crm.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    entity = models.CharField(max_length=20, choices=Entity.choices)
    record_id = models.BigIntegerField()
    history_id = models.BigIntegerField(help_text="The history row of the entry.")
    whole_status = models.BooleanField(help_text="A stay in the status (its substatuses included).")
    status = models.CharField(max_length=20)
    substatus = models.ForeignKey(
        SubstatusConfig,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    next_status = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    bucket = models.IntegerField(
        null=True, blank=True, help_text="substatus_stay_bucket(seconds) of a finished stay: see SubstatusStayBucket."
    )

    class Meta:
        db_table = "substatus_stays"
        constraints = [
            models.UniqueConstraint(fields=["history_id", "whole_status"], name="substatus_stays_entry_unique"),
        ]
        indexes = [
            models.Index(fields=["tenant", "entity", "entered_at"], name="substatus_stays_time_idx"),
            models.Index(fields=["tenant", "entity", "record_id"], name="substatus_stays_record_idx"),
            # The stays still running of a status in a range of entry instants (substatus.selectors).
            models.Index(
                fields=["tenant", "entity", "whole_status", "status", "entered_at"],
                include=["substatus", "record_id"],
                condition=Q(left_at__isnull=True),
                name="substatus_stays_open_idx",
            ),
            # The analytics' exact percentiles read one bucket of one group (substatus.selectors).
            models.Index(
                fields=["tenant", "entity", "whole_status", "status", "substatus", "bucket", "entered_at"],
                include=["seconds", "record_id"],
                condition=Q(left_at__isnull=False),
                name="substatus_stays_bucket_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.record_id}: {self.status} from {self.entered_at:%Y-%m-%d %H:%M}"


class SubstatusStaysWatermark(models.Model):
    """The one row saying up to which history row `substatus_stays` is rolled up."""

    history_id = models.BigIntegerField(default=0, db_default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "substatus_stays_watermark"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="substatus_stays_watermark_single")]

    def __str__(self) -> str:
        return f"substatus stays up to history row {self.history_id}"


class StayGroup(models.Model):
    """The group a count of stays is for: a tenant's status (`whole_status`) or substatus of an
    entity. The counts name no foreign key in the database: they are rebuilt from the stays."""

    tenant = models.ForeignKey(
        "crm.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    entity = models.CharField(max_length=20, choices=Entity.choices)
    whole_status = models.BooleanField()
    status = models.CharField(max_length=20)
    substatus = models.ForeignKey(
        SubstatusConfig,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        abstract = True


# The finished stays (`left_at` set) counted per UTC day and per UTC month of their entry, so
# that a window of whole days reads about a row per group, month (or day at its ends) and
# next status (or duration bucket) instead of every stay; kept by `substatus_stays_refresh` in
# the transaction that changes `substatus_stays`. Stays still running are not counted here:
# their time runs until "now".
class SubstatusStayCount(StayGroup):
    """Finished stays of a group entered in a period: how many, and their time summed in microseconds."""

    monthly = models.BooleanField(help_text="`period` is the first day of a UTC month (else a UTC day).")
    period = models.DateField()
    next_status = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    entries = models.BigIntegerField()
    micros = models.DecimalField(max_digits=38, decimal_places=0, help_text="sum((seconds * 1e6)::bigint)")

    class Meta:
        db_table = "substatus_stay_counts"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "tenant",
                    "entity",
                    "monthly",
                    "period",
                    "whole_status",
                    "status",
                    "substatus",
                    "next_status",
                ],
                nulls_distinct=False,
                name="substatus_stay_counts_cell_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.status} {self.period}: {self.entries}"


class SubstatusStayBucket(StayGroup):
    """Finished stays of a group entered in a period whose time falls in a duration bucket.

    `bucket` is `substatus_stay_bucket(seconds)` (SQL, migration 0008): 0 below a second, then
    sixteen buckets per doubling. The analytics add the buckets of a window up to find the one
    bucket that holds each percentile's stay, then read that bucket's stays only.
    """

    monthly = models.BooleanField(help_text="`period` is the first day of a UTC month (else a UTC day).")
    period = models.DateField()
    bucket = models.IntegerField()
    entries = models.BigIntegerField()

    class Meta:
        db_table = "substatus_stay_buckets"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "monthly", "period", "whole_status", "status", "substatus", "bucket"],
                nulls_distinct=False,
                name="substatus_stay_buckets_cell_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.status} {self.period} bucket {self.bucket}: {self.entries}"


class OpenStayCell(StayGroup):
    """Stays still running of a group, counted by entry: `micros` sums their entry instants
    (microseconds since the epoch), since their time runs until "now"."""

    entries = models.BigIntegerField()
    micros = models.DecimalField(max_digits=38, decimal_places=0, help_text="sum of the entries' epoch microseconds")

    class Meta:
        abstract = True


class SubstatusOpenStayCount(OpenStayCell):
    """Stays still running at the watermark, counted per group and UTC hour of their entry.

    An hour's stays fall in the duration buckets between those of its first and last instant.
    Counted whatever becomes of their record: the analytics take the stays of deleted or purged
    records (no time) back out.
    """

    hour = models.DateTimeField()

    class Meta:
        db_table = "substatus_open_stay_counts"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "hour", "whole_status", "status", "substatus"],
                nulls_distinct=False,
                name="substatus_open_stay_counts_cell_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.status} {self.hour:%Y-%m-%d %H:00}: {self.entries}"


class SubstatusOpenStayDayCount(OpenStayCell):
    """SubstatusOpenStayCount summed per UTC day of entry, kept with it by `substatus_stays_refresh`.

    A long window reads a day's running stays as one cell when the whole day falls in one
    duration bucket (every day older than about three weeks: the buckets are wider than a day
    there), instead of its 24 hours: a year is about 365 cells per group instead of 8,760.
    """

    day = models.DateField()

    class Meta:
        db_table = "substatus_open_stay_day_counts"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "day", "whole_status", "status", "substatus"],
                nulls_distinct=False,
                name="substatus_open_stay_day_counts_cell_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.status} {self.day}: {self.entries}"


class SubstatusPurgedRecord(models.Model):
    """A contact or project deleted for good (kept by a trigger on `contacts` and `projects`):
    its stays still running count without a time, as those of a deleted record."""

    tenant = models.ForeignKey(
        "crm.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    entity = models.CharField(max_length=20, choices=Entity.choices)
    record_id = models.BigIntegerField()

    class Meta:
        db_table = "substatus_purged_records"
        indexes = [models.Index(fields=["tenant", "entity", "record_id"], name="substatus_purged_records_idx")]

    def __str__(self) -> str:
        return f"{self.entity} {self.record_id} (purged)"
