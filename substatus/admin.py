"""Staff pages: the substatus catalog, its history, and the substatus of contacts and projects.

Contacts and projects keep their own admin pages (contacts/admin.py, crm/admin.py); this app
registers them again with its fields added, since `contacts` and the core know nothing of
substatuses.
"""

import copy
from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from contacts.admin import ContactAdmin
from contacts.models import Contact
from crm.actor import Actor
from crm.admin import ProjectAdmin
from crm.admin_base import TenantScopedAdmin, admin_actor, admin_may
from crm.errors import ApplicationError
from crm.models import Project, Role, Tenant
from substatus.models import STATUS_FIELD, Entity, SubstatusConfig, SubstatusHistory
from substatus.selectors import substatus_history_for_record
from substatus.services import (
    SubstatusFields,
    substatus_check,
    substatus_create,
    substatus_delete,
    substatus_update,
)

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
        if obj is not None and target is not None:
            target.queryset = target.queryset.filter(
                tenant_id=obj.tenant_id, entity=obj.entity, status=obj.status
            ).exclude(pk=obj.pk)
        return form

    @admin.display(description="automatic transition")
    def automatic_transition(self, obj: SubstatusConfig) -> str:
        if obj.auto_transition_to is None:
            return "-"
        return f"to {obj.auto_transition_to.label} after {obj.auto_transition_delay_hours} h"

    def validate_with_services(self, request: HttpRequest, obj: Any, cleaned: dict[str, Any]) -> None:
        candidate = obj if obj.pk is not None else SubstatusConfig(tenant=cleaned["tenant"])
        # The form's editable fields are `tenant` and substatus fields (see `fields` above).
        fields = cast(SubstatusFields, {k: v for k, v in cleaned.items() if k != "tenant"})
        substatus_check(substatus=candidate, fields=fields)

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


class SubstatusRecordForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Why the status or substatus changes; kept in the substatus history.",
    )


class SubstatusRecordAdmin(TenantScopedAdmin):
    """Adds a record's substatus (choices of its current status), the reason for a change, how
    long it has been there and its recent history, to a contact or project admin.

    The change is tried first and rolled back while the form validates, so what the database
    refuses (the substatus triggers, every constraint) shows on the form, not as a page error.
    """

    entity: str
    form = SubstatusRecordForm

    @property
    def status_field(self) -> str:
        return STATUS_FIELD[self.entity]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets = list(copy.deepcopy(super().get_fieldsets(request, obj)))
        for _, options in fieldsets:
            names = list(options["fields"])
            if self.status_field in names:
                at = names.index(self.status_field) + 1
                options["fields"] = [*names[:at], "substatus", "reason", "substatus_since", *names[at:]]
        if obj is not None:
            fieldsets.append(("Substatus history", {"fields": ["substatus_history"]}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "substatus_since", "substatus_history"]

    def get_list_display(self, request: HttpRequest) -> list[str | Callable[[Any], str | bool]]:
        names = list(super().get_list_display(request))
        names.insert(names.index(self.status_field) + 1 if self.status_field in names else len(names), "substatus")
        return names

    def get_list_select_related(self, request: HttpRequest) -> bool | list[str]:
        related = super().get_list_select_related(request)
        if isinstance(related, bool):  # True: every relation already; False: none asked for until now
            return related or ["substatus"]
        return [*related, "substatus"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        field = form.base_fields.get("substatus")
        if field is not None:
            choices = field.queryset.filter(entity=self.entity)
            if obj is not None:
                current = models.Q(pk=obj.substatus_id) if obj.substatus_id else models.Q(pk__in=[])
                choices = choices.filter(
                    models.Q(tenant_id=obj.tenant_id, status=getattr(obj, self.status_field), is_active=True) | current
                )
                field.help_text = (
                    f"A substatus of the current {self.status_field}; "
                    f"a new {self.status_field} without one gets its default."
                )
            else:
                choices = choices.filter(is_active=True)
                field.help_text = f"Empty: the {self.status_field}'s default."
            field.queryset = choices.order_by("status", "position")
        return form

    @admin.display(description="recent changes")
    def substatus_history(self, obj: Any) -> str:
        rows = substatus_history_for_record(tenant_id=obj.tenant_id, entity=self.entity, record_id=obj.pk)
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
            self.entity,
            obj.pk,
        )

    def validate_with_services(self, request: HttpRequest, obj: Any, cleaned: dict[str, Any]) -> None:
        super().validate_with_services(request, obj, cleaned)
        tenant: Tenant = cleaned.get("tenant") or obj.tenant
        fields = {name: value for name, value in cleaned.items() if name != "tenant"}
        if obj.pk is not None:  # what the save will send: the changes (and `reason`)
            columns = {field.name for field in obj._meta.fields}
            fields = {
                name: value for name, value in fields.items() if name not in columns or getattr(obj, name) != value
            }
        with transaction.atomic():
            if obj.pk is None:
                self.service_create(admin_actor(request, tenant), fields)
            else:
                self.service_update(copy.copy(obj), admin_actor(request, tenant), fields)
            transaction.set_rollback(True)


admin.site.unregister(Contact)
admin.site.unregister(Project)


@admin.register(Contact)
class ContactWithSubstatusAdmin(SubstatusRecordAdmin, ContactAdmin):
    entity = Entity.CONTACT


@admin.register(Project)
class ProjectWithSubstatusAdmin(SubstatusRecordAdmin, ProjectAdmin):
    entity = Entity.PROJECT
