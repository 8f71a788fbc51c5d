"""The SPA's impersonation API: start, stop, status and the log."""

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.errors import CONFLICT_RESPONSE, FORBIDDEN_BY_RULE_RESPONSE
from crm.api.views import ActorPublishedMixin, TenantMixin, TenantScopedViewSet, query_flag
from crm.auth import client_ip
from crm.models import AuthToken, Role, User
from crm.request import TenantRequest
from crm.rls import cross_tenant
from impersonation.filtersets import ImpersonationLogFilterSet
from impersonation.models import EndReason, ImpersonationLog
from impersonation.requests import Impersonation
from impersonation.selectors import impersonation_logs_for, impersonation_logs_readable, impersonation_writes
from impersonation.serializers import (
    ImpersonationLogWithWritesSerializer,
    ImpersonationStartedSerializer,
    ImpersonationStartSerializer,
    ImpersonationStatusSerializer,
)
from impersonation.services import Credential, NotFound, impersonation_end, impersonation_start, impersonation_stop


def current_impersonation(request: Request) -> Impersonation | None:
    return cast(Impersonation | None, getattr(request._request, "impersonation", None))


def request_credential(request: Request) -> Credential:
    """The credential the request was signed in with: its API token, else its session."""
    if isinstance(request.auth, AuthToken):
        return Credential(token_digest=request.auth.digest)
    session = getattr(request._request, "session", None)
    if session is not None and session.session_key:
        return Credential(session_key=session.session_key)
    raise exceptions.NotAuthenticated("Sign in with a token or a session to impersonate.")


class ImpersonationStartView(TenantMixin, APIView):
    """Start impersonating a user of the tenant; returns a short-lived impersonation token."""

    request: TenantRequest

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER  # impersonation_check decides, with its own messages

    @extend_schema(
        request=ImpersonationStartSerializer,
        responses={
            201: ImpersonationStartedSerializer,
            403: FORBIDDEN_BY_RULE_RESPONSE,
            404: OpenApiResponse(description="No such user in this tenant."),
            409: CONFLICT_RESPONSE,
        },
    )
    def post(self, request: Request) -> Response:
        payload = ImpersonationStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        target = User.objects.filter(pk=data["target"]).first()
        if target is None:
            raise NotFound(f'User "{data["target"]}" does not exist.', attr="target")
        started = impersonation_start(
            impersonator=self.request.user,
            target=target,
            tenant=self.request.tenant,
            reason=data["reason"],
            ticket=data["ticket"],
            duration_minutes=data["duration_minutes"],
            allow_writes=data["allow_writes"],
            credential=request_credential(request),
            impersonating=current_impersonation(request) is not None,
            ip_address=client_ip(request._request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        body = ImpersonationStartedSerializer({"token": started.token, "session": started.log}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ImpersonationStopView(ActorPublishedMixin, APIView):
    """End the session: the one this request runs in, else the signed-in admin's active one."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=ImpersonationStatusSerializer)
    def post(self, request: Request) -> Response:
        impersonation = current_impersonation(request)
        # The admin's sessions, whichever tenant they are in (row-level security).
        with cross_tenant("impersonation: the admin stops their session"):
            if impersonation is not None:
                impersonation_end(log=impersonation.log, reason=EndReason.STOPPED)
            else:
                impersonation_stop(admin=cast(User, request.user))
        return Response(ImpersonationStatusSerializer({"active": False, "session": None}).data)


class ImpersonationStatusView(ActorPublishedMixin, APIView):
    """Whether this request runs in an impersonation, and which."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=ImpersonationStatusSerializer)
    def get(self, request: Request) -> Response:
        impersonation = current_impersonation(request)
        log = impersonation.log if impersonation is not None else None
        return Response(ImpersonationStatusSerializer({"active": log is not None, "session": log}).data)


MINE_PARAMETER = OpenApiParameter(
    "mine", OpenApiTypes.BOOL, description="true: only the sessions in which you were the impersonated user."
)


class ImpersonationLogViewSet(TenantScopedViewSet):
    """The tenant's impersonation sessions (owners and admins); `?mine=true`: those about you."""

    serializer_class = ImpersonationLogWithWritesSerializer
    filterset_class = ImpersonationLogFilterSet
    http_method_names = ["get", "head", "options"]
    ordering_fields = ["started_at", "ended_at", "request_count", "write_count"]
    ordering = ["-started_at"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not query_flag(request, "mine") and not impersonation_logs_readable(
            tenant=self.request.tenant, user=self.request.user
        ):
            raise exceptions.PermissionDenied(
                "Only owners and admins read the impersonation log; send mine=true for the sessions about you."
            )

    def get_tenant_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return ImpersonationLog.objects.none()
        return impersonation_logs_for(
            tenant=self.request.tenant, user=self.request.user, mine=query_flag(self.request, "mine")
        )

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "writes": getattr(self, "_writes", {})}

    @extend_schema(parameters=[MINE_PARAMETER])
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = list(self.paginate_queryset(self.filter_queryset(self.get_queryset())) or [])
        self._writes = impersonation_writes(logs=page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(parameters=[MINE_PARAMETER])
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        log = self.get_object()
        self._writes = impersonation_writes(logs=[log])
        return Response(self.get_serializer(log).data)


__all__ = ["ImpersonationLogViewSet", "ImpersonationStartView", "ImpersonationStatusView", "ImpersonationStopView"]
