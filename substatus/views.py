import datetime as dt
import zoneinfo
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
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
from substatus.filtersets import SubstatusFilterSet
from substatus.models import RECORD_MODELS, Entity, SubstatusConfig, SubstatusHistory
from substatus.selectors import HISTORY_RELATED, substatus_analytics
from substatus.serializers import (
    AnalyticsQuerySerializer,
    AnalyticsSerializer,
    SubstatusHistorySerializer,
    SubstatusReorderSerializer,
    SubstatusSerializer,
)
from substatus.services import substatus_create, substatus_delete, substatus_reorder, substatus_update


# The rules of substatus.services (ApplicationError), on the fields they name.
@extend_validation_errors(["default_required"], field_name="is_default", methods=["post", "put", "patch"])
@extend_validation_errors(
    ["duplicate", "does_not_exist", "several_statuses", "incomplete"], field_name="ids", actions=["reorder"]
)
class SubstatusViewSet(TenantScopedViewSet):
    """The tenant's substatuses: everyone reads; admins and owners configure them."""

    serializer_class = SubstatusSerializer
    filterset_class = SubstatusFilterSet
    ordering_fields = ["entity", "status", "position", "label", "key", "created_at"]
    ordering = ["entity", "status", "position"]

    def required_role(self, request: Request) -> Role:
        return Role.VIEWER if request.method in SAFE_METHODS else Role.ADMIN

    def get_tenant_queryset(self) -> QuerySet:
        return SubstatusConfig.objects.all()

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = substatus_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = substatus_update(
            substatus=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    @extend_schema(responses={204: None, 409: CONFLICT_RESPONSE})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Delete a substatus no record has ever been in; one in use is a 409 (deactivate it instead)."""
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: SubstatusConfig) -> None:
        substatus_delete(substatus=instance, actor=self.request.actor)

    @extend_schema(request=SubstatusReorderSerializer, responses=SubstatusSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request: TenantRequest) -> Response:
        """Order the substatuses of one status: every one of them, in the wanted order."""
        payload = SubstatusReorderSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        ordered = substatus_reorder(actor=request.actor, ids=payload.validated_data["ids"])
        return Response(SubstatusSerializer(ordered, many=True, context=self.get_serializer_context()).data)


class RecordSubstatusHistoryViewSet(TenantScopedViewSet):
    """A record's status and substatus changes, newest first: who, when, why and through what."""

    serializer_class = SubstatusHistorySerializer
    http_method_names = ["get", "head", "options"]
    filter_backends: list = []
    entity: str

    def get_tenant_queryset(self) -> QuerySet:
        return SubstatusHistory.objects.select_related(*HISTORY_RELATED).order_by("-changed_at", "-id")

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(entity=self.entity, record_id=self.kwargs["record_pk"])

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Another tenant's record, or a deleted one, is a 404 like the record itself.
        get_object_or_404(
            RECORD_MODELS[self.entity].objects.alive(), tenant=self.request.tenant, pk=kwargs["record_pk"]
        )
        return super().list(request, *args, **kwargs)


class ContactSubstatusHistoryViewSet(RecordSubstatusHistoryViewSet):
    entity = Entity.CONTACT


class ProjectSubstatusHistoryViewSet(RecordSubstatusHistoryViewSet):
    entity = Entity.PROJECT


@extend_validation_errors(["invalid_choice", "required", "null"], field_name="entity", methods=["get"])
@extend_validation_errors(["max_value", "min_value", "window_too_long"], field_name="from", methods=["get"])
@extend_validation_errors(["max_value", "min_value"], field_name="to", methods=["get"])
class SubstatusAnalyticsView(TenantMixin, APIView):
    """Per status and substatus: records there now, entries in the window, time spent, where they went."""

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses=AnalyticsSerializer)
    def get(self, request: TenantRequest) -> Response:
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        tenant = request.tenant
        now = timezone.now()
        end = query.validated_data.get("to") or now.astimezone(zoneinfo.ZoneInfo(tenant.timezone)).date()
        start = query.validated_data.get("from") or end - dt.timedelta(days=29)
        if start > end:  # `from` alone, after today
            raise ValidationError({"from": ["`from` must not be after `to` (today by default)."]})
        entity = query.validated_data["entity"]
        statuses = substatus_analytics(tenant=tenant, entity=entity, start=start, end=end, now=now)
        result = {"entity": entity, "from": start, "to": end, "timezone": tenant.timezone, "statuses": statuses}
        return Response(AnalyticsSerializer(result).data)
