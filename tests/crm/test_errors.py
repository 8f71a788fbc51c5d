"""Every bad request gets a 4xx in the one documented shape, naming the field; never a 500."""

import pytest
from django_filters import FilterSet

from contacts.filtersets import ContactFilterSet
from contacts.serializers import ContactSerializer
from crm.filtersets import ActivityFilterSet, MembershipFilterSet, ProjectFilterSet
from crm.serializers import ActivitySerializer, ProjectSerializer
from tests.api import ACTIVITIES, CONTACTS, PROJECTS, RESOURCES, api_errors, assert_error, assert_invalid, row, tables
from tests.conftest import client_for
from tests.factories import ContactFactory

LISTS = [resource.url for resource in RESOURCES] + ["/api/v1/memberships/"]


@pytest.fixture
def client(owner):
    return client_for(owner)


@pytest.mark.parametrize("resource", RESOURCES, ids=str)
def test_malformed_json_is_400(resource, client):
    before = tables()

    response = client.post(resource.url, data='{"first_name": "Dana",', content_type="application/json")

    assert_error(
        response,
        400,
        code="parse_error",
        detail="JSON parse error - Expecting property name enclosed in double quotes: line 1 column 23 (char 22)",
    )
    assert tables() == before


@pytest.mark.parametrize("resource", RESOURCES, ids=str)
@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("text/plain", "first_name=Dana"),
        ("application/x-www-form-urlencoded", "first_name=Dana"),
        ("application/xml", "<contact/>"),
    ],
)
def test_wrong_content_type_is_415(resource, client, content_type, data):
    before = tables()

    response = client.post(resource.url, data=data, content_type=content_type)

    assert_error(
        response, 415, code="unsupported_media_type", detail=f'Unsupported media type "{content_type}" in request.'
    )
    assert tables() == before


@pytest.mark.parametrize("body", [[1, 2], "Dana", 42, True], ids=["list", "string", "number", "bool"])
def test_a_body_that_is_not_an_object_is_400(client, body):
    response = client.post(CONTACTS.url, data=body, format="json")

    errors = api_errors(response, 400, type="validation_error")
    assert [error["attr"] for error in errors] == ["non_field_errors"]


def test_unknown_ordering_field_is_400_naming_the_allowed_ones(client):
    response = client.get(CONTACTS.url, {"ordering": "-lead_score,password,tenant__name"})

    assert_invalid(
        response,
        attr="ordering",
        code="invalid",
        detail=(
            "Unknown ordering field(s): password, tenant__name. Allowed: address_city, company, contact_category, "
            "created_at, email, first_name, last_inspection_date, last_name, lead_score, priority, stage, "
            "substatus_since, type, "
            "updated_at."
        ),
    )


@pytest.mark.parametrize("url", LISTS)
def test_every_list_refuses_unknown_ordering(url, client):
    errors = api_errors(client.get(url, {"ordering": "bogus"}), 400, type="validation_error")

    assert [(error["attr"], error["detail"].split(". Allowed")[0]) for error in errors] == [
        ("ordering", "Unknown ordering field(s): bogus")
    ]


@pytest.mark.parametrize("url", LISTS)
def test_page_out_of_range_is_404(url, client, tenant):
    response = client.get(url, {"page": 3, "page_size": 10})

    assert_error(response, 404, code="not_found", detail="Page 3 does not exist: there are 1 page(s) of 10.")


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "²", "١", "9" * 5000, "1 "])
def test_page_must_be_a_whole_number(client, value):
    response = client.get(CONTACTS.url, {"page": value})

    assert_invalid(
        response, attr="page", code="invalid", detail=f"page must be a whole number from 1, or 'last'; got {value!r}."
    )


