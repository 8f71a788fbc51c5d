from typing import Any

import django_filters
from django.db.models import F, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from campaigns.analytics import campaign_funnel
from campaigns.engine import execution_resolve
from campaigns.models import (
    Campaign,
    CampaignEnrollment,
    CampaignStep,
    CampaignStepExecution,
    CampaignTemplate,
    CampaignTrigger,
    CampaignVersion,
    EnrollmentSource,
    EnrollmentStatus,
    ExecutionStatus,
    ExitReason,
    SkipReason,
    VersionStatus,
)
from campaigns.selectors import campaign_simulate, template_preview
from campaigns.serializers import (
    AnalyticsQuerySerializer,
    CampaignEnrollmentSerializer,
    CampaignFunnelSerializer,
    CampaignSerializer,
    CampaignStepExecutionSerializer,
    CampaignStepSerializer,
    CampaignTemplateSerializer,
    CampaignTriggerSerializer,
    CampaignVersionSerializer,
    EnrollResultSerializer,
    EnrollSerializer,
    FromTemplateSerializer,
    PreviewSerializer,
    PublishSerializer,
    ResolveSerializer,
    SimulateSerializer,
    UnenrollSerializer,
)
from campaigns.services import (
    CONTACTS,
    DRY_RUN_SHOWN,
    campaign_archive,
    campaign_create,
    campaign_delete,
    campaign_enroll,
    campaign_from_template,
    campaign_pause,
    campaign_publish,
    campaign_purge,
    campaign_restore,
    campaign_resume,
    campaign_unenroll,
    campaign_update,
    enrollment_delete,
    step_create,
    step_delete,
    step_update,
    template_create,
    template_delete,
    template_update,
    templates_visible,
    trigger_create,
    trigger_delete,
    trigger_update,
)
from contacts.models import Contact
from crm.api.errors import CONFLICT_RESPONSE, INVALID_BY_RULE_RESPONSE
from crm.api.filtersets import IdFilter
from crm.api.views import SoftDeleteViewSet, TenantScopedViewSet, query_flag, restore_schema
from crm.models import Role
from crm.request import TenantRequest

DRY_RUN = OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="true: say who would enter; write nothing.")


def _manager_writes(request: Request) -> Role:
    """Members read campaigns; managers and above change them."""
    return Role.MEMBER if request.method in SAFE_METHODS else Role.MANAGER


def _summary(contact: Contact) -> dict[str, Any]:
    return {"id": contact.pk, "display_name": contact.display_name}


