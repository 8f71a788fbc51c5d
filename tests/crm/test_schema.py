"""The OpenAPI schema: every route, its tenant header, its error responses; and the docs page."""

import pytest
from django.test import Client
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from tests.factories import UserFactory

CAMPAIGN_ACTIONS = ("publish", "pause", "resume", "archive", "enroll", "unenroll", "simulate")
TENANT_ROUTES = {
    "/api/v1/contacts/": {"get", "post"},
    "/api/v1/contacts/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/contacts/{id}/restore/": {"post"},
    "/api/v1/contacts/reassign/": {"post"},
    "/api/v1/projects/": {"get", "post"},
    "/api/v1/projects/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/projects/{id}/restore/": {"post"},
    "/api/v1/projects/{project_pk}/contacts/": {"get", "post"},
    "/api/v1/projects/{project_pk}/contacts/{id}/": {"get", "delete"},
    "/api/v1/activities/": {"get", "post"},
    "/api/v1/activities/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/memberships/": {"get", "post"},
    "/api/v1/memberships/{id}/": {"get", "patch", "delete"},
    "/api/v1/memberships/{id}/resend/": {"post"},
    "/api/v1/tenant/": {"get", "patch"},
    "/api/v1/substatuses/": {"get", "post"},
    "/api/v1/substatuses/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/substatuses/reorder/": {"post"},
    "/api/v1/contacts/{record_pk}/substatus-history/": {"get"},
    "/api/v1/projects/{record_pk}/substatus-history/": {"get"},
    "/api/v1/substatus/analytics/": {"get"},
    "/api/v1/filter-configs/": {"get", "post"},
    "/api/v1/filter-configs/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/filter-configs/reorder/": {"post"},
    "/api/v1/saved-filters/": {"get", "post"},
    "/api/v1/saved-filters/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/saved-filters/{id}/duplicate/": {"post"},
    "/api/v1/saved-filters/{id}/set-default/": {"post"},
    "/api/v1/filters/validate/": {"post"},
    "/api/v1/filters/count/": {"post"},
    "/api/v1/filters/usage/": {"get"},
    "/api/v1/impersonation/start/": {"post"},
    "/api/v1/impersonation/logs/": {"get"},
    "/api/v1/impersonation/logs/{id}/": {"get"},
    "/api/v1/ai/conversations/": {"get", "post"},
    "/api/v1/ai/conversations/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/ai/conversations/{id}/archive/": {"post"},
    "/api/v1/ai/conversations/{id}/unarchive/": {"post"},
    "/api/v1/ai/conversations/{id}/export/": {"get"},
    "/api/v1/ai/conversations/{id}/messages/": {"get", "post"},
    "/api/v1/ai/audit/conversations/": {"get"},
    "/api/v1/ai/audit/conversations/{id}/": {"get"},
    "/api/v1/ai/audit/conversations/{id}/messages/": {"get"},
    "/api/v1/ai/audit/conversations/{id}/legal-hold/": {"post"},
    "/api/v1/ai/usage/": {"get"},
    "/api/v1/campaigns/": {"get", "post"},
    "/api/v1/campaigns/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/campaigns/{id}/restore/": {"post"},
    "/api/v1/campaigns/{id}/analytics/": {"get"},
    "/api/v1/campaigns/from-template/": {"post"},
    **{f"/api/v1/campaigns/{{id}}/{name}/": {"post"} for name in CAMPAIGN_ACTIONS},
    **{f"/api/v1/campaigns/{{campaign_pk}}/{name}/": {"get", "post"} for name in ("steps", "triggers")},
    **{
        f"/api/v1/campaigns/{{campaign_pk}}/{name}/{{id}}/": {"get", "put", "patch", "delete"}
        for name in ("steps", "triggers")
    },
    "/api/v1/campaigns/{campaign_pk}/versions/": {"get"},
    "/api/v1/campaigns/{campaign_pk}/versions/{id}/": {"get"},
    "/api/v1/campaign-enrollments/": {"get"},
    "/api/v1/campaign-enrollments/{id}/": {"get", "delete"},
    "/api/v1/campaign-executions/": {"get"},
    "/api/v1/campaign-executions/{id}/": {"get"},
    "/api/v1/campaign-executions/{id}/resolve/": {"post"},
    "/api/v1/campaign-templates/": {"get", "post"},
    "/api/v1/campaign-templates/{id}/": {"get", "put", "patch", "delete"},
    "/api/v1/campaign-templates/{id}/preview/": {"post"},
}
OTHER_ROUTES = {
    "/api/v1/me/": {"get"},
    "/api/v1/invitations/accept/": {"get", "post"},
    "/api/v1/auth/token/": {"post"},
    "/api/v1/auth/tokens/": {"get"},
    "/api/v1/auth/tokens/{id}/": {"delete"},
    "/api/v1/impersonation/stop/": {"post"},
    "/api/v1/impersonation/status/": {"get"},
    "/api/v1/auth/logout/": {"post"},
    "/api/v1/auth/logout-all/": {"post"},
    "/api/v1/webhooks/twilio/{tenant_id}/sms/": {"post"},
    "/api/v1/webhooks/twilio/{tenant_id}/status/{execution_id}/": {"post"},
    "/api/v1/webhooks/email/{tenant_id}/events/": {"post"},
}


