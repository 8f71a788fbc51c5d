"""Sets `request.actor` for every request (the API refines it with the resolved tenant).

Impersonation plugs in here without the core importing it: `ACTOR_IMPERSONATION_RESOLVER`
(settings) names a function `(request) -> ActiveImpersonation | None`. When it finds an
active, authorized session, the request's user becomes the impersonated user, its
`real_user` the admin, and the session answers the request (`respond`), so that it can
refuse what an impersonation may not do and count what it does.
"""

from collections.abc import Callable
from functools import cache
from typing import Protocol, cast

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

from crm.actor import Actor, Source, publish_actor
from crm.models import Membership, Tenant, User
from crm.request import ActorHttpRequest
from crm.rls import publish_cross_tenant


class ActiveImpersonation(Protocol):
    user: User  # the effective user: the one impersonated
    real_user: User  # the admin behind them

    def respond(self, request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
        """Answer the request (usually `get_response(request)`) as this impersonation allows."""
        ...


ImpersonationResolver = Callable[[HttpRequest], ActiveImpersonation | None]


@cache
def impersonation_resolver() -> ImpersonationResolver | None:
    path = getattr(settings, "ACTOR_IMPERSONATION_RESOLVER", None)
    return cast(ImpersonationResolver, import_string(path)) if path else None


def actor_for_request(request: HttpRequest, *, source: str = Source.API) -> Actor:
    """The request's actor. An impersonation sets `request.real_user` to the admin."""
    user = request.user if request.user.is_authenticated else None
    real_user = getattr(request, "real_user", None) or user
    return Actor(tenant=getattr(request, "tenant", None), user=user, real_user=real_user, source=source)


class ActorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        resolver = impersonation_resolver()
        impersonation = resolver(request) if resolver is not None else None
        if impersonation is not None:
            request.user = impersonation.user
            request.real_user = impersonation.real_user  # type: ignore[attr-defined]
        # The lazy object stands in for the Actor it builds on first use.
        cast(ActorHttpRequest, request).actor = cast(Actor, SimpleLazyObject(lambda: actor_for_request(request)))
        if impersonation is not None:
            return impersonation.respond(request, self.get_response)
        return self.get_response(request)


class AdminRowSecurityMiddleware:
    """The admin's requests run in one transaction with what row-level security lets them see
    published (issue 17): a tenant staff user's tenant; a superuser's, or a staff user's of
    several tenants, through the logged cross-tenant path (`crm.rls`), where the admin's own
    scoping (crm.admin_base.TenantScopedAdmin) keeps a staff user to their tenants' rows.

    The API publishes in its views (crm.api.views.TenantMixin); other paths pass through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(admin_prefix()):
            return self.get_response(request)
        with transaction.atomic():
            admin_publish(request)
            return self.get_response(request)


@cache
def admin_prefix() -> str:
    return reverse("admin:index")


def admin_publish(request: HttpRequest) -> None:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return
    where = f"{request.method} {request.path_info}"
    if user.is_superuser:
        publish_cross_tenant(f"admin: superuser {user.get_username()} {where}")
        return
    staff = user
    publish_actor(Actor(tenant=None, user=staff, source=Source.ADMIN))  # their own memberships
    tenant_ids = sorted(Membership.objects.active().filter(user=staff).values_list("tenant_id", flat=True))
    if len(tenant_ids) == 1:
        publish_actor(Actor(tenant=Tenant(pk=tenant_ids[0]), user=staff, source=Source.ADMIN))
    elif tenant_ids:
        publish_cross_tenant(f"admin: staff user {staff.get_username()} of tenants {tenant_ids} {where}")