@restore_schema(CampaignSerializer)
class CampaignViewSet(SoftDeleteViewSet):
    """A tenant's campaigns; steps and triggers are edited on the draft version, then published."""

    serializer_class = CampaignSerializer
    ordering_fields = ["name", "created_at", "status", "total_enrolled"]
    ordering = ["name"]
    filterset_fields = ["status", "campaign_type"]

    def required_role(self, request: Request) -> Role:
        if self.action in ("destroy", "restore") or self.wants_deleted():
            return super().required_role(request)  # deleted rows: managers; purging: admins
        return _manager_writes(request)

    def get_tenant_queryset(self) -> QuerySet:
        return Campaign.objects.prefetch_related("versions")

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = campaign_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = campaign_update(
            campaign=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_soft_delete(self, record: Campaign) -> None:
        campaign_delete(campaign=record, actor=self.request.actor)

    def perform_restore(self, record: Campaign) -> Campaign:
        return campaign_restore(campaign=record, actor=self.request.actor)

    def perform_purge(self, record: Campaign) -> None:
        campaign_purge(campaign=record, actor=self.request.actor)

    def _fresh(self, campaign: Campaign) -> Response:
        campaign = self.get_tenant_queryset().get(pk=campaign.pk)
        return Response(self.get_serializer(campaign).data)

    @extend_schema(request=FromTemplateSerializer, responses={201: CampaignSerializer})
    @action(detail=False, methods=["post"], url_path="from-template")
    def from_template(self, request: TenantRequest) -> Response:
        """A draft campaign made from a template, for the office to edit and publish."""
        payload = FromTemplateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        template = templates_visible(tenant_id=request.tenant.pk).filter(pk=payload.validated_data["template"]).first()
        if template is None:
            raise ValidationError(
                {"template": [f'Invalid pk "{payload.validated_data["template"]}" - object does not exist.']}
            )
        campaign = campaign_from_template(
            actor=request.actor, template=template, name=payload.validated_data.get("name", "")
        )
        response = self._fresh(campaign)
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(
        request=PublishSerializer,
        responses={200: CampaignSerializer, 400: INVALID_BY_RULE_RESPONSE, 409: CONFLICT_RESPONSE},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Validate and publish the draft version; `step_mapping` moves enrollments in flight onto it."""
        payload = PublishSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        campaign = self.get_object()
        campaign_publish(
            campaign=campaign, actor=request.actor, step_mapping=payload.validated_data.get("step_mapping")
        )
        return self._fresh(campaign)

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def pause(self, request: TenantRequest, pk: str | None = None) -> Response:
        return self._fresh(campaign_pause(campaign=self.get_object(), actor=request.actor))

    @extend_schema(request=None, responses={200: CampaignSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def resume(self, request: TenantRequest, pk: str | None = None) -> Response:
        return self._fresh(campaign_resume(campaign=self.get_object(), actor=request.actor))

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def archive(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Archive for good: everyone in flight exits (`archived`)."""
        return self._fresh(campaign_archive(campaign=self.get_object(), actor=request.actor))

    @extend_schema(
        request=EnrollSerializer, parameters=[DRY_RUN], responses={200: EnrollResultSerializer, 409: CONFLICT_RESPONSE}
    )
    @action(detail=True, methods=["post"])
    def enroll(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Enroll chosen contacts, or all matching a filter tree; `?dry_run=true` says who would and why not."""
        dry_run = query_flag(request, "dry_run")
        campaign = self.get_object()
        payload = EnrollSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        if "filter" in payload.validated_data:
            from filters.services import filter_queryset

            contacts = list(
                filter_queryset(actor=request.actor, entity_type=CONTACTS, tree=payload.validated_data["filter"])
                .filter(tenant=request.tenant)
                .order_by("pk")
            )
        else:
            contacts = payload.validated_data["contacts"]
        result = campaign_enroll(
            campaign=campaign, actor=request.actor, contacts=contacts, source=EnrollmentSource.API, dry_run=dry_run
        )
        by_id = {contact.pk: contact for contact in contacts}
        counts: dict[str, int] = {}
        for reason in result.refused.values():
            counts[reason] = counts.get(reason, 0) + 1
        body = {
            "dry_run": dry_run,
            "count": result.count,
            "entering": [_summary(contact) for contact in result.entered[:DRY_RUN_SHOWN]],
            "refused_counts": counts,
            "refused": [
                {"contact": _summary(by_id[pk]), "reason": reason}
                for pk, reason in list(result.refused.items())[:DRY_RUN_SHOWN]
            ],
        }
        return Response(EnrollResultSerializer(body).data)

    @extend_schema(request=UnenrollSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def unenroll(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Take contacts out (their enrollments in flight exit with `unenrolled`)."""
        campaign = self.get_object()
        payload = UnenrollSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        count = campaign_unenroll(campaign=campaign, actor=request.actor, contacts=payload.validated_data["contacts"])
        return Response({"unenrolled": count})

    @extend_schema(request=SimulateSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def simulate(self, request: TenantRequest, pk: str | None = None) -> Response:
        """A dry run over real contacts: who would enter, what each would get and when, sends per day
        per step after business hours and caps. Sends and writes nothing."""
        campaign = self.get_object()
        payload = SimulateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        return Response(campaign_simulate(campaign=campaign, actor=request.actor, **payload.validated_data))

    @extend_schema(parameters=[AnalyticsQuerySerializer], responses={200: CampaignFunnelSerializer})
    @action(detail=True, methods=["get"])
    def analytics(self, request: TenantRequest, pk: str | None = None) -> Response:
        """The funnel per step and variant (all time, with each A/B decision), the campaign's totals,
        and its daily (weekly, monthly) rows, as the analytics task last counted them."""
        campaign = self.get_object()
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        funnel = campaign_funnel(campaign_id=campaign.pk, period_type=query.validated_data["period_type"])
        return Response(CampaignFunnelSerializer(funnel).data)


class CampaignChildViewSet(TenantScopedViewSet):
    """Rows of one campaign (`/campaigns/{campaign_pk}/...`): another tenant's campaign is a 404."""

    filter_backends: list = []
    pagination_class = None

    def required_role(self, request: Request) -> Role:
        return _manager_writes(request)

    def campaign(self) -> Campaign:
        return get_object_or_404(Campaign.objects.alive(), tenant=self.request.tenant, pk=self.kwargs["campaign_pk"])

    def version_shown(self) -> int | None:
        """`?version=<id>`, else the draft version, else the active one."""
        campaign = self.campaign()
        raw = self.request.query_params.get("version")
        if raw:
            if not raw.isdigit() or not campaign.versions.filter(pk=int(raw)).exists():
                raise ValidationError({"version": [f"Not a version of this campaign: {raw!r}."]})
            return int(raw)
        draft = campaign.versions.filter(status=VersionStatus.DRAFT).values_list("pk", flat=True).first()
        return draft or campaign.active_version_id

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        queryset = queryset.filter(campaign=self.campaign())
        if self.action == "list":
            queryset = queryset.filter(version_id=self.version_shown())
        return queryset


def child_writes_conflict(serializer: type) -> dict[str, Any]:
    """A write to a step or trigger answers 409 when the campaign's state forbids it (archived,
    or the row belongs to a version that is no longer editable)."""
    return {
        "create": extend_schema(responses={201: serializer, 409: CONFLICT_RESPONSE}),
        "update": extend_schema(responses={200: serializer, 409: CONFLICT_RESPONSE}),
        "partial_update": extend_schema(responses={200: serializer, 409: CONFLICT_RESPONSE}),
        "destroy": extend_schema(responses={204: None, 409: CONFLICT_RESPONSE}),
    }


VERSION_PARAMETER = OpenApiParameter(
    "version", OpenApiTypes.INT, description="A version's id (default: the draft, else the active version)."
)


@extend_schema(parameters=[VERSION_PARAMETER])
@extend_schema_view(**child_writes_conflict(CampaignStepSerializer))
class CampaignStepViewSet(CampaignChildViewSet):
    """The steps of a version; writes go to the draft version (made from the active one when needed)."""

    serializer_class = CampaignStepSerializer

    def get_tenant_queryset(self) -> QuerySet:
        return CampaignStep.objects.select_related("version", "ab_decision").order_by("step_order")

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = step_create(
            actor=self.request.actor, campaign=self.campaign(), **serializer.validated_data
        )

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = step_update(
            step=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: CampaignStep) -> None:
        step_delete(step=instance, actor=self.request.actor)


@extend_schema(parameters=[VERSION_PARAMETER])
@extend_schema_view(**child_writes_conflict(CampaignTriggerSerializer))
class CampaignTriggerViewSet(CampaignChildViewSet):
    serializer_class = CampaignTriggerSerializer

    def get_tenant_queryset(self) -> QuerySet:
        return CampaignTrigger.objects.select_related("version").order_by("-priority", "pk")

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = trigger_create(
            actor=self.request.actor, campaign=self.campaign(), **serializer.validated_data
        )

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = trigger_update(
            trigger=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: CampaignTrigger) -> None:
        trigger_delete(trigger=instance, actor=self.request.actor)


class CampaignVersionViewSet(CampaignChildViewSet):
    serializer_class = CampaignVersionSerializer
    http_method_names = ["get", "head", "options"]

    def get_tenant_queryset(self) -> QuerySet:
        return CampaignVersion.objects.order_by("-number")

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(campaign=self.campaign())


class EnrollmentFilterSet(django_filters.FilterSet):
    campaign = IdFilter()
    contact = IdFilter()
    status = django_filters.MultipleChoiceFilter(choices=EnrollmentStatus.choices)
    exit_reason = django_filters.MultipleChoiceFilter(choices=ExitReason.choices)

    class Meta:
        model = CampaignEnrollment
        fields: list[str] = []


class CampaignEnrollmentViewSet(TenantScopedViewSet):
    """Who is (or was) in which campaign; read by members, removed for good by admins."""

    serializer_class = CampaignEnrollmentSerializer
    filterset_class = EnrollmentFilterSet
    http_method_names = ["get", "head", "options", "delete"]
    ordering_fields = ["enrolled_at", "status", "next_step_scheduled_at"]
    ordering = ["-enrolled_at"]

    def required_role(self, request: Request) -> Role:
        return Role.MEMBER if request.method in SAFE_METHODS else Role.ADMIN

    def get_tenant_queryset(self) -> QuerySet:
        return CampaignEnrollment.objects.all()

    def perform_destroy(self, instance: CampaignEnrollment) -> None:
        enrollment_delete(enrollment=instance, actor=self.request.actor)


class ExecutionFilterSet(django_filters.FilterSet):
    campaign = IdFilter(field_name="enrollment__campaign")
    enrollment = IdFilter()
    step = IdFilter()
    status = django_filters.MultipleChoiceFilter(choices=ExecutionStatus.choices)
    skip_reason = django_filters.MultipleChoiceFilter(choices=SkipReason.choices)

    class Meta:
        model = CampaignStepExecution
        fields: list[str] = []


@extend_schema_view(create=extend_schema(exclude=True))  # POST is for resolve/ only: the engine writes rows
class CampaignStepExecutionViewSet(TenantScopedViewSet):
    """The send ledger: every step run (or due) for every enrollment; managers resolve `unknown` sends."""

    serializer_class = CampaignStepExecutionSerializer
    filterset_class = ExecutionFilterSet
    http_method_names = ["get", "head", "options", "post"]
    ordering_fields = ["scheduled_at", "completed_at", "status"]
    ordering = ["-scheduled_at", "-id"]

    def required_role(self, request: Request) -> Role:
        return Role.MEMBER if request.method in SAFE_METHODS else Role.MANAGER

    def get_tenant_queryset(self) -> QuerySet:
        return CampaignStepExecution.objects.annotate(campaign=F("enrollment__campaign_id"))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise MethodNotAllowed("POST")

    @extend_schema(request=ResolveSerializer, responses={200: CampaignStepExecutionSerializer, 409: CONFLICT_RESPONSE})
    @action(detail=True, methods=["post"])
    def resolve(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Decide an `unknown` send: it went out (`mark_sent`), or send it again (`send_again`)."""
        execution = self.get_object()
        payload = ResolveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        execution_resolve(execution=execution, actor=request.actor, resolution=payload.validated_data["resolution"])
        return Response(self.get_serializer(self.get_queryset().get(pk=execution.pk)).data)


@extend_schema_view(
    update=extend_schema(responses={200: CampaignTemplateSerializer, 409: CONFLICT_RESPONSE}),
    partial_update=extend_schema(responses={200: CampaignTemplateSerializer, 409: CONFLICT_RESPONSE}),
    destroy=extend_schema(responses={204: None, 409: CONFLICT_RESPONSE}),  # 409: a default template
)
class CampaignTemplateViewSet(TenantScopedViewSet):
    """The default templates every tenant has, and the tenant's own (managers write their own)."""

    serializer_class = CampaignTemplateSerializer
    filter_backends: list = []

    def required_role(self, request: Request) -> Role:
        return _manager_writes(request)

    def dangerously_get_queryset(self) -> QuerySet:
        # The defaults have no tenant: every tenant reads them (and none may change them).
        if getattr(self, "swagger_fake_view", False):
            return CampaignTemplate.objects.none()
        return CampaignTemplate.objects.filter(Q(tenant__isnull=True) | Q(tenant=self.request.tenant)).order_by(
            "name", "pk"
        )

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = template_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = template_update(
            template=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: CampaignTemplate) -> None:
        template_delete(template=instance, actor=self.request.actor)

    @extend_schema(request=PreviewSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"])
    def preview(self, request: TenantRequest, pk: str | None = None) -> Response:
        """Each step's messages rendered for a chosen contact (and project)."""
        template = self.get_object()
        payload = PreviewSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        return Response(
            template_preview(
                template=template,
                actor=request.actor,
                contact=payload.validated_data["contact"],
                project=payload.validated_data.get("project"),
            )
        )
