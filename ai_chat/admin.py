"""Conversations and messages in the admin: read only, filterable by user, model and date, with totals."""

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet, Sum
from django.http import HttpRequest

from ai_chat.models import Conversation, Message
from crm.admin_base import TenantScopedAdmin


class ReadOnlyAdmin(TenantScopedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def totals(self, queryset: QuerySet) -> str:
        raise NotImplementedError

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None and "cl" in context:  # not a redirect
            context["subtitle"] = self.totals(context["cl"].queryset)
        return response


def _totals(messages: int, prompt: int, completion: int, cost: Any) -> str:
    return (
        f"Totals: {messages:,} messages, {prompt + completion:,} tokens "
        f"({prompt:,} prompt, {completion:,} completion), ${cost or 0}"
    )


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = [
        "title",
        "user",
        "provider",
        "model",
        "message_count",
        "prompt_tokens",
        "completion_tokens",
        "total_cost",
        "is_active",
        "pinned",
        "legal_hold",
        "last_message_at",
        "created_at",
    ]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "model", "provider", "is_active", "legal_hold"]
    list_select_related = ["user"]
    search_fields = ["title"]
    date_hierarchy = "created_at"

    def totals(self, queryset: QuerySet) -> str:
        sums = queryset.aggregate(
            messages=Sum("message_count"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("total_cost"),
        )
        return _totals(sums["messages"] or 0, sums["prompt"] or 0, sums["completion"] or 0, sums["cost"])


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "conversation",
        "role",
        "user",
        "on_behalf_of",
        "provider",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "latency_ms",
        "error",
    ]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter), "model", "provider", "role"]
    list_select_related = ["conversation", "user", "on_behalf_of"]
    search_fields = ["content"]
    date_hierarchy = "created_at"

    def totals(self, queryset: QuerySet) -> str:
        sums = queryset.aggregate(
            messages=Count("id"), prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
        )
        return _totals(sums["messages"], sums["prompt"] or 0, sums["completion"] or 0, sums["cost"])
