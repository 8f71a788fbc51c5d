"""The tenant-scoped admin: staff see and change only the tenants they are members of.

What a staff user may do is decided by their role in the row's tenant (the same roles as
the API): viewers read, members add and change, managers mark rows deleted and restore
them, admins and owners purge deleted rows and manage the tenant. Superusers see every
tenant.

Saving: one service call
------------------------
A page's save calls its app's service once (`service_create` / `service_update`, with the
actor, source `admin`), and an inline row's save calls that row's service once. The rules
are the services' and the database's (crm.constraints names their fields); the admin copies
none of them. When a service refuses (ApplicationError), the whole save is rolled back and
the page is shown again with the values as posted and the message on the field the error
names (`attr`; on an inline row when that row's call refused, see `admin_inline_row`), or
above the form. Nothing is written, and nothing runs twice.

Extension point: what other apps add to a model's pages
-------------------------------------------------------
Each model has one admin class, registered once, in its own app. An app that adds to the
pages of another app's model does not subclass nor re-register that admin: it describes
its additions in an `AdminContribution` and calls `admin_contribute(Model, contribution)`
from its own admin.py. Every `TenantScopedAdmin` reads the contributions to its model when
it builds a page, so the result does not depend on the order of INSTALLED_APPS:

- `fields_after`: form fields (or read-only ones) placed right after a field of the page,
  e.g. `{"status": ["substatus", "reason", "substatus_since"]}`;
- `fieldsets` (every page), `change_fieldsets` (change pages only): sections added at the end;
- `readonly_fields`: names or `@admin.display` callables, shown and never posted;
- `form_fields`: fields that are not the model's (`{"reason": forms.CharField(...)}`); a
  posted value reaches the model's service as a keyword argument of the same name;
- `form_hook(request, obj, form_class)`: adjusts the form class's fields (choices, help text);
- `list_display_after` (like `fields_after`, on the change list), `list_filter`,
  `list_select_related`;
- `inlines`: inline admins added to the change page.

substatus/admin.py contributes a record's substatus, the reason for a change and its history
to contacts and projects this way; campaigns, filters and impersonation add theirs the same.
"""

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models import QuerySet
from django.forms.models import construct_instance
from django.http import HttpRequest, HttpResponseRedirect

from crm.actor import Actor, Source
from crm.errors import ApplicationError
from crm.models import Membership, Role, Tenant
from crm.request import AdminHttpRequest

if TYPE_CHECKING:
    from django.contrib.admin.filters import _ListFilterChoices

# A form field's name, or a read-only `@admin.display` callable taking the row.
FieldSpec = str | Callable[[Any], Any]
Fieldset = tuple[str | None, dict[str, Any]]


@dataclass(frozen=True)
class AdminContribution:
    """What one app adds to the admin pages of another app's model (see the module docstring)."""

    fields_after: Mapping[str, Sequence[FieldSpec]] = field(default_factory=dict)
    fieldsets: Sequence[Fieldset] = ()
    change_fieldsets: Sequence[Fieldset] = ()
    readonly_fields: Sequence[FieldSpec] = ()
    form_fields: Mapping[str, forms.Field] = field(default_factory=dict)
    form_hook: Callable[[HttpRequest, Any, type[forms.BaseForm]], None] | None = None
    list_display_after: Mapping[str, Sequence[FieldSpec]] = field(default_factory=dict)
    list_filter: Sequence[Any] = ()
    list_select_related: Sequence[str] = ()
    inlines: Sequence[type[InlineModelAdmin]] = ()


_CONTRIBUTIONS: dict[type[models.Model], list[AdminContribution]] = defaultdict(list)


def admin_contribute(model: type[models.Model], contribution: AdminContribution) -> None:
    """Add `contribution` to the admin pages of `model` (call it once, from your app's admin.py)."""
    _CONTRIBUTIONS[model].append(contribution)


