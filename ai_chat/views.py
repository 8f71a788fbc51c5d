"""The AI chat API: a user's own conversations and messages, usage, and owners' audited reads."""

import datetime as dt
import json
from collections.abc import Generator, Iterator
from decimal import Decimal
from typing import Any, cast

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, renderers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ai_chat.models import Conversation, Message, MessageRole
from ai_chat.providers import ProviderUnavailable, ToolCall
from ai_chat.selectors import (
    conversation_export_json,
    conversation_export_markdown,
    usage_rows,
    with_chat_history,
    with_month_tokens,
)
from ai_chat.serializers import (
    AIUsageSerializer,
    ConversationSerializer,
    LegalHoldSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    ReplySerializer,
)
from ai_chat.services import (
    TokenBudgetExceeded,
    TurnEvent,
    conversation_archive,
    conversation_audit_log,
    conversation_create,
    conversation_delete,
    conversation_set_legal_hold,
    conversation_update,
    message_send,
    message_turn,
)
from crm.actor import Actor
from crm.api.filtersets import BooleanFilter
from crm.api.views import TenantMixin, TenantScopedViewSet
from crm.errors import ApplicationError
from crm.models import Role
from crm.search import prefix_search_query


class ConversationFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[("active", "active"), ("archived", "archived")],
        method="filter_status",
        help_text="active (default: both) or archived.",
    )
    pinned = BooleanFilter()
    search = django_filters.CharFilter(
        method="filter_search", help_text="Full-text prefix search over the titles and the messages."
    )

    class Meta:
        model = Conversation
        fields: list[str] = []

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(is_active=value == "active")

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = prefix_search_query(value)
        if query is None:
            return queryset
        in_messages = Message.objects.filter(conversation=OuterRef("pk"), search=query)
        return queryset.filter(Q(search=query) | Exists(in_messages))


class MarkdownRenderer(renderers.BaseRenderer):
    media_type = "text/markdown"
    format = "markdown"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data).encode()  # an error, in the API's shape


class EventStreamRenderer(renderers.BaseRenderer):
    """Server-sent events (an error before the stream starts is JSON: see handle_exception)."""

    media_type = "text/event-stream"
    format = "event-stream"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return _sse("error", data)


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {**usage, "cost": str(Decimal(usage.get("cost", 0)).quantize(Decimal("0.000001")))}


def _event_bytes(event: TurnEvent) -> bytes:
    if event.kind == "delta":
        return _sse("delta", {"content": event.text})
    if event.kind in ("start", "tool_result"):
        return _sse(event.kind, MessageSerializer(event.message).data)
    if event.kind == "tool_call":
        call = cast(ToolCall, event.call)  # tool_call events carry their call
        return _sse("tool_call", {"id": call.id, "name": call.name, "arguments": call.arguments})
    if event.kind == "error":
        error = cast(ApplicationError, event.error)  # error events carry their error
        body = {"status": int(error.status_code), "code": error.code, "detail": error.message}
        return _sse("error", {**body, "message": MessageSerializer(event.message).data})
    return _sse("done", {"message": MessageSerializer(event.message).data, "usage": _usage(event.usage)})


def _event_stream(first: TurnEvent, events: Generator[TurnEvent], actor: Actor) -> Iterator[bytes]:
    """Closing this generator (the client went away) closes the turn, which stores the partial reply.

    The events come after the view's transaction has ended: each step of the turn runs in a
    transaction of its own with the actor published (row-level security, issue 17).
    """
    try:
        yield _event_bytes(first)
        while True:
            with actor.atomic():
                event = next(events, None)
            if event is None:
                return
            yield _event_bytes(event)
    finally:
        with actor.atomic():
            events.close()


def _with_retry_after(response: Response, exc: Exception) -> Response:
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, ProviderUnavailable | TokenBudgetExceeded) and retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


