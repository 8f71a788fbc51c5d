"""The base of every tenant-owned API resource."""

from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.actor import Source, publish_actor
from crm.api.errors import CONFLICT_RESPONSE
from crm.api.permissions import HasTenantRole, default_required_role
from crm.middleware import actor_for_request
from crm.models import Role, User
from crm.request import TenantRequest
from crm.tenancy import TenantResolutionError, tenant_resolve


class ActorPublishedMixin(APIView):
    """The handler runs in one transaction with the request's actor published
    (`crm.actor.publish_actor`, row-level security, issue 17): the signed-in user, so that
    their own memberships can be read; no tenant (TenantMixin adds the resolved one).

    A streaming response's body runs after this transaction: it publishes its actor in
    transactions of its own.
    """

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.perform_authentication(request)
        if request.user and request.user.is_authenticated:
            publish_actor(actor_for_request(request._request, source=Source.API))
            self.resolve_tenant(request)
        super().initial(request, *args, **kwargs)

    def resolve_tenant(self, request: Request) -> None:
        """Overridden by TenantMixin: a view of one tenant's rows."""


class TenantMixin(ActorPublishedMixin):
    """Resolves `request.tenant`, `request.membership` and `request.actor` after authentication,
    and publishes the resolved tenant: every query of the request (reads too) sees that
    tenant's rows only."""

    request: TenantRequest
    permission_classes = [IsAuthenticated, HasTenantRole]
    # action name -> the least role that may run it; other actions: viewers read, members write
    action_roles: dict[str, Role] = {}

    def resolve_tenant(self, request: Request) -> None:
        try:
            tenant, membership = tenant_resolve(user=cast(User, request.user), header=request.headers.get("X-Tenant"))
        except TenantResolutionError as exc:
            if exc.status == 400:
                raise exceptions.ValidationError({"X-Tenant": [exc.message]}) from exc
            raise exceptions.PermissionDenied(exc.message) from exc
        resolved = cast(TenantRequest, request)
        resolved.tenant = tenant
        resolved.membership = membership
        resolved._request.actor = actor_for_request(request._request, source=Source.API).for_tenant(tenant)
        publish_actor(resolved._request.actor)

    def required_role(self, request: Request) -> Role:
        action = getattr(self, "action", None)
        if action in self.action_roles:
            return self.action_roles[action]
        return default_required_role(request)


class TenantScopedViewSet(TenantMixin, viewsets.ModelViewSet):
    """Every query goes through `get_tenant_queryset()`, filtered to the request's tenant.

    Overriding `get_queryset` is refused at class creation: it is the one place that
    keeps a tenant's rows invisible to every other tenant. A view that truly needs
    rows of several tenants defines `dangerously_get_queryset` with a comment saying why.
    """

    # The entity a filter backend's language knows these rows as (`contacts`, `projects`,
    # `activities`), or None: the core names it, a feature app's backend reads it.
    filter_entity: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise ImproperlyConfigured(
                f"{cls.__qualname__} overrides get_queryset(); override get_tenant_queryset() instead "
                "so rows stay scoped to the request's tenant (or dangerously_get_queryset(), with a "
                "comment saying why)."
            )

    def get_tenant_queryset(self) -> QuerySet:
        raise NotImplementedError(f"{type(self).__qualname__} must define get_tenant_queryset().")

    def get_queryset(self) -> QuerySet:
        dangerous = getattr(self, "dangerously_get_queryset", None)
        if dangerous is not None:
            return dangerous()
        queryset = self.get_tenant_queryset()
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return queryset.none()
        return self.filter_visible(queryset.filter(tenant=self.request.tenant))

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        """Narrow the tenant's rows further for the current action (e.g. hide deleted rows)."""
        return queryset

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The page; then each filter backend with a `list_served(request, view, response)` hook
        hears about it (a feature app's backend in DEFAULT_FILTER_BACKENDS logs its use there,
        without the core importing it)."""
        response = super().list(request, *args, **kwargs)
        for backend in self.filter_backends:
            served = getattr(backend, "list_served", None)
            if served is not None:
                served(backend(), request, self, response)
        return response


def query_flag(request: Request, name: str) -> bool:
    """A true/false query parameter; anything else is a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    if raw.lower() in {"true", "1", "yes"}:
        return True
    if raw.lower() in {"false", "0", "no"}:
        return False
    raise exceptions.ValidationError({name: [f"{name} must be true or false; got {raw!r}."]})


DELETED_PARAMETER = OpenApiParameter(
    "deleted", OpenApiTypes.BOOL, description="true: list or fetch deleted rows instead (manager or above)."
)
PURGE_PARAMETER = OpenApiParameter(
    "purge", OpenApiTypes.BOOL, description="true: delete a row that was already deleted, for good (admin or owner)."
)


def restore_schema(serializer: type) -> Any:
    """The schema of a SoftDeleteViewSet's restore: the row, or a 409 when it clashes with a live one."""
    return extend_schema_view(restore=extend_schema(responses={200: serializer, 409: CONFLICT_RESPONSE}))


@extend_schema_view(
    list=extend_schema(parameters=[DELETED_PARAMETER]),
    retrieve=extend_schema(parameters=[DELETED_PARAMETER]),
    destroy=extend_schema(parameters=[PURGE_PARAMETER], responses={204: None, 409: CONFLICT_RESPONSE}),
)
class SoftDeleteViewSet(TenantScopedViewSet):
    """DELETE marks a row deleted (manager+); `?deleted=true` lists them and `restore` brings
    one back (manager+); `DELETE ...?purge=true` removes a deleted row for good (admin+).

    Subclasses call their services in `perform_soft_delete`, `perform_restore`, `perform_purge`,
    and document restore's 409 with `restore_schema(TheirSerializer)`.
    """

    def perform_soft_delete(self, record: Any) -> None:
        raise NotImplementedError

    def perform_restore(self, record: Any) -> Any:
        raise NotImplementedError

    def perform_purge(self, record: Any) -> None:
        raise NotImplementedError

    def wants_deleted(self) -> bool:
        """`?deleted=true` reads deleted rows; writes never see them (restore them first)."""
        return self.action in ("list", "retrieve") and query_flag(self.request, "deleted")

    def required_role(self, request: Request) -> Role:
        if self.action == "destroy":
            return Role.ADMIN if query_flag(request, "purge") else Role.MANAGER
        if self.action == "restore" or self.wants_deleted():
            return Role.MANAGER
        return super().required_role(request)

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        if self.action == "restore" or (self.action == "destroy" and query_flag(self.request, "purge")):
            return queryset
        return queryset.filter(is_deleted=self.wants_deleted())

    def perform_destroy(self, instance: Any) -> None:
        if query_flag(self.request, "purge"):
            self.perform_purge(instance)
        else:
            self.perform_soft_delete(instance)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str | None = None) -> Response:
        return Response(self.get_serializer(self.perform_restore(self.get_object())).data)
