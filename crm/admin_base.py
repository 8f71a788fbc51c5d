"""The tenant-scoped admin: staff see and change only the tenants they are members of.

What a staff user may do is decided by their role in the row's tenant (the same roles as
the API): viewers read, members add and change, managers mark rows deleted and restore
them, admins and owners purge deleted rows and manage the tenant. Superusers see every
tenant. Every write goes through the app's services with the actor (source `admin`).
"""

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect

from crm.actor import Actor, Source
from crm.errors import ApplicationError
from crm.models import Membership, Role, Tenant
from crm.request import AdminHttpRequest
from crm.tenancy import tenant_ensure_members, tenant_ensure_owns

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices


def admin_request(request: HttpRequest) -> AdminHttpRequest:
    """The request of an admin page, typed as what it is there (ModelAdmin's hooks say HttpRequest).

    AdminSite lets only a signed-in, active staff user reach a ModelAdmin, and ActorMiddleware
    has set the actor.
    """
    return cast(AdminHttpRequest, request)


def admin_roles(request: HttpRequest) -> dict[int, Role] | None:
    """Tenant id -> the user's active role there; None for a superuser (every tenant, any role)."""
    staff = admin_request(request)
    if staff.user.is_superuser:
        return None
    cached = getattr(staff, "_admin_roles", None)
    if cached is None:
        cached = {
            tenant_id: Role(role)
            for tenant_id, role in Membership.objects.active()
            .filter(user_id=staff.user.pk)
            .values_list("tenant_id", "role")
        }
        staff._admin_roles = cached
    return cached


def admin_tenant_ids(request: HttpRequest, *, at_least: Role = Role.VIEWER) -> list[int] | None:
    """The tenants where the user's role reaches `at_least`; None for a superuser."""
    roles = admin_roles(request)
    if roles is None:
        return None
    return [tenant_id for tenant_id, role in roles.items() if role.at_least(at_least)]


def admin_may(request: HttpRequest, tenant_id: int | None, role: Role) -> bool:
    roles = admin_roles(request)
    if roles is None:
        return True
    if tenant_id is None:
        return any(held.at_least(role) for held in roles.values())
    held = roles.get(tenant_id)
    return held is not None and held.at_least(role)


def admin_actor(request: HttpRequest, tenant: Tenant) -> Actor:
    return admin_request(request).actor.for_tenant(tenant).with_source(Source.ADMIN)


