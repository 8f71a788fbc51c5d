"""Sending a message: the tool loop against a fake OpenAI-compatible server, and its failures."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from openai._utils import maybe_transform
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)

from ai_chat.models import Conversation, Message
from ai_chat.tools import TOOL_SCHEMAS
from crm.models import Activity
from tests.ai_chat.conftest import start_conversation
from tests.api import assert_error, assert_invalid, row
from tests.conftest import client_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def messages_url(conversation) -> str:
    return f"/api/v1/ai/conversations/{conversation.pk}/messages/"


def stored(conversation) -> list[tuple]:
    return list(
        Message.objects.filter(conversation=conversation)
        .order_by("id")
        .values_list("role", "content", "tool_call_id", "tool_name", "error")
    )


def test_the_tool_loop_runs_two_tool_calls_of_one_reply_and_answers(conversation, member_user, tenant, fake_openai):
    smith = ContactFactory(tenant=tenant, first_name="Ann", last_name="Smith")
    fake_openai.reply(
        None,
        [("call_1", "search_contacts", {"query": "smith"}), ("call_2", "get_contact", {"id": smith.pk})],
        prompt_tokens=1200,
        completion_tokens=40,
    )
    fake_openai.reply("Ann Smith is a lead.", prompt_tokens=1500, completion_tokens=12)

    response = client_for(member_user).post(messages_url(conversation), {"content": "Who is Smith?"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "function", "function", "assistant"]
    assert body["messages"][-1]["content"] == "Ann Smith is a lead."
    assert body["usage"] == {"prompt_tokens": 2700, "completion_tokens": 52, "cost": "0.000436"}
    search, contact = body["messages"][2]["result"], body["messages"][3]["result"]
    assert search["count"] == 1
    assert [(c["id"], c["display_name"]) for c in search["contacts"]] == [(smith.pk, "Ann Smith")]
    assert contact["contact"]["id"] == smith.pk
    assert body["messages"][1]["function_call"] == [
        {"id": "call_1", "name": "search_contacts", "arguments": '{"query": "smith"}'},
        {"id": "call_2", "name": "get_contact", "arguments": json.dumps({"id": smith.pk})},
    ]
    # The second request carried the reply's tool calls and both results, answered by id.
    second = fake_openai.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in second[3:]] == ["call_1", "call_2"]
    assert json.loads(second[3]["content"]) == search
    assert [t["function"]["name"] for t in fake_openai.requests[0]["tools"]] == [
        "search_contacts",
        "get_contact",
        "list_projects",
        "list_activities",
        "substatus_summary",
        "create_activity",
    ]
    conversation.refresh_from_db()
    assert conversation.title == "Who is Smith?"
    assert (conversation.message_count, conversation.prompt_tokens, conversation.completion_tokens) == (6, 2700, 52)
    assert conversation.total_cost == Decimal("0.000436")


@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
def test_requests_are_those_chat_completions_create_would_send(
    conversation, member_user, tenant, fake_openai, settings, accept
):
    """The provider posts its bodies without create()'s transform: for these parameters it is the identity."""
    ContactFactory(tenant=tenant, first_name="Ann", last_name="Smith")
    settings.AI_API_KEY = "sk-test"
    if accept == "text/event-stream":
        fake_openai.stream([], [("call_1", "search_contacts", {"query": "smith"})])
        fake_openai.stream(["Ann ", "Smith."])
    else:
        fake_openai.reply(None, [("call_1", "search_contacts", {"query": "smith"})])
        fake_openai.reply("Ann Smith.")

    response = client_for(member_user).post(
        messages_url(conversation), {"content": "Who is Smith?"}, HTTP_ACCEPT=accept
    )
    assert response.status_code == 200, response.content
    b"".join(getattr(response, "streaming_content", []))

    params = CompletionCreateParamsStreaming if accept == "text/event-stream" else CompletionCreateParamsNonStreaming
    assert len(fake_openai.requests) == 2
    for body in fake_openai.requests:
        assert maybe_transform(body, params) == body
        assert body["tools"] == TOOL_SCHEMAS
    assert fake_openai.authorizations == ["Bearer sk-test"] * 2


