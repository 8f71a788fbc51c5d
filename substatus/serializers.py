import datetime as dt
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework import serializers

from crm.api.fields import TenantPrimaryKeyRelatedField
from crm.api.serializers import TenantModelSerializer
from crm.serializers import UserSummarySerializer
from substatus.models import Entity, SubstatusConfig, SubstatusHistory


class SubstatusSerializer(TenantModelSerializer):
    auto_transition_to = TenantPrimaryKeyRelatedField(
        SubstatusConfig,
        allow_null=True,
        required=False,
        help_text="Another substatus of the same status that records move to after the delay.",
    )

    class Meta:
        model = SubstatusConfig
        exclude = ["tenant"]
        read_only_fields = ["created_by", "created_at", "updated_at"]


class SubstatusReorderSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=200,
        help_text="Every substatus of one status, in the wanted order.",
    )


class SubstatusSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = SubstatusConfig
        fields = ["id", "key", "label", "color", "is_active"]
        read_only_fields = fields


class SubstatusHistorySerializer(serializers.ModelSerializer):
    from_substatus = SubstatusSummarySerializer(read_only=True, allow_null=True)
    to_substatus = SubstatusSummarySerializer(read_only=True, allow_null=True)
    changed_by = UserSummarySerializer(read_only=True, allow_null=True)
    impersonated_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = SubstatusHistory
        fields = [
            "id",
            "from_status",
            "to_status",
            "from_substatus",
            "to_substatus",
            "before",
            "after",
            "changed_by",
            "impersonated_by",
            "reason",
            "source",
            "changed_at",
        ]
        read_only_fields = fields


class _FromToMixin(serializers.Serializer):
    # `from` is a Python keyword: the fields are declared as `start` and `end`, named `from` and `to`.

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields


# Days far enough from the calendar's ends that a window around them is still a date.
ANALYTICS_DATE_VALIDATORS = [MinValueValidator(dt.date(1900, 1, 1)), MaxValueValidator(dt.date(2999, 12, 31))]


class AnalyticsQuerySerializer(_FromToMixin, serializers.Serializer):
    """The window, in whole days of the tenant's time zone."""

    entity = serializers.ChoiceField(choices=Entity.choices)
    start = serializers.DateField(
        required=False,
        validators=ANALYTICS_DATE_VALIDATORS,
        help_text="First day, in the tenant's time zone (default: 29 days before `to`).",
    )
    end = serializers.DateField(
        required=False,
        validators=ANALYTICS_DATE_VALIDATORS,
        help_text="Last day, included (default: today, tenant's time zone).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and start > end:
            raise serializers.ValidationError({"from": ["`from` must not be after `to`."]})
        return attrs


class StayStatsSerializer(serializers.Serializer):
    current = serializers.IntegerField(help_text="Live records there now.")
    entries = serializers.IntegerField(help_text="Times records entered it during the window.")
    avg_seconds = serializers.FloatField(allow_null=True, help_text="Average time those entries lasted.")
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True, help_text="90th percentile.")
    next_statuses = serializers.DictField(
        child=serializers.FloatField(), help_text="Status -> share of the entries that moved on to it."
    )


class SubstatusStatsSerializer(StayStatsSerializer):
    id = serializers.IntegerField(allow_null=True, help_text="Null: records without a substatus.")
    key = serializers.CharField(allow_null=True)
    # A declared field: DRF's metaclass takes it out of the class, so Field.label stays.
    label = serializers.CharField()  # type: ignore[assignment]
    is_active = serializers.BooleanField()


class StatusStatsSerializer(StayStatsSerializer):
    status = serializers.CharField()
    substatuses = SubstatusStatsSerializer(many=True)


class AnalyticsSerializer(_FromToMixin, serializers.Serializer):
    """Time in each status and substatus of contacts or projects, from `from` to `to` (both included)."""

    entity = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    timezone = serializers.CharField()
    statuses = StatusStatsSerializer(many=True)
