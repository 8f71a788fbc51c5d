from typing import Any, cast

from django.contrib.auth import authenticate, logout, user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularSwaggerView
from drf_standardized_errors.openapi_serializers import ErrorResponse429Serializer
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import exceptions, generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.errors import CONFLICT_RESPONSE
from crm.api.views import ActorPublishedMixin, SoftDeleteViewSet, TenantMixin, TenantScopedViewSet, restore_schema
from crm.auth import lockout_seconds
from crm.filtersets import ActivityFilterSet, MembershipFilterSet, ProjectFilterSet
from crm.invitations import invitation_from_token
from crm.models import Activity, ActivityQuerySet, AuthToken, Membership, Project, ProjectContact, Role, User
from crm.rls import cross_tenant
from crm.serializers import (
    ActivitySerializer,
    AuthTokenSerializer,
    InvitationAcceptSerializer,
    InvitationSerializer,
    InvitationTokenSerializer,
    MembershipCreateSerializer,
    MembershipSerializer,
    MeSerializer,
    ProjectContactSerializer,
    ProjectSerializer,
    TenantSerializer,
    TenantSummarySerializer,
    TokenRequestSerializer,
    TokenSerializer,
)
from crm.services import (
    NewAccountFields,
    activity_create,
    activity_delete,
    activity_update,
    auth_token_create,
    auth_token_revoke,
    auth_tokens_revoke_all,
    membership_invitation_accept,
    membership_invitation_resend,
    membership_invite,
    membership_remove,
    membership_update,
    project_contact_add,
    project_contact_remove,
    project_create,
    project_delete,
    project_purge,
    project_restore,
    project_update,
    tenant_update,
)


