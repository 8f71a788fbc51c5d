import re
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from contacts.models import Contact
from crm.actor import Actor
from crm.admin_base import (
    SoftDeleteAdmin,
    TenantScopedAdmin,
    admin_actor,
    admin_inline_row,
    admin_may,
    admin_request,
    admin_tenant_ids,
)
from crm.errors import ApplicationError
from crm.models import Activity, ActivityQuerySet, Membership, Project, ProjectContact, Role, Tenant, User
from crm.services import (
    TENANT_ADDRESS_FIELDS,
    TENANT_OPS_FIELDS,
    TENANT_PROFILE_FIELDS,
    TENANT_WRITABLE_FIELDS,
    activity_create,
    activity_delete,
    activity_update,
    membership_invitation_resend,
    membership_invite,
    membership_remove,
    membership_update,
    project_contact_add,
    project_contact_remove,
    project_contact_update,
    project_create,
    project_delete,
    project_purge,
    project_restore,
    project_update,
    tenant_create,
    tenant_editable_fields,
    tenant_update,
)

RECORD_FIELDS = ("created_by", "updated_by", "created_at", "updated_at")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Staff see the users of their tenants; only superusers create and change users."""

    list_display = ["username", "email", "first_name", "last_name", "is_staff", "is_active", "last_login"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        ids = admin_tenant_ids(request)
        if ids is None:
            return queryset
        return queryset.filter(pk__in=Membership.objects.active().filter(tenant_id__in=ids).values("user_id"))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and admin_may(request, None, Role.VIEWER)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


class MembershipInline(admin.TabularInline):
    """Members at a glance; changes go through the Membership pages (and their rules)."""

    model = Membership
    fields = readonly_fields = ("user", "role", "status", "joined_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("user")


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    list_display = ["name", "subdomain", "subscription_status", "is_active", "timezone", "created_at"]
    list_filter = ["subscription_status", "is_active"]
    search_fields = ["name", "subdomain", "custom_domain"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]
    change_role = Role.ADMIN
    fieldsets = [
        ("Profile (admins and owners)", {"fields": [*sorted(TENANT_PROFILE_FIELDS)]}),
        ("Addresses (owners)", {"fields": [*sorted(TENANT_ADDRESS_FIELDS)]}),
        ("Subscription and limits (Ridgeline's operators)", {"fields": [*sorted(TENANT_OPS_FIELDS)]}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        """What the user's role may not change is shown, not offered (the service's rule)."""
        fields = super().get_readonly_fields(request, obj)
        if obj is None:
            return fields
        editable = tenant_editable_fields(actor=admin_actor(request, obj), tenant=obj)
        return [*fields, *(name for name in sorted(TENANT_WRITABLE_FIELDS - editable) if name not in fields)]

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Tenant:
        return tenant_create(actor=actor, **fields)

    def service_update(self, obj: Tenant, actor: Actor, fields: dict[str, Any]) -> Tenant:
        return tenant_update(tenant=obj, actor=actor, **fields)


class MembershipAddForm(forms.ModelForm):
    """Staff invite someone by email; nothing says whether the email has an account."""

    email = forms.EmailField(
        help_text="Whom to invite: they get an email with a link to accept (with their account, or a new one)."
    )

    class Meta:
        model = Membership
        fields = ["tenant", "role"]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["__str__", "tenant", "role", "status", "joined_at", "invited_at"]
    list_filter = ["role", "status"]
    list_select_related = ["user", "tenant"]
    search_fields = [
        "user__username",
        "user__email",
        "user__first_name",
        "user__last_name",
        "invited_email",
        "tenant__name",
    ]
    autocomplete_fields = ["user"]
    actions = ["resend_invitations"]
    change_role = Role.ADMIN
    delete_role = Role.ADMIN

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is None:
            return ("tenant", "email", "role")
        record = ("joined_at", "deactivated_at", "deactivated_by", "deactivated_reason")
        if obj.status == Membership.Status.PENDING:  # the invitation's email; no account's fields
            return ("tenant", "invited_email", "role", "status", "invited_by", "invited_at")
        return ("tenant", "user", "role", "status", *record, "invited_by", "invited_at")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = MembershipAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return [
            "tenant",
            "user",
            "invited_email",
            "joined_at",
            "invited_by",
            "invited_at",
            "deactivated_at",
            "deactivated_by",
        ]

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Membership:
        return membership_invite(actor=actor, email=fields["email"], role=fields["role"])

    def service_update(self, obj: Membership, actor: Actor, fields: dict[str, Any]) -> Membership:
        return membership_update(actor=actor, membership=obj, **fields)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(actor=admin_actor(request, obj.tenant), membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for membership in queryset.select_related("tenant"):
            self.delete_model(request, membership)

    @admin.action(description="Send the selected invitations again")
    def resend_invitations(self, request: HttpRequest, queryset: QuerySet) -> None:
        sent = 0
        for membership in queryset.select_related("tenant"):
            try:
                membership_invitation_resend(actor=admin_actor(request, membership.tenant), membership=membership)
            except ApplicationError as exc:
                self.message_user(request, f"{membership}: {exc.message}", messages.ERROR)
            else:
                sent += 1
        if sent:
            self.message_user(request, f"{sent} invitation(s) sent again.", messages.SUCCESS)


class ContactOrPartyListFilter(admin.SimpleListFilter):
    """Projects a contact is on, as their contact or a party (linked from a company's page).

    Listed in the sidebar only while it is in use, with the contact's name: a filter with no
    choices at all would be dropped by Django, ignoring the parameter.
    """

    title = "contact or party"
    parameter_name = "contact_or_party"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if value is None:
            return []
        contacts = Contact.objects.filter(pk=value) if re.fullmatch(r"[0-9]{1,18}", value) else Contact.objects.none()
        ids = admin_tenant_ids(request)
        if ids is not None:
            contacts = contacts.filter(tenant_id__in=ids)
        contact = contacts.first()
        return [(value, str(contact) if contact is not None else f"#{value}")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if not re.fullmatch(r"[0-9]{1,18}", value):
            return queryset.none()
        parties = ProjectContact.objects.filter(contact_id=value).values("project_id")
        return queryset.filter(Q(contact_id=value) | Q(pk__in=parties))


class ProjectContactInline(admin.TabularInline):
    """The job's other parties, edited through the project contact services (see ProjectAdmin.save_formset)."""

    model = ProjectContact
    fields = ["contact", "role", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    autocomplete_fields = ["contact"]
    extra = 0
    verbose_name = "party"
    verbose_name_plural = "other parties (adjuster, sub-contractors, the organization, ...)"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("contact", "created_by")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        ids = admin_tenant_ids(request, at_least=Role.MEMBER)
        if db_field.name == "contact" and ids is not None:
            kwargs["queryset"] = Contact.objects.filter(tenant_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin_may(request, None if obj is None else obj.tenant_id, Role.VIEWER)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin_may(request, None if obj is None else obj.tenant_id, Role.MEMBER)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin_may(request, None if obj is None else obj.tenant_id, Role.MEMBER)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return admin_may(request, None if obj is None else obj.tenant_id, Role.MEMBER)


@admin.register(Project)
class ProjectAdmin(SoftDeleteAdmin):
    list_display = ["name", "project_number", "status", "type", "contact", "estimated_value", "scheduled_start"]
    list_filter = ["status", "type", "insurance_approved", "quickbooks_sync_status", ContactOrPartyListFilter]
    list_select_related = ["contact"]
    search_fields = ["name", "project_number"]
    autocomplete_fields = ["contact", "parent_project"]
    inlines = [ProjectContactInline]
    readonly_fields = [*RECORD_FIELDS, "is_deleted"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["tenant", "name", "project_number", "status", "type", "contact", "parent_project"]}),
        (
            "Money",
            {
                "fields": [
                    "estimated_value",
                    "approved_value",
                    "final_value",
                    "materials_cost",
                    "labor_cost",
                    "overhead_cost",
                    "profit_margin",
                ]
            },
        ),
        (
            "Schedule",
            {
                "fields": [
                    "estimated_start",
                    "scheduled_start",
                    "actual_start",
                    "estimated_completion",
                    "actual_completion",
                    "weather_delays",
                ]
            },
        ),
        ("Scope", {"fields": ["description", "scope_of_work", "materials_list", "crew_assigned", "quality_score"]}),
        (
            "Insurance",
            {"fields": ["insurance_approved", "insurance_approval_amount", "deductible_collected", "supplements"]},
        ),
        ("QuickBooks", {"fields": ["quickbooks_id", "quickbooks_sync_status"]}),
        ("Other", {"fields": ["custom_fields"]}),
        ("Record", {"fields": [*RECORD_FIELDS, "is_deleted"]}),
    ]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Parties are added, changed and removed through the services, with the admin's actor."""
        if formset.model is not ProjectContact:
            super().save_formset(request, form, formset, change)
            return
        project = form.instance
        actor = admin_actor(request, project.tenant)
        formset.save(commit=False)
        for party in formset.deleted_objects:
            with admin_inline_row(formset, party):
                project_contact_remove(actor=actor, project_contact=party)
        for party, changed in formset.changed_objects:
            with admin_inline_row(formset, party):
                project_contact_update(
                    actor=actor, project_contact=party, **{name: getattr(party, name) for name in changed}
                )
        added = []
        for party in formset.new_objects:
            with admin_inline_row(formset, party):
                added.append(project_contact_add(actor=actor, project=project, contact=party.contact, role=party.role))
        formset.new_objects = added

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Project:
        return project_create(actor=actor, **fields)

    def service_update(self, obj: Project, actor: Actor, fields: dict[str, Any]) -> Project:
        return project_update(project=obj, actor=actor, **fields)

    def soft_delete(self, obj: Project, actor: Actor) -> None:
        project_delete(project=obj, actor=actor)

    def restore_row(self, obj: Project, actor: Actor) -> None:
        project_restore(project=obj, actor=actor)

    def purge(self, obj: Project, actor: Actor) -> None:
        project_purge(project=obj, actor=actor)


@admin.register(Activity)
class ActivityAdmin(TenantScopedAdmin):
    list_display = ["__str__", "type", "direction", "contact", "project", "performed_by", "on_behalf_of", "created_at"]
    list_filter = ["type", "direction", "is_impersonated_action"]
    list_select_related = ["contact", "project", "performed_by", "on_behalf_of"]
    search_fields = ["subject", "content"]
    autocomplete_fields = ["contact", "project"]
    readonly_fields = [
        "recipient",
        "created_by",
        "performed_by",
        "on_behalf_of",
        "is_impersonated_action",
        "created_at",
    ]
    date_hierarchy = "created_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """A notice is its recipient's only; Ridgeline's operators (superusers) see every one."""
        queryset = cast(ActivityQuerySet, super().get_queryset(request))
        if request.user.is_superuser:
            return queryset
        return queryset.visible_to(admin_request(request).user)

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Activity:
        return activity_create(actor=actor, **fields)

    def service_update(self, obj: Activity, actor: Actor, fields: dict[str, Any]) -> Activity:
        return activity_update(activity=obj, actor=actor, **fields)

    def delete_model(self, request: HttpRequest, obj: Activity) -> None:
        activity_delete(activity=obj, actor=admin_actor(request, obj.tenant))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for activity in queryset.select_related("tenant"):
            if admin_may(request, activity.tenant_id, self.delete_role):
                self.delete_model(request, activity)
