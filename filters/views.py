import datetime as dt
import zoneinfo
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django_filters import rest_framework as django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.errors import CONFLICT_RESPONSE
from crm.api.views import TenantMixin, TenantScopedViewSet
from crm.models import Role
from crm.request import TenantRequest
from filters.models import EntityType, FilterConfig, SavedFilter
from filters.selectors import OptionsResolver, usage_analytics
from filters.serializers import (
    FilterConfigReorderSerializer,
    FilterConfigSerializer,
    FilterCountResponseSerializer,
    FilterTreeRequestSerializer,
    FilterUsageQuerySerializer,
    FilterUsageSerializer,
    FilterValidateResponseSerializer,
    SavedFilterDuplicateSerializer,
    SavedFilterSerializer,
)
from filters.services import (
    filter_compile,
    filter_config_create,
    filter_config_delete,
    filter_config_reorder,
    filter_config_update,
    filter_queryset,
    saved_filter_create,
    saved_filter_delete,
    saved_filter_duplicate,
    saved_filter_set_default,
    saved_filter_update,
    saved_filters_visible,
)


class FilterConfigFilterSet(django_filters.FilterSet):
    entity_type = django_filters.ChoiceFilter(choices=EntityType.choices)
    custom = django_filters.BooleanFilter(
        field_name="custom_field_id", lookup_expr="isnull", exclude=True, help_text="true: custom-field filters only."
    )

    class Meta:
        model = FilterConfig
        fields = ["entity_type", "is_active", "is_quick_filter"]


class FilterConfigViewSet(TenantScopedViewSet):
    """The tenant's filter catalog: what the filter bar offers. Members read; admins and owners edit."""

    serializer_class = FilterConfigSerializer
    filterset_class = FilterConfigFilterSet
    ordering_fields = ["entity_type", "display_order", "field_label", "created_at"]
    ordering = ["entity_type", "display_order"]

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER if request.method in SAFE_METHODS else Role.ADMIN

    def get_tenant_queryset(self) -> QuerySet:
        return FilterConfig.objects.all()

    def get_serializer_context(self) -> dict[str, Any]:
        # Dynamic options (members, tags, substatuses) computed once for the whole page.
        tenant = getattr(self.request, "tenant", None)
        return {**super().get_serializer_context(), "options": OptionsResolver(tenant) if tenant else None}

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = filter_config_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = filter_config_update(
            config=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: FilterConfig) -> None:
        filter_config_delete(config=instance, actor=self.request.actor)

    @extend_schema(request=FilterConfigReorderSerializer, responses=FilterConfigSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request: TenantRequest) -> Response:
        """Order the filters of one entity: every one of them, in the wanted order."""
        payload = FilterConfigReorderSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ordered = filter_config_reorder(actor=request.actor, **payload.validated_data)
        return Response(FilterConfigSerializer(ordered, many=True, context=self.get_serializer_context()).data)


class SavedFilterFilterSet(django_filters.FilterSet):
    entity_type = django_filters.ChoiceFilter(choices=EntityType.choices)

    class Meta:
        model = SavedFilter
        fields = ["entity_type", "is_system", "is_shared", "is_default", "is_active", "is_stale"]


@extend_validation_errors(["invalid_filter"], field_name="filter", methods=["post", "put", "patch"])
@extend_validation_errors(["not_owner"], field_name="is_default", actions=["set_default"])
class SavedFilterViewSet(TenantScopedViewSet):
    """Saved filters: members see their own and the shared ones and change their own; admins and
    owners everything. System filters cannot be deleted (admins deactivate them)."""

    serializer_class = SavedFilterSerializer
    filterset_class = SavedFilterFilterSet
    ordering_fields = ["name", "entity_type", "usage_count", "last_used_at", "created_at"]
    ordering = ["entity_type", "name"]

    def get_tenant_queryset(self) -> QuerySet:
        return SavedFilter.objects.select_related("created_by")

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        visible = saved_filters_visible(actor=self.request.actor, role=self.request.membership.role_enum)
        return queryset.filter(pk__in=visible.values("pk"))

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = saved_filter_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = saved_filter_update(
            saved_filter=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    @extend_schema(responses={204: None, 403: OpenApiResponse(description="Not yours."), 409: CONFLICT_RESPONSE})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete a saved filter you may change; a system filter is a 409."""
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: SavedFilter) -> None:
        saved_filter_delete(saved_filter=instance, actor=self.request.actor)

    @extend_schema(request=SavedFilterDuplicateSerializer, responses={201: SavedFilterSerializer})
    @action(detail=True, methods=["post"])
    def duplicate(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Your own private copy of a filter you can see."""
        payload = SavedFilterDuplicateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        copy = saved_filter_duplicate(saved_filter=self.get_object(), actor=request.actor, **payload.validated_data)
        return Response(self.get_serializer(copy).data, status=201)

    @extend_schema(request=None, responses=SavedFilterSerializer)
    @action(detail=True, methods=["post"], url_path="set-default")
    def set_default(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Make one of your own filters the one the list opens with (one per entity)."""
        saved = saved_filter_set_default(saved_filter=self.get_object(), actor=request.actor)
        return Response(self.get_serializer(saved).data)


class FilterValidateView(TenantMixin, APIView):
    @extend_schema(request=FilterTreeRequestSerializer, responses=FilterValidateResponseSerializer)
    def post(self, request: TenantRequest) -> Response:
        """The normalised tree, or a 400 with one error per problem, each naming its node's path."""
        payload = FilterTreeRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        entity_type = payload.validated_data["entity_type"]
        compiled = filter_compile(actor=request.actor, entity_type=entity_type, tree=payload.validated_data["filter"])
        return Response({"entity_type": entity_type, "filter": compiled.tree})

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER


class FilterCountView(TenantMixin, APIView):
    @extend_schema(request=FilterTreeRequestSerializer, responses=FilterCountResponseSerializer)
    def post(self, request: TenantRequest) -> Response:
        """How many live records the tree matches (the SPA shows it while the filter is built)."""
        payload = FilterTreeRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        entity_type = payload.validated_data["entity_type"]
        matched = filter_queryset(actor=request.actor, entity_type=entity_type, tree=payload.validated_data["filter"])
        return Response({"entity_type": entity_type, "count": matched.count()})

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER


class FilterUsageView(TenantMixin, APIView):
    @extend_schema(parameters=[FilterUsageQuerySerializer], responses=FilterUsageSerializer)
    def get(self, request: TenantRequest) -> Response:
        """Filter usage in a window of local days: managers and above see everyone's, others their own."""
        query = FilterUsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tenant = request.tenant
        today = timezone.now().astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date()
        end = query.validated_data.get("to") or today
        start = query.validated_data.get("from") or end - dt.timedelta(days=29)
        if start > end:
            raise ValidationError({"from": ["`from` must not be after `to` (today by default)."]})
        everyone = request.membership.role_enum.at_least(Role.MANAGER)
        result = usage_analytics(
            tenant=tenant,
            start=start,
            end=end,
            entity_type=query.validated_data.get("entity_type"),
            user_id=None if everyone else request.user.pk,
        )
        return Response(FilterUsageSerializer(result).data)