@pytest.mark.parametrize("value", ["", "abc", "0", "201", "-5", "2.5", "²", "9" * 5000])
def test_page_size_must_be_a_number_up_to_200(client, value):
    response = client.get(CONTACTS.url, {"page_size": value})

    assert_invalid(
        response,
        attr="page_size",
        code="invalid",
        detail=f"page_size must be a whole number from 1 to 200; got {value!r}.",
    )


INVALID_FILTERS = [
    (CONTACTS.url, "stage", "bogus", "invalid_choice"),
    (CONTACTS.url, "type", "bogus", "invalid_choice"),
    (CONTACTS.url, "priority", "bogus", "invalid_choice"),
    (CONTACTS.url, "created_after", "notadate", "invalid"),
    (CONTACTS.url, "created_before", "2026-02-30T00:00:00Z", "invalid"),
    (CONTACTS.url, "assigned_to", "abc", "invalid"),
    (CONTACTS.url, "assigned_to", "1.5", "invalid"),
    (CONTACTS.url, "assigned_to", "1e400", "invalid"),
    (CONTACTS.url, "unassigned", "maybe", "invalid"),
    (CONTACTS.url, "deleted", "maybe", "invalid"),
    (PROJECTS.url, "status", "bogus", "invalid_choice"),
    (PROJECTS.url, "contact", "1.5", "invalid"),
    (PROJECTS.url, "parent_project", "x", "invalid"),
    (PROJECTS.url, "insurance_approved", "maybe", "invalid"),
    (PROJECTS.url, "scheduled_after", "notadate", "invalid"),
    (ACTIVITIES.url, "type", "fax", "invalid_choice"),
    (ACTIVITIES.url, "direction", "sideways", "invalid_choice"),
    (ACTIVITIES.url, "open", "maybe", "invalid"),
    (ACTIVITIES.url, "performed_by", "1.5", "invalid"),
    (ACTIVITIES.url, "project", "-", "invalid"),
    (ACTIVITIES.url, "scheduled_before", "tomorrow", "invalid"),
    ("/api/v1/memberships/", "role", "emperor", "invalid_choice"),
    ("/api/v1/memberships/", "status", "asleep", "invalid_choice"),
]


@pytest.mark.parametrize(("url", "name", "value", "code"), INVALID_FILTERS)
def test_invalid_filter_values_are_400_naming_the_filter(client, tenant, url, name, value, code):
    ContactFactory(tenant=tenant)

    errors = api_errors(client.get(url, {name: value}), 400, type="validation_error")

    assert [(error["attr"], error["code"]) for error in errors] == [(name, code)]


@pytest.mark.parametrize(
    ("resource", "field", "value", "detail"),
    [
        (CONTACTS, "custom_fields", "vip", "custom_fields must be an object."),
        (CONTACTS, "source_details", ["x"], "source_details must be an object."),
        (PROJECTS, "materials_list", {"shingles": 28}, "materials_list must be a list."),
        (PROJECTS, "crew_assigned", "crew-a", "crew_assigned must be a list."),
        (ACTIVITIES, "outcome_details", 3, "outcome_details must be an object."),
    ],
)
def test_json_fields_of_the_wrong_kind_are_400(resource, field, value, detail, client, tenant):
    record = resource.make(tenant)
    before = row(record)

    response = client.patch(resource.detail(record.pk), {field: value})

    assert_invalid(response, attr=field, code="invalid", detail=detail)
    assert row(record) == before


@pytest.mark.parametrize("score", [2**31, -(2**31) - 1])
def test_lead_score_out_of_range_is_400(client, score):
    """Any integer the old system's column held is a lead score; a number past PostgreSQL's integer is not."""
    response = client.post(CONTACTS.url, {"first_name": "Dana", "lead_score": score})

    detail = (
        "Ensure this value is less than or equal to 2147483647."
        if score > 0
        else "Ensure this value is greater than or equal to -2147483648."
    )
    assert_invalid(response, attr="lead_score", code="max_value" if score > 0 else "min_value", detail=detail)


