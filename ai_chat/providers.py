"""The model behind the assistant: any OpenAI-compatible server, or the offline assistant.

A provider takes the conversation in the chat-completions format (a list of
`{"role", "content", ...}` dicts) and the tools' JSON schemas, and answers with a
`Completion` (text, tool calls, usage), whole (`complete`) or as deltas (`stream`).
Failures are `ProviderError` (502: the upstream answered badly) or `ProviderUnavailable`
(503: it could not answer now, with the seconds to wait when it said).
"""

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from crm.errors import ApplicationError
from crm.models import Tenant

OPENAI_COMPATIBLE = "openai_compatible"
OFFLINE = "offline"
PROVIDERS = (OPENAI_COMPATIBLE, OFFLINE)


class ProviderError(ApplicationError):
    """The model's server answered, but not with something we can use (502)."""

    status_code = HTTPStatus.BAD_GATEWAY
    default_code = "provider_error"


class ProviderUnavailable(ApplicationError):
    """The model's server could not answer now (503); `retry_after` in seconds when it said."""

    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_code = "provider_unavailable"

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (it may be invalid: the tool says so)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = Usage()


@dataclass(frozen=True)
class Delta:
    """A piece of the reply's text, as it streams."""

    text: str


class Provider(Protocol):
    name: str
    model: str

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Completion: ...

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Iterator[Delta | Completion]:
        """Deltas of the reply's text, then the whole `Completion` last."""
        ...


def tenant_ai_settings(tenant: Tenant) -> dict[str, Any]:
    value = (tenant.settings or {}).get("ai")
    return value if isinstance(value, dict) else {}


def provider_for_tenant(tenant: Tenant) -> Provider:
    """The tenant's provider (`tenants.settings["ai"]["provider"]`), else the project's default."""
    chosen = tenant_ai_settings(tenant)
    name = chosen.get("provider") or (OPENAI_COMPATIBLE if settings.AI_BASE_URL else OFFLINE)
    if name == OPENAI_COMPATIBLE and settings.AI_BASE_URL:
        return OpenAICompatibleProvider(
            base_url=settings.AI_BASE_URL,
            api_key=settings.AI_API_KEY,
            model=str(chosen.get("model") or settings.AI_MODEL),
            timeout=settings.AI_TIMEOUT_SECONDS,
            max_retries=settings.AI_MAX_RETRIES,
        )
    if name == OPENAI_COMPATIBLE:
        raise ProviderUnavailable(
            "This tenant's assistant uses an OpenAI-compatible server, but AI_BASE_URL is not set."
        )
    return OfflineProvider()


# OpenAI-compatible servers -------------------------------------------------------------


def _retry_after(headers: Any) -> int | None:
    """Seconds from a Retry-After header (a number; an HTTP date is not worth parsing here)."""
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0, math.ceil(float(raw))) if raw is not None else None
    except ValueError:
        return None


def _translate(exc: openai.OpenAIError) -> ApplicationError:
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailable("The model's server did not answer in time.")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable("The model's server cannot be reached.")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status in (502, 503, 504):
            return ProviderUnavailable(
                f"The model's server is busy or unavailable (HTTP {status}).",
                retry_after=_retry_after(exc.response.headers),
            )
        return ProviderError(f"The model's server answered HTTP {status}.")
    return ProviderError(f"The model's server answered something that is not a chat completion ({exc}).")


@functools.lru_cache(maxsize=8)
def _client(base_url: str, api_key: str, timeout: float, max_retries: int) -> openai.OpenAI:
    """One client per configuration, shared by every request: building one costs about 0.2 s
    (its TLS context), and it keeps its connections to the server open between calls."""
    # Local servers (vLLM, Ollama, LM Studio) need no key, but the client insists on one.
    return openai.OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout, max_retries=max_retries)


