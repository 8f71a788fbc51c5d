"""Every rule has one home: the API, the admin form and the service, given the same bad input,
answer the same message on the same field, and write nothing.

Each case is one rule and one bad input; each is run through the three paths by the same
person (a staff user who owns the tenant).
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection

from contacts.models import Contact
from contacts.services import contact_create, contact_update, contacts_reassign
from crm.actor import Actor, Source
from crm.errors import ApplicationError
from crm.models import Activity, Project, Role, User
from crm.services import (
    activity_create,
    activity_update,
    notice_send,
    project_contact_add,
    project_create,
    project_update,
)
from substatus.models import SubstatusConfig
from substatus.services import substatus_create, substatus_update
from tests.admin import admin_url, form_errors, post_page, staff_client
from tests.api import api_errors, tables
from tests.conftest import client_for
from tests.factories import ActivityFactory, CompanyFactory, ContactFactory, ProjectFactory
from tests.substatus.kinds import CONTACT, PROJECT, config

pytestmark = pytest.mark.django_db

NEEDS_A_NAME = "Give the contact a name, an email or a phone number."


def deleted(row: Any) -> Any:
    type(row)._default_manager.filter(pk=row.pk).update(is_deleted=True)
    row.refresh_from_db()
    return row


def is_deleted_message(row: Any) -> str:
    return f"{row._meta.verbose_name.capitalize()} {row.pk} is deleted: restore it before linking to it."


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Any], SimpleNamespace]  # tenant -> the rows the case needs
    api: Callable[[SimpleNamespace], tuple[str, str, dict[str, Any]]]  # method, URL, body
    admin: Callable[[SimpleNamespace], tuple[str, dict[str, Any]]]  # page, what is changed on it
    service: Callable[[Actor, SimpleNamespace], Any]
    attr: str
    message: Callable[[SimpleNamespace], str]


def nothing(tenant: Any) -> SimpleNamespace:
    return SimpleNamespace(tenant=tenant)


def notice_to_owner(tenant: Any) -> Activity:
    """A notice to the staff owner every case runs as (the only one who sees it)."""
    owner = User.objects.get(is_staff=True, memberships__tenant=tenant, memberships__role=Role.OWNER)
    return notice_send(actor=Actor(tenant=tenant, user=owner), recipient=owner, subject="Viewed", content="Why")


def new_party_row(rows: SimpleNamespace) -> dict[str, Any]:
    """The project page with one party row added (the project has none)."""
    return {
        "parties-TOTAL_FORMS": "1",
        "parties-0-contact": str(rows.contact.pk),
        "parties-0-role": "adjuster",
    }


CASES = [
    # A person needs a name, an email or a phone (the database; contacts migration 0008).
    Case(
        id="a new person without a name, an email or a phone",
        setup=nothing,
        api=lambda rows: ("post", "/api/v1/contacts/", {"address_city": "Boulder"}),
        admin=lambda rows: (
            admin_url("add", Contact),
            {"tenant": rows.tenant.pk, "first_name": "", "last_name": "", "email": "", "address_city": "Boulder"},
        ),
        service=lambda actor, rows: contact_create(actor=actor, address_city="Boulder"),
        attr="first_name",
        message=lambda rows: NEEDS_A_NAME,
    ),
    Case(
        id="a person losing the last way to reach them",
        setup=lambda tenant: SimpleNamespace(
            contact=ContactFactory(tenant=tenant, first_name="", last_name="", phone=None, email="dana@example.com")
        ),
        api=lambda rows: ("patch", f"/api/v1/contacts/{rows.contact.pk}/", {"email": ""}),
        admin=lambda rows: (admin_url("change", Contact, rows.contact.pk), {"email": ""}),
        service=lambda actor, rows: contact_update(contact=rows.contact, actor=actor, email=""),
        attr="first_name",
        message=lambda rows: NEEDS_A_NAME,
    ),
    # A company is named by `company` (the contact service).
    Case(
        id="a company without its name",
        setup=nothing,
        api=lambda rows: ("post", "/api/v1/contacts/", {"is_organization": True, "email": "office@acme.example"}),
        admin=lambda rows: (
            admin_url("add", Contact),
            {
                "tenant": rows.tenant.pk,
                "is_organization": "on",
                "first_name": "",
                "last_name": "",
                "email": "office@acme.example",
            },
        ),
        service=lambda actor, rows: contact_create(actor=actor, is_organization=True, email="office@acme.example"),
        attr="company",
        message=lambda rows: "A company contact needs its name in company.",
    ),
    # A contact's time zone is an IANA name (the model field's validator; empty: the tenant's).
    Case(
        id="a contact in a time zone that does not exist",
        setup=lambda tenant: SimpleNamespace(contact=ContactFactory(tenant=tenant)),
        api=lambda rows: ("patch", f"/api/v1/contacts/{rows.contact.pk}/", {"timezone": "America/Gotham"}),
        admin=lambda rows: (admin_url("change", Contact, rows.contact.pk), {"timezone": "America/Gotham"}),
        service=lambda actor, rows: contact_update(contact=rows.contact, actor=actor, timezone="America/Gotham"),
        attr="timezone",
        message=lambda rows: "America/Gotham is not an IANA time zone (e.g. America/New_York).",
    ),
    # An activity needs a contact or a project (the database).
    Case(
        id="an activity without a contact or a project",
        setup=nothing,
        api=lambda rows: ("post", "/api/v1/activities/", {"type": "note"}),
        admin=lambda rows: (admin_url("add", Activity), {"tenant": rows.tenant.pk, "type": "note"}),
        service=lambda actor, rows: activity_create(actor=actor, type="note"),
        attr="contact",
        message=lambda rows: "An activity needs a contact or a project.",
    ),
    # Notices are written by Ridgeline only (crm.services: notice_send), never as an activity.
    Case(
        id="a notice written as an activity",
        setup=lambda tenant: SimpleNamespace(contact=ContactFactory(tenant=tenant)),
        api=lambda rows: ("post", "/api/v1/activities/", {"type": "notice", "contact": rows.contact.pk}),
        admin=lambda rows: (
            admin_url("add", Activity),
            {"tenant": rows.tenant.pk, "type": "notice", "contact": rows.contact.pk},
        ),
        service=lambda actor, rows: activity_create(actor=actor, type="notice", contact=rows.contact),
        attr="type",
        message=lambda rows: "Notices are written by Ridgeline only.",
    ),
    Case(
        id="changing a notice",
        setup=lambda tenant: SimpleNamespace(notice=notice_to_owner(tenant)),
        api=lambda rows: ("patch", f"/api/v1/activities/{rows.notice.pk}/", {"subject": "Nothing happened"}),
        admin=lambda rows: (admin_url("change", Activity, rows.notice.pk), {"subject": "Nothing happened"}),
        service=lambda actor, rows: activity_update(activity=rows.notice, actor=actor, subject="Nothing happened"),
        attr="type",
        message=lambda rows: "A notice is written by Ridgeline and cannot be changed.",
    ),
    # The substatus rules (the database: constraints and triggers).
    Case(
        id="deactivating the default substatus",
        setup=lambda tenant: SimpleNamespace(substatus=config(tenant, PROJECT, "site_visit_pending")),
        api=lambda rows: ("patch", f"/api/v1/substatuses/{rows.substatus.pk}/", {"is_active": False}),
        admin=lambda rows: (admin_url("change", SubstatusConfig, rows.substatus.pk), {"is_active": None}),
        service=lambda actor, rows: substatus_update(substatus=rows.substatus, actor=actor, is_active=False),
        attr="is_active",
        message=lambda rows: "The default substatus must stay active: make another one the default first.",
    ),
    Case(
        id="an automatic transition without a delay",
        setup=lambda tenant: SimpleNamespace(
            substatus=config(tenant, PROJECT, "measurements_taken"), target=config(tenant, PROJECT, "quote_prepared")
        ),
        api=lambda rows: (
            "patch",
            f"/api/v1/substatuses/{rows.substatus.pk}/",
            {"auto_transition_to": rows.target.pk},
        ),
        admin=lambda rows: (
            admin_url("change", SubstatusConfig, rows.substatus.pk),
            {"auto_transition_to": str(rows.target.pk)},
        ),
        service=lambda actor, rows: substatus_update(
            substatus=rows.substatus, actor=actor, auto_transition_to=rows.target
        ),
        attr="auto_transition_delay_hours",
        message=lambda rows: "An automatic transition needs a delay of at least one hour (and only then).",
    ),
    Case(
        id="an automatic transition to another status",
        setup=lambda tenant: SimpleNamespace(
            substatus=config(tenant, PROJECT, "measurements_taken"),
            target=config(tenant, PROJECT, "deposit_received"),
        ),
        api=lambda rows: (
            "patch",
            f"/api/v1/substatuses/{rows.substatus.pk}/",
            {"auto_transition_to": rows.target.pk, "auto_transition_delay_hours": 4},
        ),
        admin=lambda rows: (
            admin_url("change", SubstatusConfig, rows.substatus.pk),
            {"auto_transition_to": str(rows.target.pk), "auto_transition_delay_hours": "4"},
        ),
        service=lambda actor, rows: substatus_update(
            substatus=rows.substatus, actor=actor, auto_transition_to=rows.target, auto_transition_delay_hours=4
        ),
        attr="auto_transition_to",
        message=lambda rows: "The automatic transition must go to another substatus of the same status.",
    ),
    Case(
        id="a substatus under a status of the other kind of record",
        setup=nothing,
        api=lambda rows: (
            "post",
            "/api/v1/substatuses/",
            {"entity": "contact", "status": "estimate", "key": "drone", "label": "Drone"},
        ),
        admin=lambda rows: (
            admin_url("add", SubstatusConfig),
            {"tenant": rows.tenant.pk, "entity": "contact", "status": "estimate", "key": "drone", "label": "Drone"},
        ),
        service=lambda actor, rows: substatus_create(
            actor=actor, entity="contact", status="estimate", key="drone", label="Drone"
        ),
        attr="status",
        message=lambda rows: "This status does not exist for this kind of record.",
    ),
    Case(
        id="a record's substatus of another status",
        setup=lambda tenant: SimpleNamespace(
            project=ProjectFactory(tenant=tenant), substatus=config(tenant, PROJECT, "deposit_received")
        ),
        api=lambda rows: ("patch", f"/api/v1/projects/{rows.project.pk}/", {"substatus": rows.substatus.pk}),
        admin=lambda rows: (admin_url("change", Project, rows.project.pk), {"substatus": str(rows.substatus.pk)}),
        service=lambda actor, rows: project_update(project=rows.project, actor=actor, substatus=rows.substatus),
        attr="substatus",
        message=lambda rows: "This substatus belongs to another status than the project's status.",
    ),
    # A new link to a soft-deleted row is refused (the services' record_check_links).
    Case(
        id="an activity on a deleted contact",
        setup=lambda tenant: SimpleNamespace(contact=deleted(ContactFactory(tenant=tenant))),
        api=lambda rows: ("post", "/api/v1/activities/", {"type": "note", "contact": rows.contact.pk}),
        admin=lambda rows: (
            admin_url("add", Activity),
            {"tenant": rows.tenant.pk, "type": "note", "contact": str(rows.contact.pk)},
        ),
        service=lambda actor, rows: activity_create(actor=actor, type="note", contact=rows.contact),
        attr="contact",
        message=lambda rows: is_deleted_message(rows.contact),
    ),
    Case(
        id="a project for a deleted contact",
        setup=lambda tenant: SimpleNamespace(contact=deleted(ContactFactory(tenant=tenant))),
        api=lambda rows: ("post", "/api/v1/projects/", {"name": "Tear-off", "contact": rows.contact.pk}),
        admin=lambda rows: (
            admin_url("add", Project),
            {"tenant": rows.tenant.pk, "name": "Tear-off", "contact": str(rows.contact.pk)},
        ),
        service=lambda actor, rows: project_create(actor=actor, name="Tear-off", contact=rows.contact),
        attr="contact",
        message=lambda rows: is_deleted_message(rows.contact),
    ),
    Case(
        id="a project under a deleted parent project",
        setup=lambda tenant: SimpleNamespace(
            project=ProjectFactory(tenant=tenant), parent=deleted(ProjectFactory(tenant=tenant))
        ),
        api=lambda rows: ("patch", f"/api/v1/projects/{rows.project.pk}/", {"parent_project": rows.parent.pk}),
        admin=lambda rows: (admin_url("change", Project, rows.project.pk), {"parent_project": str(rows.parent.pk)}),
        service=lambda actor, rows: project_update(project=rows.project, actor=actor, parent_project=rows.parent),
        attr="parent_project",
        message=lambda rows: is_deleted_message(rows.parent),
    ),
    Case(
        id="a person working for a deleted company",
        setup=lambda tenant: SimpleNamespace(
            person=ContactFactory(tenant=tenant), company=deleted(CompanyFactory(tenant=tenant))
        ),
        api=lambda rows: ("patch", f"/api/v1/contacts/{rows.person.pk}/", {"company_contact": rows.company.pk}),
        admin=lambda rows: (admin_url("change", Contact, rows.person.pk), {"company_contact": str(rows.company.pk)}),
        service=lambda actor, rows: contact_update(contact=rows.person, actor=actor, company_contact=rows.company),
        attr="company_contact",
        message=lambda rows: is_deleted_message(rows.company),
    ),
    Case(
        id="a deleted contact as a party to a job",
        setup=lambda tenant: SimpleNamespace(
            project=ProjectFactory(tenant=tenant), contact=deleted(ContactFactory(tenant=tenant))
        ),
        api=lambda rows: (
            "post",
            f"/api/v1/projects/{rows.project.pk}/contacts/",
            {"contact": rows.contact.pk, "role": "adjuster"},
        ),
        admin=lambda rows: (admin_url("change", Project, rows.project.pk), new_party_row(rows)),
        service=lambda actor, rows: project_contact_add(
            actor=actor, project=rows.project, contact=rows.contact, role="adjuster"
        ),
        attr="contact",
        message=lambda rows: is_deleted_message(rows.contact),
    ),
]


def api_answer(staff: Any, case: Case, rows: SimpleNamespace) -> tuple[str | None, str]:
    method, url, body = case.api(rows)
    response = getattr(client_for(staff.user), method)(url, body, format="json")
    [error] = api_errors(response, 400, type="validation_error")
    return error["attr"], error["detail"]


def admin_answer(staff: Any, case: Case, rows: SimpleNamespace) -> tuple[str | None, str]:
    url, changes = case.admin(rows)
    [error] = form_errors(post_page(staff.client, url, changes))
    return error


def service_answer(staff: Any, case: Case, rows: SimpleNamespace) -> tuple[str | None, str]:
    actor = Actor(tenant=rows.tenant, user=staff.user, source=Source.API)
    with pytest.raises(ApplicationError) as refused:
        case.service(actor, rows)
    assert refused.value.status_code == 400
    return refused.value.attr, refused.value.message


PATHS = {"api": api_answer, "admin": admin_answer, "service": service_answer}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_same_bad_input_gets_the_same_answer_on_every_path(tenant, case, path):
    client, user = staff_client(tenant, Role.OWNER)
    rows = case.setup(tenant)
    rows.tenant = tenant
    before = tables()

    answer = PATHS[path](SimpleNamespace(client=client, user=user), case, rows)

    assert answer == (case.attr, case.message(rows))
    assert tables() == before


# Links to deleted rows: the new ones are refused, the existing ones stay -----------------


def test_existing_links_to_a_deleted_contact_stay_and_restoring_brings_it_back_with_them(tenant, manager):
    client = client_for(manager)
    contact = ContactFactory(tenant=tenant)
    project = ProjectFactory(tenant=tenant, contact=contact)
    activity = ActivityFactory(tenant=tenant, contact=contact, project=None)
    assert client.delete(f"/api/v1/contacts/{contact.pk}/").status_code == 204

    # Changing the project or the activity, even naming the same contact, keeps the link.
    response = client.put(f"/api/v1/projects/{project.pk}/", {"name": "Re-roof", "contact": contact.pk}, format="json")
    assert response.status_code == 200, response.content
    response = client.patch(f"/api/v1/activities/{activity.pk}/", {"contact": contact.pk, "subject": "Called back"})
    assert response.status_code == 200, response.content
    assert Project.objects.values_list("name", "contact_id").get(pk=project.pk) == ("Re-roof", contact.pk)

    assert client.post(f"/api/v1/contacts/{contact.pk}/restore/").status_code == 200
    response = client.post("/api/v1/activities/", {"type": "note", "contact": contact.pk}, format="json")

    assert response.status_code == 201, response.content
    assert set(Activity.objects.filter(contact=contact).values_list("subject", flat=True)) == {"Called back", None}
    assert Project.objects.get(pk=project.pk).contact_id == contact.pk


# The legacy rows the person rule found -----------------------------------------------------


@pytest.fixture
def nameless_person(tenant):
    """A person the old system wrote without a name, an email or a phone (before the rule)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no ALTER TABLE while checks are pending
        cursor.execute("ALTER TABLE contacts DISABLE TRIGGER contacts_person_reachable_insert")
        person = ContactFactory(tenant=tenant, first_name="", last_name="", email=None, phone=None)
        cursor.execute("ALTER TABLE contacts ENABLE TRIGGER contacts_person_reachable_insert")
    return person


