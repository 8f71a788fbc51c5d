from rest_framework import serializers

from ai_chat.models import Conversation, Message
from crm.api.serializers import TenantModelSerializer

# Kept by the database or the services, never written through the API.
CONVERSATION_READ_ONLY = [
    "user",
    "is_active",
    "legal_hold",
    "provider",
    "model",
    "last_message_at",
    "message_count",
    "prompt_tokens",
    "completion_tokens",
    "total_cost",
    "created_at",
    "updated_at",
]


class ConversationSerializer(TenantModelSerializer):
    title = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="Empty: the first words of the first message."
    )

    class Meta:
        model = Conversation
        fields = ["id", "title", "pinned", "metadata", *CONVERSATION_READ_ONLY]
        read_only_fields = CONVERSATION_READ_ONLY


class MessageSerializer(TenantModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id",
            "conversation",
            "role",
            "content",
            "function_call",
            "tool_call_id",
            "tool_name",
            "result",
            "metadata",
            "user",
            "on_behalf_of",
            "provider",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "latency_ms",
            "error",
            "created_at",
        ]
        read_only_fields = fields


class MessageCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=20_000, help_text="What the user asks the assistant.")

    def validate_content(self, value: str) -> str:
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        return value


class TurnUsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)


class ReplySerializer(serializers.Serializer):
    """The answer to a user message: every message the turn stored, the reply last."""

    messages = MessageSerializer(many=True)
    usage = TurnUsageSerializer()


class UsageRowSerializer(serializers.Serializer):
    user = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    provider = serializers.CharField()
    model = serializers.CharField()
    messages = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=14, decimal_places=6)


class AIUsageSerializer(serializers.Serializer):
    # `from` is a keyword: the fields are declared under other names and renamed below.
    from_ = serializers.DateField()
    to = serializers.DateField()
    results = UsageRowSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return {"from": fields.pop("from"), **fields}


class LegalHoldSerializer(serializers.Serializer):
    legal_hold = serializers.BooleanField()
