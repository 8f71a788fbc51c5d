"""/api/v1/contacts/: create, read, update, filters, ordering and the email rule."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import Contact
from crm.models import Membership
from tests.api import api_errors, assert_invalid, row, table
from tests.conftest import client_for
from tests.factories import ContactFactory

URL = "/api/v1/contacts/"


def detail(contact):
    return f"{URL}{contact.pk}/"


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


FULL = {
    "first_name": "Dana",
    "last_name": "Whitfield",
    "email": "dana@example.com",
    "phone": "(555) 123-4567",
    "mobile_phone": "555-987-6543",
    "address_street": "12 Ridge Rd",
    "address_city": "Boulder",
    "address_state": "CO",
    "address_zip": "80301",
    "latitude": "40.014986",
    "longitude": "-105.270546",
    "type": "customer",
    "stage": "qualified",
    "source": "door_knock",
    "source_details": {"canvasser": "Sam"},
    "property_type": "single_family",
    "roof_type": "asphalt_shingle",
    "roof_age": 17,
    "last_inspection_date": "2026-05-02",
    "property_value": "525000.00",
    "square_footage": 2400,
    "stories": 2,
    "insurance_carrier": "State Farm",
    "policy_number": "SF-123-456",
    "claim_number": "CLM-2026-0042",
    "deductible": "1000.00",
    "lead_score": 85,
    "priority": "high",
    "custom_fields": {"hoa": True},
    "tags": ["hail", "insurance"],
    "company": "Whitfield Consulting",
    "website": "https://whitfield.example/",
    "contact_category": "adjuster",
    "notes": "Works from home on Fridays.",
    "quickbooks_customer_id": "QB-1042",
    "proline_id": "PL-77",
    "timezone": "America/Denver",
    "sms_opt_in": True,
    "sms_opt_in_date": "2025-03-04T15:00:00Z",
    "sms_opt_out": False,
    "sms_opt_out_date": None,
    "sms_opt_out_reason": None,
    "email_opt_out": True,
    "email_opt_out_date": "2025-06-01T09:30:00Z",
    "email_opt_out_reason": "Asked by phone",
    "email_invalid": False,
    "email_invalid_date": None,
    "email_invalid_reason": None,
}


def test_create_stores_every_field_and_answers_the_row(tenant, member_user):
    response = client_for(member_user).post(URL, {**FULL, "assigned_to": member_user.pk})

    assert response.status_code == 201, response.content
    contact = Contact.objects.get()
    body = response.json()
    assert body == {
        **FULL,
        "id": contact.pk,
        "display_name": "Dana Whitfield",
        "is_organization": False,
        "company_contact": None,
        "assigned_to": member_user.pk,
        "is_deleted": False,
        "created_by": member_user.pk,
        "updated_by": member_user.pk,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "substatus": contact.substatus_id,
        "substatus_since": body["substatus_since"],
    }
    assert contact.substatus.key == "decision_maker_identified"  # the qualified stage's default
    assert dt.datetime.fromisoformat(body["substatus_since"]) == contact.substatus_since
    assert contact.tenant == tenant
    assert (contact.roof_age, contact.deductible, contact.tags) == (17, Decimal("1000.00"), ["hail", "insurance"])
    assert dt.datetime.fromisoformat(body["created_at"]) == contact.created_at


def test_retrieve_and_partial_update(tenant, member_user):
    contact = ContactFactory(tenant=tenant, first_name="Dana", stage="new")
    client = client_for(member_user)

    response = client.patch(detail(contact), {"stage": "won", "tags": ["vip"]})

    assert response.status_code == 200
    assert (response.json()["stage"], response.json()["tags"], response.json()["first_name"]) == (
        "won",
        ["vip"],
        "Dana",
    )
    assert client.get(detail(contact)).json() == response.json()
    contact.refresh_from_db()
    assert (contact.stage, contact.tags, contact.updated_by) == ("won", ["vip"], member_user)


def test_put_replaces_the_writable_fields(tenant, member_user):
    contact = ContactFactory(tenant=tenant, first_name="Dana", roof_type="metal", email="old@example.com")

    response = client_for(member_user).put(detail(contact), {"first_name": "Dee", "email": "dee@example.com"})

    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.first_name, contact.email, contact.roof_type) == ("Dee", "dee@example.com", "metal")


def test_blank_optional_text_is_stored_as_null(tenant, member_user):
    contact = ContactFactory(tenant=tenant, email="dana@example.com", claim_number="C-1")

    response = client_for(member_user).patch(detail(contact), {"email": "", "claim_number": ""})

    assert response.status_code == 200
    assert Contact.objects.values_list("email", "claim_number").get(pk=contact.pk) == (None, None)


def test_a_contact_needs_a_name_an_email_or_a_phone(tenant, member_user):
    response = client_for(member_user).post(URL, {"city": "Boulder", "stage": "new"})

    assert_invalid(
        response,
        attr="first_name",
        code="contacts_person_reachable",
        detail="Give the contact a name, an email or a phone number.",
    )
    assert not Contact.objects.exists()


def test_an_update_cannot_leave_a_contact_without_a_name_an_email_or_a_phone(tenant, member_user):
    contact = ContactFactory(tenant=tenant, first_name="Dana", last_name="", email=None, phone=None, mobile_phone=None)
    before = row(contact)

    response = client_for(member_user).patch(detail(contact), {"first_name": "", "city": "Boulder"})

    assert_invalid(
        response,
        attr="first_name",
        code="contacts_person_reachable",
        detail="Give the contact a name, an email or a phone number.",
    )
    assert row(contact) == before


def test_an_update_may_swap_one_way_to_reach_the_contact_for_another(tenant, member_user):
    contact = ContactFactory(tenant=tenant, first_name="", last_name="", email="dana@example.com", phone=None)

    response = client_for(member_user).patch(detail(contact), {"email": "", "phone": "555-123-4567"})

    assert response.status_code == 200
    assert Contact.objects.values_list("email", "phone").get(pk=contact.pk) == (None, "555-123-4567")


@pytest.mark.parametrize("email", ["dana@example.com", "DANA@Example.com"])
def test_email_is_unique_per_tenant_case_insensitively(tenant, other_tenant, member_user, email):
    ContactFactory(tenant=tenant, email="dana@example.com")
    ContactFactory(tenant=other_tenant, email="other@example.com")
    before = table(Contact)

    response = client_for(member_user).post(URL, {"first_name": "Dana", "email": email})

    assert_invalid(
        response,
        attr="email",
        code="contacts_email_unique_per_tenant",
        detail="Another person of this tenant has this email.",
    )
    assert table(Contact) == before


def test_the_same_email_may_exist_in_another_tenant(tenant, other_tenant, member_user):
    ContactFactory(tenant=other_tenant, email="dana@example.com")

    response = client_for(member_user).post(URL, {"email": "dana@example.com"})

    assert response.status_code == 201


def test_update_to_a_taken_email_is_400_and_changes_nothing(tenant, member_user):
    ContactFactory(tenant=tenant, email="dana@example.com")
    contact = ContactFactory(tenant=tenant, email="sam@example.com")
    before = row(contact)

    response = client_for(member_user).patch(detail(contact), {"email": "Dana@example.com", "first_name": "X"})

    assert_invalid(
        response,
        attr="email",
        code="contacts_email_unique_per_tenant",
        detail="Another person of this tenant has this email.",
    )
    assert row(contact) == before


@pytest.fixture
def book(tenant, member_user, manager):
    """Contacts with distinct values for every filter."""
    return {
        "lead": ContactFactory(
            tenant=tenant,
            type="lead",
            stage="new",
            priority="low",
            assigned_to=member_user,
            source="Door_Knock",
            insurance_carrier="State Farm",
            address_city="Boulder",
            address_state="CO",
            address_zip="80301",
            tags=["hail", "insurance"],
            lead_score=10,
        ),
        "customer": ContactFactory(
            tenant=tenant,
            type="customer",
            stage="won",
            priority="urgent",
            assigned_to=manager,
            source="referral",
            insurance_carrier="Allstate",
            address_city="Denver",
            address_state="CO",
            address_zip="80202",
            tags=["hail"],
            lead_score=90,
        ),
        "prospect": ContactFactory(
            tenant=tenant,
            type="prospect",
            stage="lost",
            priority="normal",
            assigned_to=None,
            source=None,
            address_city="Austin",
            address_state="TX",
            address_zip="73301",
            tags=[],
            lead_score=50,
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=lead", ["lead"]),
        ("type=lead&type=prospect", ["lead", "prospect"]),
        ("stage=won", ["customer"]),
        ("priority=urgent", ["customer"]),
        ("assigned_to={member}", ["lead"]),
        ("unassigned=true", ["prospect"]),
        ("unassigned=false", ["lead", "customer"]),
        ("source=door_knock", ["lead"]),
        ("insurance_carrier=state farm", ["lead"]),
        ("address_city=boulder", ["lead"]),
        ("address_state=co", ["lead", "customer"]),
        ("address_zip=73301", ["prospect"]),
        ("tags=hail", ["lead", "customer"]),
        ("tags=hail,insurance", ["lead"]),
        ("tags=roof", []),
    ],
)
def test_filters(book, member_user, query, expected):
    response = client_for(member_user).get(f"{URL}?{query.format(member=member_user.pk)}")

    assert sorted(ids(response)) == sorted(book[name].pk for name in expected)


def test_created_range_filters(tenant, member_user):
    old = ContactFactory(tenant=tenant, created_at=timezone.now() - dt.timedelta(days=30))
    new = ContactFactory(tenant=tenant)
    cutoff = (timezone.now() - dt.timedelta(days=1)).isoformat()
    client = client_for(member_user)

    assert ids(client.get(URL, {"created_after": cutoff})) == [new.pk]
    assert ids(client.get(URL, {"created_before": cutoff})) == [old.pk]


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ("lead_score", ["lead", "prospect", "customer"]),
        ("-lead_score", ["customer", "prospect", "lead"]),
        ("address_city", ["prospect", "lead", "customer"]),
        ("stage,-lead_score", ["prospect", "lead", "customer"]),
    ],
)
def test_ordering(book, member_user, ordering, expected):
    response = client_for(member_user).get(URL, {"ordering": ordering})

    assert ids(response) == [book[name].pk for name in expected]


@pytest.mark.parametrize("query", ["", "?type=lead", "?stage=new&priority=normal", "?ordering=-created_at"])
def test_default_order_is_newest_first_with_ties_broken_by_id(tenant, member_user, query):
    moment = timezone.now()
    contacts = [ContactFactory(tenant=tenant, created_at=moment) for _ in range(6)]
    older = ContactFactory(tenant=tenant, created_at=moment - dt.timedelta(hours=1))

    response = client_for(member_user).get(URL + query)

    assert ids(response) == [contact.pk for contact in reversed(contacts)] + [older.pk]


def test_pages_walk_every_row_once(tenant, member_user):
    moment = timezone.now()
    contacts = [ContactFactory(tenant=tenant, created_at=moment) for _ in range(5)]
    client = client_for(member_user)

    first = client.get(URL, {"page_size": 2})
    pages = [first.json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())

    assert [page["count"] for page in pages] == [5, 5, 5]
    assert [item["id"] for page in pages for item in page["results"]] == [c.pk for c in reversed(contacts)]
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None


def test_page_size_up_to_200(tenant, member_user):
    ContactFactory.create_batch(3, tenant=tenant)

    response = client_for(member_user).get(URL, {"page_size": 200, "page": "last"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


@pytest.mark.parametrize(
    ("body", "attrs"),
    [
        ({"first_name": "D", "lead_score": 2**31}, ["lead_score"]),
        ({"first_name": "D", "lead_score": -(2**31) - 1}, ["lead_score"]),
        ({"first_name": "D", "timezone": "Mars/Olympus_Mons"}, ["timezone"]),
        ({"first_name": "D", "latitude": "91"}, ["latitude"]),
        ({"first_name": "D", "email": "not-an-email"}, ["email"]),
        ({"first_name": "D", "tags": [None]}, ["tags.0"]),
        ({"first_name": "D", "tags": "hail"}, ["tags"]),
        ({"first_name": "D", "custom_fields": "hoa"}, ["custom_fields"]),
        ({"first_name": "D", "source_details": [1]}, ["source_details"]),
        ({"first_name": "D", "deductible": "-5"}, ["deductible"]),
        ({"first_name": "D", "stage": "bogus", "type": "bogus", "priority": "bogus"}, ["type", "stage", "priority"]),
        (
            {"first_name": "D", "email": "x", "lead_score": 2**31, "custom_fields": "s", "roof_age": "old"},
            ["email", "roof_age", "lead_score", "custom_fields"],
        ),
    ],
)
def test_invalid_fields_are_named_and_nothing_is_written(tenant, member_user, body, attrs):
    response = client_for(member_user).post(URL, body)

    assert sorted(error["attr"] for error in api_errors(response, 400, type="validation_error")) == sorted(attrs)
    assert not Contact.objects.exists()


@pytest.mark.parametrize("field", ["id", "tenant", "created_by", "updated_by", "is_deleted", "created_at", "search"])
def test_system_fields_cannot_be_written(tenant, other_tenant, member_user, viewer, field):
    contact = ContactFactory(tenant=tenant, first_name="Dana")
    values = {
        "id": 999999,
        "tenant": other_tenant.pk,
        "created_by": viewer.pk,
        "updated_by": viewer.pk,
        "is_deleted": True,
        "created_at": "2001-01-01T00:00:00Z",
        "search": "hacked",
    }
    before = row(contact)

    response = client_for(member_user).patch(detail(contact), {field: values[field]})

    assert response.status_code == 200
    after = row(contact)
    assert after.pop("updated_by_id") == member_user.pk
    del after["updated_at"], before["updated_at"], before["updated_by_id"]
    assert after == before


@pytest.mark.parametrize("status", ["active", "deactivated", "suspended"])
def test_reassign_moves_the_contacts_of_a_current_or_former_member(
    tenant, manager, member_user, status, django_capture_on_commit_callbacks
):
    Membership.objects.filter(user=member_user).update(status=status)
    ContactFactory.create_batch(2, tenant=tenant, assigned_to=member_user)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(manager).post(URL + "reassign/", {"from_user": member_user.pk, "to_user": manager.pk})

    assert response.status_code == 202, response.content
    assert response.json() == {"contacts": 2}
    assert len(callbacks) == 1


@pytest.mark.parametrize("status", ["deactivated", "suspended"])
def test_reassign_to_a_former_member_is_400(tenant, manager, member_user, status, django_capture_on_commit_callbacks):
    Membership.objects.filter(user=member_user).update(status=status)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(manager).post(URL + "reassign/", {"from_user": manager.pk, "to_user": member_user.pk})

    assert_invalid(
        response,
        attr="to_user",
        code="does_not_exist",
        detail=f'User "{member_user.pk}" is not an active member of this tenant.',
    )
    assert callbacks == []


def test_reassign_names_missing_fields(tenant, manager):
    response = client_for(manager).post(URL + "reassign/", {})

    assert api_errors(response, 400, type="validation_error") == [
        {"code": "required", "detail": "This field is required.", "attr": "from_user"},
        {"code": "required", "detail": "This field is required.", "attr": "to_user"},
    ]