def admin_contributions(model: type[models.Model]) -> list[AdminContribution]:
    return list(_CONTRIBUTIONS.get(model, ()))


def _insert_after(names: list[Any], after: Mapping[str, Sequence[Any]], what: str) -> list[Any]:
    for anchor, added in after.items():
        if anchor not in names:
            raise ImproperlyConfigured(f"An admin contribution goes after {anchor!r}: the {what} has no such field.")
        at = names.index(anchor) + 1
        names[at:at] = list(added)
    return names


def admin_offer(field: forms.ModelChoiceField, offered: QuerySet) -> None:
    """Offer only the rows of `offered` in a choice field that still accepts any row of its queryset.

    The choices help a person pick; what the field accepts beyond them is the service's (or
    the database's) to refuse, with the message the API gives for the same value.
    """
    empty = [] if field.empty_label is None else [("", field.empty_label)]
    field.choices = lambda: [*empty, *((row.pk, str(row)) for row in offered)]


# Refused saves -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A service's refusal, shown where it belongs when the page is shown again."""

    message: str
    attr: str | None
    prefix: str | None = None  # the inline formset of the row that was refused; None: the page's form
    index: int | None = None  # that row's position in its formset


class AdminSaveRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@contextmanager
def admin_inline_row(formset: Any, instance: models.Model) -> Iterator[None]:
    """Run the service call of one inline row; its refusal is shown on that row."""
    try:
        yield
    except ApplicationError as exc:
        index = next(i for i, form in enumerate(formset.forms) if form.instance is instance)
        raise AdminSaveRefused(Refusal(exc.message, exc.attr, formset.prefix, index)) from exc


_REFUSAL = "_admin_refusal"


def _show_on(form: forms.BaseForm, refusal: Refusal) -> None:
    form.add_error(refusal.attr if refusal.attr in form.fields else None, refusal.message)


