"""The conversations API: own conversations only, filters, search, export, usage and owners' audit."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from ai_chat.models import Conversation, ConversationAuditLog, Message, MessageRole, TokenUsage
from crm.models import Membership
from tests.ai_chat.conftest import start_conversation
from tests.api import assert_error, assert_invalid, row
from tests.conftest import client_for, member
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/ai/conversations/"


def add(conversation, role, content="", **fields) -> Message:
    return Message.objects.create(
        tenant=conversation.tenant, conversation=conversation, role=role, content=content, **fields
    )


def listed(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_create_starts_a_conversation_with_its_system_prompt(tenant, member_user):
    response = client_for(member_user).post(URL, {"title": "Storm leads", "metadata": {"page": "contacts"}})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["title"], body["metadata"], body["user"]) == ("Storm leads", {"page": "contacts"}, member_user.pk)
    assert (body["provider"], body["model"], body["message_count"], body["is_active"]) == (
        "offline",
        "offline",
        1,
        True,
    )
    system = Message.objects.get(conversation_id=body["id"])
    assert system.role == MessageRole.SYSTEM
    assert system.content.startswith("You are Ridgeline's assistant for Summit Roofing, a roofing contractor.")


@pytest.mark.parametrize(
    ("body", "attr", "code", "detail"),
    [
        ({"metadata": "page"}, "metadata", "invalid", "metadata must be an object."),
        ({"title": "x" * 256}, "title", "max_length", "Ensure this field has no more than 255 characters."),
        ({"pinned": "maybe"}, "pinned", "invalid", "Must be a valid boolean."),
    ],
)
def test_bad_input_is_400_naming_the_field_and_creates_nothing(member_user, body, attr, code, detail):
    response = client_for(member_user).post(URL, body)

    assert_invalid(response, attr=attr, code=code, detail=detail)
    assert Conversation.objects.count() == 0


def test_update_changes_title_pinned_and_metadata_only(tenant, member_user):
    conversation = start_conversation(tenant, member_user, title="Old")

    response = client_for(member_user).patch(
        f"{URL}{conversation.pk}/", {"title": "New", "pinned": True, "metadata": {"voice": True}, "legal_hold": True}
    )

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.title, conversation.pinned, conversation.metadata, conversation.legal_hold) == (
        "New",
        True,
        {"voice": True},
        False,
    )


def test_list_shows_only_the_users_own_live_conversations_pinned_first(tenant, member_user, manager):
    older = start_conversation(tenant, member_user)
    pinned = start_conversation(tenant, member_user, pinned=True)
    newer = start_conversation(tenant, member_user)
    deleted = start_conversation(tenant, member_user)
    start_conversation(tenant, manager)
    client = client_for(member_user)
    assert client.delete(f"{URL}{deleted.pk}/").status_code == 204

    assert listed(client.get(URL)) == [pinned.pk, newer.pk, older.pk]
    assert listed(client.get(URL + "?pinned=true")) == [pinned.pk]
    assert_error(client.get(f"{URL}{deleted.pk}/"), 404, code="not_found", detail="Not found.")
    assert Conversation.objects.get(pk=deleted.pk).deleted_at is not None


def test_archive_and_unarchive_move_between_the_status_lists(tenant, member_user):
    kept = start_conversation(tenant, member_user)
    archived = start_conversation(tenant, member_user)
    client = client_for(member_user)

    response = client.post(f"{URL}{archived.pk}/archive/")

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert listed(client.get(URL + "?status=archived")) == [archived.pk]
    assert listed(client.get(URL + "?status=active")) == [kept.pk]
    client.post(f"{URL}{archived.pk}/unarchive/")
    assert listed(client.get(URL + "?status=archived")) == []
    assert_invalid(
        client.get(URL + "?status=gone"),
        attr="status",
        code="invalid_choice",
        detail="Select a valid choice. gone is not one of the available choices.",
    )


def test_search_finds_titles_and_messages_only_in_the_users_own_conversations(
    tenant, other_tenant, member_user, manager, other_user
):
    by_title = start_conversation(tenant, member_user, title="Hailstorm follow-ups")
    by_message = start_conversation(tenant, member_user)
    add(by_message, MessageRole.USER, "Which hailstorm claims are open?")
    unrelated = start_conversation(tenant, member_user)
    add(unrelated, MessageRole.USER, "Gutter quote")
    colleagues = start_conversation(tenant, manager)
    add(colleagues, MessageRole.USER, "hailstorm damage")
    foreign = start_conversation(other_tenant, other_user, title="Hailstorm")

    found = listed(client_for(member_user).get(URL + "?search=hails"))

    assert sorted(found) == sorted([by_title.pk, by_message.pk])
    assert listed(client_for(manager).get(URL + "?search=hailstorm")) == [colleagues.pk]
    assert listed(client_for(other_user).get(URL + "?search=hailstorm")) == [foreign.pk]


def test_export_as_json_and_markdown(tenant, member_user):
    conversation = start_conversation(tenant, member_user, title="Smith")
    add(conversation, MessageRole.USER, "Find Smith", user=member_user)
    add(
        conversation,
        MessageRole.ASSISTANT,
        function_call=[{"id": "c1", "name": "search_contacts", "arguments": '{"query": "smith"}'}],
        model="gpt-4o-mini",
        prompt_tokens=100,
        completion_tokens=10,
        cost=Decimal("0.000021"),
    )
    add(conversation, MessageRole.FUNCTION, tool_call_id="c1", tool_name="search_contacts", result={"count": 0})
    add(conversation, MessageRole.ASSISTANT, "Nobody named Smith.", model="gpt-4o-mini")
    client = client_for(member_user)

    exported = client.get(f"{URL}{conversation.pk}/export/?format=json")
    markdown = client.get(f"{URL}{conversation.pk}/export/?format=markdown")

    assert exported.status_code == 200
    data = exported.json()
    assert (data["title"], data["totals"]) == (
        "Smith",
        {"messages": 5, "prompt_tokens": 100, "completion_tokens": 10, "cost": "0.000021"},
    )
    assert [(m["role"], m["content"], m["tool_name"]) for m in data["messages"]] == [
        ("system", data["messages"][0]["content"], None),
        ("user", "Find Smith", None),
        ("assistant", "", None),
        ("function", "", "search_contacts"),
        ("assistant", "Nobody named Smith.", None),
    ]
    assert markdown.status_code == 200
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    text = markdown.content.decode()
    assert text.startswith("# Smith\n\n- Started: ")
    assert "- Messages: 5; tokens: 110; cost: $0.000021\n" in text
    assert "## member (" in text
    assert "\nFind Smith\n" in text
    assert '- Tool call `search_contacts`: `{"query": "smith"}`' in text
    assert "### Result of `search_contacts`" in text
    assert '```json\n{\n  "count": 0\n}\n```' in text
    assert text.endswith("Nobody named Smith.\n")
    assert_invalid(
        client.get(f"{URL}{conversation.pk}/export/?format=xml"),
        attr="format",
        code="invalid",
        detail="format must be json or markdown; got 'xml'.",
    )


def test_the_trigger_keeps_the_totals_on_a_raw_sql_insert(tenant, member_user):
    conversation = start_conversation(tenant, member_user)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ai_messages (tenant_id, conversation_id, role, content, prompt_tokens, completion_tokens, "
            "cost, created_at) VALUES (%s, %s, 'user', 'hi', 3, 4, 0.5, now()), "
            "(%s, %s, 'assistant', 'yo', 10, 20, 0.25, now() + interval '1 minute')",
            [tenant.pk, conversation.pk, tenant.pk, conversation.pk],
        )
        cursor.execute("SELECT now() + interval '1 minute'")
        later = cursor.fetchone()[0]
    before = conversation.updated_at

    conversation.refresh_from_db()

    assert (conversation.message_count, conversation.prompt_tokens, conversation.completion_tokens) == (3, 13, 24)
    assert conversation.total_cost == Decimal("0.750000")
    assert conversation.last_message_at == later
    assert conversation.updated_at >= before
    assert Message.objects.get(content="yo").search is not None


def test_the_trigger_counts_each_tenants_tokens_per_utc_month(tenant, other_tenant, member_user, other_user):
    mine, theirs = start_conversation(tenant, member_user), start_conversation(other_tenant, other_user)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ai_messages (tenant_id, conversation_id, role, prompt_tokens, completion_tokens, created_at) "
            "VALUES (%(t)s, %(c)s, 'assistant', 3, 4, '2026-03-31 23:59:59+00'), "
            "(%(t)s, %(c)s, 'assistant', 10, 20, '2026-03-31 18:30:00-06'), "
            "(%(t)s, %(c)s, 'user', 0, 0, '2026-05-02 00:00:00+00')",
            {"t": tenant.pk, "c": mine.pk},
        )
        cursor.execute(
            "INSERT INTO ai_messages (tenant_id, conversation_id, role, prompt_tokens, completion_tokens, created_at) "
            "VALUES (%s, %s, 'assistant', 100, 1, '2026-03-01 00:00:00+00')",
            [other_tenant.pk, theirs.pk],
        )
    Message.objects.create(
        tenant=tenant,
        conversation=mine,
        role=MessageRole.ASSISTANT,
        prompt_tokens=5,
        completion_tokens=6,
        created_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
    )

    assert set(TokenUsage.objects.values_list("tenant_id", "month", "tokens")) == {
        (tenant.pk, dt.date(2026, 3, 1), 18),
        (tenant.pk, dt.date(2026, 4, 1), 30),  # 18:30 in Denver on March 31 is April 1 in UTC
        (other_tenant.pk, dt.date(2026, 3, 1), 101),
    }


def test_usage_per_user_and_model_managers_see_everyone_members_themselves(tenant, member_user, manager):
    mine = start_conversation(tenant, member_user)
    theirs = start_conversation(tenant, manager)
    add(
        mine,
        MessageRole.ASSISTANT,
        "a",
        user=member_user,
        provider="openai_compatible",
        model="gpt-4o",
        prompt_tokens=1000,
        completion_tokens=100,
        cost=Decimal("0.003500"),
    )
    add(
        mine,
        MessageRole.ASSISTANT,
        "b",
        user=member_user,
        provider="openai_compatible",
        model="gpt-4o",
        prompt_tokens=2000,
        completion_tokens=200,
        cost=Decimal("0.007000"),
    )
    add(
        theirs,
        MessageRole.ASSISTANT,
        "c",
        user=manager,
        provider="offline",
        model="offline",
        prompt_tokens=5,
        completion_tokens=6,
    )
    old = add(theirs, MessageRole.ASSISTANT, "d", user=manager, provider="offline", model="offline", prompt_tokens=9)
    Message.objects.filter(pk=old.pk).update(created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    today = dt.datetime.now(tz=dt.UTC).date().isoformat()
    member_row = {
        "user": member_user.pk,
        "username": "member",
        "provider": "openai_compatible",
        "model": "gpt-4o",
        "messages": 2,
        "prompt_tokens": 3000,
        "completion_tokens": 300,
        "total_tokens": 3300,
        "cost": "0.010500",
    }
    manager_row = {
        "user": manager.pk,
        "username": "manager",
        "provider": "offline",
        "model": "offline",
        "messages": 1,
        "prompt_tokens": 5,
        "completion_tokens": 6,
        "total_tokens": 11,
        "cost": "0.000000",
    }

    everyone = client_for(manager).get(f"/api/v1/ai/usage/?from=2021-01-01&to={today}")
    own = client_for(member_user).get(f"/api/v1/ai/usage/?from=2021-01-01&to={today}")

    assert everyone.json() == {"from": "2021-01-01", "to": today, "results": [manager_row, member_row]}
    assert own.json()["results"] == [member_row]
    assert_invalid(
        client_for(manager).get("/api/v1/ai/usage/?from=yesterday"),
        attr="from",
        code="invalid",
        detail="from must be a date (YYYY-MM-DD); got 'yesterday'.",
    )


def test_owners_read_a_removed_members_conversation_through_the_audit_and_each_read_is_logged(
    tenant, owner, member_user
):
    conversation = start_conversation(tenant, member_user, title="Private")
    Membership.objects.filter(user=member_user).delete()
    client = client_for(owner)

    assert listed(client.get("/api/v1/ai/audit/conversations/")) == [conversation.pk]
    detail = client.get(f"/api/v1/ai/audit/conversations/{conversation.pk}/")
    messages = client.get(f"/api/v1/ai/audit/conversations/{conversation.pk}/messages/")

    assert detail.json()["title"] == "Private"
    assert [m["role"] for m in messages.json()["results"]] == ["system"]
    assert list(ConversationAuditLog.objects.order_by("id").values_list("conversation", "reader", "action")) == [
        (conversation.pk, owner.pk, "retrieve"),
        (conversation.pk, owner.pk, "messages"),
    ]
    # Their own list never shows it: only the audit does.
    assert listed(client.get(URL)) == []


@pytest.mark.parametrize("role", ["admin", "manager", "member", "viewer"])
def test_only_owners_read_the_audit(tenant, member_user, role):
    conversation = start_conversation(tenant, member_user)
    reader = member(tenant, role, f"reader-{role}")

    response = client_for(reader).get(f"/api/v1/ai/audit/conversations/{conversation.pk}/")

    assert response.status_code == 403
    assert ConversationAuditLog.objects.count() == 0


def test_legal_hold_is_set_by_owners_through_the_audit(tenant, owner, member_user):
    conversation = start_conversation(tenant, member_user)

    response = client_for(owner).post(
        f"/api/v1/ai/audit/conversations/{conversation.pk}/legal-hold/", {"legal_hold": True}
    )

    assert response.status_code == 200
    assert Conversation.objects.get(pk=conversation.pk).legal_hold is True


def test_another_tenants_conversation_is_404_on_the_audit(tenant, other_tenant, owner, other_user):
    foreign = start_conversation(other_tenant, other_user)
    before = row(foreign)

    response = client_for(owner).post(f"/api/v1/ai/audit/conversations/{foreign.pk}/legal-hold/", {"legal_hold": True})

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert row(foreign) == before
    assert ConversationAuditLog.objects.count() == 0


def test_a_member_of_two_tenants_keeps_their_conversations_apart(tenant, other_tenant, member_user):
    MembershipFactory(tenant=other_tenant, user=member_user)
    here = start_conversation(tenant, member_user)
    there = start_conversation(other_tenant, member_user)

    assert listed(client_for(member_user, tenant).get(URL)) == [here.pk]
    assert listed(client_for(member_user, other_tenant).get(URL)) == [there.pk]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("post", "archive/"), ("post", "unarchive/"), ("get", "export/"), ("get", "messages/"), ("post", "messages/")],
)
def test_another_tenants_conversation_is_404_on_every_action(tenant, other_tenant, owner, other_user, method, suffix):
    foreign = start_conversation(other_tenant, other_user)
    before = row(foreign)
    body = {"content": "Hi"} if method == "post" else None

    response = getattr(client_for(owner), method)(f"{URL}{foreign.pk}/{suffix}", body)

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert row(foreign) == before
    assert Message.objects.filter(conversation=foreign).count() == 1