def test_a_legacy_person_without_a_name_stays_workable_until_its_names_are_edited(tenant, member_user, nameless_person):
    client = client_for(member_user)
    url = f"/api/v1/contacts/{nameless_person.pk}/"

    assert client.patch(url, {"stage": "qualified", "address_city": "Boulder"}).status_code == 200
    # Still without one: changing what reaches them to nothing again is no worse, and allowed.
    assert client.patch(url, {"email": "", "phone": ""}).status_code == 200
    assert client.patch(url, {"first_name": "Dana"}).status_code == 200
    [error] = api_errors(client.patch(url, {"first_name": ""}), 400, type="validation_error")

    assert (error["attr"], error["detail"]) == ("first_name", NEEDS_A_NAME)
    assert Contact.objects.values_list("stage", "first_name").get(pk=nameless_person.pk) == ("qualified", "Dana")


def test_bulk_writes_move_legacy_people_without_a_name(tenant, manager, member_user, nameless_person):
    Contact.objects.filter(pk=nameless_person.pk).update(assigned_to=member_user)
    actor = Actor(tenant=tenant, user=manager)

    assert contacts_reassign(actor=actor, from_user=member_user, to_user=manager) == 1
    assert Contact.objects.get(pk=nameless_person.pk).assigned_to == manager


