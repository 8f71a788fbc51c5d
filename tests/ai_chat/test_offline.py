"""The offline assistant (no AI_BASE_URL) in `make run`'s demo tenant: the three plain requests
answered end to end through the API, by the same tools a model calls."""

from collections.abc import Iterator
from io import StringIO

import pytest
from django.db import transaction
from django.db.models import Q
from django.test import override_settings

from ai_chat.models import Message, MessageRole
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


def test_anything_else_gets_the_honest_help(demo, member):
    reply = ask(member, "Write me a poem")

    assert [m["role"] for m in reply["messages"]] == ["user", "assistant"]
    assert reply["messages"][-1]["content"].startswith("I am Ridgeline's offline assistant: no AI model is configured")
    assert Message.objects.filter(role=MessageRole.FUNCTION).count() == 0
