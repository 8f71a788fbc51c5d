"""Malformed input is a 4xx naming what is wrong, through the API and the admin, and changes nothing.

Each case here answered 500 before: a lone surrogate or a NUL in a JSON column, JSON nested
hundreds of levels deep (in a column, or the whole body), a time filter with a UTC offset
PostgreSQL cannot store, substatus analytics at the calendar's edges, a body over the upload limit.
"""

import json

import pytest
from django import forms
from django.test import override_settings

from contacts.models import Contact
from crm.fields import JSON_MAX_DEPTH
from crm.models import Activity, Project, Role
from crm.urls import router
from tests.admin import admin_url, form_errors, post_page, staff_client
from tests.api import api_errors, assert_error, assert_invalid, row, tables
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def nested(depth: int) -> dict:
    """An object `depth` levels deep: {"a": {"a": ... {} }}."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# (resource, JSON column, a valid value of its kind wrapped around the bad one)
JSON_COLUMNS = [
    ("contacts", "custom_fields", lambda bad: {"note": bad}),
    ("contacts", "source_details", lambda bad: {"campaign": bad}),
    ("projects", "materials_list", lambda bad: [{"item": bad}]),
    ("projects", "custom_fields", lambda bad: {"note": bad}),
    ("projects", "supplements", lambda bad: [bad]),
    ("activities", "outcome_details", lambda bad: {"note": bad}),
]
MAKERS = {
    "contacts": lambda tenant: ContactFactory(tenant=tenant),
    "projects": lambda tenant: ProjectFactory(tenant=tenant),
    "activities": lambda tenant: ActivityFactory(tenant=tenant),
}
SURROGATE = ("surrogate_characters_not_allowed", "Surrogate characters are not allowed: send text as valid Unicode.")
NUL = ("null_characters_not_allowed", "Null characters are not allowed.")
TOO_DEEP = ("json_too_deep", f"Nested more than {JSON_MAX_DEPTH} levels deep.")

# The body as a client writes it (json.dumps escapes a lone surrogate as \ud800).
BAD_VALUES = {
    "surrogate in a string": ("\ud800", SURROGATE),
    "surrogate in a key": ({"\udfff": 1}, SURROGATE),
    "NUL in a string": ("a\x00b", NUL),
    "NUL in a key": ({"a\x00": 1}, NUL),
    "33 levels": (nested(JSON_MAX_DEPTH), TOO_DEEP),
    "600 levels": (nested(600), TOO_DEEP),
}


@pytest.mark.parametrize(("resource", "column", "wrap"), JSON_COLUMNS)
@pytest.mark.parametrize("bad", sorted(BAD_VALUES))
def test_a_json_column_refuses_what_postgresql_cannot_store_naming_it(owner, tenant, resource, column, wrap, bad):
    record = MAKERS[resource](tenant)
    before = tables()
    value, (code, detail) = BAD_VALUES[bad]
    body = json.dumps({column: wrap(value)})

    response = client_for(owner).patch(f"/api/v1/{resource}/{record.pk}/", body, content_type="application/json")

    assert_invalid(response, attr=column, code=code, detail=detail)
    assert tables() == before


def test_a_json_column_takes_a_document_at_the_depth_limit(owner, tenant):
    contact = ContactFactory(tenant=tenant)
    deepest = nested(JSON_MAX_DEPTH - 1)  # inside custom_fields: the limit's last level

    response = client_for(owner).patch(f"/api/v1/contacts/{contact.pk}/", {"custom_fields": {"x": deepest}})

    assert response.status_code == 200, response.content
    contact.refresh_from_db()
    assert contact.custom_fields == {"x": deepest}


def test_a_body_nested_deeper_than_the_parser_goes_is_a_parse_error(owner, tenant):
    before = tables()
    body = '{"custom_fields": ' + "[" * 5000 + "]" * 5000 + "}"

    response = client_for(owner).post("/api/v1/contacts/", body, content_type="application/json")

    assert_error(response, 400, code="parse_error", detail="JSON parse error - the document is nested too deeply.")
    assert tables() == before


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_upload_limit_is_a_413_in_the_api_shape(owner, tenant):
    before = tables()
    body = json.dumps({"first_name": "Dana", "notes": "x" * 2000})

    response = client_for(owner).post("/api/v1/contacts/", body, content_type="application/json")

    assert_error(response, 413, code="request_too_large", detail="The request body is larger than this server accepts.")
    assert tables() == before


ADMIN_MODELS = {"contacts": Contact, "projects": Project, "activities": Activity}
# What a person types in the admin's JSON box.
ADMIN_TEXTS = {
    "surrogate": ('{"note": "\\ud800"}', SURROGATE[1]),
    "NUL": ('{"note": "a\\u0000b"}', NUL[1]),
    "33 levels": (json.dumps(nested(JSON_MAX_DEPTH + 1)), TOO_DEEP[1]),
    "5000 levels": ("[" * 5000 + "]" * 5000, TOO_DEEP[1]),
}


@pytest.mark.parametrize(("resource", "column"), [(resource, column) for resource, column, _ in JSON_COLUMNS])
@pytest.mark.parametrize("text", sorted(ADMIN_TEXTS))
def test_the_admins_json_boxes_refuse_what_postgresql_cannot_store(tenant, resource, column, text):
    client, _ = staff_client(tenant, Role.MANAGER)
    record = MAKERS[resource](tenant)
    before = row(record)
    typed, message = ADMIN_TEXTS[text]

    response = post_page(client, admin_url("change", ADMIN_MODELS[resource], record.pk), {column: typed})

    assert form_errors(response) == [(column, message)]
    assert row(record) == before


def time_filtered_lists() -> list[tuple[str, str]]:
    """Every (list URL, filter) of the API whose filter takes a time, read from the router.

    Derived, not listed by hand: a time filter added to any app's FilterSet is tested here
    (one on impersonation logs once escaped a hand-written list and answered 500).
    """
    found = []
    for prefix, viewset, _ in router.registry:
        filterset = getattr(viewset, "filterset_class", None)
        if filterset is None or "(?P<" in prefix:
            continue
        for name, field in filterset.base_filters.items():
            if issubclass(field.field_class, forms.DateTimeField):
                found.append((f"/api/v1/{prefix}/", name))
    return found


DATE_FILTERED_LISTS = time_filtered_lists()


def test_every_time_filter_is_found():
    assert ("/api/v1/impersonation/logs/", "started_before") in DATE_FILTERED_LISTS


@pytest.mark.parametrize(("url", "name"), DATE_FILTERED_LISTS)
@pytest.mark.parametrize("offset", ["+16:00", "-16:00", "+14:01", "+23:59"])
def test_a_time_filter_with_an_offset_no_time_zone_has_is_a_400(owner, url, name, offset):
    value = f"2024-01-01T00:00:00{offset}"

    response = client_for(owner).get(url, {name: value})

    assert_invalid(
        response,
        attr=name,
        code="invalid",
        detail=f"The UTC offset must be between -14:00 and +14:00; got {value}.",
    )


def test_a_time_filter_is_compared_in_utc(owner, tenant):
    activity = ActivityFactory(tenant=tenant, scheduled_at="2024-01-01T10:00:00Z")
    client = client_for(owner)

    # 2024-01-02T00:00+14:00 is 2024-01-01T10:00Z: the activity is at it, not after it.
    at = client.get("/api/v1/activities/", {"scheduled_after": "2024-01-02T00:00:00+14:00"})
    after = client.get("/api/v1/activities/", {"scheduled_after": "2024-01-02T00:00:01+14:00"})

    assert [item["id"] for item in at.json()["results"]] == [activity.pk]
    assert after.json()["results"] == []


@pytest.mark.parametrize(
    ("query", "attr", "detail"),
    [
        ({"to": "0001-01-05"}, "to", "Ensure this value is greater than or equal to 1900-01-01."),
        ({"to": "9999-12-31"}, "to", "Ensure this value is less than or equal to 2999-12-31."),
        (
            {"from": "0001-01-01", "to": "2024-01-01"},
            "from",
            "Ensure this value is greater than or equal to 1900-01-01.",
        ),  # noqa: E501
        ({"from": "9999-12-31"}, "from", "Ensure this value is less than or equal to 2999-12-31."),
        (
            {"from": "2020-01-01", "to": "2022-01-01"},
            "from",
            "The window is at most 731 days: move `from` closer to `to`.",
        ),
    ],
)
def test_substatus_analytics_refuses_dates_at_the_calendars_edges_and_long_windows(owner, query, attr, detail):
    response = client_for(owner).get("/api/v1/substatus/analytics/", {"entity": "project", **query})

    errors = api_errors(response, 400, type="validation_error")
    assert [(error["attr"], error["detail"]) for error in errors] == [(attr, detail)]


def test_substatus_analytics_takes_the_longest_window(owner):
    response = client_for(owner).get(
        "/api/v1/substatus/analytics/", {"entity": "project", "from": "2020-01-01", "to": "2021-12-31"}
    )

    assert response.status_code == 200, response.content
    assert (response.json()["from"], response.json()["to"]) == ("2020-01-01", "2021-12-31")
