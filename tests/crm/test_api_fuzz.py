"""The whole API fuzzed by schemathesis, from the schema the server publishes at /api/v1/schema/.

Every operation of the schema is a test (nothing is excluded: an endpoint added later is
fuzzed with no change here), with a bounded number of generated requests each
(FUZZ_MAX_EXAMPLES, 25 by default), valid and invalid ones. The fuzzer acts as the owner of a
tenant with data, with `X-Tenant`; it must never get a 5xx, and every response must conform
to the schema (status code, content type, headers, body).

Its footing: each request carries a new token (logout and token revocation are fuzzed too),
the fuzzer is the tenant's only owner (the last-owner rule keeps it), and each operation's test
runs in a transaction rolled back after it. Path ids are half the time those of rows the
fuzzer can list (of every collection the path goes through), so that reads and writes reach
real rows and not only 404s. A second tenant's rows are unchanged at the end of each operation.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import hypothesis
import pytest
import schemathesis
from django.apps import apps
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm.models import Membership, Role, Tenant, User
from crm.services import auth_token_create
from tests.factories import (
    ActivityFactory,
    CompanyFactory,
    ContactFactory,
    MembershipFactory,
    ProjectContactFactory,
    ProjectFactory,
    TenantFactory,
    UserFactory,
)

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    # The test database is rolled back after each operation: examples are not kept between runs.
    database="none",
)


# Requests sent, per operation; the module's last line in the terminal sums them up.
SENT: dict[str, int] = {}


@pytest.fixture(scope="session", autouse=True)
def _fuzz_figures(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and SENT:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"API fuzz: {len(SENT)} operations, {sum(SENT.values())} requests")


def tenant_with_data(subdomain: str) -> tuple[Tenant, User]:
    """A tenant with a row of every kind (live and deleted) and staff of each role; returns its owner."""
    tenant = TenantFactory.create(name=f"{subdomain.title()} Roofing", subdomain=subdomain)
    owner = UserFactory.create(username=f"{subdomain}-owner")
    MembershipFactory(tenant=tenant, user=owner, role=Role.OWNER)
    for role in (Role.ADMIN, Role.MANAGER, Role.MEMBER, Role.VIEWER):
        MembershipFactory(tenant=tenant, user=UserFactory(username=f"{subdomain}-{role}"), role=role)
    company = CompanyFactory(tenant=tenant)
    person = ContactFactory(tenant=tenant, company_contact=company)
    ContactFactory(tenant=tenant, is_deleted=True)
    project = ProjectFactory(tenant=tenant, contact=person, project_number=f"{subdomain}-1")
    ProjectFactory(tenant=tenant, contact=person, parent_project=project)
    ProjectFactory(tenant=tenant, is_deleted=True)
    ProjectContactFactory(tenant=tenant, project=project, contact=company, role="organization")
    ActivityFactory(tenant=tenant, contact=person, project=project)
    ActivityFactory(tenant=tenant, contact=person, outcome_details={"answered": True})
    return tenant, owner


def tenant_rows(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row of every tenant-owned table that belongs to `tenant`, and its members' accounts."""
    rows = {
        model._meta.label: list(model._default_manager.filter(tenant=tenant).order_by("pk").values())
        for model in apps.get_models()
        if any(field.name == "tenant" and field.is_relation for field in model._meta.fields)
    }
    members = Membership.objects.filter(tenant=tenant).values("user_id")
    rows["users"] = [dict(user) for user in User.objects.filter(pk__in=members).order_by("pk").values()]
    return rows


@contextmanager
def connection_kept() -> Iterator[None]:
    """As Django's test client does: the WSGI handler would otherwise close the test's database
    connection (an open transaction) around every request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_footing(db):
    tenant, owner = tenant_with_data("summit")
    other, _ = tenant_with_data("valley")
    before = tenant_rows(other)
    yield tenant, owner
    assert tenant_rows(other) == before


@pytest.fixture
def known_paths() -> dict[str, list[dict[str, int]]]:
    """Path template -> the parameters of rows the fuzzer listed, for one operation's test."""
    return {}


def collection_ids(client: Client, path: str) -> list[int]:
    response = client.get(path, {"page_size": 200})
    if response.status_code != 200:
        return []
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    return [row["id"] for row in rows if isinstance(row, dict) and isinstance(row.get("id"), int)]


def known_path_parameters(client: Client, template: str) -> list[dict[str, int]]:
    """Every assignment of the path's parameters to ids the fuzzer can list, walking the path
    from the left: `/projects/{project_pk}/contacts/{id}/` lists /projects/, then each project's
    /projects/<pk>/contacts/."""
    found: list[tuple[str, dict[str, int]]] = [("", {})]
    for segment in template.strip("/").split("/"):
        if not (segment.startswith("{") and segment.endswith("}")):
            found = [(prefix + "/" + segment, values) for prefix, values in found]
            continue
        name = segment[1:-1]
        found = [
            (f"{prefix}/{pk}", {**values, name: pk})
            for prefix, values in found[:5]
            for pk in collection_ids(client, prefix + "/")
        ]
    return [values for _, values in found]


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_fuzz(case, fuzz_footing, known_paths):
    tenant, owner = fuzz_footing
    _, token = auth_token_create(user=owner)
    headers = {"Authorization": f"Token {token}", "X-Tenant": tenant.subdomain}
    if case.path_parameters:
        template = urlsplit(case.operation.base_url or "").path.rstrip("/") + case.path
        if template not in known_paths:
            known_paths[template] = known_path_parameters(Client(headers=headers), template)
        known = known_paths[template]
        drawn = next(iter(case.path_parameters.values()))
        if known and isinstance(drawn, int) and drawn % 2 == 0:
            case.path_parameters = dict(known[(drawn // 2) % len(known)])
    SENT[case.operation.label] = SENT.get(case.operation.label, 0) + 1
    with connection_kept():
        case.call_and_validate(headers=headers, checks=CHECKS)
