"""Staff pages: the substatus catalog, its history, and the substatus of contacts and projects.

Contacts and projects keep their one admin each (contacts/admin.py, crm/admin.py); this app
contributes its part of their pages through `crm.admin_base.admin_contribute`: the record's
substatus (choices of its current status), the reason for a change, how long it has been
there and its recent history.
"""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from contacts.models import Contact
from crm.actor import Actor
from crm.admin_base import (
    AdminContribution,
    TenantScopedAdmin,
    admin_actor,
    admin_contribute,
    admin_may,
    admin_offer,
)
from crm.errors import ApplicationError
from crm.models import Project, Role
from substatus.models import STATUS_FIELD, Entity, SubstatusConfig, SubstatusHistory
from substatus.selectors import substatus_history_for_record
from substatus.services import substatus_create, substatus_delete, substatus_update

HISTORY_SHOWN = 25


@admin.register(SubstatusConfig)
class SubstatusConfigAdmin(TenantScopedAdmin):
    """The catalog by kind of record and status, in order; admins and owners change it."""

    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = [
        "label",
        "key",
        "entity",
        "status",
        "position",
        "is_default",
        "is_terminal",
        "is_active",
        "automatic_transition",
    ]
    list_editable = ["position"]
    list_filter = ["entity", "status", "is_active", "is_default", "is_terminal"]
    list_select_related = ["auto_transition_to"]
    ordering = ["tenant", "entity", "status", "position", "id"]
    search_fields = ["label", "key"]
    actions = ["make_default"]
    fields = [
        "tenant",
        "entity",
        "status",
        "key",
        "label",
        "description",
        "color",
        "icon",
        "position",
        "is_default",
        "is_terminal",
        "is_active",
        "auto_transition_to",
        "auto_transition_delay_hours",
        "created_by",
        "created_at",
        "updated_at",
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The default moves with the "Make default" action: one switch for the whole status.
        fields = [*super().get_readonly_fields(request, obj), "is_default", "created_by", "created_at", "updated_at"]
        if obj is not None:
            fields += ["entity", "status"]  # a substatus stays under its status
        return fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        target = form.base_fields.get("auto_transition_to")
        if obj is not None and isinstance(target, forms.ModelChoiceField) and target.queryset is not None:
            siblings = target.queryset.filter(tenant_id=obj.tenant_id, entity=obj.entity, status=obj.status)
            admin_offer(target, siblings.exclude(pk=obj.pk))
        return form

    @admin.display(description="automatic transition")
    def automatic_transition(self, obj: SubstatusConfig) -> str:
        if obj.auto_transition_to is None:
            return "-"
        return f"to {obj.auto_transition_to.label} after {obj.auto_transition_delay_hours} h"

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> SubstatusConfig:
        return substatus_create(actor=actor, **fields)

    def service_update(self, obj: SubstatusConfig, actor: Actor, fields: dict[str, Any]) -> SubstatusConfig:
        return substatus_update(substatus=obj, actor=actor, **fields)

    def delete_model(self, request: HttpRequest, obj: SubstatusConfig) -> None:
        substatus_delete(substatus=obj, actor=admin_actor(request, obj.tenant))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset.select_related("tenant"):
            try:
                self.delete_model(request, obj)
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        """A substatus still in use is refused with the reason, not a server error."""
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:substatus_substatusconfig_change", args=[object_id]))

    @admin.action(description="Make the selected substatus its status's default", permissions=["change"])
    def make_default(self, request: HttpRequest, queryset: QuerySet) -> None:
        chosen = list(queryset.select_related("tenant"))
        groups = {(obj.tenant_id, obj.entity, obj.status) for obj in chosen}
        if len(groups) != len(chosen):
            self.message_user(request, "Choose one substatus per status.", messages.ERROR)
            return
        for obj in chosen:
            if not admin_may(request, obj.tenant_id, self.change_role):
                self.message_user(request, f"{obj}: needs the {self.change_role.value} role.", messages.ERROR)
                continue
            try:
                substatus_update(substatus=obj, actor=admin_actor(request, obj.tenant), is_default=True)
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{obj} is now the default.", messages.SUCCESS)


@admin.register(SubstatusHistory)
class SubstatusHistoryAdmin(TenantScopedAdmin):
    """Every status and substatus change of contacts and projects: read only, never changed."""

    list_display = [
        "changed_at",
        "entity",
        "record_id",
        "from_status",
        "to_status",
        "from_substatus",
        "to_substatus",
        "changed_by",
        "impersonated_by",
        "source",
        "reason",
    ]
    list_filter = ["entity", "source", "to_status"]
    list_select_related = ["from_substatus", "to_substatus", "changed_by", "impersonated_by"]
    search_fields = ["=record_id", "reason"]
    date_hierarchy = "changed_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _limit_choices(entity: str) -> Callable[[HttpRequest, Any, type[forms.BaseForm]], None]:
    """The form offers the substatuses of the record's current status, active (or its own); the
    database refuses any other with the message the API gives."""
    status_field = STATUS_FIELD[entity]

    def limit(request: HttpRequest, obj: Any, form: Any) -> None:
        field = form.base_fields.get("substatus")
        if not isinstance(field, forms.ModelChoiceField) or field.queryset is None:
            return
        offered = field.queryset.filter(entity=entity)
        if obj is not None:
            current = models.Q(pk=obj.substatus_id) if obj.substatus_id else models.Q(pk__in=[])
            offered = offered.filter(
                models.Q(tenant_id=obj.tenant_id, status=getattr(obj, status_field), is_active=True) | current
            )
            field.help_text = (
                f"A substatus of the current {status_field}; a new {status_field} without one gets its default."
            )
        else:
            offered = offered.filter(is_active=True)
            field.help_text = f"Empty: the {status_field}'s default."
        admin_offer(field, offered.order_by("status", "position"))

    return limit


def _history(entity: str) -> Callable[[Any], SafeString | str]:
    """The record page's table of its recent substatus changes, linking to all of them."""

    @admin.display(description="recent changes")
    def substatus_history(obj: Any) -> SafeString | str:
        rows = substatus_history_for_record(tenant_id=obj.tenant_id, entity=entity, record_id=obj.pk)
        changes = list(rows[:HISTORY_SHOWN])
        if not changes:
            return "-"
        url = reverse("admin:substatus_substatushistory_changelist")
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{} / {}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    change.changed_at,
                    change.from_status or "-",
                    change.from_substatus.label if change.from_substatus else "-",
                    change.to_status,
                    change.to_substatus.label if change.to_substatus else "-",
                    change.changed_by or "-",
                    change.get_source_display(),
                    change.reason,
                )
                for change in changes
            ),
        )
        return format_html(
            "<table><thead><tr><th>when</th><th>from</th><th>to</th><th>by</th><th>through</th><th>why</th></tr>"
            '</thead><tbody>{}</tbody></table><p><a href="{}?entity={}&amp;record_id={}">All changes</a></p>',
            body,
            url,
            entity,
            obj.pk,
        )

    return substatus_history


def record_contribution(entity: str) -> AdminContribution:
    """A contact's or project's substatus, the reason for a change, since when, and the history."""
    status_field = STATUS_FIELD[entity]
    history = _history(entity)
    return AdminContribution(
        fields_after={status_field: ["substatus", "reason", "substatus_since"]},
        change_fieldsets=[("Substatus history", {"fields": [history]})],
        readonly_fields=["substatus_since", history],
        form_fields={
            "reason": forms.CharField(
                required=False,
                widget=forms.TextInput(attrs={"size": 60}),
                help_text="Why the status or substatus changes; kept in the substatus history.",
            )
        },
        form_hook=_limit_choices(entity),
        list_display_after={status_field: ["substatus"]},
        list_select_related=["substatus"],
    )


admin_contribute(Contact, record_contribution(Entity.CONTACT))
admin_contribute(Project, record_contribution(Entity.PROJECT))