@pytest.fixture(scope="module")
def generated(django_db_blocker):
    """The schema served at /api/v1/schema/, and whether generating it warned."""
    GENERATOR_STATS.reset()
    with django_db_blocker.unblock():
        response = APIClient().get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json(), bool(GENERATOR_STATS)


@pytest.fixture
def schema(generated):
    return generated[0]


def operations(schema, path):
    return {method for method in schema["paths"][path] if method != "parameters"}


def test_schema_lists_every_route_and_nothing_else(schema):
    assert {path: operations(schema, path) for path in schema["paths"]} == {**TENANT_ROUTES, **OTHER_ROUTES}


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, methods in TENANT_ROUTES.items() for m in sorted(methods)])
def test_every_tenant_route_documents_the_tenant_header_and_errors(schema, path, method):
    operation = schema["paths"][path][method]

    headers = [parameter for parameter in operation["parameters"] if parameter["in"] == "header"]
    assert [(header["name"], header.get("required", False)) for header in headers] == [("X-Tenant", False)]
    assert {"400", "401", "403", "404"} <= set(operation["responses"])
    assert operation["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]


def test_routes_without_a_tenant_do_not_ask_for_one(schema):
    for path, methods in OTHER_ROUTES.items():
        for method in methods:
            assert all(p["in"] != "header" for p in schema["paths"][path][method].get("parameters", []))


@pytest.mark.parametrize(("resource", "component"), [("contacts", "Contact"), ("projects", "Project")])
def test_soft_delete_operations_document_their_parameters_and_conflicts(schema, resource, component):
    item = schema["paths"][f"/api/v1/{resource}/{{id}}/"]
    restore = schema["paths"][f"/api/v1/{resource}/{{id}}/restore/"]["post"]

    assert "purge" in {p["name"] for p in item["delete"]["parameters"]}
    assert "deleted" in {p["name"] for p in schema["paths"][f"/api/v1/{resource}/"]["get"]["parameters"]}
    assert "409" in item["delete"]["responses"]
    assert restore["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{component}"
    }
    assert "409" in restore["responses"]


def test_contact_fields_are_documented(schema):
    contact = schema["components"]["schemas"]["Contact"]

    assert {"id", "display_name", "email", "phone", "lead_score", "custom_fields", "tags", "is_deleted"} <= set(
        contact["properties"]
    )
    assert (contact["properties"]["lead_score"]["minimum"], contact["properties"]["lead_score"]["maximum"]) == (
        -(2**31),
        2**31 - 1,
    )
    assert "search" not in contact["properties"]


def test_schema_is_valid_openapi_and_generates_without_warnings(generated):
    schema, warned = generated

    validate_schema(schema)
    assert schema["openapi"] == "3.0.3"
    assert warned is False


def test_docs_page_renders(db):
    response = APIClient().get("/api/v1/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"/api/v1/schema/" in response.content


def test_the_token_endpoint_documents_its_answer(schema):
    token = schema["paths"]["/api/v1/auth/token/"]["post"]

    assert token["security"] == [{}]
    assert set(token["responses"]) >= {"200", "400", "429"}
    assert token["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse429"
    }
    assert set(schema["components"]["schemas"]["Token"]["properties"]) == {"token", "expiry"}
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }


def test_closed_docs_need_a_signed_in_user(db, settings):
    settings.API_DOCS_PUBLIC = False
    staff = Client()
    staff.force_login(UserFactory(username="dana"))

    schema = APIClient().get("/api/v1/schema/", {"format": "json"})
    docs = APIClient().get("/api/v1/docs/")

    assert schema.status_code == 401
    assert schema.json()["errors"] == [
        {"code": "not_authenticated", "detail": "Authentication credentials were not provided.", "attr": None}
    ]
    assert (docs.status_code, docs["Location"]) == (302, "/admin/login/?next=/api/v1/docs/")
    assert staff.get("/api/v1/schema/", {"format": "json"}).json()["info"]["title"] == "Ridgeline API"
    assert b"swagger-ui" in staff.get("/api/v1/docs/").content


@pytest.mark.parametrize("resource", ["contacts", "projects", "activities"])
def test_the_record_lists_document_the_filter_language(schema, resource):
    parameters = {p["name"]: p for p in schema["paths"][f"/api/v1/{resource}/"]["get"]["parameters"]}

    assert parameters["filter"]["schema"] == {"type": "string"}
    assert "not_equals" in parameters["filter"]["description"]
    assert parameters["saved_filter"]["schema"] == {"type": "integer"}
    assert "filter" not in {p["name"] for p in schema["paths"]["/api/v1/memberships/"]["get"]["parameters"]}
