"""The filter catalog, saved filters and their usage log (the old system's three tables)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.timezone import now

from crm.fields import choices_check


class EntityType(models.TextChoices):
    CONTACTS = "contacts", "Contacts"
    PROJECTS = "projects", "Projects"
    PIPELINE = "pipeline", "Pipeline (projects as a board)"
    ACTIVITIES = "activities", "Activities"


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    SELECT = "select", "Select"
    MULTI_SELECT = "multi_select", "Multi-select"
    DATE = "date", "Date"
    DATE_RANGE = "date_range", "Date range"
    NUMBER = "number", "Number"
    NUMBER_RANGE = "number_range", "Number range"
    BOOLEAN = "boolean", "Yes/no"
    USER_SELECT = "user_select", "Team member"
    TAG_SELECT = "tag_select", "Tags"


class FilterConfig(models.Model):
    """One filter a tenant's team sees for an entity: which field, how it is drawn, its default operator.

    `field_name` is one of the paths `filters.fields` declares for the entity; the services
    check it, its operator and its options (the database cannot know the whitelist).
    """

    EntityType = EntityType
    FieldType = FieldType

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=20, choices=EntityType.choices)
    field_name = models.CharField(max_length=100)
    field_label = models.CharField(max_length=100)
    field_type = models.CharField(max_length=20, choices=FieldType.choices)
    filter_operator = models.CharField(max_length=30, help_text="The operator the filter bar starts with.")
    filter_options = models.JSONField(
        default=list, db_default=[], blank=True, help_text="For select types: a list of {value, label, color}."
    )
    display_order = models.PositiveSmallIntegerField(default=0, db_default=0)
    is_quick_filter = models.BooleanField(default=False, db_default=False)
    is_advanced_filter = models.BooleanField(default=True, db_default=True)
    is_active = models.BooleanField(default=True, db_default=True)
    custom_field_id = models.CharField(  # noqa: DJ001 (NULL: the entry is not on a custom field)
        max_length=63, null=True, blank=True, help_text="The key inside custom_fields this entry filters on."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "filter_configs"
        ordering = ["entity_type", "display_order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity_type", "field_name"],
                name="filter_configs_unique_field",
                violation_error_message="This entity already has a filter on this field.",
            ),
            choices_check("entity_type", EntityType, name="filter_configs_entity_type_valid"),
            choices_check("field_type", FieldType, name="filter_configs_field_type_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.entity_type}: {self.field_label}"


class SavedFilter(models.Model):
    """A named filter tree: a member's own, shared with the team, or one of the system's."""

    EntityType = EntityType

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.CASCADE, related_name="+")
    entity_type = models.CharField(max_length=20, choices=EntityType.choices)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="", db_default="")
    filter_criteria = models.JSONField(help_text="The filter tree (normalised).")
    sort = models.CharField(max_length=200, blank=True, default="", db_default="", help_text="?ordering= value.")
    columns = models.JSONField(default=list, db_default=[], blank=True, help_text="Visible columns, in order.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    is_shared = models.BooleanField(default=False, db_default=False)
    is_default = models.BooleanField(default=False, db_default=False)
    is_system = models.BooleanField(default=False, db_default=False)
    is_active = models.BooleanField(default=True, db_default=True)
    is_stale = models.BooleanField(default=False, db_default=False)
    stale_reason = models.CharField(max_length=300, blank=True, default="", db_default="")
    usage_count = models.PositiveIntegerField(default=0, db_default=0)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "saved_filters"
        ordering = ["entity_type", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity_type", "name"],
                name="saved_filters_unique_name",
                violation_error_message="A saved filter with this name already exists for this entity.",
            ),
            models.UniqueConstraint(
                fields=["tenant", "created_by", "entity_type"],
                condition=Q(is_default=True),
                name="saved_filters_one_default",
                violation_error_message="You already have a default filter for this entity.",
            ),
            models.CheckConstraint(
                condition=Q(is_system=False) | Q(created_by__isnull=True, is_shared=True, is_default=False),
                name="saved_filters_system_shape",
                violation_error_message="A system filter belongs to no user, is shared and is nobody's default.",
            ),
            models.CheckConstraint(
                condition=Q(is_system=True) | Q(created_by__isnull=False),
                name="saved_filters_owner",
                violation_error_message="A saved filter needs its owner.",
            ),
            choices_check("entity_type", EntityType, name="saved_filters_entity_type_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class FilterUsageLog(models.Model):
    """One condition of one filtered list request (written in batches after the response)."""

    request_id = models.UUIDField(help_text="The list request the condition was part of.")
    tenant = models.ForeignKey("crm.Tenant", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    entity_type = models.CharField(max_length=20, choices=EntityType.choices)
    filter_field = models.CharField(max_length=100)
    operator = models.CharField(max_length=30)
    filter_value = models.JSONField(null=True)
    results_count = models.PositiveIntegerField()
    duration_ms = models.FloatField()
    used_at = models.DateTimeField(default=now, db_default=Now())
    filter_config = models.ForeignKey(FilterConfig, on_delete=models.SET_NULL, null=True, related_name="+")
    saved_filter = models.ForeignKey(SavedFilter, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        db_table = "filter_usage_logs"
        ordering = ["-used_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "used_at"], name="filter_usage_tenant_time"),
            models.Index(fields=["used_at"], name="filter_usage_time"),  # the retention prune
        ]

    def __str__(self) -> str:
        return f"{self.entity_type}.{self.filter_field} {self.operator}"
