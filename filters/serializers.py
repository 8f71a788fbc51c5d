from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.api.serializers import TenantModelSerializer
from crm.serializers import UserSummarySerializer
from filters.models import EntityType, FilterConfig, SavedFilter
from filters.selectors import OptionsResolver, config_operators


class OptionSerializer(serializers.Serializer):
    value = serializers.JSONField(help_text="Text, or a user or substatus id.")
    label = serializers.CharField()  # type: ignore[assignment]  # a declared field, not Field.label
    color = serializers.CharField(allow_null=True)


class FilterConfigSerializer(TenantModelSerializer):
    operators = serializers.SerializerMethodField(help_text="The operators this filter allows.")
    options = serializers.SerializerMethodField(
        help_text=(
            "The choices to offer: `filter_options` for select types, the tenant's active members "
            "for user_select, the tags in use (most used first) for tag_select, the tenant's "
            "substatuses (with their status) for substatus."
        )
    )

    class Meta:
        model = FilterConfig
        fields = [
            "id",
            "entity_type",
            "field_name",
            "field_label",
            "field_type",
            "filter_operator",
            "operators",
            "filter_options",
            "options",
            "display_order",
            "is_quick_filter",
            "is_advanced_filter",
            "is_active",
            "custom_field_id",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["custom_field_id", "created_by", "created_at", "updated_at"]
        extra_kwargs = {
            "filter_operator": {"required": False},
            "field_name": {
                "help_text": "A column of the entity, a related path (projects: contact.city, contact.assigned_to; "
                "activities: contact.stage, project.status), substatus, tags, or custom_fields.<key>."
            },
        }

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_operators(self, config: FilterConfig) -> list[str]:
        return config_operators(config)

    @extend_schema_field(OptionSerializer(many=True))
    def get_options(self, config: FilterConfig) -> list[dict[str, Any]]:
        resolver: OptionsResolver = self.context["options"]
        return resolver.options(config)


class FilterConfigReorderSerializer(serializers.Serializer):
    entity_type = serializers.ChoiceField(choices=EntityType.choices)
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=200,
        help_text="Every filter of the entity, in the wanted order.",
    )


class SavedFilterSerializer(TenantModelSerializer):
    filter_criteria = serializers.JSONField(
        help_text="The filter tree (or the old flat format); stored normalised. A valid one clears `is_stale`."
    )
    created_by = UserSummarySerializer(read_only=True, allow_null=True)

    class Meta:
        model = SavedFilter
        fields = [
            "id",
            "entity_type",
            "name",
            "description",
            "filter_criteria",
            "sort",
            "columns",
            "created_by",
            "is_shared",
            "is_default",
            "is_system",
            "is_active",
            "is_stale",
            "stale_reason",
            "usage_count",
            "last_used_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "created_by",
            "is_system",
            "is_stale",
            "stale_reason",
            "usage_count",
            "last_used_at",
            "created_at",
            "updated_at",
        ]

    def validate_columns(self, value: Any) -> list[str]:
        if (
            not isinstance(value, list)
            or len(value) > 100
            or not all(isinstance(c, str) and 0 < len(c) <= 100 for c in value)
        ):
            raise serializers.ValidationError("Expected a list of at most 100 column names.")
        return value


class SavedFilterDuplicateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, help_text='Default: "Copy of <name>".')


class FilterTreeRequestSerializer(serializers.Serializer):
    entity_type = serializers.ChoiceField(choices=EntityType.choices)
    filter = serializers.JSONField(help_text="The filter tree (or the old flat format).")


class FilterValidateResponseSerializer(serializers.Serializer):
    entity_type = serializers.CharField()
    filter = serializers.JSONField(help_text="The normalised tree.")


class FilterCountResponseSerializer(serializers.Serializer):
    entity_type = serializers.CharField()
    count = serializers.IntegerField(help_text="How many live records match.")


class FilterUsageQuerySerializer(serializers.Serializer):
    # `from` is a keyword: the field is declared under another name and renamed below.
    from_ = serializers.DateField(required=False, help_text="First local day (default: 29 days before `to`).")
    to = serializers.DateField(required=False, help_text="Last local day (default: today).")
    entity_type = serializers.ChoiceField(choices=EntityType.choices, required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": True}})
class UsageField(serializers.JSONField):
    pass


class FilterUsageSerializer(serializers.Serializer):
    from_ = serializers.DateField()
    to = serializers.DateField()
    timezone = serializers.CharField()
    entity_type = serializers.CharField(allow_null=True)
    requests = serializers.IntegerField(help_text="Filtered list requests in the window.")
    fields_ = UsageField(help_text="Most used fields: entity_type, field, uses, requests, users.")
    saved_filters = UsageField(help_text="Most used saved filters: id, name, entity_type, uses.")
    unused_fields = UsageField(help_text="Active catalog entries nobody used in the window (candidates to retire).")
    slowest = UsageField(help_text="Fields by the p95 of their requests' duration: entity_type, field, p95_ms, uses.")
    users = UsageField(help_text="Per user: requests and conditions (managers and above: everyone; others: their own).")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        fields["fields"] = fields.pop("fields_")
        return fields