class RefusedFormSetMixin:
    """Shows a refusal on the row of this formset it names."""

    refusal: Refusal

    def clean(self) -> None:
        super().clean()  # type: ignore[misc]
        if self.prefix != self.refusal.prefix or self.refusal.index is None:  # type: ignore[attr-defined]
            return
        form = self.forms[self.refusal.index]  # type: ignore[attr-defined]
        if self.can_delete and self._should_delete_form(form):  # type: ignore[attr-defined]
            raise ValidationError(f"{form.instance}: {self.refusal.message}")  # a row being removed shows no errors
        _show_on(form, self.refusal)


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
    """Scopes lists, lookups, autocomplete and foreign-key choices to the user's tenants; saves
    through the app's services, once; adds what other apps contribute to the model's pages."""

    view_role = Role.VIEWER
    change_role = Role.MEMBER
    delete_role = Role.MANAGER
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def row_tenant_id(self, obj: Any) -> int:
        return obj.pk if isinstance(obj, Tenant) else obj.tenant_id

    @property
    def contributions(self) -> list[AdminContribution]:
        return admin_contributions(self.model)

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
        for contribution in self.contributions:
            filters.extend(contribution.list_filter)
        return filters

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        names = list(super().get_list_display(request))
        for contribution in self.contributions:
            names = _insert_after(names, contribution.list_display_after, f"list of {self}")
        return names

    def get_list_select_related(self, request: HttpRequest) -> Any:
        related = super().get_list_select_related(request)
        added = [name for contribution in self.contributions for name in contribution.list_select_related]
        if related is True or not added:
            return related
        return [*(related or []), *added]

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

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets: list[Any] = copy.deepcopy(list(super().get_fieldsets(request, obj)))
        for contribution in self.contributions:
            fieldsets.extend(copy.deepcopy(list(contribution.fieldsets)))
            if obj is not None:
                fieldsets.extend(copy.deepcopy(list(contribution.change_fieldsets)))
            for anchor, added in contribution.fields_after.items():
                options = next((options for _, options in fieldsets if anchor in options["fields"]), None)
                if options is None:
                    raise ImproperlyConfigured(
                        f"An admin contribution goes after {anchor!r}: {self} has no such field."
                    )
                options["fields"] = _insert_after(list(options["fields"]), {anchor: added}, "fieldset")
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fields: list[Any] = list(super().get_readonly_fields(request, obj))
        if obj is not None and self.model is not Tenant and "tenant" not in fields:
            fields.append("tenant")  # moving a row between tenants would orphan its links
        for contribution in self.contributions:
            fields.extend(name for name in contribution.readonly_fields if name not in fields)
        return fields

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))
        for contribution in self.contributions:
            inlines.extend(contribution.inlines)
        return inlines

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
        base = kwargs.get("form", self.form)
        extra = {name: f for contribution in self.contributions for name, f in contribution.form_fields.items()}
        kwargs["form"] = type(base.__name__, (ServiceFormMixin, base), {**extra, "request": request})
        form = super().get_form(request, obj, change, **kwargs)
        for contribution in self.contributions:
            if contribution.form_hook is not None:
                contribution.form_hook(request, obj, form)
        return form

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None) -> Iterator[tuple[Any, Any]]:
        refusal: Refusal | None = getattr(request, _REFUSAL, None)
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            if refusal is not None and refusal.prefix is not None:
                formset = type(formset.__name__, (RefusedFormSetMixin, formset), {"refusal": refusal})
            yield formset, inline

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> Any:
        """A save the service refuses is rolled back (the transaction of Django's view) and the
        page shown again, the refusal on its field: the form is not valid the second time, so
        nothing is saved."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except AdminSaveRefused as refused:
            refusal = refused.refusal
        except ApplicationError as exc:
            refusal = Refusal(exc.message, exc.attr)
        setattr(request, _REFUSAL, refusal)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """A refused edit of the list (`list_editable`) is shown as a message; nothing is saved."""
        try:
            return super().changelist_view(request, extra_context)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # Writes go through services ---------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        tenant = obj if isinstance(obj, Tenant) else obj.tenant
        actor = admin_actor(request, tenant)
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
            # The service changes the row as it is: `obj` already holds the posted values.
            saved = self.service_update(type(obj)._default_manager.get(pk=obj.pk), actor, fields)
        else:
            fields = {name: value for name, value in form.cleaned_data.items() if name != "tenant"}
            saved = self.service_create(actor, fields)
        # The admin goes on with `obj` (related inlines, the log entry, the redirect).
        obj.pk = saved.pk
        obj.__dict__.update({key: value for key, value in saved.__dict__.items() if key != "_state"})
        obj._state.adding = False

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must call its app's create service.")

    def service_update(self, obj: Any, actor: Actor, fields: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must call its app's update service.")


class ServiceFormMixin:
    """The form of a TenantScopedAdmin page: it checks what a form checks (each field's
    value), and leaves the rules to the service that saves it.

    The model's constraints are the database's, met once when the service saves and shown
    on their field (crm.constraints); the same goes for the services' own rules. When the
    page is shown again after a refused save, the refusal is one of the form's errors.
    """

    request: HttpRequest

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # type: ignore[misc]
        refusal: Refusal | None = getattr(self.request, _REFUSAL, None)
        if refusal is not None and refusal.prefix is None:
            _show_on(self, refusal)  # type: ignore[arg-type]
        return cleaned

    def _post_clean(self) -> None:
        """ModelForm's, without the model's constraints (see the class docstring)."""
        opts = self._meta  # type: ignore[attr-defined]
        exclude = self._get_validation_exclusions()  # type: ignore[attr-defined]
        try:
            self.instance = construct_instance(self, self.instance, opts.fields, opts.exclude)  # type: ignore[arg-type,has-type]
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]
        try:
            self.instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]
        if self._validate_unique:  # type: ignore[attr-defined]
            self.validate_unique()  # type: ignore[attr-defined]


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
