from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.analytics import FUNNEL_FIELDS
from campaigns.models import (
    Campaign,
    CampaignAbDecision,
    CampaignAnalytics,
    CampaignEnrollment,
    CampaignStep,
    CampaignStepExecution,
    CampaignTemplate,
    CampaignTrigger,
    CampaignVersion,
    PeriodType,
)
from contacts.models import Contact
from crm.api.fields import TenantPrimaryKeyRelatedField
from crm.api.serializers import TenantModelSerializer, json_field_validator
from crm.models import Project


class CampaignSerializer(TenantModelSerializer):
    draft_version = serializers.SerializerMethodField(help_text="The draft version's id (null: none).")

    class Meta:
        model = Campaign
        exclude = ["tenant"]
        read_only_fields = [
            "status",
            "active_version",
            "total_enrolled",
            "total_completed",
            "total_revenue",
            "created_by",
            "updated_by",
            "created_at",
            "updated_at",
            "is_deleted",
        ]

    def get_draft_version(self, campaign: Campaign) -> int | None:
        return next((version.pk for version in campaign.versions.all() if version.status == "draft"), None)


class CampaignVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignVersion
        fields = ["id", "number", "status", "published_at", "published_by", "step_mapping", "created_at"]
        read_only_fields = fields


class CampaignAbDecisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignAbDecision
        fields = ["metric", "winner", "reason", "z_score", "p_value", "figures", "decided_at"]
        read_only_fields = fields


class CampaignStepSerializer(TenantModelSerializer):
    parent_step = TenantPrimaryKeyRelatedField(CampaignStep, allow_null=True, required=False)
    true_path_step = TenantPrimaryKeyRelatedField(CampaignStep, allow_null=True, required=False)
    false_path_step = TenantPrimaryKeyRelatedField(CampaignStep, allow_null=True, required=False)
    conditions = serializers.JSONField(
        required=False, allow_null=True, validators=[json_field_validator("conditions", dict)]
    )

    ab_decision = serializers.SerializerMethodField(
        help_text="How the step's A/B test ended (null: still testing, or no test)."
    )

    class Meta:
        model = CampaignStep
        exclude = ["tenant", "campaign"]
        read_only_fields = ["version", "total_executed", "total_succeeded", "total_failed", "created_at", "updated_at"]
        extra_kwargs = {"step_order": {"required": False}}

    @extend_schema_field(CampaignAbDecisionSerializer(allow_null=True))
    def get_ab_decision(self, step: CampaignStep) -> dict[str, Any] | None:
        decision = getattr(step, "ab_decision", None)
        return CampaignAbDecisionSerializer(decision).data if decision is not None else None


class CampaignTriggerSerializer(TenantModelSerializer):
    enrollment_conditions = serializers.JSONField(
        required=False, allow_null=True, validators=[json_field_validator("enrollment_conditions", dict)]
    )
    exclusion_conditions = serializers.JSONField(
        required=False, allow_null=True, validators=[json_field_validator("exclusion_conditions", dict)]
    )

    class Meta:
        model = CampaignTrigger
        exclude = ["tenant", "campaign", "watermark_id", "watermark_date"]
        read_only_fields = ["version", "created_at", "updated_at"]


class CampaignTemplateSerializer(TenantModelSerializer):
    is_default = serializers.SerializerMethodField(help_text="A default every tenant has (read-only).")

    class Meta:
        model = CampaignTemplate
        exclude = ["tenant"]
        read_only_fields = ["created_by", "created_at", "updated_at"]

    def get_is_default(self, template: CampaignTemplate) -> bool:
        return template.tenant_id is None


class CampaignEnrollmentSerializer(TenantModelSerializer):
    class Meta:
        model = CampaignEnrollment
        exclude = ["tenant"]
        read_only_fields = [field.name for field in CampaignEnrollment._meta.fields if field.name != "tenant"]


class CampaignStepExecutionSerializer(TenantModelSerializer):
    campaign = serializers.IntegerField(read_only=True, help_text="The enrollment's campaign.")

    class Meta:
        model = CampaignStepExecution
        exclude = ["tenant"]
        read_only_fields = [field.name for field in CampaignStepExecution._meta.fields if field.name != "tenant"]


class ResolveSerializer(serializers.Serializer):
    resolution = serializers.ChoiceField(
        choices=["mark_sent", "send_again"],
        help_text="mark_sent: it went out (the enrollment moves on); send_again: send it once more.",
    )


