"""What a turn costs the database: a fixed set of queries, its messages written in one INSERT."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ai_chat.models import Message
from tests.api import app_queries
from tests.conftest import client_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def statement(sql: str) -> str:
    """`SELECT contacts`, `INSERT ai_messages`, ...: the verb and the first table outside subqueries."""
    verb = sql.split(None, 1)[0]
    outer = sql
    while (shorter := re.sub(r"\([^()]*\)", "", outer)) != outer:  # innermost parentheses first
        outer = shorter
    table = re.search(r'(?:FROM|INTO|UPDATE) "(\w+)"', outer)
    return f"{verb} {table[1]}" if table else verb


def test_a_turn_with_one_tool_call(conversation, member_user, tenant, fake_openai):
    ContactFactory(tenant=tenant, first_name="Ann", last_name="Smith")
    client = client_for(member_user)
    url = f"/api/v1/ai/conversations/{conversation.pk}/messages/"
    turns = []
    for _ in range(2):  # the first turn also gives the conversation its title
        fake_openai.reply(None, [("call_1", "search_contacts", {"query": "smith"})])
        fake_openai.reply("Ann Smith.")
        with CaptureQueriesContext(connection) as captured:
            response = client.post(url, {"content": "find contacts named smith"})
        assert response.status_code == 200, response.content
        turns.append([statement(query["sql"]) for query in app_queries(captured)])

    # Tenant, conversation with the month's tokens and the history, the tool's page and count, one INSERT
    # (outside a transaction: one statement is atomic on its own).
    read = ["SELECT tenant_users", "SELECT ai_conversations"]
    tool = ["SELECT contacts"]
    assert turns == [
        [*read, *tool, "SAVEPOINT", "INSERT ai_messages", "UPDATE ai_conversations", "RELEASE"],
        [*read, *tool, "INSERT ai_messages"],
    ]
    assert list(Message.objects.filter(conversation=conversation).values_list("role", flat=True)) == [
        "system",
        *["user", "assistant", "function", "assistant"] * 2,
    ]
