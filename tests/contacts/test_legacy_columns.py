"""The old system's contact columns: consent, time zone, outside ids, and its widths."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from contacts.models import Contact
from contacts.services import contact_create, contact_update
from crm.actor import Actor
from crm.models import Role
from tests.admin import admin_url, post_page, staff_client
from tests.conftest import client_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"
OLD_DATE = dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.UTC)


def test_rows_at_the_old_widths_fit_and_come_back_as_written(tenant, member_user):
    """What the old columns held: a 255-character email, 8-decimal coordinates, a 100-character
    roof type, any integer lead score, tags of any length."""
    email = "a" * 243 + "@example.com"
    body = {
        "first_name": "Dana",
        "email": email,
        "latitude": "39.73915123",
        "longitude": "-104.98470456",
        "roof_type": "r" * 100,
        "lead_score": -20,
        "tags": ["t" * 120],
    }

    response = client_for(member_user).post(URL, body, format="json")

    assert response.status_code == 201, response.content
    assert {name: response.json()[name] for name in body} == body
    contact = Contact.objects.get()
    assert (len(contact.email), contact.latitude, contact.longitude, contact.lead_score) == (
        255,
        Decimal("39.73915123"),
        Decimal("-104.98470456"),
        -20,
    )
    contact_update(contact=contact, actor=Actor(tenant=tenant, user=member_user), lead_score=150)
    assert Contact.objects.values_list("lead_score", flat=True).get() == 150


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "a" * 244 + "@example.com"), ("roof_type", "r" * 101), ("latitude", "39.739151234")],
)
def test_past_the_old_widths_is_a_400_naming_the_field(tenant, member_user, field, value):
    response = client_for(member_user).post(URL, {"first_name": "Dana", field: value}, format="json")

    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == [field]
    assert not Contact.objects.exists()


def test_the_time_zone_is_empty_for_the_tenants_or_an_iana_name(tenant, member_user):
    client = client_for(member_user)

    created = client.post(URL, {"first_name": "Dana"}, format="json").json()
    moved = client.patch(f"{URL}{created['id']}/", {"timezone": "America/Denver"}, format="json")

    assert created["timezone"] == ""
    assert moved.status_code == 200, moved.content
    assert Contact.objects.values_list("timezone", flat=True).get() == "America/Denver"


# Consent: a flag turned on without its date is dated now, on every path -----------------


def dated_now(value: dt.datetime | None, before: dt.datetime) -> bool:
    return value is not None and before <= value <= timezone.now()


def test_the_api_dates_a_consent_flag_turned_on(tenant, member_user):
    before = timezone.now()
    client = client_for(member_user)

    response = client.post(URL, {"first_name": "Dana", "sms_opt_in": True}, format="json")
    contact = Contact.objects.get()
    patched = client.patch(
        f"{URL}{contact.pk}/",
        {"sms_opt_out": True, "sms_opt_out_reason": "Replied STOP", "email_invalid": True},
        format="json",
    )

    assert (response.status_code, patched.status_code) == (201, 200)
    contact.refresh_from_db()
    assert dated_now(contact.sms_opt_in_date, before)
    assert dated_now(contact.sms_opt_out_date, before)
    assert dated_now(contact.email_invalid_date, before)
    assert (contact.sms_opt_out_reason, contact.email_opt_out, contact.email_opt_out_date) == (
        "Replied STOP",
        False,
        None,
    )
    assert patched.json()["sms_opt_out_date"] == contact.sms_opt_out_date.isoformat().replace("+00:00", "Z")


def test_the_service_keeps_a_named_date_and_does_not_date_a_flag_again(tenant, member_user):
    actor = Actor(tenant=tenant, user=member_user)

    contact = contact_create(actor=actor, first_name="Dana", email_opt_out=True, email_opt_out_date=OLD_DATE)
    contact_update(contact=contact, actor=actor, email_opt_out=True, first_name="Dee")

    contact.refresh_from_db()
    assert (contact.email_opt_out, contact.email_opt_out_date, contact.first_name) == (True, OLD_DATE, "Dee")


def test_the_admin_dates_a_consent_flag_turned_on(tenant):
    client, _ = staff_client(tenant, Role.OWNER)
    contact = ContactFactory(tenant=tenant)
    before = timezone.now()

    response = post_page(
        client,
        admin_url("change", Contact, contact.pk),
        {"email_opt_out": "on", "email_opt_out_reason": "Asked at the door", "timezone": "America/Chicago"},
    )

    assert response.status_code == 302
    contact.refresh_from_db()
    assert dated_now(contact.email_opt_out_date, before)
    assert (contact.email_opt_out_reason, contact.timezone, contact.sms_opt_out_date) == (
        "Asked at the door",
        "America/Chicago",
        None,
    )


# Filters --------------------------------------------------------------------------------


@pytest.fixture
def consent_book(tenant):
    return {
        "reachable": ContactFactory(tenant=tenant, sms_opt_in=True, timezone="America/Denver"),
        "stopped": ContactFactory(tenant=tenant, sms_opt_in=True, sms_opt_out=True, quickbooks_customer_id="QB-7"),
        "bounced": ContactFactory(tenant=tenant, email_invalid=True, proline_id="PL-3"),
        "unsubscribed": ContactFactory(tenant=tenant, email_opt_out=True),
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sms_opt_in": "true", "sms_opt_out": "false"}, {"reachable"}),
        ({"sms_opt_out": "true"}, {"stopped"}),
        ({"email_invalid": "true"}, {"bounced"}),
        ({"email_opt_out": "true"}, {"unsubscribed"}),
        ({"email_opt_out": "false", "email_invalid": "false"}, {"reachable", "stopped"}),
        ({"quickbooks_customer_id": "QB-7"}, {"stopped"}),
        ({"proline_id": "PL-3"}, {"bounced"}),
        ({"timezone": "America/Denver"}, {"reachable"}),
    ],
)
def test_the_list_filters_on_consent_time_zone_and_outside_ids(member_user, consent_book, params, expected):
    response = client_for(member_user).get(URL, params)

    assert response.status_code == 200
    names = {
        name for name, contact in consent_book.items() for row in response.json()["results"] if row["id"] == contact.pk
    }
    assert (names, response.json()["count"]) == (expected, len(expected))


def test_a_consent_filter_that_is_not_true_or_false_is_a_400(member_user, consent_book):
    response = client_for(member_user).get(URL, {"sms_opt_out": "maybe"})

    assert response.status_code == 400
    assert [error["attr"] for error in response.json()["errors"]] == ["sms_opt_out"]


def test_the_admin_list_filters_on_consent(tenant, consent_book):
    client, _ = staff_client(tenant, Role.OWNER)

    response = client.get(admin_url("changelist", Contact), {"sms_opt_out__exact": "1"})

    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [consent_book["stopped"].pk]
