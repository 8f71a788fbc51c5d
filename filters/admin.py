"""Staff pages: the filter catalog (admins and owners), saved filters (the API's rules) and usage logs."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from crm.actor import Actor
from crm.admin_base import TenantScopedAdmin, admin_actor, admin_roles
from crm.errors import ApplicationError
from crm.models import Role
from filters.language import FilterError
from filters.models import FilterConfig, FilterUsageLog, SavedFilter
from filters.services import (
    filter_config_create,
    filter_config_delete,
    filter_config_update,
    saved_filter_create,
    saved_filter_delete,
    saved_filter_update,
)


class RefusedDeleteMixin:
    """A delete the service refuses is shown as a message, not a server error."""

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset.select_related("tenant"):
            try:
                self.delete_model(request, obj)  # type: ignore[attr-defined]
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)  # type: ignore[attr-defined]

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)  # type: ignore[misc]
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)  # type: ignore[attr-defined]
            opts = self.model._meta  # type: ignore[attr-defined]
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))


@admin.register(FilterConfig)
class FilterConfigAdmin(RefusedDeleteMixin, TenantScopedAdmin):
    """The filter bar's catalog; admins and owners change it."""

    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = [
        "field_label",
        "field_name",
        "entity_type",
        "field_type",
        "filter_operator",
        "display_order",
        "is_quick_filter",
        "is_active",
    ]
    list_filter = ["entity_type", "field_type", "is_active", "is_quick_filter"]
    list_editable = ["display_order"]
    ordering = ["tenant", "entity_type", "display_order", "id"]
    search_fields = ["field_label", "field_name"]
    fields = [
        "tenant",
        "entity_type",
        "field_name",
        "field_label",
        "field_type",
        "filter_operator",
        "filter_options",
        "display_order",
        "is_quick_filter",
        "is_advanced_filter",
        "is_active",
        "custom_field_id",
        "created_by",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = [
            *super().get_readonly_fields(request, obj),
            "custom_field_id",
            "created_by",
            "created_at",
            "updated_at",
        ]
        if obj is not None:
            fields += ["entity_type", "field_name"]
        return fields

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> FilterConfig:
        return filter_config_create(actor=actor, **fields)

    def service_update(self, obj: FilterConfig, actor: Actor, fields: dict[str, Any]) -> FilterConfig:
        return filter_config_update(config=obj, actor=actor, **fields)

    def delete_model(self, request: HttpRequest, obj: FilterConfig) -> None:
        filter_config_delete(config=obj, actor=admin_actor(request, obj.tenant))


@contextmanager
def _tree_errors_on_criteria() -> Iterator[None]:
    """The filter language names the tree `filter` (the API's attr); on this page it is the
    `filter_criteria` field, where the problems are shown (all of them, not only the first)."""
    try:
        yield
    except FilterError as exc:
        raise FilterError("; ".join(exc.messages), code=exc.code, attr="filter_criteria") from exc


@admin.register(SavedFilter)
class SavedFilterAdmin(RefusedDeleteMixin, TenantScopedAdmin):
    """Saved filters under the API's rules: members see their own and shared ones and change their
    own; admins and owners all of the tenant's. System filters are deactivated, never deleted."""

    delete_role = Role.MEMBER  # the service decides whose (own, or any for admins; never a system one)
    list_display = [
        "name",
        "entity_type",
        "created_by",
        "is_shared",
        "is_default",
        "is_system",
        "is_active",
        "is_stale",
        "usage_count",
        "last_used_at",
    ]
    list_filter = ["entity_type", "is_system", "is_shared", "is_active", "is_stale"]
    list_select_related = ["created_by"]
    ordering = ["tenant", "entity_type", "name"]
    search_fields = ["name", "description"]
    fields = [
        "tenant",
        "entity_type",
        "name",
        "description",
        "filter_criteria",
        "sort",
        "columns",
        "is_shared",
        "is_default",
        "is_active",
        "created_by",
        "is_system",
        "is_stale",
        "stale_reason",
        "usage_count",
        "last_used_at",
        "created_at",
        "updated_at",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        roles = admin_roles(request)
        if roles is None:
            return queryset
        managed = [tenant_id for tenant_id, role in roles.items() if role.at_least(Role.ADMIN)]
        return queryset.filter(Q(tenant_id__in=managed) | Q(is_shared=True) | Q(created_by=request.user))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = [
            *super().get_readonly_fields(request, obj),
            "created_by",
            "is_system",
            "is_stale",
            "stale_reason",
            "usage_count",
            "last_used_at",
            "created_at",
            "updated_at",
        ]
        if obj is not None:
            fields.append("entity_type")
        return fields

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> SavedFilter:
        with _tree_errors_on_criteria():
            return saved_filter_create(actor=actor, **fields)

    def service_update(self, obj: SavedFilter, actor: Actor, fields: dict[str, Any]) -> SavedFilter:
        with _tree_errors_on_criteria():
            return saved_filter_update(saved_filter=obj, actor=actor, **fields)

    def delete_model(self, request: HttpRequest, obj: SavedFilter) -> None:
        saved_filter_delete(saved_filter=obj, actor=admin_actor(request, obj.tenant))


@admin.register(FilterUsageLog)
class FilterUsageLogAdmin(TenantScopedAdmin):
    """What was filtered on, by whom, how fast (read-only; managers and above)."""

    view_role = Role.MANAGER
    list_display = [
        "used_at",
        "entity_type",
        "filter_field",
        "operator",
        "user",
        "results_count",
        "duration_ms",
        "saved_filter",
    ]
    list_filter = ["entity_type", "filter_field", "operator"]
    list_select_related = ["user", "saved_filter"]
    date_hierarchy = "used_at"
    ordering = ["-used_at", "-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
