"""/api/v1/activities/: calls, emails, SMS, meetings, notes, tasks and door knocks."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from crm.actor import Actor
from crm.errors import ApplicationError
from crm.models import Activity, Role
from crm.records import record_save
from crm.services import notice_send
from tests.admin import admin_url, staff_client
from tests.api import api_errors, assert_invalid, row, table
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory, UserFactory

URL = "/api/v1/activities/"


def detail(activity):
    return f"{URL}{activity.pk}/"


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_create_records_who_performed_it(tenant, member_user):
    contact = ContactFactory(tenant=tenant)
    project = ProjectFactory(tenant=tenant, contact=contact)
    body = {
        "contact": contact.pk,
        "project": project.pk,
        "type": "call",
        "subtype": "follow_up",
        "subject": "Inspection follow-up",
        "content": "Discussed the adjuster's visit.",
        "direction": "outbound",
        "from_address": "+15551234567",
        "to_address": "+15557654321",
        "outcome": "connected",
        "outcome_details": {"next_step": "send estimate"},
        "duration_seconds": 310,
        "recording_url": "https://calls.example.com/r/1.mp3",
        "transcript": "Hello...",
        "scheduled_at": "2026-06-01T15:00:00Z",
        "completed_at": "2026-06-01T15:05:10Z",
        "reminder_at": None,
        "external_id": "twilio-CA123",
    }

    response = client_for(member_user).post(URL, body)

    assert response.status_code == 201, response.content
    activity = Activity.objects.get()
    result = response.json()
    assert {key: result[key] for key in body} == body
    assert (result["id"], result["created_by"], result["performed_by"], result["on_behalf_of"]) == (
        activity.pk,
        member_user.pk,
        member_user.pk,
        None,
    )
    assert (activity.tenant, activity.performed_by, activity.on_behalf_of) == (tenant, member_user, None)


@pytest.mark.parametrize("field", ["contact", "project"])
def test_a_contact_or_a_project_is_enough(tenant, member_user, field):
    target = {"contact": ContactFactory, "project": ProjectFactory}[field](tenant=tenant)

    response = client_for(member_user).post(URL, {"type": "note", field: target.pk})

    assert response.status_code == 201
    assert getattr(Activity.objects.get(), field) == target


def test_an_activity_needs_a_contact_or_a_project(tenant, member_user):
    response = client_for(member_user).post(URL, {"type": "note", "contact": None, "project": None})

    assert_invalid(
        response,
        attr="contact",
        code="activities_contact_or_project",
        detail="An activity needs a contact or a project.",
    )
    assert not Activity.objects.exists()


def test_update_cannot_remove_both_links(tenant, member_user):
    activity = ActivityFactory(tenant=tenant, project=None)
    before = row(activity)

    response = client_for(member_user).patch(detail(activity), {"contact": None})

    assert_invalid(
        response,
        attr="contact",
        code="activities_contact_or_project",
        detail="An activity needs a contact or a project.",
    )
    assert row(activity) == before


def test_update_keeps_who_performed_it(tenant, member_user, manager):
    activity = ActivityFactory(tenant=tenant, performed_by=member_user, created_by=member_user)

    response = client_for(manager).patch(detail(activity), {"outcome": "voicemail", "performed_by": manager.pk})

    assert response.status_code == 200
    activity.refresh_from_db()
    assert (activity.outcome, activity.performed_by, activity.created_by) == ("voicemail", member_user, member_user)


def test_external_id_is_unique_per_tenant(tenant, other_tenant, member_user):
    contact = ContactFactory(tenant=tenant)
    ActivityFactory(tenant=tenant, external_id="twilio-1")
    ActivityFactory(tenant=other_tenant, external_id="twilio-2")
    before = table(Activity)
    client = client_for(member_user)

    response = client.post(URL, {"type": "sms", "contact": contact.pk, "external_id": "twilio-1"})

    assert_invalid(
        response,
        attr="external_id",
        code="activities_external_id_unique_per_tenant",
        detail="An activity with this external id already exists.",
    )
    assert table(Activity) == before
    assert client.post(URL, {"type": "sms", "contact": contact.pk, "external_id": "twilio-2"}).status_code == 201


def test_delete_removes_the_activity(tenant, manager):
    activity = ActivityFactory(tenant=tenant)

    assert client_for(manager).delete(detail(activity)).status_code == 204
    assert row(activity) is None


@pytest.mark.parametrize(
    ("body", "attrs"),
    [
        ({}, ["type"]),
        ({"type": "fax"}, ["type"]),
        ({"type": "call", "direction": "sideways"}, ["direction"]),
        ({"type": "call", "duration_seconds": -1}, ["duration_seconds"]),
        ({"type": "call", "recording_url": "not a url"}, ["recording_url"]),
        ({"type": "call", "scheduled_at": "tomorrow"}, ["scheduled_at"]),
        ({"type": "call", "outcome_details": "ok"}, ["outcome_details"]),
        ({"type": "fax", "contact": "x", "outcome_details": []}, ["type", "contact", "outcome_details"]),
    ],
)
def test_invalid_fields_are_named_and_nothing_is_written(tenant, member_user, body, attrs):
    body = {"contact": ContactFactory(tenant=tenant).pk, **body}

    response = client_for(member_user).post(URL, body)

    assert sorted(error["attr"] for error in api_errors(response, 400, type="validation_error")) == sorted(attrs)
    assert not Activity.objects.exists()


@pytest.fixture
def log(tenant, member_user, manager):
    contact, other_contact = ContactFactory(tenant=tenant), ContactFactory(tenant=tenant)
    project = ProjectFactory(tenant=tenant, contact=contact)
    return {
        "call": ActivityFactory(
            tenant=tenant,
            contact=contact,
            type="call",
            direction="outbound",
            subject="Estimate follow-up",
            performed_by=member_user,
            completed_at=timezone.now(),
        ),
        "task": ActivityFactory(
            tenant=tenant,
            contact=None,
            project=project,
            type="task",
            subject="Order shingles",
            content="Owens Corning Duration",
            performed_by=manager,
            scheduled_at=dt.datetime(2026, 6, 1, 9, tzinfo=dt.UTC),
        ),
        "knock": ActivityFactory(
            tenant=tenant,
            contact=other_contact,
            type="door_knock",
            direction="inbound",
            subject="Storm canvass",
            scheduled_at=dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=call", ["call"]),
        ("type=call&type=task", ["call", "task"]),
        ("direction=inbound", ["knock"]),
        ("contact={contact}", ["call"]),
        ("project={project}", ["task"]),
        ("performed_by={member}", ["call"]),
        ("open=true", ["task", "knock"]),
        ("open=false", ["call"]),
        ("scheduled_after=2026-05-15T00:00:00Z", ["task"]),
        ("scheduled_before=2026-05-15T00:00:00Z", ["knock"]),
        ("search=shingles", ["task"]),
        ("search=owens corning", ["task"]),
    ],
)
def test_filters(log, member_user, query, expected):
    query = query.format(contact=log["call"].contact_id, project=log["task"].project_id, member=member_user.pk).replace(
        " ", "%20"
    )

    response = client_for(member_user).get(f"{URL}?{query}")

    assert sorted(ids(response)) == sorted(log[name].pk for name in expected)


def test_ordering(log, member_user):
    response = client_for(member_user).get(URL, {"ordering": "scheduled_at"})

    assert ids(response) == [log["knock"].pk, log["task"].pk, log["call"].pk]


# Notices: addressed to one member, written only by services ------------------------------


def notice_for(tenant, recipient, sender=None):
    return notice_send(
        actor=Actor(tenant=tenant, user=sender or recipient),
        recipient=recipient,
        subject="Your account was viewed",
        content="Reason: support",
    )


@pytest.mark.parametrize(
    ("type_", "with_contact", "with_recipient", "constraint"),
    [
        pytest.param("notice", True, False, "activities_recipient_only_on_notices", id="notice without recipient"),
        pytest.param("note", True, True, "activities_recipient_only_on_notices", id="recipient on a note"),
        pytest.param("note", False, False, "activities_contact_or_project", id="note without contact"),
    ],
)
def test_the_database_refuses_a_broken_notice_rule(
    tenant, member_user, type_, with_contact, with_recipient, constraint
):
    activity = Activity(
        tenant=tenant,
        type=type_,
        contact=ContactFactory(tenant=tenant) if with_contact else None,
        recipient=member_user if with_recipient else None,
    )

    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        activity.save()

    assert raised.value.__cause__.diag.constraint_name == constraint
    assert not Activity.objects.exists()


RECIPIENT_CHECK = "activities_recipient_only_on_notices"
RECIPIENT_RULE = "A notice is addressed to one member (recipient); no other activity has one."


@pytest.mark.parametrize(
    ("type_", "with_contact", "with_recipient", "attr", "code", "detail"),
    [
        pytest.param("notice", True, False, "recipient", RECIPIENT_CHECK, RECIPIENT_RULE, id="no recipient"),
        pytest.param("note", True, True, "recipient", RECIPIENT_CHECK, RECIPIENT_RULE, id="not a notice"),
        pytest.param(
            "note",
            False,
            False,
            "contact",
            "activities_contact_or_project",
            "An activity needs a contact or a project.",
            id="no contact",
        ),
    ],
)
def test_a_save_names_the_field_of_a_broken_notice_rule(
    tenant, member_user, type_, with_contact, with_recipient, attr, code, detail
):
    """What the database refuses, every write path answers naming the field (crm.constraints)."""
    activity = Activity(
        tenant=tenant,
        type=type_,
        contact=ContactFactory(tenant=tenant) if with_contact else None,
        recipient=member_user if with_recipient else None,
    )

    with pytest.raises(ApplicationError) as raised:
        record_save(activity, actor=Actor(tenant=tenant, user=member_user))

    assert (raised.value.attr, raised.value.code, raised.value.message) == (attr, code, detail)
    assert not Activity.objects.exists()


def test_a_notice_needs_no_contact_and_shows_its_recipient(tenant, member_user, owner):
    notice = notice_for(tenant, member_user, sender=owner)

    response = client_for(member_user).get(detail(notice))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["type"], body["recipient"], body["contact"], body["project"], body["created_by"]) == (
        "notice",
        member_user.pk,
        None,
        None,
        owner.pk,
    )


@pytest.mark.parametrize("method", ["post", "put"])
def test_the_api_refuses_to_write_a_notice(tenant, member_user, owner, method):
    contact = ContactFactory(tenant=tenant)
    activity = ActivityFactory(tenant=tenant, contact=contact)
    before = table(Activity)
    body = {"type": "notice", "contact": contact.pk, "recipient": owner.pk}
    url = URL if method == "post" else detail(activity)

    response = getattr(client_for(member_user), method)(url, body)

    assert_invalid(response, attr="type", code="notice", detail="Notices are written by Ridgeline only.")
    assert table(Activity) == before


def test_the_recipient_cannot_change_their_notice(tenant, member_user):
    notice = notice_for(tenant, member_user)
    before = row(notice)

    response = client_for(member_user).patch(detail(notice), {"subject": "Nothing happened"})

    assert_invalid(
        response, attr="type", code="notice", detail="A notice is written by Ridgeline and cannot be changed."
    )
    assert row(notice) == before


def test_the_recipient_is_not_writable(tenant, member_user, owner):
    contact = ContactFactory(tenant=tenant)

    response = client_for(member_user).post(URL, {"type": "note", "contact": contact.pk, "recipient": owner.pk})

    assert response.status_code == 201, response.content
    assert response.json()["recipient"] is None
    assert Activity.objects.get().recipient is None


def test_notices_are_listed_and_fetched_by_their_recipient_only(tenant, member_user, manager):
    shared = ActivityFactory(tenant=tenant)
    mine = notice_for(tenant, member_user)
    theirs = notice_for(tenant, manager)
    client = client_for(member_user)

    assert ids(client.get(URL)) == [mine.pk, shared.pk]
    assert client.get(URL).json()["count"] == 2
    assert client.get(detail(mine)).status_code == 200
    assert api_errors(client.get(detail(theirs)), 404)
    assert ids(client_for(manager).get(URL)) == [theirs.pk, shared.pk]


def test_the_admin_lists_notices_to_their_recipient_only(tenant, member_user):
    staff, staff_user = staff_client(tenant, Role.MANAGER)
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    root = Client()
    root.force_login(superuser)
    shared = ActivityFactory(tenant=tenant)
    theirs = notice_for(tenant, member_user)
    mine = notice_for(tenant, staff_user)
    changelist = admin_url("changelist", Activity)

    assert set(staff.get(changelist).context["cl"].result_list) == {shared, mine}
    assert staff.get(admin_url("change", Activity, theirs.pk)).status_code == 302
    assert staff.get(admin_url("change", Activity, mine.pk)).status_code == 200
    assert set(root.get(changelist).context["cl"].result_list) == {shared, mine, theirs}