def test_every_role_is_stored_and_read_back(conversation, member_user, fake_openai):
    fake_openai.reply("", [("call_1", "substatus_summary", {"entity": "project"})])
    fake_openai.reply("No jobs yet.")
    client = client_for(member_user)
    client.post(messages_url(conversation), {"content": "How are my jobs?"})

    response = client.get(messages_url(conversation))

    assert response.status_code == 200
    listed = response.json()["results"]
    assert [(m["role"], m["tool_call_id"], m["tool_name"]) for m in listed] == [
        ("system", "", ""),
        ("user", "", ""),
        ("assistant", "", ""),
        ("function", "call_1", "substatus_summary"),
        ("assistant", "", ""),
    ]
    assert listed[3]["result"] == {"entity": "project", "groups": []}
    assert listed[1]["content"] == "How are my jobs?"
    assert listed[1]["user"] == member_user.pk
    assert {m["provider"] for m in listed[2:5:2]} == {"openai_compatible"}
    assert {m["model"] for m in listed[2:5:2]} == {"gpt-4o-mini"}


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("get_contact", "{not json", "The arguments are not valid JSON: "),
        ("get_contact", "[1]", "The arguments must be a JSON object."),
        ("get_contact", '{"id": "x"}', "Invalid arguments: id: A valid integer is required."),
        ("get_contact", '{"id": 999999}', "There is no contact 999999."),
        ("drop_tables", "{}", "There is no tool named 'drop_tables'; the tools are search_contacts, get_contact, "),
        (
            "create_activity",
            '{"type": "call"}',
            "Invalid arguments: type: The assistant may only add a note or a task.",
        ),
    ],
)
def test_a_bad_tool_call_is_returned_to_the_model_not_a_500(
    conversation, member_user, fake_openai, name, arguments, error
):
    fake_openai.script.append(
        fake_openai._json(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
                            ],
                        },
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )
    )
    fake_openai.reply("Sorry.")

    response = client_for(member_user).post(messages_url(conversation), {"content": "Do it"})

    assert response.status_code == 200, response.content
    result = response.json()["messages"][2]["result"]
    assert list(result) == ["error"]
    assert result["error"].startswith(error)
    assert json.loads(fake_openai.requests[1]["messages"][3]["content"]) == result
    assert Activity.objects.count() == 0


def test_the_tool_rounds_are_capped_and_the_last_round_gets_no_tools(conversation, member_user, fake_openai, settings):
    settings.AI_MAX_TOOL_ROUNDS = 2
    for number in range(2):
        fake_openai.reply("", [(f"c{number}", "substatus_summary", {"entity": "contact"})])
    fake_openai.reply("Done looking.")

    response = client_for(member_user).post(messages_url(conversation), {"content": "Loop"})

    assert response.status_code == 200
    assert response.json()["messages"][-1]["content"] == "Done looking."
    assert ["tools" in request for request in fake_openai.requests] == [True, True, False]


def test_a_viewers_write_tool_is_refused_and_the_refusal_returned_to_the_model(tenant, viewer, fake_openai):
    contact = ContactFactory(tenant=tenant)
    conversation = start_conversation(tenant, viewer)
    fake_openai.reply("", [("c1", "create_activity", {"type": "note", "contact": contact.pk, "content": "Hi"})])
    fake_openai.reply("I cannot add notes for you.")

    response = client_for(viewer).post(messages_url(conversation), {"content": "Add a note"})

    assert response.status_code == 200
    refusal = {"error": "Your role (viewer) may only read: adding a note or a task needs the member role or above."}
    assert response.json()["messages"][2]["result"] == refusal
    assert json.loads(fake_openai.requests[1]["messages"][3]["content"]) == refusal
    assert Activity.objects.count() == 0


def test_a_members_write_tool_records_the_conversation_on_the_activity(conversation, tenant, member_user, fake_openai):
    contact = ContactFactory(tenant=tenant)
    fake_openai.reply("", [("c1", "create_activity", {"type": "task", "contact": contact.pk, "subject": "Call back"})])
    fake_openai.reply("Task added.")

    response = client_for(member_user).post(messages_url(conversation), {"content": "Remind me"})

    activity = Activity.objects.get()
    assert (activity.type, activity.contact_id, activity.subject) == ("task", contact.pk, "Call back")
    assert activity.outcome_details == {"ai_conversation": conversation.pk}
    assert (activity.performed_by_id, activity.on_behalf_of_id) == (member_user.pk, None)
    assert response.json()["messages"][2]["result"]["created"]["id"] == activity.pk