class TenantListFilter(admin.SimpleListFilter):
    """Filter by tenant, offering only the tenants the user can see."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Iterable[tuple[Any, str]]:
        tenants = Tenant.objects.order_by("name")
        ids = admin_tenant_ids(request)
        if ids is not None:
            tenants = tenants.filter(pk__in=ids)
        return [(tenant.pk, tenant.name) for tenant in tenants]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(tenant_id=value)


class DeletedListFilter(admin.SimpleListFilter):
    """Soft-deleted rows are hidden unless asked for."""

    title = "deleted"
    parameter_name = "deleted"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Iterable[tuple[str, str]]:
        return [("yes", "Deleted"), ("all", "All")]

    def choices(self, changelist: Any) -> Iterator["_ListFilterChoices"]:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "Not deleted",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "all":
            return queryset
        if self.value() == "yes":
            return queryset.filter(is_deleted=True)
        return queryset.exclude(is_deleted=True)  # legacy rows may hold NULL: not deleted


class TenantScopedAdmin(admin.ModelAdmin):
    """Scopes lists, lookups, autocomplete and foreign-key choices to the user's tenants."""

    view_role = Role.VIEWER
    change_role = Role.MEMBER
    delete_role = Role.MANAGER
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def row_tenant_id(self, obj: Any) -> int:
        return obj.pk if isinstance(obj, Tenant) else obj.tenant_id

    # Visibility ------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        ids = admin_tenant_ids(request, at_least=self.view_role)
        if ids is None:
            return queryset
        return queryset.filter(**{"pk__in" if self.model is Tenant else "tenant_id__in": ids})

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        filters = list(super().get_list_filter(request))
        ids = admin_tenant_ids(request)
        if self.model is not Tenant and (ids is None or len(ids) > 1):
            filters.insert(0, TenantListFilter)
        return filters

    # Permissions follow the tenant role --------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and admin_may(request, None, self.view_role)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        tenant_id = None if obj is None else self.row_tenant_id(obj)
        return self.has_module_permission(request) and admin_may(request, tenant_id, self.view_role)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request) and admin_may(request, None, self.change_role)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        tenant_id = None if obj is None else self.row_tenant_id(obj)
        return self.has_module_permission(request) and admin_may(request, tenant_id, self.change_role)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        tenant_id = None if obj is None else self.row_tenant_id(obj)
        return self.has_module_permission(request) and admin_may(request, tenant_id, self.delete_role)

    # Forms -----------------------------------------------------------------------------

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and self.model is not Tenant and "tenant" not in fields:
            fields.append("tenant")  # moving a row between tenants would orphan its links
        return fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        ids = admin_tenant_ids(request, at_least=self.change_role)
        if ids is not None:
            if related is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=ids)
            elif related is get_user_model():
                kwargs["queryset"] = related._default_manager.filter(
                    pk__in=Membership.objects.active().filter(tenant_id__in=ids).values("user_id")
                )
            elif any(field.name == "tenant" for field in related._meta.fields):
                kwargs["queryset"] = related._default_manager.filter(tenant_id__in=ids)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (SameTenantFormMixin, form), {"modeladmin": self, "request": request})

    def validate_with_services(self, request: HttpRequest, obj: Any, cleaned: dict[str, Any]) -> None:
        """Run the service's own checks of a change (raise ApplicationError); none by default."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """A rule that only the service can see (it re-checks under a lock) is shown, not a 500."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # Writes go through services ---------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        tenant = obj if isinstance(obj, Tenant) else obj.tenant
        actor = admin_actor(request, tenant)
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
            self.service_update(obj, actor, fields)
        else:
            fields = {name: value for name, value in form.cleaned_data.items() if name != "tenant"}
            created = self.service_create(actor, fields)
            # The admin goes on with `obj` (related inlines, the log entry, the redirect).
            obj.pk = created.pk
            obj.__dict__.update({key: value for key, value in created.__dict__.items() if key != "_state"})
            obj._state.adding = False

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must call its app's create service.")

    def service_update(self, obj: Any, actor: Actor, fields: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must call its app's update service.")


class SameTenantFormMixin(forms.ModelForm):
    """Every foreign key of the row points into the row's own tenant; users must be members.

    The same checks the services make, run as form validation so the admin shows them on
    the field; the admin's own `validate_with_services` adds the model's specific rules.
    """

    modeladmin: TenantScopedAdmin
    request: HttpRequest

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        if not isinstance(tenant, Tenant):
            return cleaned
        user_model = get_user_model()
        check: Callable[..., None]
        kwargs: dict[str, models.Model]
        for name, value in list(cleaned.items()):
            if isinstance(value, user_model) and name != "user":
                check, kwargs = tenant_ensure_members, {name: value}
            elif isinstance(value, models.Model) and hasattr(value, "tenant_id"):
                check, kwargs = tenant_ensure_owns, {name: value}
            else:
                continue
            try:
                check(tenant, **kwargs)
            except ApplicationError:
                self.add_error(name, f"{value} does not belong to {tenant.name}.")
        if not self.errors:
            try:
                self.modeladmin.validate_with_services(self.request, self.instance, cleaned)
            except ApplicationError as exc:
                self.add_error(exc.attr if exc.attr in self.fields else None, exc.message)
        return cleaned

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]  # private ModelForm API, absent from django-stubs
        # ModelForm skips constraints that mention a field not on the form (e.g. the email
        # rule's is_deleted condition); check them all, so the form shows them, not a 500.
        if not self.errors:
            try:
                self.instance.validate_constraints()
            except ValidationError as exc:
                self._update_errors(exc)  # type: ignore[attr-defined]  # private, as _post_clean


class SoftDeleteAdmin(TenantScopedAdmin):
    """Rows are marked deleted (an action), shown by a filter and restored (managers and up).

    Django's own delete, with its confirmation page listing what goes with the row, purges:
    it is offered to admins and owners only, and only for rows already marked deleted.
    Subclasses call their services in `soft_delete`, `restore_row` and `purge`.
    """

    delete_role = Role.ADMIN
    actions = ["mark_deleted", "restore_selected"]

    def soft_delete(self, obj: Any, actor: Actor) -> None:
        raise NotImplementedError

    def restore_row(self, obj: Any, actor: Actor) -> None:
        raise NotImplementedError

    def purge(self, obj: Any, actor: Actor) -> None:
        raise NotImplementedError

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_filter(request), DeletedListFilter]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_deleted is not True:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        delete_selected = actions.get("delete_selected")
        if delete_selected is not None:
            function, name, _ = delete_selected
            actions["delete_selected"] = (function, name, "Purge selected deleted %(verbose_name_plural)s for good")
        return actions

    def _apply(
        self, request: HttpRequest, queryset: QuerySet, change: Callable[[Any, Actor], Any], role: Role, done: str
    ) -> None:
        count = 0
        for obj in queryset.select_related("tenant"):
            if not admin_may(request, obj.tenant_id, role):
                self.message_user(request, f"{obj}: needs the {role.value} role in {obj.tenant}.", messages.ERROR)
                continue
            try:
                change(obj, admin_actor(request, obj.tenant))
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, f"{count} {done}.", messages.SUCCESS)

    @admin.action(description="Mark selected %(verbose_name_plural)s as deleted")
    def mark_deleted(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset.exclude(is_deleted=True), self.soft_delete, Role.MANAGER, "marked deleted")

    @admin.action(description="Restore selected deleted %(verbose_name_plural)s")
    def restore_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset.filter(is_deleted=True), self.restore_row, Role.MANAGER, "restored")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.purge(obj, admin_actor(request, obj.tenant))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(request, queryset, self.purge, Role.ADMIN, "purged")