class OpenAICompatibleProvider:
    """Any server speaking OpenAI's chat-completions API, through the official `openai` package.

    The package retries 429, 5xx and timeouts `max_retries` times with exponential backoff
    (honouring Retry-After); what still fails is translated to 502 or 503.

    Requests go through the client's `post` (the package's documented way to call an endpoint
    with a body of your own), not `chat.completions.create`: `create` first runs the body
    through the package's type-driven transform, which for chat-completion parameters changes
    nothing (they declare no aliases or formats; a test checks the bodies we send) but walked
    every message and tool schema of every request, a fifth of a turn's CPU time.
    """

    name = OPENAI_COMPATIBLE

    def __init__(self, *, base_url: str, api_key: str, model: str, timeout: float, max_retries: int) -> None:
        self.model = model
        self.client = _client(base_url, api_key, timeout, max_retries)

    def request(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
        """The chat-completions body, exactly as sent."""
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            request["tools"] = tools
        return request

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Completion:
        try:
            response = self.client.post(
                "/chat/completions",
                body=self.request(messages, tools),
                cast_to=ChatCompletion,
                options={"security": {"bearer_auth": True}},  # the API key as a bearer token, as create() asks
            )
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        except ValueError as exc:  # a body that is not JSON
            raise ProviderError(f"The model's server answered something that is not JSON ({exc}).") from exc
        choices = getattr(response, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise ProviderError("The model's server answered without a message.")
        message = choices[0].message
        calls = [
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments or "")
            for call in message.tool_calls or []
            if getattr(call, "function", None) is not None
        ]
        usage = response.usage
        return Completion(
            content=message.content or "",
            model=response.model or self.model,
            tool_calls=calls,
            usage=Usage(usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else Usage(),
        )

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Iterator[Delta | Completion]:
        try:
            chunks = self.client.post(
                "/chat/completions",
                body={**self.request(messages, tools), "stream": True, "stream_options": {"include_usage": True}},
                cast_to=ChatCompletion,
                options={"security": {"bearer_auth": True}},
                stream=True,
                stream_cls=openai.Stream[ChatCompletionChunk],
            )
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        return self._read(chunks)

    def _read(self, chunks: Any) -> Iterator[Delta | Completion]:
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = Usage()
        model = self.model
        try:
            for chunk in chunks:
                model = chunk.model or model
                if chunk.usage:
                    usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is None:
                        continue
                    if delta.content:
                        text.append(delta.content)
                        yield Delta(delta.content)
                    for call in delta.tool_calls or []:
                        slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                        slot["id"] = call.id or slot["id"]
                        if call.function is not None:
                            slot["name"] += call.function.name or ""
                            slot["arguments"] += call.function.arguments or ""
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        except ValueError as exc:
            raise ProviderError(f"The model's server streamed something that is not JSON ({exc}).") from exc
        finally:
            chunks.close()
        yield Completion(
            content="".join(text),
            model=model,
            tool_calls=[ToolCall(**calls[index]) for index in sorted(calls)],
            usage=usage,
        )


# The offline assistant --------------------------------------------------------------------

OFFLINE_MODEL = "offline"
OFFLINE_HELP = (
    "I am Ridgeline's offline assistant: no AI model is configured (set AI_BASE_URL), so I only "
    'understand a few plain requests. Try: "find contacts named smith", "my open estimates", '
    'or "add a note to <contact>: <text>".'
)
_FIND = re.compile(r"\bfind (?:contacts?|people|customers?) (?:named|called) (?P<name>.+?)[.?!]*$", re.IGNORECASE)
_ESTIMATES = re.compile(r"\bmy open estimates\b", re.IGNORECASE)
_NOTE = re.compile(r"\badd a note (?:to|on|for) (?P<who>[^:]+?)\s*:\s*(?P<text>.+)$", re.IGNORECASE | re.DOTALL)


def _tokens(text: str) -> int:
    """A deterministic estimate (about four characters a token), so budgets see offline use too."""
    return math.ceil(len(text) / 4)


class OfflineProvider:
    """Deterministic, no network, honest about what it is, and using the same tools as a model.

    It reads the conversation's last user message and the tool results after it: a plain
    request becomes a tool call, and the tool's result becomes the answer.
    """

    name = OFFLINE
    model = OFFLINE_MODEL

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Completion:
        content, calls = self._answer(messages, {tool["function"]["name"] for tool in tools})
        prompt = sum(_tokens(str(message.get("content") or "")) for message in messages)
        completion = _tokens(content) + sum(_tokens(call.arguments) for call in calls)
        return Completion(content=content, model=self.model, tool_calls=calls, usage=Usage(prompt, completion))

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Iterator[Delta | Completion]:
        completion = self.complete(messages, tools)
        for word in re.findall(r"\S+\s*", completion.content):
            yield Delta(word)
        yield completion

    def _answer(self, messages: list[dict[str, Any]], tools: set[str]) -> tuple[str, list[ToolCall]]:
        last_user = max(i for i, message in enumerate(messages) if message["role"] == "user")
        request = str(messages[last_user].get("content") or "").strip()
        results = [json.loads(message["content"]) for message in messages[last_user + 1 :] if message["role"] == "tool"]
        step = len(results)

        def call(name: str, arguments: dict[str, Any]) -> tuple[str, list[ToolCall]]:
            if name not in tools:  # the last round: no more tools
                return "Offline assistant: I could not finish that within the allowed tool rounds.", []
            return "", [ToolCall(id=f"offline-{last_user}-{step}", name=name, arguments=json.dumps(arguments))]

        if found := _NOTE.search(request):
            who, text = found["who"].strip(), found["text"].strip()
            if step == 0:
                return call("search_contacts", {"query": who, "limit": 5})
            if step == 1:
                matches = results[0].get("contacts", [])
                if len(matches) != 1:
                    names = ", ".join(contact["display_name"] for contact in matches) or "nobody"
                    return (
                        f"Offline assistant: I need exactly one contact named {who!r} to add a note; found {names}."
                    ), []
                return call("create_activity", {"type": "note", "contact": matches[0]["id"], "content": text})
            if "error" in results[1]:
                return f"Offline assistant: the note was not added: {results[1]['error']}", []
            return f"Offline assistant: I added the note to {results[0]['contacts'][0]['display_name']}.", []
        if found := _FIND.search(request):
            name = found["name"].strip()
            if step == 0:
                return call("search_contacts", {"query": name, "limit": 10})
            contacts = results[0].get("contacts", [])
            if not contacts:
                return f"Offline assistant: I found no contacts named {name!r}.", []
            listed = "; ".join(f"{contact['display_name']} (#{contact['id']})" for contact in contacts)
            return f"Offline assistant: I found {results[0]['count']} contact(s) named {name!r}: {listed}.", []
        if _ESTIMATES.search(request):
            if step == 0:
                return call("list_projects", {"status": ["estimate"], "mine": True, "limit": 10})
            projects = results[0].get("projects", [])
            if not projects:
                return "Offline assistant: you have no open estimates.", []
            listed = "; ".join(f"{project['name']} (#{project['id']})" for project in projects)
            return f"Offline assistant: you have {results[0]['count']} open estimate(s): {listed}.", []
        return OFFLINE_HELP, []
