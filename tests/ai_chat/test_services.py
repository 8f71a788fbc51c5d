"""Costs, titles, retention and legal hold, tools run while impersonating, results capped in size."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from ai_chat import tools
from ai_chat.models import Conversation, Message, MessageRole
from ai_chat.services import conversations_retention, message_cost, message_send, title_from
from ai_chat.tasks import conversations_retention_task
from crm.actor import Actor
from crm.models import Activity, Role
from crm.services import notice_send
from tests.ai_chat.conftest import start_conversation
from tests.factories import ActivityFactory, ContactFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("model", "prompt", "completion", "cost"),
    [
        ("gpt-4o", 1_234_567, 345_678, Decimal("6.543198")),  # 3.0864175 + 3.45678
        ("gpt-4o-mini", 1_000_000, 1_000_000, Decimal("0.750000")),
        ("gpt-4o-mini", 1, 0, Decimal("0.000000")),  # 0.00000015 rounds to nothing
        ("gpt-4o-mini", 7, 3, Decimal("0.000003")),  # 0.00000105 + 0.0000018
        ("llama3", 10_000, 10_000, Decimal("0")),  # not in the price table
    ],
)
def test_cost_arithmetic(model, prompt, completion, cost):
    assert message_cost(model=model, prompt_tokens=prompt, completion_tokens=completion) == cost


def test_costs_add_up_on_the_conversation_to_the_cent(tenant, member_user):
    conversation = start_conversation(tenant, member_user)
    for prompt, completion in [(1_234_567, 345_678), (10_000, 2_000), (999, 1)]:
        Message.objects.create(
            tenant=tenant,
            conversation=conversation,
            role=MessageRole.ASSISTANT,
            model="gpt-4o",
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=message_cost(model="gpt-4o", prompt_tokens=prompt, completion_tokens=completion),
        )

    conversation.refresh_from_db()

    # 6.543198 + (0.025 + 0.02) + (0.0024975 + 0.00001 -> 0.002508)
    assert conversation.total_cost == Decimal("6.590706")
    assert round(conversation.total_cost, 2) == Decimal("6.59")
    assert conversation.prompt_tokens + conversation.completion_tokens == 1_593_245


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Who is Smith?", "Who is Smith?"),
        ("  find   contacts\nnamed smith  ", "find contacts named smith"),
        ("a" * 70, "a" * 60 + "…"),
        ("", ""),
    ],
)
def test_title_from_the_first_words(text, title):
    assert title_from(text) == title


def archived(tenant, user, *, days_ago: int, legal_hold: bool = False, deleted: bool = False) -> Conversation:
    conversation = start_conversation(tenant, user)
    Message.objects.create(tenant=tenant, conversation=conversation, role=MessageRole.USER, content="old")
    then = timezone.now() - dt.timedelta(days=days_ago)
    Conversation.objects.filter(pk=conversation.pk).update(
        is_active=deleted, updated_at=then, legal_hold=legal_hold, deleted_at=then if deleted else None
    )
    return conversation


def test_retention_deletes_old_archived_and_deleted_conversations_except_on_legal_hold(
    tenant, other_tenant, member_user, other_user, settings
):
    settings.AI_RETENTION_DAYS = 30
    other_tenant.settings = {"ai": {"retention_days": 400}}
    other_tenant.save()
    expired = archived(tenant, member_user, days_ago=31)
    deleted = archived(tenant, member_user, days_ago=31, deleted=True)
    held = archived(tenant, member_user, days_ago=31, legal_hold=True)
    recent = archived(tenant, member_user, days_ago=29)
    active = start_conversation(tenant, member_user)
    Conversation.objects.filter(pk=active.pk).update(updated_at=timezone.now() - dt.timedelta(days=900))
    longer = archived(other_tenant, other_user, days_ago=200)

    assert conversations_retention_task.apply().get() == 2

    assert set(Conversation.objects.values_list("pk", flat=True)) == {held.pk, recent.pk, active.pk, longer.pk}
    assert not Message.objects.filter(conversation_id__in=[expired.pk, deleted.pk]).exists()
    assert Message.objects.filter(conversation=held).count() == 2
    assert conversations_retention() == 0


def test_a_tool_run_while_impersonating_sees_the_targets_tenant_and_records_both_users(
    tenant, other_tenant, member_user, fake_openai
):
    staff = UserFactory(username="support", is_staff=True)
    MembershipFactory(tenant=other_tenant, user=staff, role=Role.OWNER)
    theirs = ContactFactory(tenant=tenant, first_name="Ann", last_name="Smith")
    ContactFactory(tenant=other_tenant, first_name="Bob", last_name="Smith")
    actor = Actor(tenant=tenant, user=member_user, real_user=staff)
    conversation = start_conversation(tenant, member_user)
    fake_openai.reply("", [("c1", "search_contacts", {"query": "smith"})])
    fake_openai.reply("", [("c2", "create_activity", {"type": "note", "contact": theirs.pk, "content": "Called"})])
    fake_openai.reply("Done.")

    messages = message_send(conversation=conversation, actor=actor, content="Note on Smith")

    found = messages[2].result
    assert [contact["id"] for contact in found["contacts"]] == [theirs.pk]
    activity = Activity.objects.get()
    assert (activity.tenant_id, activity.contact_id, activity.performed_by_id, activity.on_behalf_of_id) == (
        tenant.pk,
        theirs.pk,
        member_user.pk,
        staff.pk,
    )
    assert {(m.user_id, m.on_behalf_of_id) for m in messages} == {(member_user.pk, staff.pk)}


def test_a_tools_result_is_capped_leaving_rows_off(tenant, member_user, settings):
    settings.AI_TOOL_RESULT_MAX_CHARS = 1500
    for number in range(12):
        ContactFactory(tenant=tenant, first_name=f"Person{number}", last_name="Smith")
    context = tools.ToolContext(actor=Actor(tenant=tenant, user=member_user), role=Role.MEMBER, conversation_id=1)

    result = tools.tool_run(context, "search_contacts", json.dumps({"query": "smith", "limit": 12}))

    assert result["count"] == 12
    assert result["truncated"] is True
    assert 0 < len(result["contacts"]) < 12
    assert len(json.dumps(result)) <= 1500
    assert set(result["contacts"][0]) == set(tools.CONTACT_FIELDS)


def test_search_contacts_counts_every_match_beyond_its_limit(tenant, other_tenant, member_user):
    for number in range(4):
        ContactFactory(tenant=tenant, first_name=f"Person{number}", last_name="Smith")
    ContactFactory(tenant=tenant, first_name="Gone", last_name="Smith", is_deleted=True)
    ContactFactory(tenant=other_tenant, first_name="Other", last_name="Smith")
    context = tools.ToolContext(actor=Actor(tenant=tenant, user=member_user), role=Role.MEMBER, conversation_id=1)

    found = tools.tool_run(context, "search_contacts", json.dumps({"query": "smith", "limit": 3}))
    nobody = tools.tool_run(context, "search_contacts", json.dumps({"query": "jones"}))

    assert (found["count"], [c["display_name"] for c in found["contacts"]]) == (
        4,
        ["Person0 Smith", "Person1 Smith", "Person2 Smith"],
    )
    assert nobody == {"count": 0, "contacts": []}


def test_list_projects_without_a_filter_tree_by_status_and_mine(tenant, member_user, manager):
    mine = ProjectFactory(tenant=tenant, status="estimate", created_by=member_user)
    ProjectFactory(tenant=tenant, status="estimate", created_by=manager)
    ProjectFactory(tenant=tenant, status="approved", created_by=member_user)
    context = tools.ToolContext(actor=Actor(tenant=tenant, user=member_user), role=Role.MEMBER, conversation_id=1)

    result = tools.tool_run(context, "list_projects", json.dumps({"status": ["estimate"], "mine": True}))

    assert result["count"] == 1
    assert [project["id"] for project in result["projects"]] == [mine.pk]
    assert tools.tool_run(context, "list_projects", '{"status": ["open"]}') == {
        "error": 'Invalid arguments: status: 0: "open" is not a valid choice.'
    }


def test_list_projects_with_a_filter_tree_through_the_tool_loop(tenant, other_tenant, member_user, fake_openai):
    estimate = ProjectFactory(tenant=tenant, status="estimate", name="Roof A")
    ProjectFactory(tenant=tenant, status="approved", name="Roof B")
    ProjectFactory(tenant=other_tenant, status="estimate", name="Roof C")
    conversation = start_conversation(tenant, member_user)
    tree = {"field": "status", "op": "in", "value": ["estimate"]}
    fake_openai.reply("", [("c1", "list_projects", {"filter": tree})])
    fake_openai.reply("One estimate.")

    messages = message_send(conversation=conversation, actor=Actor(tenant=tenant, user=member_user), content="?")

    result = messages[2].result
    assert (result["count"], [project["name"] for project in result["projects"]]) == (1, ["Roof A"])
    assert result["projects"][0]["id"] == estimate.pk


@pytest.mark.parametrize(
    ("tree", "error"),
    [
        ({"field": "nope", "op": "equals", "value": 1}, "field: unknown field 'nope' for projects"),
        ([1], "filter: expected an object (a condition, or and / or / not)"),
    ],
)
def test_a_bad_filter_tree_comes_back_to_the_model_with_its_paths(tenant, member_user, tree, error):
    context = tools.ToolContext(actor=Actor(tenant=tenant, user=member_user), role=Role.MEMBER, conversation_id=1)

    result = tools.tool_run(context, "list_projects", json.dumps({"filter": tree}))

    assert result == {"error": error, "field": "filter"}


def test_the_assistant_lists_only_the_users_own_notices(tenant, member_user, manager):
    shared = ActivityFactory(tenant=tenant)
    mine, theirs = (
        notice_send(actor=Actor(tenant=tenant, user=manager), recipient=user, subject="Viewed", content="Why")
        for user in (member_user, manager)
    )
    context = tools.ToolContext(actor=Actor(tenant=tenant, user=member_user), role=Role.MEMBER, conversation_id=1)

    every = tools.tool_run(context, "list_activities", "{}")
    notices = tools.tool_run(context, "list_activities", '{"type": "notice"}')

    assert (every["count"], [row["id"] for row in every["activities"]]) == (2, [mine.pk, shared.pk])
    assert (notices["count"], [row["id"] for row in notices["activities"]]) == (1, [mine.pk])
    assert theirs.pk not in {row["id"] for row in every["activities"]}
