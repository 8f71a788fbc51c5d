"""Staff pages: campaigns, their versions (steps and triggers inline on the draft; published
ones read-only), enrollments, and the templates with "create a campaign from it"."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import Case, QuerySet, When
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.engine import Resolution, execution_resolve
from campaigns.models import (
    Campaign,
    CampaignAbDecision,
    CampaignAnalytics,
    CampaignEnrollment,
    CampaignStep,
    CampaignStepExecution,
    CampaignTemplate,
    CampaignTrigger,
    CampaignVersion,
    ExecutionStatus,
    VersionStatus,
)
from campaigns.services import (
    campaign_archive,
    campaign_create,
    campaign_delete,
    campaign_from_template,
    campaign_pause,
    campaign_publish,
    campaign_purge,
    campaign_restore,
    campaign_resume,
    campaign_update,
    enrollment_delete,
    enrollment_exit,
    step_create,
    step_delete,
    step_update,
    template_create,
    template_update,
    trigger_create,
    trigger_delete,
    trigger_update,
)
from crm.actor import Actor
from crm.admin_base import (
    SoftDeleteAdmin,
    TenantScopedAdmin,
    admin_actor,
    admin_inline_row,
    admin_may,
    admin_tenant_ids,
)
from crm.errors import ApplicationError
from crm.models import Role, Tenant

COUNTERS = ["total_enrolled", "total_completed", "total_revenue"]


@admin.register(Campaign)
class CampaignAdmin(SoftDeleteAdmin):
    change_role = Role.MANAGER
    delete_role = Role.ADMIN
    list_display = ["name", "campaign_type", "status", "goal_type", "total_enrolled", "total_completed", "updated_at"]
    list_filter = ["status", "campaign_type", "goal_type"]
    search_fields = ["name"]
    readonly_fields = ["status", "active_version", "versions_list", *COUNTERS, "created_by", "created_at", "updated_at"]
    actions = [
        "mark_deleted",
        "restore_selected",
        "publish_selected",
        "pause_selected",
        "resume_selected",
        "archive_selected",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["tenant", "name", "description", "campaign_type", "status", "active_version", "versions_list"]},
        ),
        ("Goal", {"fields": ["goal_type", "goal_target"]}),
        (
            "Enrollment",
            {"fields": ["enrollment_type", "max_enrollments", "allow_re_enrollment", "re_enrollment_delay_days"]},
        ),
        (
            "Sending",
            {
                "fields": [
                    "respect_business_hours",
                    "business_hours",
                    "max_messages_per_day",
                    "max_messages_per_week",
                    "catch_up_policy",
                    "catch_up_hours",
                ]
            },
        ),
        ("Counters", {"fields": [*COUNTERS, "created_by", "created_at", "updated_at"]}),
    ]

    @admin.display(description="versions")
    def versions_list(self, obj: Campaign) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "Version 1 (draft) is created with the campaign.")
        return format_html_join(
            ", ",
            '<a href="{}">v{} ({})</a>',
            (
                (reverse("admin:campaigns_campaignversion_change", args=[version.pk]), version.number, version.status)
                for version in obj.versions.order_by("-number")
            ),
        )

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Campaign:
        return campaign_create(actor=actor, **fields)

    def service_update(self, obj: Campaign, actor: Actor, fields: dict[str, Any]) -> Campaign:
        return campaign_update(campaign=obj, actor=actor, **fields)

    def soft_delete(self, obj: Campaign, actor: Actor) -> None:
        campaign_delete(campaign=obj, actor=actor)

    def restore_row(self, obj: Campaign, actor: Actor) -> None:
        campaign_restore(campaign=obj, actor=actor)

    def purge(self, obj: Campaign, actor: Actor) -> None:
        campaign_purge(campaign=obj, actor=actor)

    @admin.action(description="Publish the draft version of selected campaigns")
    def publish_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request, queryset, lambda obj, actor: campaign_publish(campaign=obj, actor=actor), Role.MANAGER, "published"
        )

    @admin.action(description="Pause selected campaigns")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request, queryset, lambda obj, actor: campaign_pause(campaign=obj, actor=actor), Role.MANAGER, "paused"
        )

    @admin.action(description="Resume selected campaigns")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request, queryset, lambda obj, actor: campaign_resume(campaign=obj, actor=actor), Role.MANAGER, "resumed"
        )

    @admin.action(description="Archive selected campaigns (everyone in flight exits)")
    def archive_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request, queryset, lambda obj, actor: campaign_archive(campaign=obj, actor=actor), Role.MANAGER, "archived"
        )


class _VersionChildInline(admin.StackedInline):
    """Rows of a version: managers of its tenant edit them while the version is a draft."""

    extra = 0

    def _editable(self, request: HttpRequest, obj: CampaignVersion | None) -> bool:
        return obj is not None and obj.status == VersionStatus.DRAFT and admin_may(request, obj.tenant_id, Role.MANAGER)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # the version's page decided who sees it


STEP_FIELDS = [
    "step_order",
    "name",
    "step_type",
    "delay_value",
    "delay_unit",
    "step_config",
    "conditions",
    "true_path_step",
    "false_path_step",
    "variants",
    "ab_metric",
    "ab_test_size",
    "ab_window_hours",
    "ab_fallback_variant",
]
STEP_COUNTERS = ["total_executed", "total_succeeded", "total_failed"]
TRIGGER_FIELDS = [
    "trigger_type",
    "trigger_config",
    "enrollment_conditions",
    "exclusion_conditions",
    "priority",
    "is_active",
]


class StepInline(_VersionChildInline):
    model = CampaignStep
    fk_name = "version"
    fields = (*STEP_FIELDS, *STEP_COUNTERS)
    readonly_fields = tuple(STEP_COUNTERS)
    ordering = ["step_order"]


class TriggerInline(_VersionChildInline):
    model = CampaignTrigger
    fields = tuple(TRIGGER_FIELDS)


@admin.register(CampaignVersion)
class CampaignVersionAdmin(TenantScopedAdmin):
    """A version's steps and triggers: edited on the draft, read-only once published."""

    change_role = Role.MANAGER
    list_display = ["campaign", "number", "status", "published_at"]
    list_filter = ["status"]
    list_select_related = ["campaign"]
    fields = readonly_fields = (
        "tenant",
        "campaign",
        "number",
        "status",
        "published_at",
        "published_by",
        "step_mapping",
    )
    inlines = [StepInline, TriggerInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a draft comes with the campaign, or from editing a published one

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Nothing on the version itself changes here; its steps and triggers do (save_formset)."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        version: CampaignVersion = form.instance
        actor = admin_actor(request, version.tenant)
        campaign = version.campaign
        formset.save(commit=False)
        delete, update, create = (
            (step_delete, step_update, step_create)
            if formset.model is CampaignStep
            else (trigger_delete, trigger_update, trigger_create)
        )
        key = "step" if formset.model is CampaignStep else "trigger"
        for row in formset.deleted_objects:
            with admin_inline_row(formset, row):
                delete(actor=actor, **{key: row})
        for row, changed in formset.changed_objects:
            with admin_inline_row(formset, row):
                update(actor=actor, **{key: row}, **{name: getattr(row, name) for name in changed})
        added = []
        for row in formset.new_objects:
            fields = {name: getattr(row, name) for name in formset.form.base_fields if name in _writable(formset.model)}
            with admin_inline_row(formset, row):
                added.append(create(actor=actor, campaign=campaign, **fields))
        formset.new_objects = added


def _writable(model: type) -> list[str]:
    return STEP_FIELDS if model is CampaignStep else TRIGGER_FIELDS


@admin.register(CampaignEnrollment)
class CampaignEnrollmentAdmin(TenantScopedAdmin):
    view_role = Role.MEMBER
    change_role = Role.MANAGER
    delete_role = Role.ADMIN
    list_display = [
        "contact",
        "campaign",
        "status",
        "exit_reason",
        "rotation",
        "enrollment_source",
        "enrolled_at",
        "current_step_order",
    ]
    list_filter = ["status", "exit_reason", "enrollment_source", "campaign"]
    list_select_related = ["contact", "campaign"]
    search_fields = ["contact__first_name", "contact__last_name", "contact__email", "campaign__name"]
    actions = ["unenroll_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [field.name for field in CampaignEnrollment._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # enrollment goes through the campaign's rules: the API's enroll/ or the scan

    def delete_model(self, request: HttpRequest, obj: CampaignEnrollment) -> None:
        enrollment_delete(enrollment=obj, actor=admin_actor(request, obj.tenant))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for enrollment in queryset.select_related("tenant"):
            enrollment_delete(enrollment=enrollment, actor=admin_actor(request, enrollment.tenant))

    @admin.action(description="Take selected contacts out of their campaign")
    def unenroll_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = 0
        for enrollment in queryset.select_related("tenant"):
            if not admin_may(request, enrollment.tenant_id, Role.MANAGER):
                self.message_user(request, f"{enrollment}: needs the manager role.", messages.ERROR)
                continue
            try:
                enrollment_exit(enrollment=enrollment, actor=admin_actor(request, enrollment.tenant))
            except ApplicationError as exc:
                self.message_user(request, f"{enrollment}: {exc.message}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, f"{count} taken out.", messages.SUCCESS)


@admin.register(CampaignTemplate)
class CampaignTemplateAdmin(TenantScopedAdmin):
    """The defaults (every tenant's, read-only) and each tenant's own templates."""

    change_role = Role.MANAGER
    list_display = ["name", "campaign_type", "goal_type", "tenant"]
    search_fields = ["name"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    actions = ["create_campaign"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        ids = admin_tenant_ids(request)
        queryset = CampaignTemplate.objects.all()
        if ids is None:
            return queryset
        return queryset.filter(tenant__isnull=True) | queryset.filter(tenant_id__in=ids)

    def row_tenant_id(self, obj: Any) -> int:
        return obj.tenant_id

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.tenant_id is None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.tenant_id is None:
            return False
        return super().has_delete_permission(request, obj)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.tenant_id is None:
            return self.has_module_permission(request)
        return super().has_view_permission(request, obj)

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> CampaignTemplate:
        return template_create(actor=actor, **fields)

    def service_update(self, obj: CampaignTemplate, actor: Actor, fields: dict[str, Any]) -> CampaignTemplate:
        return template_update(template=obj, actor=actor, **fields)

    @admin.action(description="Create a draft campaign from each selected template")
    def create_campaign(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = admin_tenant_ids(request, at_least=Role.MANAGER)
        tenants = list(Tenant.objects.filter(pk__in=ids)) if ids is not None else []
        if len(tenants) != 1:
            self.message_user(
                request, "Create from a template needs the manager role in exactly one tenant.", messages.ERROR
            )
            return
        actor = admin_actor(request, tenants[0])
        for template in queryset:
            try:
                campaign = campaign_from_template(actor=actor, template=template)
            except ApplicationError as exc:
                self.message_user(request, f"{template}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Draft campaign “{campaign}” created from “{template}”.", messages.SUCCESS)


@admin.register(CampaignStepExecution)
class CampaignStepExecutionAdmin(TenantScopedAdmin):
    """The send ledger, read-only; `unknown` sends first, for a person to resolve (mark sent / send again)."""

    view_role = Role.MEMBER
    change_role = Role.MANAGER
    list_display = ["enrollment", "step", "status", "skip_reason", "scheduled_at", "completed_at", "attempts"]
    list_filter = ["status", "skip_reason", "enrollment__campaign"]
    list_select_related = ["enrollment__contact", "enrollment__campaign", "step"]
    search_fields = ["enrollment__contact__email", "enrollment__campaign__name", "provider_message_id"]
    actions = ["mark_sent", "send_again"]

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        return [Case(When(status=ExecutionStatus.UNKNOWN, then=0), default=1).asc(), "-scheduled_at", "-id"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [field.name for field in CampaignStepExecution._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the engine writes the ledger

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _resolve(self, request: HttpRequest, queryset: QuerySet, resolution: str) -> None:
        count = 0
        for execution in queryset.select_related("tenant"):
            if not admin_may(request, execution.tenant_id, Role.MANAGER):
                self.message_user(request, f"{execution}: needs the manager role.", messages.ERROR)
                continue
            try:
                execution_resolve(
                    execution=execution, actor=admin_actor(request, execution.tenant), resolution=resolution
                )
            except ApplicationError as exc:
                self.message_user(request, f"{execution}: {exc.message}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, f"{count} resolved.", messages.SUCCESS)

    @admin.action(description="Resolve unknown sends: it went out (mark sent)")
    def mark_sent(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, Resolution.MARK_SENT)

    @admin.action(description="Resolve unknown sends: send again")
    def send_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._resolve(request, queryset, Resolution.SEND_AGAIN)


class _ReadOnlyAdmin(TenantScopedAdmin):
    """Rows a task writes: staff read them, nobody edits them here."""

    view_role = Role.MEMBER

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CampaignAbDecision)
class CampaignAbDecisionAdmin(_ReadOnlyAdmin):
    """How each A/B test ended: the winner, why, and the figures (read-only)."""

    list_display = ["campaign", "step", "metric", "winner", "reason", "z_score", "p_value", "decided_at"]
    list_filter = ["reason", "metric"]
    list_select_related = ["campaign", "step"]


@admin.register(CampaignAnalytics)
class CampaignAnalyticsAdmin(_ReadOnlyAdmin):
    """The analytics rows as the refresh keeps them (read-only)."""

    list_display = [
        "campaign",
        "period_type",
        "snapshot_date",
        "step",
        "variant",
        "new_enrollments",
        "emails_sent",
        "emails_opened",
        "sms_sent",
        "goals_achieved",
        "revenue_attributed",
    ]
    list_filter = ["period_type", "campaign"]
    list_select_related = ["campaign", "step"]
