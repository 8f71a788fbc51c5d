"""Reads of the AI chat: the month's tokens, usage per user and model, and a conversation's export."""

import datetime as dt
import json
from typing import Any

from django.db.models import BigIntegerField, Count, JSONField, QuerySet, Sum
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from ai_chat.models import Conversation, Message, MessageRole
from crm.models import Tenant, User


def month_start(now: dt.datetime) -> dt.datetime:
    """The first instant of `now`'s UTC calendar month (the token budget's period)."""
    return now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


HISTORY_MAX_MESSAGES = 60  # the newest stored messages sent to the model, besides the system prompt

# Hand SQL for the turn's two reads folded into its conversation query: the same subqueries
# written with OuterRef, Subquery, Coalesce and JSONObject cost Django about 5 ms of CPU to build
# and compile on every turn, several times what PostgreSQL spends answering them. Both refer to
# the outer query's table by its name, so the queryset must not alias ai_conversations.
_MONTH_TOKENS = """
    COALESCE((SELECT tokens FROM ai_token_usage WHERE tenant_id = ai_conversations.tenant_id AND month = %s), 0)
"""
_CHAT_HISTORY = """
    SELECT COALESCE(
        jsonb_agg(
            jsonb_build_object(
                'id', m.id, 'role', m.role, 'content', m.content, 'function_call', m.function_call,
                'tool_call_id', m.tool_call_id, 'result', m.result
            )
            ORDER BY m.id
        ),
        '[]'
    )
    FROM ai_messages AS m
    WHERE m.conversation_id = ai_conversations.id
      AND (
        m.id >= COALESCE(
            (SELECT id FROM ai_messages WHERE conversation_id = ai_conversations.id ORDER BY id DESC OFFSET %s LIMIT 1),
            0
        )
        OR m.id = (
            SELECT id FROM ai_messages WHERE conversation_id = ai_conversations.id AND role = %s ORDER BY id LIMIT 1
        )
      )
"""


def with_month_tokens(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """The conversations with `month_tokens`: the tokens their tenant used this UTC month, read in
    the same query (a turn's budget check then costs no query of its own)."""
    month = month_start(timezone.now()).date()
    return conversations.annotate(month_tokens=RawSQL(_MONTH_TOKENS, (month,), output_field=BigIntegerField()))  # noqa: S611 (constant SQL)


def with_chat_history(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """The conversations with `chat_history`: their system prompt and newest HISTORY_MAX_MESSAGES
    stored messages, oldest first, as dicts of the columns a chat message is built from, read in
    the same query (a turn then spends no round trip of its own on them)."""
    params = (HISTORY_MAX_MESSAGES - 1, MessageRole.SYSTEM.value)
    return conversations.annotate(chat_history=RawSQL(_CHAT_HISTORY, params, output_field=JSONField()))  # noqa: S611 (constant SQL)


def usage_rows(*, tenant: Tenant, start: dt.date, end: dt.date, user: User | None = None) -> list[dict[str, Any]]:
    """Tokens and cost of the assistant's replies from `start` to `end` (UTC days, both included),
    per user and model; only `user`'s when given."""
    first = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    after_last = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    replies = Message.objects.filter(
        tenant=tenant, role=MessageRole.ASSISTANT, created_at__gte=first, created_at__lt=after_last
    )
    if user is not None:
        replies = replies.filter(user=user)
    rows = (
        replies.values("provider", "model", "user", "user__username")
        .annotate(
            messages=Count("id"),
            prompt=Coalesce(Sum("prompt_tokens"), 0),
            completion=Coalesce(Sum("completion_tokens"), 0),
            total_cost=Sum("cost"),
        )
        .order_by("user__username", "model", "provider")
    )
    return [
        {
            "user": row["user"],
            "username": row["user__username"],
            "provider": row["provider"],
            "model": row["model"],
            "messages": row["messages"],
            "prompt_tokens": row["prompt"],
            "completion_tokens": row["completion"],
            "total_tokens": row["prompt"] + row["completion"],
            "cost": row["total_cost"],
        }
        for row in rows
    ]


def _messages(conversation: Conversation) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation).select_related("user").order_by("id"))


def conversation_export_json(*, conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "user": conversation.user_id,
        "created_at": conversation.created_at.isoformat(),
        "archived": not conversation.is_active,
        "metadata": conversation.metadata,
        "totals": {
            "messages": conversation.message_count,
            "prompt_tokens": conversation.prompt_tokens,
            "completion_tokens": conversation.completion_tokens,
            "cost": str(conversation.total_cost),
        },
        "messages": [
            {
                "id": message.pk,
                "role": message.role,
                "content": message.content,
                "tool_calls": message.function_call,
                "tool_call_id": message.tool_call_id or None,
                "tool_name": message.tool_name or None,
                "result": message.result,
                "model": message.model or None,
                "prompt_tokens": message.prompt_tokens,
                "completion_tokens": message.completion_tokens,
                "cost": str(message.cost),
                "error": message.error or None,
                "created_at": message.created_at.isoformat(),
            }
            for message in _messages(conversation)
        ],
    }


def conversation_export_markdown(*, conversation: Conversation) -> str:
    lines = [
        f"# {conversation.title or f'Conversation {conversation.pk}'}",
        "",
        f"- Started: {conversation.created_at:%Y-%m-%d %H:%M} UTC",
        f"- Messages: {conversation.message_count}; tokens: {conversation.total_tokens}; "
        f"cost: ${conversation.total_cost}",
        "",
    ]
    for message in _messages(conversation):
        when = f"{message.created_at:%Y-%m-%d %H:%M}"
        if message.role == MessageRole.SYSTEM:
            lines += [f"## System ({when})", "", message.content, ""]
        elif message.role == MessageRole.USER:
            lines += [f"## {message.user.get_username() if message.user else 'User'} ({when})", "", message.content, ""]
        elif message.role == MessageRole.ASSISTANT:
            lines += [f"## Assistant ({when}, {message.model or message.provider})", ""]
            if message.content:
                lines += [message.content, ""]
            for call in message.function_call or []:
                lines += [f"- Tool call `{call['name']}`: `{call['arguments']}`"]
            if message.error:
                lines += [f"> Error: {message.error}", ""]
            if message.function_call:
                lines.append("")
        else:
            result = json.dumps(message.result, indent=2, ensure_ascii=False)
            lines += [f"### Result of `{message.tool_name}` ({when})", "", "```json", result, "```", ""]
    return "\n".join(lines).rstrip() + "\n"
