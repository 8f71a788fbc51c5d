"""The attributes Ridgeline adds to a request, for the type checker.

None of these classes is instantiated: Django and DRF build plain `HttpRequest` and `Request`
objects, and the middleware and `TenantMixin` set these attributes on them. Annotating a
view's request with one of these says that the code runs after that set-up (the pattern
django-stubs documents for an authenticated request).
"""

from django.http import HttpRequest
from rest_framework.request import Request

from crm.actor import Actor
from crm.models import Membership, Role, Tenant, User


class ActorHttpRequest(HttpRequest):
    """A request after `ActorMiddleware` (every request): who is acting."""

    actor: Actor


class AdminHttpRequest(ActorHttpRequest):
    """A request in a ModelAdmin: AdminSite admits only signed-in, active staff users."""

    user: User
    # Tenant id -> the user's role there, cached for the request by crm.admin_base.admin_roles.
    _admin_roles: dict[int, Role]


class TenantRequest(Request):
    """A DRF request in a tenant-scoped view after `TenantMixin.initial`.

    Authentication passed and the tenant was resolved, so the user is a real user with an
    active membership there; `actor` (read through to the Django request) carries the tenant.
    """

    _request: ActorHttpRequest
    user: User
    tenant: Tenant
    membership: Membership
    actor: Actor
