"""The offline assistant (no AI_BASE_URL) in `make run`'s demo tenant: the three plain requests
answered end to end through the API, by the same tools a model calls."""

from collections.abc import Iterator
from io import StringIO

import pytest
from django.db import transaction
from django.db.models import Q
from django.test import override_settings

from ai_chat.models import Conversation, Message, MessageRole
from contacts.models import Contact
from crm.demo import demo_steps
from crm.demo.runner import demo_load
from crm.models import Activity, Project, Tenant, User
from crm.search import prefix_search_query
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker) -> Iterator[Tenant]:
    """`make run`'s demo tenant, loaded once for the module inside a transaction rolled back at its end."""
    with django_db_blocker.unblock(), transaction.atomic(), override_settings(DEBUG=True):
        demo_load(steps=demo_steps(), stdout=StringIO())
        yield Tenant.objects.get(subdomain="summit")
        transaction.set_rollback(True)


@pytest.fixture
def member(demo, settings) -> User:
    settings.AI_BASE_URL = ""
    return User.objects.get(username="summit-member")


def ask(user: User, text: str) -> dict:
    client = client_for(user)
    conversation = client.post("/api/v1/ai/conversations/", {}).json()
    response = client.post(f"/api/v1/ai/conversations/{conversation['id']}/messages/", {"content": text})
    assert response.status_code == 200, response.content
    return response.json()


def test_find_contacts_named(demo, member):
    surname = Contact.objects.filter(tenant=demo, is_deleted=False).values_list("last_name", flat=True).first()
    expected = Contact.objects.filter(tenant=demo, is_deleted=False, search=prefix_search_query(surname))
    names = "; ".join(
        f"{contact.display_name} (#{contact.pk})" for contact in expected.order_by("last_name", "first_name", "id")
    )

    reply = ask(member, f"Find contacts named {surname.lower()}")

    roles = [(message["role"], message["tool_name"]) for message in reply["messages"]]
    assert roles == [("user", ""), ("assistant", ""), ("function", "search_contacts"), ("assistant", "")]
    assert reply["messages"][-1]["content"] == (
        f"Offline assistant: I found {expected.count()} contact(s) named {surname.lower()!r}: {names}."
    )
    assert {m["provider"] for m in reply["messages"][1::2]} == {"offline"}


def test_my_open_estimates(demo, member):
    mine = Project.objects.filter(tenant=demo, is_deleted=False, status="estimate").filter(
        Q(created_by=member) | Q(contact__assigned_to=member)
    )
    listed = "; ".join(f"{p.name} (#{p.pk})" for p in mine.order_by("-created_at", "-id")[:10])
    expected = (
        f"Offline assistant: you have {mine.count()} open estimate(s): {listed}."
        if mine.exists()
        else "Offline assistant: you have no open estimates."
    )

    reply = ask(member, "What are my open estimates?")

    assert reply["messages"][2]["tool_name"] == "list_projects"
    assert reply["messages"][-1]["content"] == expected


def test_add_a_note_to_a_contact(demo, member):
    contact = (
        Contact.objects.filter(tenant=demo, is_deleted=False, is_organization=False)
        .exclude(first_name="")
        .order_by("id")
        .first()
    )
    name = f"{contact.first_name} {contact.last_name}"
    assert Contact.objects.filter(tenant=demo, is_deleted=False, search=prefix_search_query(name)).count() == 1

    reply = ask(member, f"Add a note to {name}: wants a quote for gutters")

    assert [m["tool_name"] for m in reply["messages"] if m["role"] == "function"] == [
        "search_contacts",
        "create_activity",
    ]
    assert reply["messages"][-1]["content"] == f"Offline assistant: I added the note to {contact.display_name}."
    note = Activity.objects.filter(tenant=demo, contact=contact, type="note").latest("id")
    assert (note.content, note.performed_by_id) == ("wants a quote for gutters", member.pk)
    assert note.outcome_details == {"ai_conversation": reply["messages"][0]["conversation"]}


def test_the_demo_holds_a_conversation_for_each_plain_request_answered_by_its_tools(demo):
    """Written by seed_demo's ai_chat.offline step: the turns ran, the tools read and wrote the demo's rows."""
    admin = User.objects.get(username="summit-admin")
    conversations = list(Conversation.objects.filter(tenant=demo).order_by("id"))
    turns = [
        list(Message.objects.filter(conversation=c).exclude(role=MessageRole.SYSTEM).order_by("id"))
        for c in conversations
    ]
    smiths = Contact.objects.filter(tenant=demo, is_deleted=False, search=prefix_search_query("smith")).order_by(
        "last_name", "first_name", "id"
    )
    estimates = (
        Project.objects.filter(tenant=demo, is_deleted=False, status="estimate")
        .filter(Q(created_by=admin) | Q(contact__assigned_to=admin))
        .order_by("-created_at", "-id")
    )
    monica = Contact.objects.get(tenant=demo, first_name="Monica", last_name="Smith")
    note = Activity.objects.get(tenant=demo, outcome_details__ai_conversation=conversations[2].pk)

    assert [(c.user, c.provider, c.model) for c in conversations] == [(admin, "offline", "offline")] * 3
    assert [turn[0].content for turn in turns] == [
        "Find contacts named Smith",
        "What are my open estimates?",
        "Add a note to Monica Smith: asked for a quote on seamless gutters before the fall.",
    ]
    assert [[(m.role, m.tool_name) for m in turn[1:]] for turn in turns] == [
        [("assistant", ""), ("function", "search_contacts"), ("assistant", "")],
        [("assistant", ""), ("function", "list_projects"), ("assistant", "")],
        [("assistant", ""), ("function", "search_contacts"), ("assistant", ""), ("function", "create_activity")]
        + [("assistant", "")],
    ]
    found, listed, (_, _, named, _, created, _) = turns[0][2].result, turns[1][2].result, turns[2]
    assert (found["count"], [c["id"] for c in found["contacts"]]) == (4, [c.pk for c in smiths])
    assert (
        turns[0][-1].content
        == "Offline assistant: I found 4 contact(s) named 'Smith': "
        + "; ".join(f"{c.display_name} (#{c.pk})" for c in smiths)
        + "."
    )
    assert (listed["count"], [p["id"] for p in listed["projects"]]) == (
        estimates.count(),
        [p.pk for p in estimates[:10]],
    )
    assert listed["count"] > 0
    assert [c["id"] for c in named.result["contacts"]] == [monica.pk]
    assert created.result["created"]["id"] == note.pk
    assert (note.type, note.contact, note.content, note.performed_by) == (
        "note",
        monica,
        "asked for a quote on seamless gutters before the fall.",
        admin,
    )
    assert turns[2][-1].content == "Offline assistant: I added the note to Monica Smith."


def test_anything_else_gets_the_honest_help(demo, member):
    reply = ask(member, "Write me a poem")

    assert [m["role"] for m in reply["messages"]] == ["user", "assistant"]
    assert reply["messages"][-1]["content"].startswith("I am Ridgeline's offline assistant: no AI model is configured")
    assert not Message.objects.filter(conversation=reply["messages"][0]["conversation"], role=MessageRole.FUNCTION)