class FromTemplateSerializer(serializers.Serializer):
    template = serializers.IntegerField(min_value=1, help_text="A default template or one of the tenant's.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)


BIGINT_MAX = 2**63 - 1  # a step id is a bigint


class StepMappingField(serializers.DictField):
    """Old step id -> new step id. Its errors are on `step_mapping` itself, naming the key: a
    client's keys are not field names (DictField would answer `step_mapping.<key>`)."""

    child = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)

    # Keys become ints (step ids), which DRF's annotation (str keys) does not foresee.
    def run_child_validation(self, data: Mapping[str, Any]) -> dict[Any, Any]:
        mapping: dict[int, int] = {}
        for old, new in data.items():
            key = str(old)
            if not (key.isascii() and key.isdigit() and 1 <= int(key) <= BIGINT_MAX):
                raise serializers.ValidationError(f"Keys are step ids; got {key!r}.", code="invalid")
            try:
                mapping[int(key)] = self.child.run_validation(new)
            except serializers.ValidationError as error:
                detail = error.detail[0] if isinstance(error.detail, list) else error.detail
                raise serializers.ValidationError(f"Step {old}: {detail}", code="invalid") from None
        return mapping


class PublishSerializer(serializers.Serializer):
    step_mapping = StepMappingField(
        required=False,
        help_text="Old step id -> step id of the version being published: enrollments there move over.",
    )


class EnrollSerializer(serializers.Serializer):
    contacts = TenantPrimaryKeyRelatedField(
        Contact, many=True, required=False, help_text="The contacts to enroll (at most 1,000)."
    )
    filter = serializers.JSONField(
        required=False,
        help_text="A filter tree: all live contacts matching it.",
        validators=[json_field_validator("filter", dict)],
    )

    def validate_contacts(self, value: list[Contact]) -> list[Contact]:
        if len(value) > 1000:
            raise serializers.ValidationError("At most 1,000 contacts at a time: use a filter for more.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("contacts" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"contacts": ["Give the contacts or a filter (one of them)."]})
        return attrs


class UnenrollSerializer(serializers.Serializer):
    contacts = TenantPrimaryKeyRelatedField(Contact, many=True, allow_empty=False)


class ContactSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class RefusedSerializer(serializers.Serializer):
    contact = ContactSummarySerializer()
    reason = serializers.CharField()


class EnrollResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    count = serializers.IntegerField(help_text="How many enter (would enter, in a dry run).")
    entering = ContactSummarySerializer(many=True, help_text="The first 20 who enter.")
    refused_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Reason -> how many.")
    refused = RefusedSerializer(many=True, help_text="The first 20 who do not, and why.")


class PreviewSerializer(serializers.Serializer):
    contact = TenantPrimaryKeyRelatedField(Contact)
    project = TenantPrimaryKeyRelatedField(Project, required=False, allow_null=True)


class SimulateSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=90, default=14)
    sample_size = serializers.IntegerField(min_value=1, max_value=500, default=100)
    contacts = TenantPrimaryKeyRelatedField(Contact, many=True, required=False, help_text="Default: a sample.")


class CampaignAnalyticsSerializer(serializers.ModelSerializer):
    class Meta:
        model = CampaignAnalytics
        exclude = ["id", "tenant", "campaign", "step", "variant"]
        read_only_fields = [field.name for field in CampaignAnalytics._meta.fields]


class VariantFunnelSerializer(serializers.ModelSerializer):
    variant = serializers.CharField()

    class Meta:
        model = CampaignAnalytics
        fields = ["variant", *FUNNEL_FIELDS]
        read_only_fields = fields


class StepFunnelSerializer(serializers.ModelSerializer):
    step = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version's number.")
    step_order = serializers.IntegerField()
    name = serializers.CharField()
    step_type = serializers.CharField()
    variants = VariantFunnelSerializer(many=True)
    ab_decision = CampaignAbDecisionSerializer(allow_null=True)

    class Meta:
        model = CampaignAnalytics
        fields = ["step", "version", "step_order", "name", "step_type", *FUNNEL_FIELDS, "variants", "ab_decision"]
        read_only_fields = fields


class CampaignFunnelSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    attribution_window_days = serializers.IntegerField(
        help_text="Revenue: projects approved this long after enrolment."
    )
    totals = CampaignAnalyticsSerializer(allow_null=True, help_text="All time (null: not counted yet).")
    steps = StepFunnelSerializer(many=True, help_text="Each step's funnel (all time), with its variants'.")
    period_type = serializers.CharField()
    series = CampaignAnalyticsSerializer(many=True, help_text="The campaign's rows of period_type, newest first.")


class AnalyticsQuerySerializer(serializers.Serializer):
    period_type = serializers.ChoiceField(
        choices=[PeriodType.DAILY, PeriodType.WEEKLY, PeriodType.MONTHLY], default=PeriodType.DAILY, required=False
    )