@restore_schema(ProjectSerializer)
@extend_validation_errors(["cycle"], field_name="parent_project", methods=["post", "put", "patch"])
class ProjectViewSet(SoftDeleteViewSet):
    """Roofing jobs."""

    serializer_class = ProjectSerializer
    filterset_class = ProjectFilterSet
    filter_entity = "projects"
    ordering_fields = [
        "created_at",
        "updated_at",
        "name",
        "project_number",
        "status",
        "substatus_since",
        "estimated_value",
        "scheduled_start",
        "estimated_completion",
    ]
    ordering = ["-created_at"]

    def get_tenant_queryset(self) -> QuerySet:
        return Project.objects.all()

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = project_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = project_update(
            project=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_soft_delete(self, record: Project) -> None:
        project_delete(project=record, actor=self.request.actor)

    def perform_restore(self, record: Project) -> Project:
        return project_restore(project=record, actor=self.request.actor)

    def perform_purge(self, record: Project) -> None:
        project_purge(project=record, actor=self.request.actor)


@extend_schema_view(
    **{
        action: extend_schema(
            parameters=[OpenApiParameter("project_pk", int, OpenApiParameter.PATH, description="The project's id.")]
        )
        for action in ("list", "create", "retrieve", "destroy")
    }
)
class ProjectContactViewSet(TenantScopedViewSet):
    """A job's other parties: the adjuster, sub-contractors, the organization it came through."""

    serializer_class = ProjectContactSerializer
    http_method_names = ["get", "post", "delete", "head", "options"]
    ordering_fields = ["role", "created_at"]
    ordering = ["role", "id"]

    def project(self) -> Project:
        """The live project of the URL, in the request's tenant; any other id is a 404."""
        if not hasattr(self, "_project"):
            self._project = get_object_or_404(
                Project.objects.alive(), tenant=self.request.tenant, pk=self.kwargs["project_pk"]
            )
        return self._project

    def get_tenant_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return ProjectContact.objects.none()
        return ProjectContact.objects.filter(project=self.project()).select_related("contact")

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = project_contact_add(
            actor=self.request.actor, project=self.project(), **serializer.validated_data
        )

    def perform_destroy(self, instance: ProjectContact) -> None:
        project_contact_remove(actor=self.request.actor, project_contact=instance)


@extend_validation_errors(["notice"], field_name="type", methods=["post", "put", "patch"])
class ActivityViewSet(TenantScopedViewSet):
    """Calls, emails, SMS, meetings, notes, tasks and door knocks; and the notices addressed to
    you (`type` `notice`, e.g. "your account was viewed"), which nobody else sees."""

    serializer_class = ActivitySerializer
    filterset_class = ActivityFilterSet
    filter_entity = "activities"
    ordering_fields = ["created_at", "scheduled_at", "completed_at", "reminder_at", "type"]
    ordering = ["-created_at"]
    action_roles = {"destroy": Role.MANAGER}

    def get_tenant_queryset(self) -> QuerySet:
        return Activity.objects.all()

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        """A notice is its recipient's only: everyone else's are as if they did not exist (404)."""
        return cast(ActivityQuerySet, queryset).visible_to(self.request.actor.user)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = activity_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = activity_update(
            activity=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: Activity) -> None:
        activity_delete(activity=instance, actor=self.request.actor)


@extend_validation_errors(["does_not_exist"], field_name="email", actions=["create"])
class MembershipViewSet(TenantScopedViewSet):
    """The tenant's members: everyone reads; admins and owners add, change and remove."""

    serializer_class = MembershipSerializer
    filterset_class = MembershipFilterSet
    ordering_fields = ["joined_at", "role", "user__username"]
    ordering = ["user__username"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER if request.method in ("GET", "HEAD", "OPTIONS") else Role.ADMIN

    def get_tenant_queryset(self) -> QuerySet:
        return Membership.objects.select_related("user")

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        """Invitations (pending memberships) are the admins' business only."""
        if self.request.membership.role_enum.at_least(Role.ADMIN):
            return queryset
        return queryset.exclude(status=Membership.Status.PENDING)

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer, 409: CONFLICT_RESPONSE})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Invite someone by email: a pending membership, the same whether the email has an account or not."""
        payload = MembershipCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = membership_invite(
            actor=self.request.actor, email=payload.validated_data["email"], role=payload.validated_data["role"]
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: MembershipSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, pk: str | None = None) -> Response:
        """Email a pending invitation again, with a new link (the earlier links stop working)."""
        membership = membership_invitation_resend(actor=self.request.actor, membership=self.get_object())
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={200: MembershipSerializer, 409: CONFLICT_RESPONSE})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().partial_update(request, *args, **kwargs)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = membership_update(
            actor=self.request.actor, membership=serializer.instance, **serializer.validated_data
        )

    @extend_schema(responses={204: None, 409: CONFLICT_RESPONSE})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: Membership) -> None:
        membership_remove(actor=self.request.actor, membership=instance)


@extend_validation_errors(["invalid_setting"], field_name="settings", methods=["patch"])
class TenantView(TenantMixin, generics.GenericAPIView):
    """The request's tenant: every member reads it; admins change its profile, owners also its
    subdomain and custom domain, Ridgeline's operators its subscription, limits and `is_active`."""

    serializer_class = TenantSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER if request.method in ("GET", "HEAD", "OPTIONS") else Role.ADMIN

    def get(self, request: Request) -> Response:
        return Response(self.get_serializer(self.request.tenant).data)

    def patch(self, request: Request) -> Response:
        payload = self.get_serializer(self.request.tenant, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        tenant = tenant_update(tenant=self.request.tenant, actor=self.request.actor, **payload.validated_data)
        return Response(self.get_serializer(tenant).data)


# Before any tenant is known: the invitation a signed token names, read and accepted on the
# logged cross-tenant path (row-level security, issue 17).
INVITATION_LOOKUP = "invitations: the invitation a signed token names"


class InvitationAcceptView(ActorPublishedMixin, APIView):
    """An invitation's link: GET shows what it offers; POST accepts it, signed in with the
    invited email, or creating the account for that email (username and password)."""

    permission_classes = [AllowAny]

    @extend_schema(parameters=[InvitationTokenSerializer], responses={200: InvitationSerializer})
    def get(self, request: Request) -> Response:
        payload = InvitationTokenSerializer(data=request.query_params)
        payload.is_valid(raise_exception=True)
        with cross_tenant(INVITATION_LOOKUP):
            return Response(InvitationSerializer(invitation_from_token(payload.validated_data["token"])).data)

    @extend_schema(request=InvitationAcceptSerializer, responses={200: TenantSummarySerializer, 409: CONFLICT_RESPONSE})
    def post(self, request: Request) -> Response:
        payload = InvitationAcceptSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        user = request.user if request.user.is_authenticated else None
        account: NewAccountFields | None = None
        if user is None and "username" in data:
            account = {
                "username": data["username"],
                "password": data["password"],
                "first_name": data["first_name"],
                "last_name": data["last_name"],
            }
        with cross_tenant(INVITATION_LOOKUP):
            membership = membership_invitation_accept(token=data["token"], user=user, account=account)
        return Response(TenantSummarySerializer(membership).data)


class MeView(ActorPublishedMixin, APIView):
    """The signed-in user and the tenants they can act in (for a tenant switcher)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)


@extend_validation_errors(["authorization"], field_name="non_field_errors", methods=["post"])
class TokenView(APIView):
    """Exchange a username (or email) and password for a new API token.

    Failed attempts are counted per client address and per account (django-axes): past
    `LOGIN_FAILURE_LIMIT` every attempt, even with the right password, is a 429 with
    `Retry-After`.
    """

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: TokenSerializer,
            429: OpenApiResponse(ErrorResponse429Serializer, description="Too many failed attempts."),
        },
    )
    def post(self, request: Request) -> Response:
        credentials = TokenRequestSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request=request, **credentials.validated_data)
        if user is None:
            if getattr(request, "axes_locked_out", False):
                raise exceptions.Throttled(wait=lockout_seconds())
            error = ErrorDetail("Unable to log in with provided credentials.", code="authorization")
            raise exceptions.ValidationError({"non_field_errors": [error]})
        token, secret = auth_token_create(user=user)
        # Django's log-in signal: sets last_login and clears the account's failed attempts (axes).
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response(TokenSerializer({"token": secret, "expiry": token.expiry}).data)


class AuthTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The signed-in user's live API tokens; deleting one revokes it. Never the token itself."""

    serializer_class = AuthTokenSerializer
    permission_classes = [IsAuthenticated]
    ordering_fields = ["created", "expiry", "last_used_at"]
    ordering = ["-created"]

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return AuthToken.objects.none()
        return AuthToken.objects.filter(user=self.request.user, expiry__gt=timezone.now())

    def perform_destroy(self, instance: AuthToken) -> None:
        auth_token_revoke(token=instance)


def end_session(request: Request) -> None:
    """Log out the Django session the request came with, if it came with one."""
    if not isinstance(request.auth, AuthToken):
        logout(request._request)


class LogoutView(APIView):
    """End the credential this request was made with: its token, or its session."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, AuthToken):
            auth_token_revoke(token=request.auth)
        end_session(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revoke every API token of the user (and end this request's session, if any)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        auth_tokens_revoke_all(user=cast(User, request.user))  # IsAuthenticated: not anonymous
        end_session(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiDocsView(SpectacularSwaggerView):
    """Swagger UI. When the docs are closed (`API_DOCS_PUBLIC=false`), a visitor who is not
    signed in is sent to the admin's log-in page and back."""

    # A redirect, not a DRF Response: the page's renderer would need a template for one.
    def handle_exception(self, exc: Exception) -> HttpResponseBase:  # type: ignore[override]
        if isinstance(exc, exceptions.NotAuthenticated):
            return redirect_to_login(self.request.get_full_path(), reverse("admin:login"))
        return super().handle_exception(exc)
