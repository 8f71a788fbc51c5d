"""The migrations of the old system's columns, forwards and back, with rows in the tables:
contacts 0009-0012 (new columns, the widths, sub_contractor) and crm 0011-0012."""

from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from contacts.models import Contact
from crm.legacy import latest_state, migrate_to
from crm.models import Activity, ProjectContact
from crm.search import prefix_search_query

pytestmark = pytest.mark.django_db

# Before the widths and the renaming: the new columns are there (so is crm 0011's flag).
BEFORE = [("contacts", "0009_legacy_columns"), ("crm", "0011_legacy_columns")]
# Before any of it.
FIRST = [("contacts", "0008_person_reachable"), ("crm", "0010_drop_authtoken")]


def column_types() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns "
            "JOIN pg_attribute ON attrelid = 'contacts'::regclass AND attname = column_name "
            "WHERE table_name = 'contacts' AND column_name IN ('email', 'latitude', 'longitude', 'lead_score', 'tags')"
        )
        return dict(cursor.fetchall())


def write_old_rows(apps: Any) -> dict[str, Any]:
    tenant = apps.get_model("crm", "Tenant").objects.create(name="Summit", subdomain="summit")
    contact_model = apps.get_model("contacts", "Contact")
    gutters = contact_model.objects.create(
        tenant=tenant,
        is_organization=True,
        company="Gutter Pros",
        contact_category="subcontractor",
        email="office@gutters.example",
        latitude=Decimal("39.739151"),
        longitude=Decimal("-104.984704"),
        lead_score=100,
        tags=["gutters", "x" * 50],
    )
    person = contact_model.objects.create(tenant=tenant, first_name="Dana", email="dana@example.com", lead_score=0)
    project = apps.get_model("crm", "Project").objects.create(tenant=tenant, name="Re-roof", contact=person)
    party = apps.get_model("crm", "ProjectContact").objects.create(
        tenant=tenant, project=project, contact=gutters, role="subcontractor"
    )
    return {"gutters": gutters.pk, "person": person.pk, "party": party.pk}


NARROW = {
    "email": "character varying(254)",
    "latitude": "numeric(9,6)",
    "longitude": "numeric(9,6)",
    "lead_score": "smallint",
    "tags": "character varying(50)[]",
}
WIDE = {
    "email": "character varying(255)",
    "latitude": "numeric(10,8)",
    "longitude": "numeric(11,8)",
    "lead_score": "integer",
    "tags": "text[]",
}


def test_rows_go_through_the_widths_and_the_renaming_and_back_unchanged(db):
    ids = write_old_rows(migrate_to(BEFORE))
    assert column_types() == NARROW

    migrate_to(latest_state())

    assert column_types() == WIDE
    gutters = Contact.objects.get(pk=ids["gutters"])
    assert (gutters.contact_category, gutters.latitude, gutters.longitude, gutters.lead_score, gutters.tags) == (
        "sub_contractor",
        Decimal("39.73915100"),
        Decimal("-104.98470400"),
        100,
        ["gutters", "x" * 50],
    )
    assert ProjectContact.objects.get(pk=ids["party"]).role == "sub_contractor"
    # The search column came back with its index and its words; the person rule is still there.
    assert list(Contact.objects.filter(search=prefix_search_query("gutte")).values_list("pk", flat=True)) == [
        ids["gutters"]
    ]
    with pytest.raises(DatabaseError, match="contacts_person_reachable"), transaction.atomic():
        connection.cursor().execute(
            "UPDATE contacts SET first_name = '', email = NULL, phone = NULL WHERE id = %s", [ids["person"]]
        )

    apps = migrate_to(BEFORE)

    assert column_types() == NARROW
    old = apps.get_model("contacts", "Contact").objects.get(pk=ids["gutters"])
    assert (old.contact_category, old.latitude, old.lead_score) == ("subcontractor", Decimal("39.739151"), 100)
    assert apps.get_model("crm", "ProjectContact").objects.get(pk=ids["party"]).role == "subcontractor"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'contacts_search_gin'")
        assert cursor.fetchone() == (1,)
    migrate_to(latest_state())


@pytest.mark.parametrize(
    ("change", "column", "message"),
    [
        ({"email": "a" * 243 + "@example.com"}, "email", "is longer than 254 characters"),
        ({"lead_score": 150}, "lead_score", "is outside 0-100"),
        ({"lead_score": -3}, "lead_score", "is outside 0-100"),
        ({"latitude": Decimal("39.73915123")}, "latitude", "has more than 6 decimals"),
        ({"tags": ["t" * 51]}, "tags", "has a tag over 50 characters"),
    ],
)
def test_reversing_refuses_rows_the_narrower_columns_cannot_hold(db, change, column, message):
    ids = write_old_rows(migrate_to(BEFORE))
    migrate_to(latest_state())
    Contact.objects.filter(pk=ids["gutters"]).update(**change)

    with pytest.raises(DatabaseError, match=f"contacts.{column} {message} in 1 rows"):
        migrate_to(BEFORE)

    assert column_types() == WIDE
    assert Contact.objects.filter(pk=ids["gutters"], **change).exists()


def test_the_impersonation_flag_is_filled_in_for_the_old_rows(db):
    apps = migrate_to(FIRST)
    tenant = apps.get_model("crm", "Tenant").objects.create(name="Summit", subdomain="summit")
    user_model = apps.get_model("crm", "User")
    admin = user_model.objects.create(username="support")
    contact = apps.get_model("contacts", "Contact").objects.create(tenant=tenant, first_name="Dana")
    activity_model = apps.get_model("crm", "Activity")
    impersonated = activity_model.objects.create(tenant=tenant, contact=contact, type="call", on_behalf_of=admin)
    own = activity_model.objects.create(tenant=tenant, contact=contact, type="call")

    migrate_to(latest_state())

    flags = dict(Activity.objects.values_list("pk", "is_impersonated_action"))
    assert flags == {impersonated.pk: True, own.pk: False}
    new = Contact.objects.get(pk=contact.pk)
    assert (new.timezone, new.sms_opt_in, new.sms_opt_in_date, new.quickbooks_customer_id) == ("", False, None, None)

    migrate_to(FIRST)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns WHERE (table_name, column_name) IN "
            "(('activities', 'is_impersonated_action'), ('contacts', 'timezone'), ('projects', 'quickbooks_id'))"
        )
        assert cursor.fetchone() == (0,)
    migrate_to(latest_state())
