"""AI chat: a user's conversations with the assistant, every message, and owners' audited reads.

`ai_conversations` and `ai_messages` keep the old system's columns. A database trigger
(migration 0002) keeps each conversation's `updated_at`, `last_message_at`, count and totals
on every message insert, whatever the write path.
"""

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.timezone import now

from crm.fields import choices_check, non_negative_check
from crm.models import Tenant


class MessageRole(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    FUNCTION = "function"  # a tool's result, answering one tool call of an assistant message


class Conversation(models.Model):
    """One thread between a user and the assistant, in one tenant.

    `user` is the person the conversation belongs to, not their membership: a removed
    member's conversations stay (owners read them through the audited endpoint) until the
    retention rule removes them.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=255, blank=True, default="", db_default="")
    is_active = models.BooleanField(default=True, db_default=True, help_text="False: archived.")
    metadata = models.JSONField(
        default=dict, db_default={}, blank=True, help_text="Where the chat was opened (page, record), voice, ..."
    )
    pinned = models.BooleanField(default=False, db_default=False)
    legal_hold = models.BooleanField(
        default=False, db_default=False, help_text="Kept whatever the retention rule says while set."
    )
    provider = models.CharField(max_length=40, blank=True, default="", db_default="")
    model = models.CharField(max_length=200, blank=True, default="", db_default="")
    deleted_at = models.DateTimeField(
        null=True, blank=True, help_text="Deleted by its user: hidden, and removed by the retention rule."
    )
    # Kept by the database (trigger ai_messages_roll_up) on every message insert.
    last_message_at = models.DateTimeField(null=True, blank=True, editable=False)
    message_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    prompt_tokens = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)
    completion_tokens = models.PositiveBigIntegerField(default=0, db_default=0, editable=False)
    total_cost = models.DecimalField(max_digits=14, decimal_places=6, default=0, db_default=0, editable=False)
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())
    search = models.GeneratedField(
        expression=SearchVector("title", config="simple"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        db_table = "ai_conversations"
        ordering = ["-pinned", "-updated_at", "-id"]
        constraints = [*non_negative_check(["total_cost"], "ai_conversations")]
        indexes = [
            models.Index(
                "tenant",
                "user",
                models.F("pinned").desc(),
                models.F("updated_at").desc(),
                models.F("id").desc(),
                condition=Q(deleted_at__isnull=True),
                name="ai_conversations_user_list_idx",
            ),
            models.Index(
                fields=["tenant", "updated_at"],
                condition=Q(is_active=False) | Q(deleted_at__isnull=False),
                name="ai_conversations_retention_idx",
            ),
            GinIndex(fields=["search"], name="ai_conversations_search_gin"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Message(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=MessageRole.choices)
    content = models.TextField(blank=True, default="", db_default="")
    function_call = models.JSONField(
        null=True, blank=True, help_text="An assistant message's tool calls: [{id, name, arguments}]."
    )
    tool_call_id = models.CharField(max_length=100, blank=True, default="", db_default="")
    tool_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    result = models.JSONField(null=True, blank=True, help_text="A function message's result, as given to the model.")
    metadata = models.JSONField(default=dict, db_default={}, blank=True)
    # Who sent it (user messages) or on whose behalf the assistant and its tools ran.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The admin behind the user, when impersonating.",
    )
    provider = models.CharField(max_length=40, blank=True, default="", db_default="")
    model = models.CharField(max_length=200, blank=True, default="", db_default="")
    prompt_tokens = models.PositiveIntegerField(default=0, db_default=0)
    completion_tokens = models.PositiveIntegerField(default=0, db_default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0, db_default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="", db_default="")
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    search = models.GeneratedField(
        expression=SearchVector("content", config="simple"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        db_table = "ai_messages"
        ordering = ["id"]
        constraints = [
            choices_check("role", MessageRole, "ai_messages_role_valid"),
            *non_negative_check(["cost"], "ai_messages"),
        ]
        indexes = [
            models.Index(fields=["conversation", "id"], name="ai_messages_conversation_idx"),
            models.Index(fields=["tenant", "created_at"], name="ai_messages_tenant_created_idx"),
            GinIndex(fields=["search"], name="ai_messages_search_gin"),
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.pk}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ConversationAuditLog(models.Model):
    """An owner read another member's conversation (`/api/v1/ai/audit/conversations/`)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    # The log outlives the conversation (the retention rule may delete it).
    conversation = models.ForeignKey(
        Conversation, on_delete=models.SET_NULL, null=True, blank=True, related_name="audit_logs"
    )
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)

    class Meta:
        db_table = "ai_conversation_audit_logs"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.reader_id} {self.action} conversation {self.conversation_id}"


class TokenUsage(models.Model):
    """The tokens a tenant's messages used in a UTC calendar month, for its monthly budget.

    Kept by the database (trigger ai_messages_roll_up, migration 0004) on every message insert,
    so reading the budget is one row, not a sum over the month's messages. Tokens used stay
    used when their conversation is deleted later.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    month = models.DateField(help_text="The month's first day (UTC).")
    tokens = models.PositiveBigIntegerField(default=0, db_default=0)

    class Meta:
        db_table = "ai_token_usage"
        constraints = [models.UniqueConstraint(fields=["tenant", "month"], name="ai_token_usage_tenant_month_uniq")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.month:%Y-%m}: {self.tokens}"