@pytest.mark.parametrize(
    ("script", "status", "code", "detail", "retry_after"),
    [
        (
            [("error", 429, {"retry-after": "7", "retry-after-ms": "5"})] * 2,
            503,
            "provider_unavailable",
            "The model's server is busy or unavailable (HTTP 429).",
            "7",
        ),
        (
            [("error", 503, {"retry-after-ms": "5"})] * 2,
            503,
            "provider_unavailable",
            "The model's server is busy or unavailable (HTTP 503).",
            None,
        ),
        (
            [("error", 500, {"retry-after-ms": "5"})] * 2,
            502,
            "provider_error",
            "The model's server answered HTTP 500.",
            None,
        ),
        ([("hang",)] * 2, 503, "provider_unavailable", "The model's server did not answer in time.", None),
        (
            [("raw", b"{not json")],
            502,
            "provider_error",
            "The model's server answered something that is not JSON (Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)).",
            None,
        ),
        (
            [("raw", b'{"object": "nothing"}')],
            502,
            "provider_error",
            "The model's server answered without a message.",
            None,
        ),
    ],
    ids=["429", "503", "500", "timeout", "malformed-json", "no-choices"],
)
def test_provider_failures_are_stored_and_answered_502_or_503(
    conversation, member_user, fake_openai, settings, script, status, code, detail, retry_after
):
    settings.AI_TIMEOUT_SECONDS = 0.3
    for step in script:
        if step[0] == "error":
            fake_openai.error(step[1], headers=step[2])
        elif step[0] == "hang":
            fake_openai.hang(1)
        else:
            fake_openai.raw(step[1])

    client = client_for(member_user)
    client.raise_request_exception = False  # a 5xx is reported (logged and signalled) as it should be
    response = client.post(messages_url(conversation), {"content": "Hello"})

    assert_error(response, status, code=code, detail=detail, type="client_error" if status < 500 else "server_error")
    assert response.get("Retry-After") == retry_after
    assert stored(conversation)[1:] == [("user", "Hello", "", "", ""), ("assistant", "", "", "", detail)]
    failed = Message.objects.filter(conversation=conversation).last()
    assert (failed.provider, failed.model, failed.metadata) == (
        "openai_compatible",
        "gpt-4o-mini",
        {"status": status, "code": code, "partial": False},
    )


def test_a_429_then_success_retries_and_answers(conversation, member_user, fake_openai):
    fake_openai.error(429, headers={"retry-after-ms": "5"})
    fake_openai.reply("Hello!")

    response = client_for(member_user).post(messages_url(conversation), {"content": "Hi"})

    assert response.status_code == 200
    assert response.json()["messages"][-1]["content"] == "Hello!"
    assert len(fake_openai.requests) == 2


def test_a_failed_reply_is_left_out_of_the_next_request(conversation, member_user, fake_openai):
    fake_openai.raw(b"{not json")
    client = client_for(member_user)
    client.raise_request_exception = False
    client.post(messages_url(conversation), {"content": "First"})
    fake_openai.reply("Second answer")

    client.post(messages_url(conversation), {"content": "Second"})

    assert [(m["role"], m["content"]) for m in fake_openai.requests[1]["messages"][1:]] == [
        ("user", "First"),
        ("user", "Second"),
    ]


@pytest.mark.parametrize(
    ("body", "detail", "code"),
    [({}, "This field is required.", "required"), ({"content": ""}, "This field may not be blank.", "blank")],
)
def test_a_message_without_content_is_400_and_stores_nothing(conversation, member_user, body, detail, code):
    response = client_for(member_user).post(messages_url(conversation), body)

    assert_invalid(response, attr="content", code=code, detail=detail)
    assert len(stored(conversation)) == 1


def test_an_archived_conversation_takes_no_message(conversation, member_user):
    client = client_for(member_user)
    client.post(f"/api/v1/ai/conversations/{conversation.pk}/archive/")

    response = client.post(messages_url(conversation), {"content": "Hi"})

    assert_error(response, 409, code="conflict", detail="This conversation is archived: unarchive it to continue.")
    assert len(stored(conversation)) == 1


def test_another_users_conversation_is_404_and_unchanged(conversation, tenant, manager):
    before = row(conversation)

    response = client_for(manager).post(messages_url(conversation), {"content": "Hi"})

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert row(conversation) == before
    assert len(stored(conversation)) == 1