# A status change that names the current (old) substatus ----------------------------------


@pytest.mark.parametrize("path", ["api", "service"])
def test_a_new_status_with_the_old_substatus_named_is_refused(tenant, member_user, path):
    project = ProjectFactory(tenant=tenant)
    project.refresh_from_db()
    current = project.substatus
    before = tables()

    if path == "api":
        response = client_for(member_user).patch(
            f"/api/v1/projects/{project.pk}/", {"status": "approved", "substatus": current.pk}
        )
        [error] = api_errors(response, 400, type="validation_error")
        answer = (error["attr"], error["detail"])
    else:
        with pytest.raises(ApplicationError) as refused:
            project_update(
                project=project, actor=Actor(tenant=tenant, user=member_user), status="approved", substatus=current
            )
        answer = (refused.value.attr, refused.value.message)

    assert answer == ("substatus", "This substatus belongs to another status than the project's status.")
    assert tables() == before


def test_a_new_status_without_a_substatus_or_with_the_same_status_keeps_the_rules(tenant, member_user):
    client = client_for(member_user)
    contact = ContactFactory(tenant=tenant)
    contact.refresh_from_db()
    url = f"/api/v1/contacts/{contact.pk}/"

    assert client.patch(url, {"stage": "new", "substatus": contact.substatus_id}).status_code == 200
    response = client.patch(url, {"stage": "qualified"})

    assert response.status_code == 200, response.content
    assert response.json()["substatus"] == config(tenant, CONTACT, "decision_maker_identified").pk
