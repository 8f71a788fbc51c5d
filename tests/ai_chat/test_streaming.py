"""Streaming a reply as server-sent events, from a fake server that streams its chunks."""

import json

import pytest

from ai_chat.models import Message
from ai_chat.services import DISCONNECTED
from tests.ai_chat.test_messages import messages_url, stored
from tests.conftest import client_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def parse(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if block:
            kind, data = block.split("\n")
            events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


def disconnect(response) -> None:
    """What a WSGI server does when the client goes away: close the response, and so the stream.

    Through the test client's own wrapper of the stream, which closes the response without
    closing the test's database connection (as the test client does at the end of a stream).
    """
    response._iterator.close()


def stream(client, conversation, content: str):
    return client.post(messages_url(conversation), {"content": content}, HTTP_ACCEPT="text/event-stream")


def test_events_come_in_order_with_the_usage_at_the_end(conversation, tenant, member_user, fake_openai):
    contact = ContactFactory(tenant=tenant, first_name="Ann", last_name="Smith")
    fake_openai.stream(
        [],
        [("call_1", "search_contacts", {"query": "smith"}), ("call_2", "get_contact", {"id": contact.pk})],
        prompt_tokens=100,
        completion_tokens=20,
    )
    fake_openai.stream(["Ann ", "Smith ", "is a lead."], prompt_tokens=200, completion_tokens=8)

    response = stream(client_for(member_user), conversation, "Who is Smith?")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = parse(b"".join(response.streaming_content))
    assert [kind for kind, _ in events] == [
        "start",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "delta",
        "delta",
        "delta",
        "done",
    ]
    assert events[0][1]["content"] == "Who is Smith?"
    assert events[1][1] == {"id": "call_1", "name": "search_contacts", "arguments": '{"query": "smith"}'}
    assert events[2][1]["result"]["contacts"][0]["id"] == contact.pk
    assert events[3][1]["name"] == "get_contact"
    assert [data["content"] for kind, data in events if kind == "delta"] == ["Ann ", "Smith ", "is a lead."]
    done = events[-1][1]
    assert done["usage"] == {"prompt_tokens": 300, "completion_tokens": 28, "cost": "0.000062"}
    assert done["message"]["content"] == "Ann Smith is a lead."
    assert [row[:2] for row in stored(conversation)][1:] == [
        ("user", "Who is Smith?"),
        ("assistant", ""),
        ("function", ""),
        ("function", ""),
        ("assistant", "Ann Smith is a lead."),
    ]
    assert fake_openai.requests[0]["stream"] is True
    assert fake_openai.requests[0]["stream_options"] == {"include_usage": True}


def test_a_client_that_disconnects_leaves_the_partial_reply_stored_and_marked(conversation, member_user, fake_openai):
    fake_openai.stream(["One ", "two ", "three ", "four"], pause=0.05)
    response = stream(client_for(member_user), conversation, "Count")
    chunks = iter(response.streaming_content)

    received = parse(next(chunks) + next(chunks) + next(chunks))
    disconnect(response)

    assert [(kind, data.get("content")) for kind, data in received] == [
        ("start", "Count"),
        ("delta", "One "),
        ("delta", "two "),
    ]
    partial = Message.objects.filter(conversation=conversation).last()
    assert (partial.role, partial.content, partial.error, partial.metadata) == (
        "assistant",
        "One two ",
        DISCONNECTED,
        {"partial": True},
    )
    conversation.refresh_from_db()
    assert conversation.message_count == 3
    # The next message goes on from a consistent conversation: the partial reply is in its history.
    fake_openai.reply("Five.")
    client_for(member_user).post(messages_url(conversation), {"content": "Go on"})
    assert [(m["role"], m["content"]) for m in fake_openai.requests[-1]["messages"][1:]] == [
        ("user", "Count"),
        ("assistant", "One two "),
        ("user", "Go on"),
    ]


def test_a_failure_before_the_stream_starts_is_a_json_502(conversation, member_user, fake_openai):
    fake_openai.error(500, headers={"retry-after-ms": "5"})
    fake_openai.error(500, headers={"retry-after-ms": "5"})
    client = client_for(member_user)
    client.raise_request_exception = False

    response = stream(client, conversation, "Hi")

    assert response.status_code == 502
    # Nothing was streamed yet: the error is the API's JSON error, as documented, not an event.
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "type": "server_error",
        "errors": [{"code": "provider_error", "detail": "The model's server answered HTTP 500.", "attr": None}],
    }
    assert stored(conversation)[-1] == ("assistant", "", "", "", "The model's server answered HTTP 500.")


def test_a_malformed_chunk_mid_stream_is_an_error_event_and_stored(conversation, member_user, fake_openai):
    good = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini"}
    first = {**good, "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
    fake_openai.stream([], lines=[f"data: {json.dumps(first)}", "data: {broken"])

    response = stream(client_for(member_user), conversation, "Hi")

    events = parse(b"".join(response.streaming_content))
    assert [kind for kind, _ in events] == ["start", "delta", "error"]
    error = events[-1][1]
    detail = (
        "The model's server streamed something that is not JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1))."
    )
    assert (error["status"], error["code"], error["detail"]) == (502, "provider_error", detail)
    assert stored(conversation)[-1] == ("assistant", "Hel", "", "", detail)
    assert Message.objects.filter(conversation=conversation).last().metadata == {
        "status": 502,
        "code": "provider_error",
        "partial": True,
    }
