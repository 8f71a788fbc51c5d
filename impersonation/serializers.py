from typing import Any

from rest_framework import serializers

from crm.serializers import UserSummarySerializer
from impersonation.models import ImpersonationLog
from impersonation.services import DEFAULT_DURATION_MINUTES, MAX_DURATION_MINUTES, MIN_REASON_LENGTH


class ImpersonationStartSerializer(serializers.Serializer):
    target = serializers.IntegerField(min_value=1, help_text="The id of the user to impersonate.")
    reason = serializers.CharField(min_length=MIN_REASON_LENGTH, help_text="Why (kept in the log).")
    ticket = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    duration_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_DURATION_MINUTES, default=DEFAULT_DURATION_MINUTES
    )
    allow_writes = serializers.BooleanField(default=False, help_text="Only owners may allow writes.")


class ImpersonationWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["activity", "substatus_change"])
    id = serializers.IntegerField()
    what = serializers.CharField()
    at = serializers.DateTimeField()


class ImpersonationLogSerializer(serializers.ModelSerializer):
    admin_user = UserSummarySerializer(read_only=True)
    impersonated_user = UserSummarySerializer(read_only=True)

    class Meta:
        model = ImpersonationLog
        fields = [
            "id",
            "admin_user",
            "impersonated_user",
            "status",
            "end_reason",
            "reason",
            "ticket",
            "allow_writes",
            "started_at",
            "expires_at",
            "ended_at",
            "duration_seconds",
            "request_count",
            "write_count",
            "ip_address",
            "user_agent",
        ]
        read_only_fields = fields


class ImpersonationLogWithWritesSerializer(ImpersonationLogSerializer):
    writes = serializers.SerializerMethodField()

    class Meta(ImpersonationLogSerializer.Meta):
        fields = [*ImpersonationLogSerializer.Meta.fields, "writes"]
        read_only_fields = fields

    def get_writes(self, log: ImpersonationLog) -> list[dict[str, Any]]:
        entries = self.context["writes"].get(log.pk, [])
        return ImpersonationWriteSerializer(entries, many=True).data  # type: ignore[return-value]


class ImpersonationStartedSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>` while the session lasts.")
    session = ImpersonationLogSerializer()


class ImpersonationStatusSerializer(serializers.Serializer):
    active = serializers.BooleanField()
    session = ImpersonationLogSerializer(allow_null=True)
