"""The admin's "log in as": a POST form that starts a session bound to the admin's own
session, a Stop button on the banner every page shows while it lasts, and the log, read-only.

The rules are `impersonation_check`'s (through `impersonation_start`); the form only offers
the choices and shows the service's refusals on their fields.
"""

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from crm.admin_base import AdminContribution, TenantScopedAdmin, admin_contribute
from crm.auth import client_ip
from crm.errors import ApplicationError
from crm.models import Membership, Role, Tenant, User
from impersonation.models import EndReason, ImpersonationLog
from impersonation.requests import SESSION_KEY, Impersonation
from impersonation.selectors import impersonation_writes
from impersonation.services import (
    DEFAULT_DURATION_MINUTES,
    IMPERSONATOR_ROLES,
    MAX_DURATION_MINUTES,
    MIN_REASON_LENGTH,
    TARGET_ROLES,
    Credential,
    impersonation_end,
    impersonation_start,
)


class StartForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    target = forms.ModelChoiceField(queryset=User.objects.none(), label="User")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), min_length=MIN_REASON_LENGTH)
    ticket = forms.CharField(max_length=100, required=False)
    duration_minutes = forms.IntegerField(
        min_value=1, max_value=MAX_DURATION_MINUTES, initial=DEFAULT_DURATION_MINUTES, label="Duration (minutes)"
    )
    allow_writes = forms.BooleanField(required=False, help_text="Owners only. Read-only otherwise.")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tenants = Tenant.objects.filter(is_active=True).order_by("name")
        if not user.is_superuser:
            tenants = tenants.filter(
                memberships__user=user,
                memberships__status=Membership.Status.ACTIVE,
                memberships__role__in=IMPERSONATOR_ROLES,
            )
        members = Membership.objects.active().filter(tenant__in=tenants).exclude(user=user)
        if not user.is_superuser:
            members = members.filter(role__in=TARGET_ROLES)
        cast(forms.ModelChoiceField, self.fields["tenant"]).queryset = tenants
        # The offer; what is accepted is impersonation_check's to decide.
        cast(forms.ModelChoiceField, self.fields["target"]).queryset = User.objects.filter(
            is_active=True, is_superuser=False, pk__in=members.values("user")
        ).order_by("username")


def start_view(request: HttpRequest) -> HttpResponse:
    """GET: the form (pre-filled from `?tenant=&target=`); POST: start and go to the admin's index."""
    user = cast(User, request.user)
    if request.method == "POST":
        form = StartForm(request.POST, user=user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                started = impersonation_start(
                    impersonator=user,
                    target=data["target"],
                    tenant=data["tenant"],
                    reason=data["reason"],
                    ticket=data["ticket"],
                    duration_minutes=data["duration_minutes"],
                    allow_writes=data["allow_writes"],
                    credential=Credential(session_key=request.session.session_key),
                    issue_token=False,
                    ip_address=client_ip(request),
                    user_agent=request.headers.get("User-Agent", ""),
                )
            except ApplicationError as refused:
                form.add_error(refused.attr if refused.attr in form.fields else None, refused.message)
            else:
                request.session[SESSION_KEY] = started.log.pk
                return HttpResponseRedirect(reverse("admin:index"))
    else:
        form = StartForm(initial=request.GET.dict(), user=user)
    context = {
        **admin.site.each_context(request),
        "title": "Log in as a user",
        "form": form,
        "opts": ImpersonationLog._meta,
    }
    return render(request, "impersonation/start.html", context)


@csrf_protect
@require_POST
def stop_view(request: HttpRequest) -> HttpResponse:
    """The banner's Stop. Not behind the admin's permission check: the user the admin sees as
    may not be allowed in the admin, and stopping must always work."""
    impersonation: Impersonation | None = getattr(request, "impersonation", None)
    if impersonation is not None:
        impersonation_end(log=impersonation.log, reason=EndReason.STOPPED)
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You stopped viewing as {impersonation.user.get_full_name() or impersonation.user}.")
    return HttpResponseRedirect(reverse("admin:impersonation_impersonationlog_changelist"))


LOG_FIELDS = (
    "tenant",
    "admin_user",
    "impersonated_user",
    "status",
    "end_reason",
    "reason",
    "ticket",
    "allow_writes",
    "started_at",
    "expires_at",
    "ended_at",
    "duration_seconds",
    "request_count",
    "write_count",
    "ip_address",
    "user_agent",
    "writes",
)


@admin.register(ImpersonationLog)
class ImpersonationLogAdmin(TenantScopedAdmin):
    """The log: read-only, owners and admins of the tenant (superusers: every tenant)."""

    view_role = Role.ADMIN
    list_display = [
        "started_at",
        "admin_user",
        "impersonated_user",
        "status",
        "end_reason",
        "allow_writes",
        "duration_seconds",
        "request_count",
        "write_count",
        "ticket",
    ]
    list_filter = ["status", "end_reason", "allow_writes", ("started_at", admin.DateFieldListFilter)]
    list_select_related = ["admin_user", "impersonated_user"]
    search_fields = ["reason", "ticket", "admin_user__username", "impersonated_user__username"]
    date_hierarchy = "started_at"
    fields = LOG_FIELDS
    readonly_fields = LOG_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tenant", "admin_user", "impersonated_user")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="writes in the session")
    def writes(self, log: ImpersonationLog) -> str:
        entries = impersonation_writes(logs=[log]).get(log.pk, [])
        if not entries:
            return "none"
        return "; ".join(f"{entry['at']:%Y-%m-%d %H:%M:%S} {entry['what']}" for entry in entries)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("start/", self.admin_site.admin_view(start_view), name="impersonation_start"),
            path("stop/", stop_view, name="impersonation_stop"),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().changelist_view(
            request, {**(extra_context or {}), "start_url": reverse("admin:impersonation_start")}
        )


@admin.display(description="log in as")
def log_in_as(membership: Membership) -> str:
    if membership.role not in TARGET_ROLES or membership.status != Membership.Status.ACTIVE:
        return "—"
    url = reverse("admin:impersonation_start") + f"?tenant={membership.tenant_id}&target={membership.user_id}"
    return format_html('<a href="{}">Log in as…</a>', url)


admin_contribute(Membership, AdminContribution(list_display_after={"role": [log_in_as]}))