def test_the_monthly_token_budget_answers_429_and_stores_nothing(conversation, tenant, member_user, fake_openai):
    tenant.settings = {"ai": {"monthly_token_budget": 1000}}
    tenant.save()
    fake_openai.reply("Big answer", prompt_tokens=900, completion_tokens=100)
    client = client_for(member_user)
    assert client.post(messages_url(conversation), {"content": "One"}).status_code == 200
    before = stored(conversation)

    response = client.post(messages_url(conversation), {"content": "Two"})

    assert_error(
        response,
        429,
        code="token_budget_exceeded",
        detail=(
            "This tenant has used 1,000 of its monthly budget of 1,000 AI tokens; the budget resets on "
            f"{_next_month_first()} (UTC)."
        ),
    )
    assert int(response["Retry-After"]) > 0
    assert stored(conversation) == before
    assert len(fake_openai.requests) == 1


def test_the_budget_counts_this_months_tokens_of_the_tenant_whatever_wrote_them(
    conversation, tenant, other_tenant, other_user, member_user, fake_openai
):
    tenant.settings = {"ai": {"monthly_token_budget": 1000}}
    tenant.save()
    now = dt.datetime.now(tz=dt.UTC)
    last_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(microseconds=1)
    theirs = start_conversation(other_tenant, other_user)
    Message.objects.create(
        tenant=tenant, conversation=conversation, role="assistant", prompt_tokens=5_000, created_at=last_month
    )
    Message.objects.create(
        tenant=other_tenant, conversation=theirs, role="assistant", prompt_tokens=5_000, created_at=now
    )
    Message.objects.create(
        tenant=tenant, conversation=conversation, role="assistant", prompt_tokens=998, created_at=now
    )
    fake_openai.reply("Yes.", prompt_tokens=1, completion_tokens=1)
    client = client_for(member_user)

    assert client.post(messages_url(conversation), {"content": "998 used"}).status_code == 200
    refused = client.post(messages_url(conversation), {"content": "1,000 used"})

    assert (refused.status_code, refused.json()["errors"][0]["detail"][:43]) == (
        429,
        "This tenant has used 1,000 of its monthly b",
    )


def _next_month_first() -> str:
    today = dt.datetime.now(tz=dt.UTC).date().replace(day=1)
    return (today + dt.timedelta(days=32)).replace(day=1).isoformat()


def test_the_title_comes_from_the_first_message_without_a_model_call(conversation, member_user, fake_openai):
    fake_openai.reply("Sure.")
    text = "Which of my estimates haven't been followed up in seven days, and who owns them?"

    client_for(member_user).post(messages_url(conversation), {"content": text})

    assert (
        Conversation.objects.get(pk=conversation.pk).title == "Which of my estimates haven't been followed up in seven…"
    )
    assert len(fake_openai.requests) == 1


def test_the_list_of_messages_is_json_only_never_an_event_stream(conversation, member_user):
    """The API fuzz found it: `GET .../messages/?format=event-stream` answered 200 with the page
    wrapped in an SSE `error` event, which the schema did not describe."""
    client = client_for(member_user)

    by_format = client.get(messages_url(conversation), {"format": "event-stream"})
    by_accept = client.get(messages_url(conversation), HTTP_ACCEPT="text/event-stream")
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert (by_format.status_code, by_format["Content-Type"]) == (404, "application/json")
    assert (by_accept.status_code, by_accept["Content-Type"]) == (406, "application/json")
    operations = schema["paths"]["/api/v1/ai/conversations/{id}/messages/"]
    assert list(operations["get"]["responses"]["200"]["content"]) == ["application/json"]
    assert list(operations["post"]["responses"]["200"]["content"]) == ["application/json", "text/event-stream"]


def test_the_schema_describes_each_streamed_event(member_user):
    """The API fuzz found it: the stream was declared a plain string, where a client (and
    schemathesis) reads it as events, each with its name and its JSON data."""
    schema = client_for(member_user).get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    stream = schema["paths"]["/api/v1/ai/conversations/{id}/messages/"]["post"]["responses"]["200"]["content"]
    assert stream["text/event-stream"]["schema"] == {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": ["start", "delta", "tool_call", "tool_result", "done", "error"]},
            "data": {"type": "string", "description": "The event's JSON."},
        },
        "required": ["event", "data"],
    }
