"""Writes of the AI chat: conversations, a user message's turn through the tool loop, retention."""

import datetime as dt
import json
import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypedDict, Unpack

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ai_chat.models import Conversation, ConversationAuditLog, Message, MessageRole, TokenUsage
from ai_chat.providers import (
    Completion,
    Delta,
    Provider,
    ProviderError,
    ProviderUnavailable,
    ToolCall,
    provider_for_tenant,
    tenant_ai_settings,
)
from ai_chat.selectors import month_start, with_chat_history
from ai_chat.tools import TOOL_SCHEMAS, ToolContext, tool_run
from crm.actor import Actor
from crm.errors import ApplicationError, Conflict, Forbidden
from crm.models import Membership, Role, Tenant, User

TITLE_MAX_CHARS = 60
DISCONNECTED = "The client disconnected before the reply was complete."
_MILLION = Decimal(1_000_000)
_COST_PLACES = Decimal("0.000001")


class TokenBudgetExceeded(ApplicationError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    default_code = "token_budget_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Costs and budgets -----------------------------------------------------------------------


def message_cost(*, model: str, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """US dollars, to the millionth, from AI_MODEL_PRICES (per million tokens); unknown models cost 0."""
    prices = settings.AI_MODEL_PRICES.get(model)
    if prices is None:
        return Decimal(0)
    cost = (prompt_tokens * Decimal(prices["prompt"]) + completion_tokens * Decimal(prices["completion"])) / _MILLION
    return cost.quantize(_COST_PLACES)


def _next_month(start: dt.datetime) -> dt.datetime:
    return (start + dt.timedelta(days=32)).replace(day=1)


def tenant_token_budget(tenant: Tenant) -> int:
    value = tenant_ai_settings(tenant).get("monthly_token_budget")
    return int(value) if isinstance(value, int) and value >= 0 else settings.AI_MONTHLY_TOKEN_BUDGET


def budget_check(*, tenant: Tenant, now: dt.datetime | None = None, used: int | None = None) -> None:
    """Refuse (429) when the tenant has used its monthly token budget (UTC calendar month: the
    messages' tokens, counted by the database as they are stored). `used`: this month's tokens
    when the caller read them already (`selectors.with_month_tokens`), else they are read here."""
    budget = tenant_token_budget(tenant)
    if budget == 0:
        return
    now = now or timezone.now()
    start = month_start(now)
    if used is None:
        used = TokenUsage.objects.filter(tenant=tenant, month=start.date()).values_list("tokens", flat=True).first()
        used = used or 0
    if used >= budget:
        reset = _next_month(start)
        raise TokenBudgetExceeded(
            f"This tenant has used {used:,} of its monthly budget of {budget:,} AI tokens; "
            f"the budget resets on {reset:%Y-%m-%d} (UTC).",
            retry_after=max(1, int((reset - now).total_seconds())),
        )


# Conversations ------------------------------------------------------------------------------


class ConversationFields(TypedDict, total=False):
    title: str
    pinned: bool
    metadata: dict[str, Any]


def _system_prompt(actor: Actor, role: Role) -> str:
    tenant = actor.require_tenant()
    user = actor.user
    name = (user.get_full_name() or user.get_username()) if user else "a user"
    return (
        f"You are Ridgeline's assistant for {tenant.name}, a roofing contractor. You help {name} "
        f"(role: {role.value}) with their CRM: contacts, jobs (projects) and activities. Use the tools to "
        "read or write data; never invent records. Answer briefly."
    )


def actor_user(actor: Actor) -> User:
    """The effective user a conversation belongs to (an actor without one is a programming error)."""
    if actor.user is None:
        raise ValueError("the AI chat needs an actor with a user")
    return actor.user


def actor_role(actor: Actor) -> Role:
    """The effective user's active role in the actor's tenant; none is a 403."""
    role = (
        Membership.objects.active()
        .filter(tenant=actor.require_tenant(), user=actor_user(actor))
        .values_list("role", flat=True)
        .first()
    )
    if role is None:
        raise Forbidden("You are not an active member of this tenant.")
    return Role(role)


def conversation_create(
    *, actor: Actor, title: str = "", metadata: dict[str, Any] | None = None, pinned: bool = False
) -> Conversation:
    tenant = actor.require_tenant()
    role = actor_role(actor)
    provider = provider_for_tenant(tenant)
    with actor.atomic():
        conversation = Conversation.objects.create(
            tenant=tenant,
            user=actor_user(actor),
            title=title.strip()[:255],
            metadata=metadata or {},
            pinned=pinned,
            provider=provider.name,
            model=provider.model,
        )
        Message.objects.create(
            tenant=tenant,
            conversation=conversation,
            role=MessageRole.SYSTEM,
            content=_system_prompt(actor, role),
            user=actor.user,
            on_behalf_of=actor.on_behalf_of,
        )
    conversation.refresh_from_db()
    return conversation


def conversation_update(
    *, conversation: Conversation, actor: Actor, **fields: Unpack[ConversationFields]
) -> Conversation:
    for name, value in fields.items():
        setattr(conversation, name, str(value).strip()[:255] if name == "title" else value)
    with actor.atomic():
        conversation.save(update_fields=[*fields, "updated_at"])
    return conversation


def conversation_archive(*, conversation: Conversation, actor: Actor, archived: bool) -> Conversation:
    conversation.is_active = not archived
    with actor.atomic():
        conversation.save(update_fields=["is_active", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation, actor: Actor) -> None:
    """Hide it from its user; the retention rule removes it (with its messages) later."""
    conversation.deleted_at = timezone.now()
    with actor.atomic():
        conversation.save(update_fields=["deleted_at", "updated_at"])


def conversation_set_legal_hold(*, conversation: Conversation, actor: Actor, legal_hold: bool) -> Conversation:
    conversation.legal_hold = legal_hold
    with actor.atomic():
        conversation.save(update_fields=["legal_hold", "updated_at"])
    return conversation


def conversation_audit_log(*, conversation: Conversation, actor: Actor, action: str) -> None:
    """An owner read another member's conversation: record it, with the admin behind them."""
    with actor.atomic():
        ConversationAuditLog.objects.create(
            tenant=conversation.tenant,
            conversation=conversation,
            reader=actor_user(actor),
            on_behalf_of=actor.on_behalf_of,
            action=action,
        )


def title_from(text: str) -> str:
    """The first words of a message, trimmed to TITLE_MAX_CHARS (no model call)."""
    words = text.split()
    kept: list[str] = []
    for word in words:
        if len(" ".join([*kept, word])) > TITLE_MAX_CHARS:
            break
        kept.append(word)
    if not kept:  # one very long word, or nothing
        return words[0][:TITLE_MAX_CHARS] + "…" if words else ""
    title = " ".join(kept)
    if len(kept) < len(words):
        return re.sub(r"[\s,;:.!?-]+$", "", title) + "…"
    return title


def conversations_retention(*, now: dt.datetime | None = None) -> int:
    """Delete archived or deleted conversations untouched for the tenant's retention days
    (`tenants.settings["ai"]["retention_days"]`, else AI_RETENTION_DAYS), except those on
    legal hold; their messages go with them. Returns how many conversations were deleted."""
    now = now or timezone.now()
    deleted = 0
    tenant_ids = (
        Conversation.objects.filter(Q(is_active=False) | Q(deleted_at__isnull=False), legal_hold=False)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"):
        days = tenant_ai_settings(tenant).get("retention_days")
        days = days if isinstance(days, int) and days > 0 else settings.AI_RETENTION_DAYS
        cutoff = now - dt.timedelta(days=days)
        expired = Conversation.objects.filter(
            Q(is_active=False, updated_at__lt=cutoff) | Q(deleted_at__lt=cutoff), tenant=tenant, legal_hold=False
        )
        with transaction.atomic():  # the messages go with their conversation (on_delete CASCADE)
            deleted += expired.delete()[1].get(Conversation._meta.label, 0)
    return deleted


# A user message's turn ------------------------------------------------------------------------


@dataclass
class TurnEvent:
    """One step of a turn: `start` (the model is answering), `delta` (text), `tool_call`,
    `tool_result`, `done` (the final reply and the turn's usage) or `error` (stored, streaming only)."""

    kind: str
    message: Message | None = None
    text: str = ""
    call: ToolCall | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    error: ApplicationError | None = None


def _stored_history(conversation: Conversation) -> list[Message]:
    """The messages `selectors.with_chat_history` defines, from the conversation when it was read
    with them, else read now."""
    rows = getattr(conversation, "chat_history", None)
    if rows is None:
        annotated: Any = with_chat_history(Conversation.objects.filter(pk=conversation.pk)).get()
        rows = annotated.chat_history
    return [Message(**row) for row in rows]


def _as_chat(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages in the chat-completions format; a failed reply and unanswered tool calls are left out."""
    found: list[dict[str, Any]] = []
    answered = {message.tool_call_id for message in messages if message.role == MessageRole.FUNCTION}
    for message in messages:
        if message.role in (MessageRole.SYSTEM, MessageRole.USER):
            found.append({"role": message.role, "content": message.content})
        elif message.role == MessageRole.ASSISTANT:
            calls = [call for call in message.function_call or [] if call["id"] in answered]
            if not message.content and not calls:
                continue  # a failed call: nothing the model said
            entry: dict[str, Any] = {"role": "assistant", "content": message.content or None}
            if calls:
                entry["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls
                ]
            found.append(entry)
        elif message.tool_call_id and any(
            message.tool_call_id == call["id"] for entry in found for call in entry.get("tool_calls", [])
        ):
            found.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": json.dumps(message.result)})
    return found


_INSERTED_FIELDS = [field for field in Message._meta.concrete_fields if not field.generated and not field.primary_key]


def _messages_insert(messages: list[Message]) -> None:
    """One INSERT ... RETURNING of `messages`, outside any transaction: a single statement is
    atomic on its own (the rows and the roll-up trigger's totals commit together), so the
    transaction bulk_create() opens around it only added a BEGIN and a COMMIT round trip.
    This is the call Model.save() and bulk_create() make themselves."""
    returning = Message._meta.db_returning_fields
    rows = Message.objects._insert(  # type: ignore[attr-defined]  # not in django-stubs
        messages, fields=_INSERTED_FIELDS, returning_fields=returning
    )
    for message, values in zip(messages, rows, strict=True):
        for returned, value in zip(returning, values, strict=True):
            setattr(message, returned.attname, value)
        message._state.adding = False
        message._state.db = Message.objects.db


class _Turn:
    """Builds the turn's messages and writes them: each at once when streaming (its events show
    stored messages), else together when the turn ends (one INSERT, one commit, one run of the
    roll-up trigger)."""

    def __init__(
        self, conversation: Conversation, actor: Actor, provider: Provider, *, deferred: bool, title: str
    ) -> None:
        self.conversation = conversation
        self.actor = actor
        self.provider = provider
        self.tenant = actor.require_tenant()
        self.deferred = deferred
        self.pending: list[Message] = []
        self.title = title  # given to the conversation with the first write: it was untitled

    def flush(self) -> None:
        """Write the pending messages (and the title the first message gives an untitled conversation)."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        if self.title:
            with transaction.atomic():
                _messages_insert(pending)
                Conversation.objects.filter(pk=self.conversation.pk, title="").update(title=self.title)
            self.title = ""
        else:
            _messages_insert(pending)

    def build(self, role: str, **fields: Any) -> Message:
        return Message(
            tenant=self.tenant,
            conversation=self.conversation,
            role=role,
            user=self.actor.user,
            on_behalf_of=self.actor.on_behalf_of,
            **fields,
        )

    def store(self, role: str, **fields: Any) -> Message:
        message = self.build(role, **fields)
        self.pending.append(message)
        if not self.deferred:
            self.flush()
        return message

    def store_reply(self, completion: Completion, latency_ms: int, **extra: Any) -> Message:
        model = completion.model or self.provider.model
        return self.store(
            MessageRole.ASSISTANT,
            content=completion.content,
            function_call=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls]
            or None,
            provider=self.provider.name,
            model=model,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            cost=message_cost(
                model=model,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
            ),
            latency_ms=latency_ms,
            **extra,
        )

    def store_failure(self, exc: ApplicationError, latency_ms: int, content: str = "") -> Message:
        return self.store(
            MessageRole.ASSISTANT,
            content=content,
            provider=self.provider.name,
            model=self.provider.model,
            latency_ms=latency_ms,
            error=exc.message,
            metadata={"status": int(exc.status_code), "code": exc.code, "partial": bool(content)},
        )


def _ensure_sendable(conversation: Conversation, actor: Actor) -> None:
    if (
        actor.user is None
        or conversation.user_id != actor.user.pk
        or conversation.tenant_id != actor.require_tenant().pk
    ):
        raise Forbidden("Only the conversation's own user may send messages in it.")
    if conversation.deleted_at is not None:
        raise Conflict("This conversation was deleted.")
    if not conversation.is_active:
        raise Conflict("This conversation is archived: unarchive it to continue.")


def message_turn(
    *,
    conversation: Conversation,
    actor: Actor,
    content: str,
    stream: bool,
    role: Role | None = None,
    provider: Provider | None = None,
    tokens_used: int | None = None,
) -> Generator[TurnEvent]:
    """Store the user's message, then run the model and its tools (at most AI_MAX_TOOL_ROUNDS
    rounds of tool calls), storing every message. Yields the turn's events.

    `role` is the actor's active role in the tenant when the caller has read it (the API's
    membership); it is read otherwise. `tokens_used`: the tenant's tokens this month, when the
    caller read them with the conversation (`selectors.with_month_tokens`); read otherwise.
    `provider`: the tenant's when not given. Streaming stores each message as it comes;
    without streaming the turn's messages are written together as it ends, so its events'
    messages have no primary key until then.

    Checks (the sender, an archived conversation, the budget) and a provider failure before
    the first event raise; a provider failure after it (streaming) is stored and yielded as
    an `error` event. Closing the generator mid-reply (a client that went away) stores the
    partial reply, marked.
    """
    _ensure_sendable(conversation, actor)
    tenant = actor.require_tenant()
    role = role or actor_role(actor)
    budget_check(tenant=tenant, used=tokens_used)
    turn = _Turn(
        conversation,
        actor,
        provider or provider_for_tenant(tenant),
        deferred=not stream,
        title="" if conversation.title else title_from(content),
    )
    context = ToolContext(actor=actor, role=role, conversation_id=conversation.pk)
    history = _stored_history(conversation)
    try:
        user_message = turn.store(MessageRole.USER, content=content)
        history.append(user_message)
        yield from _turn_rounds(turn, context, history, user_message, stream=stream)
    finally:
        turn.flush()


def _turn_rounds(
    turn: _Turn, context: ToolContext, history: list[Message], user_message: Message, *, stream: bool
) -> Generator[TurnEvent]:
    started = not stream  # streaming starts once the model's server has accepted the request
    if not stream:
        yield TurnEvent("start", message=user_message)
    prompt_tokens = completion_tokens = 0
    cost = Decimal(0)
    rounds = settings.AI_MAX_TOOL_ROUNDS
    for round_number in range(rounds + 1):
        tools = TOOL_SCHEMAS if round_number < rounds else []  # the last round must answer
        began = time.monotonic()
        partial: list[str] = []
        upstream: Iterator[Delta | Completion] | None = None
        try:
            if stream:
                upstream = turn.provider.stream(_as_chat(history), tools)
                if not started:
                    started = True
                    yield TurnEvent("start", message=user_message)
                completion = None
                for piece in upstream:
                    if isinstance(piece, Delta):
                        partial.append(piece.text)
                        yield TurnEvent("delta", text=piece.text)
                    else:
                        completion = piece
                if completion is None:
                    raise ProviderError("The model's server ended the stream without an answer.")
            else:
                completion = turn.provider.complete(_as_chat(history), tools)
        except (ProviderError, ProviderUnavailable) as exc:
            failed = turn.store_failure(exc, int((time.monotonic() - began) * 1000), "".join(partial))
            if not stream or not started:
                raise
            yield TurnEvent("error", message=failed, error=exc)
            return
        except GeneratorExit:
            if upstream is not None and hasattr(upstream, "close"):
                upstream.close()
            turn.store(
                MessageRole.ASSISTANT,
                content="".join(partial),
                provider=turn.provider.name,
                model=turn.provider.model,
                latency_ms=int((time.monotonic() - began) * 1000),
                error=DISCONNECTED,
                metadata={"partial": True},
            )
            raise
        reply = turn.store_reply(completion, int((time.monotonic() - began) * 1000))
        history.append(reply)
        prompt_tokens += reply.prompt_tokens
        completion_tokens += reply.completion_tokens
        cost += reply.cost
        if not completion.tool_calls:
            turn.flush()
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cost": cost}
            yield TurnEvent("done", message=reply, usage=usage)
            return
        # Each tool writes (if it writes) through its service; the results are stored together.
        results = [
            turn.build(
                MessageRole.FUNCTION,
                tool_call_id=call.id,
                tool_name=call.name,
                result=tool_run(context, call.name, call.arguments),
            )
            for call in completion.tool_calls
        ]
        turn.pending += results
        if not turn.deferred:
            turn.flush()
        history.extend(results)
        for call, result_message in zip(completion.tool_calls, results, strict=True):
            yield TurnEvent("tool_call", message=reply, call=call)
            yield TurnEvent("tool_result", message=result_message, call=call)


def message_send(
    *,
    conversation: Conversation,
    actor: Actor,
    content: str,
    role: Role | None = None,
    provider: Provider | None = None,
    tokens_used: int | None = None,
) -> list[Message]:
    """Every message of the turn (the user's first, the assistant's final reply last), without streaming."""
    messages: dict[int, Message] = {}  # by identity: they are stored as the turn ends
    events = message_turn(
        conversation=conversation,
        actor=actor,
        content=content,
        stream=False,
        role=role,
        provider=provider,
        tokens_used=tokens_used,
    )
    for event in events:
        if event.message is not None:
            messages.setdefault(id(event.message), event.message)
    return sorted(messages.values(), key=lambda message: message.pk)
