"""The admin: conversations and messages read only, scoped to the staff user's tenants, with totals."""

from decimal import Decimal

import pytest

from ai_chat.models import Conversation, Message, MessageRole
from crm.models import Role
from tests.admin import admin_url, staff_client
from tests.ai_chat.conftest import start_conversation

pytestmark = pytest.mark.django_db


def reply(conversation, model: str, prompt: int, completion: int, cost: str) -> None:
    Message.objects.create(
        tenant=conversation.tenant,
        conversation=conversation,
        role=MessageRole.ASSISTANT,
        content="ok",
        user=conversation.user,
        model=model,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost=Decimal(cost),
    )


@pytest.fixture
def chats(tenant, other_tenant, member_user, manager, other_user):
    mine = start_conversation(tenant, member_user, title="Gutters")
    reply(mine, "gpt-4o", 1000, 100, "0.003500")
    theirs = start_conversation(tenant, manager, title="Hail")
    reply(theirs, "gpt-4o-mini", 2000, 200, "0.000420")
    foreign = start_conversation(other_tenant, other_user, title="Foreign")
    reply(foreign, "gpt-4o", 5, 5, "0.000100")
    return mine, theirs, foreign


def test_the_conversation_list_shows_the_tenants_rows_and_their_totals(tenant, chats):
    client, _ = staff_client(tenant, Role.VIEWER)

    response = client.get(admin_url("changelist", Conversation))

    assert response.status_code == 200
    assert {row.title for row in response.context["cl"].result_list} == {"Gutters", "Hail"}
    assert response.context["subtitle"] == (
        "Totals: 4 messages, 3,300 tokens (3,000 prompt, 300 completion), $0.003920"
    )


@pytest.mark.parametrize(
    ("query", "titles"),
    [("model=gpt-4o", {"Gutters"}), ("model=gpt-4o-mini", {"Hail"}), ("user__id__exact={manager}", {"Hail"})],
)
def test_conversations_filter_by_model_and_user(tenant, chats, manager, query, titles):
    client, _ = staff_client(tenant, Role.VIEWER)

    response = client.get(admin_url("changelist", Conversation) + "?" + query.format(manager=manager.pk))

    assert {row.title for row in response.context["cl"].result_list} == titles


def test_messages_list_filters_by_date_and_shows_totals(tenant, chats):
    client, _ = staff_client(tenant, Role.OWNER)
    mine = chats[0]
    day = mine.created_at

    response = client.get(
        admin_url("changelist", Message) + f"?created_at__year={day.year}&created_at__month={day.month}&role=assistant"
    )

    assert response.status_code == 200
    assert response.context["subtitle"] == "Totals: 2 messages, 3,300 tokens (3,000 prompt, 300 completion), $0.003920"


def test_conversations_and_messages_are_read_only_even_for_owners(tenant, chats):
    client, _ = staff_client(tenant, Role.OWNER)
    conversation = chats[0]
    before = list(Conversation.objects.order_by("pk").values())

    add = client.get(admin_url("add", Conversation))
    change = client.post(admin_url("change", Conversation, conversation.pk), {"title": "Changed"})
    delete = client.post(admin_url("delete", Conversation, conversation.pk), {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert list(Conversation.objects.order_by("pk").values()) == before


def test_another_tenants_conversation_is_not_found(tenant, chats):
    client, _ = staff_client(tenant, Role.OWNER)

    response = client.get(admin_url("change", Conversation, chats[2].pk))

    assert response.status_code == 302  # the admin's "does not exist" redirect to its index
