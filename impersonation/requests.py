"""An impersonated request: finding the active session, and what it may do.

`impersonation_for_request` is the actor middleware's extension point
(`ACTOR_IMPERSONATION_RESOLVER`): it finds the session from an impersonation token
(`Authorization: Token rdgimp_...`, the SPA) or from the admin's signed-in session (the
admin's "log in as"), ends it when it must end (expiry, a deactivated user or membership,
the admin's credential gone), and else returns an `Impersonation` that answers the request:
refusing writes while read-only and the always-denied routes, and counting requests.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils import timezone
from knox.crypto import hash_token
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS

from crm.actor import Actor
from crm.api.errors import api_error_response
from crm.models import User
from crm.rls import cross_tenant
from impersonation.authentication import request_impersonation_token
from impersonation.models import EndReason, ImpersonationLog
from impersonation.services import (
    impersonation_end,
    impersonation_end_reason,
    impersonation_logs_checked,
    impersonation_record_request,
)

SESSION_KEY = "_impersonation_id"

# Routes that answer while impersonating, even read-only: looking at the session and ending it.
SESSION_ROUTES = frozenset({"impersonation-status", "impersonation-stop", "admin:impersonation_stop"})
# Starting again while impersonating is nesting: a 409, not a 403.
START_ROUTES = frozenset({"impersonation-start", "admin:impersonation_start"})
# Never while impersonating, even with `allow_writes`: credentials (password, email, tokens),
# memberships and roles, the user itself, and purges. Admin routes by model, API by name.
DENIED_ROUTES = frozenset(
    {
        "auth-token",
        "auth-logout",
        "auth-logout-all",
        "auth-tokens-list",
        "auth-tokens-detail",
        "membership-list",
        "membership-detail",
        "admin:password_change",
        "admin:auth_user_password_change",  # UserAdmin names its password page after auth's model
    }
)
DENIED_ADMIN_MODELS = ("admin:crm_user_", "admin:crm_membership_", "admin:crm_tenant_", "admin:impersonation_")


def route_name(request: HttpRequest) -> str | None:
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return None


def always_denied(request: HttpRequest, route: str | None) -> bool:
    if route is None:
        return False
    if route in DENIED_ROUTES or route.startswith(DENIED_ADMIN_MODELS):
        return True
    if request.method == "DELETE" and request.GET.get("purge", "").lower() in {"true", "1", "yes"}:
        return True
    # The admin purges through its delete page and its "delete selected" action.
    return route.startswith("admin:") and (route.endswith("_delete") or request.POST.get("action") == "delete_selected")


def refusal(request: HttpRequest, status: int, message: str, code: str) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        error = exceptions.APIException(message, code)
        error.status_code = status
        return api_error_response(error, error)
    return render(request, "impersonation/refused.html", {"message": message}, status=status)


BANNER_BEFORE = b"</body>"


def add_banner(request: HttpRequest, response: HttpResponse, impersonation: "Impersonation") -> None:
    """Put the banner on an HTML page of the admin's session (as django-hijack's middleware
    does), so that every page shows it whatever template it extends."""
    if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
        return
    if BANNER_BEFORE not in response.content:
        return
    banner = render_to_string("impersonation/banner.html", {"impersonation": impersonation}, request=request)
    response.content = response.content.replace(BANNER_BEFORE, banner.encode() + BANNER_BEFORE, 1)
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))


@dataclass
class Impersonation:
    log: ImpersonationLog
    user: User
    real_user: User
    via_token: bool

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def minutes_left(self) -> int:
        seconds = (self.log.expires_at - timezone.now()).total_seconds()
        return max(0, -(-int(seconds) // 60))

    def refusal(self, request: HttpRequest, route: str | None) -> HttpResponse | None:
        """The answer to an unsafe request this session may not make, or None."""
        if route in START_ROUTES:
            return refusal(
                request, 409, "You are impersonating someone: stop that session first.", "nested_impersonation"
            )
        if always_denied(request, route):
            return refusal(request, 403, "This is never allowed while impersonating.", "impersonation_denied")
        if not self.log.allow_writes:
            return refusal(request, 403, "read-only impersonation", "read_only_impersonation")
        return None

    def actor(self) -> Actor:
        """The session's tenant and users, published while its log is written (row-level security)."""
        return Actor(tenant=self.log.tenant, user=self.user, real_user=self.real_user)

    def respond(self, request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
        route = route_name(request)
        unsafe = request.method not in SAFE_METHODS
        request.impersonation = self  # type: ignore[attr-defined]
        header = request.META.get("HTTP_X_TENANT")
        if header and header.strip().lower() not in {str(self.log.tenant_id), self.log.tenant.subdomain.lower()}:
            return refusal(
                request, 403, f"This impersonation is limited to {self.log.tenant.name}.", "impersonation_tenant"
            )
        # The session's tenant is the request's (`request.headers` is read from META once).
        request.META["HTTP_X_TENANT"] = str(self.log.tenant_id)
        request.__dict__.pop("headers", None)
        if unsafe and route == "admin:logout":
            with self.actor().atomic():
                impersonation_end(log=self.log, reason=EndReason.LOGOUT)
            return get_response(request)
        refused = self.refusal(request, route) if unsafe and route not in SESSION_ROUTES else None
        if refused is not None:
            with self.actor().atomic():
                impersonation_record_request(log=self.log, write=False)  # an attempt is a request of the session
            return refused
        response = get_response(request)
        wrote = unsafe and route not in SESSION_ROUTES and response.status_code < 400
        with self.actor().atomic():
            impersonation_record_request(log=self.log, write=wrote)
        if not self.via_token:
            add_banner(request, response, self)
        return response


def impersonation_for_request(request: HttpRequest) -> Impersonation | None:
    """The request's active impersonation (see the module docstring), or None."""
    token = request_impersonation_token(request)
    session = getattr(request, "session", None)
    # Only a request that names a session builds its query: every other request (most of them)
    # would spend a millisecond or more composing a query it never runs.
    by_session = session is not None and SESSION_KEY in session and "HTTP_AUTHORIZATION" not in request.META
    if token is None and not by_session:
        return None
    # Before the request's tenant is known: the session's own row, by its token or id, read
    # (and ended when it must end) on the logged cross-tenant path.
    with cross_tenant("impersonation: the session a request's credential names"):
        return _impersonation_found(request, token, session)


def _impersonation_found(request: HttpRequest, token: str | None, session: Any) -> Impersonation | None:
    now = timezone.now()
    if token is not None:
        log = impersonation_logs_checked(now=now).filter(token_digest=hash_token(token)).first()
    else:
        log = (
            impersonation_logs_checked(now=now)
            .filter(pk=session[SESSION_KEY], admin_user=request.user.pk, admin_session_key=session.session_key)
            .first()
        )
        if log is None:
            del session[SESSION_KEY]
    if log is None:
        return None
    reason = impersonation_end_reason(log=log, now=now)
    if reason is not None:
        impersonation_end(log=log, reason=reason)
        if token is None and session is not None:
            del session[SESSION_KEY]
        return None
    return Impersonation(log=log, user=log.impersonated_user, real_user=log.admin_user, via_token=token is not None)