# One server-sent event of a streamed turn, as a client reads it: its name and its data (JSON).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["start", "delta", "tool_call", "tool_result", "done", "error"]},
        "data": {"type": "string", "description": "The event's JSON."},
    },
    "required": ["event", "data"],
}

MESSAGE_ERRORS = {
    409: OpenApiResponse(description="The conversation is archived or deleted."),
    429: OpenApiResponse(description="The tenant's monthly token budget is used up (Retry-After: until it resets)."),
    502: OpenApiResponse(description="The model's server answered badly; the error is stored on a message."),
    503: OpenApiResponse(description="The model's server is unavailable (Retry-After when it said)."),
}


class ConversationViewSet(TenantScopedViewSet):
    """The user's own conversations with the assistant (another user's are 404)."""

    serializer_class = ConversationSerializer
    filterset_class = ConversationFilterSet
    ordering_fields = ["updated_at", "created_at", "last_message_at", "title", "pinned"]
    ordering = ["-pinned", "-updated_at"]
    # A viewer may talk to the assistant too (its tools keep their role); their own rows only.
    action_roles = {
        name: Role.VIEWER
        for name in ("create", "update", "partial_update", "destroy", "archive", "unarchive", "messages")
    }

    def get_tenant_queryset(self) -> QuerySet:
        conversations = Conversation.objects.filter(deleted_at__isnull=True)
        if self.action == "messages" and self.request.method == "POST":
            # The turn's budget check and the history it sends the model: no query of their own.
            return with_chat_history(with_month_tokens(conversations))
        return conversations

    def filter_visible(self, queryset: QuerySet) -> QuerySet:
        return queryset.filter(user=self.request.user)

    def handle_exception(self, exc: Exception) -> Response:
        # An error is JSON in the API's error shape, with its status, even to a client that
        # asked for a stream (or markdown): nothing was streamed yet, and the shape is documented.
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = renderers.JSONRenderer.media_type
        return _with_retry_after(super().handle_exception(exc), exc)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = conversation_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = conversation_update(
            conversation=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_destroy(self, instance: Conversation) -> None:
        conversation_delete(conversation=instance, actor=self.request.actor)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        conversation = conversation_archive(conversation=self.get_object(), actor=self.request.actor, archived=True)
        return Response(self.get_serializer(conversation).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def unarchive(self, request: Request, pk: str | None = None) -> Response:
        conversation = conversation_archive(conversation=self.get_object(), actor=self.request.actor, archived=False)
        return Response(self.get_serializer(conversation).data)

    def get_renderers(self) -> list[renderers.BaseRenderer]:
        # Only a turn's answer streams: the list of messages is JSON (a client asking for events
        # only gets a 406, and `?format=event-stream` a 404, as for any format an action lacks).
        if getattr(self, "action", None) == "messages" and self.request.method == "GET":
            return [renderers.JSONRenderer()]
        return super().get_renderers()

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        wanted = request.query_params.get("format")
        if not force and getattr(self, "action", None) == "export" and wanted not in (None, "json", "markdown"):
            raise exceptions.ValidationError({"format": [f"format must be json or markdown; got {wanted!r}."]})
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "markdown"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/markdown"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, MarkdownRenderer])
    def export(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        if request.accepted_renderer.format == "markdown":
            return Response(conversation_export_markdown(conversation=conversation))
        return Response(conversation_export_json(conversation=conversation))

    @extend_schema(methods=["GET"], responses=MessageSerializer(many=True), request=None)
    @extend_schema(
        methods=["POST"],
        request=MessageCreateSerializer,
        responses={200: ReplySerializer, (200, "text/event-stream"): SSE_EVENT, **MESSAGE_ERRORS},
        description=(
            "Send a message; the answer comes after the tool loop. With `Accept: text/event-stream` it streams as "
            "server-sent events: `start` (the stored user message), `delta` (text), `tool_call`, `tool_result`, "
            "`done` (the reply and the turn's usage) or `error`."
        ),
    )
    @action(
        detail=True,
        methods=["get", "post"],
        renderer_classes=[renderers.JSONRenderer, EventStreamRenderer],
        filter_backends=[],  # the conversation filters do not apply to its messages
    )
    def messages(self, request: Request, pk: str | None = None) -> Any:
        conversation = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(Message.objects.filter(conversation=conversation).order_by("id"))
            return self.get_paginated_response(MessageSerializer(page, many=True).data)
        body = MessageCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        content = body.validated_data["content"]
        role = self.request.membership.role_enum  # the effective user's, read when the tenant was resolved
        if request.accepted_renderer.format == "event-stream":
            events = message_turn(
                conversation=conversation,
                actor=self.request.actor,
                content=content,
                stream=True,
                role=role,
                tokens_used=conversation.month_tokens,
            )
            first = next(events)  # raises the checks' and the model server's refusals as 4xx/5xx answers
            response = StreamingHttpResponse(
                _event_stream(first, events, self.request.actor), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx: pass the events on as they come
            return response
        messages = message_send(
            conversation=conversation,
            actor=self.request.actor,
            content=content,
            role=role,
            tokens_used=conversation.month_tokens,
        )
        replies = [message for message in messages if message.role == MessageRole.ASSISTANT]
        usage = {
            "prompt_tokens": sum(message.prompt_tokens for message in replies),
            "completion_tokens": sum(message.completion_tokens for message in replies),
            "cost": sum((message.cost for message in replies), Decimal(0)),
        }
        return Response(ReplySerializer({"messages": messages, "usage": usage}).data)


class AuditConversationViewSet(TenantMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Owners read any member's conversations (a removed member's too); each conversation read is logged."""

    serializer_class = ConversationSerializer
    ordering_fields = ["updated_at", "created_at", "last_message_at"]
    ordering = ["-updated_at"]
    filterset_fields = ["user"]

    def required_role(self, request: Request) -> Role:
        return Role.OWNER

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        return Conversation.objects.filter(tenant=self.request.tenant)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self.get_object()
        conversation_audit_log(conversation=conversation, actor=self.request.actor, action="retrieve")
        return Response(self.get_serializer(conversation).data)

    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"])
    def messages(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()
        page = self.paginate_queryset(Message.objects.filter(conversation=conversation).order_by("id"))
        conversation_audit_log(conversation=conversation, actor=self.request.actor, action="messages")
        return self.get_paginated_response(MessageSerializer(page, many=True).data)

    @extend_schema(request=LegalHoldSerializer, responses=ConversationSerializer)
    @action(detail=True, methods=["post"], url_path="legal-hold")
    def legal_hold(self, request: Request, pk: str | None = None) -> Response:
        conversation = self.get_object()  # another tenant's conversation is a 404 whatever the body
        body = LegalHoldSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        conversation = conversation_set_legal_hold(
            conversation=conversation, actor=self.request.actor, legal_hold=body.validated_data["legal_hold"]
        )
        return Response(self.get_serializer(conversation).data)


def _date_param(request: Request, name: str, default: dt.date) -> dt.date:
    raw = request.query_params.get(name)
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise exceptions.ValidationError({name: [f"{name} must be a date (YYYY-MM-DD); got {raw!r}."]}) from None


class UsageView(TenantMixin, APIView):
    """Tokens and cost per user and model (managers and above: everyone's; others: their own)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (UTC); default: the month's first."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (UTC), included; default: today."),
        ],
        responses=AIUsageSerializer,
    )
    def get(self, request: Request) -> Response:
        today = timezone.now().date()
        start = _date_param(request, "from", today.replace(day=1))
        end = _date_param(request, "to", today)
        if end < start:
            raise exceptions.ValidationError({"to": [f"to ({end}) is before from ({start})."]})
        everyone = self.request.membership.role_enum.at_least(Role.MANAGER)
        rows = usage_rows(
            tenant=self.request.tenant, start=start, end=end, user=None if everyone else self.request.user
        )
        return Response(AIUsageSerializer({"from": start, "to": end, "results": rows}).data)