def test_validation_names_every_invalid_field(client):
    body = {
        "email": "not-an-email",
        "lead_score": 2**31,
        "custom_fields": "vip",
        "stage": "bogus",
        "latitude": "91",
        "tags": ["ok", None],
    }

    errors = api_errors(client.post(CONTACTS.url, body), 400, type="validation_error")

    assert sorted(error["attr"] for error in errors) == [
        "custom_fields",
        "email",
        "latitude",
        "lead_score",
        "stage",
        "tags.1",
    ]


def test_method_not_allowed_is_405(client):
    assert_error(client.delete(CONTACTS.url), 405, code="method_not_allowed", detail='Method "DELETE" not allowed.')


def test_unacceptable_accept_header_is_406(client):
    response = client.get(CONTACTS.url, HTTP_ACCEPT="application/xml")

    assert_error(response, 406, code="not_acceptable", detail="Could not satisfy the request Accept header.")


def test_unknown_id_is_404(client):
    for pk in ("999999", "99999999999999999999999", "abc"):
        assert_error(client.get(CONTACTS.detail(pk)), 404, code="not_found", detail="Not found.")


# Never a 500 ------------------------------------------------------------------------------

ODD_QUERY_VALUES = [
    "",
    "²",
    "\x00",
    "9" * 5000,
    "1.5",
    "1e400",
    "🙂",
    "0001-01-01T00:00:00+01:00",
    "' or 1=1 --",
]
FILTERSETS: dict[str, type[FilterSet]] = {
    CONTACTS.url: ContactFilterSet,
    PROJECTS.url: ProjectFilterSet,
    ACTIVITIES.url: ActivityFilterSet,
    "/api/v1/memberships/": MembershipFilterSet,
}


@pytest.mark.parametrize(
    ("url", "name"),
    [
        (url, name)
        for url, filterset in FILTERSETS.items()
        for name in [*filterset.base_filters, "page", "page_size", "ordering", "deleted"]
    ],
)
def test_odd_query_values_never_answer_500(client, tenant, url, name):
    ContactFactory(tenant=tenant)
    for value in ODD_QUERY_VALUES:
        response = client.get(url, {name: value})
        if response.status_code != 200:
            api_errors(response, response.status_code, type=response.json()["type"])
        assert response.status_code in (200, 400, 404), (name, value, response.content)


ODD_BODY_VALUES = [
    None,
    "\x00",
    "²",
    10**20,
    1.5,
    [],
    {},
    "9" * 5000,
    ["\x00"],
    {"note": "\x00"},
    "NaN",
    "0001-01-01T00:00:00+01:00",
]
SERIALIZERS = [(CONTACTS, ContactSerializer), (PROJECTS, ProjectSerializer), (ACTIVITIES, ActivitySerializer)]


@pytest.mark.parametrize(
    ("resource", "field"),
    [
        (resource, name)
        for resource, serializer in SERIALIZERS
        for name, field in serializer().fields.items()
        if not field.read_only
    ],
    ids=lambda value: str(value),
)
def test_odd_body_values_never_answer_500(client, tenant, resource, field):
    record = resource.make(tenant)
    for value in ODD_BODY_VALUES:
        response = client.patch(resource.detail(record.pk), {field: value})
        if response.status_code != 200:
            errors = api_errors(response, 400, type="validation_error")
            assert {error["attr"].split(".")[0] for error in errors} == {field}, (value, errors)


@pytest.mark.parametrize("url", ["/api/v1/nope/", "/api/v1/contacts/1/nope/", "/api/v2/contacts/", "/api/"])
def test_unknown_api_urls_answer_404_in_the_documented_shape(client, url):
    assert_error(client.get(url), 404, code="not_found", detail="Not found.")


def test_unknown_urls_outside_the_api_keep_djangos_page(client):
    response = client.get("/nowhere/")

    assert (response.status_code, response["Content-Type"]) == (404, "text/html; charset=utf-8")
