"""The whole API fuzzed by schemathesis, from the schema the server publishes at /api/v1/schema/.

Every operation of the schema is a test (nothing is excluded: an endpoint added later is
fuzzed with no change here; test_api_surface.py holds the operations the schema leaves out,
each with its reason), with a fixed seed (FUZZ_SEED) and a bounded number of generated
requests, valid and invalid: as the tenant's owner, the schema's edge cases and
FUZZ_MAX_EXAMPLES (25) more; then as a member and as a viewer, FUZZ_ROLE_MAX_EXAMPLES (5).
The fuzzer sends `X-Tenant`; it must never get a 5xx, and every response must conform to the
schema (status code, content type, headers, body), a 403 included.

Its footing (api_footing.py): a tenant with a row of every app's kind, made once for the
module; each request carries a new token (logout and token revocation are fuzzed too), the
fuzzer is the tenant's only owner (the last-owner rule keeps it), and each operation's test
runs in a savepoint rolled back after it. Path ids are half the time those of rows the role
(else the owner) can list, of every collection the path goes through, so that reads and
writes reach real rows and not only 404s. A second tenant's rows are unchanged at the end of
each operation. The last test checks docs/api-roles.md's table of the 403s against the API.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import hypothesis
import pytest
import schemathesis
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from crm.models import Role, Tenant, User
from crm.services import auth_token_create
from tests.crm.api_footing import Footing, Footings, footings_kept, known_path_parameters, tenant_rows

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
# Generated requests per operation as a member and as a viewer.
ROLE_MAX_EXAMPLES = int(os.environ.get("FUZZ_ROLE_MAX_EXAMPLES", "5"))
# A fixed seed: CI draws the same requests on every run; FUZZ_SEED explores others locally.
SEED = int(os.environ.get("FUZZ_SEED", "17"))
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
schema.config.seed = SEED


# Requests sent, per role, and the operations they went to; the module's last line in the
# terminal sums them up.
SENT: dict[str, int] = {}
FUZZED: set[str] = set()


@pytest.fixture(scope="session", autouse=True)
def _fuzz_figures(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and SENT:
        with capture.global_and_fixture_disabled():
            sent = ", ".join(f"{count} as {role}" for role, count in SENT.items())
            reporter.write_line(f"API fuzz: {len(FUZZED)} operations; requests: {sent}")


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


@pytest.fixture(scope="module")
def footings(django_db_setup, django_db_blocker) -> Iterator[Footings]:
    with footings_kept(django_db_blocker) as made:
        yield made


@pytest.fixture
def fuzz_footing(footings: Footings, db) -> Iterator[Footing]:
    yield footings.ours
    assert tenant_rows(footings.other.tenant) == footings.other_rows


@pytest.fixture
def known_paths() -> dict[str, list[dict[str, int]]]:
    """Path template -> the parameters of rows the fuzzer listed, for one operation's test."""
    return {}


def headers_for(user: User, tenant: Tenant) -> dict[str, str]:
    _, token = auth_token_create(user=user)
    return {"Authorization": f"Token {token}", "X-Tenant": tenant.subdomain}


def fuzz(case: Any, role: Role, footing: Footing, known_paths: dict[str, list[dict[str, int]]]) -> None:
    tenant, user = footing.tenant, footing.staff[role]
    headers = headers_for(user, tenant)
    if case.path_parameters:
        template = urlsplit(case.operation.base_url or "").path.rstrip("/") + case.path
        if template not in known_paths:
            # The role's own rows (its conversations, its saved filters), else the owner's: a
            # path the role may not list still gets real ids, to be refused on.
            owner = Client(headers=headers_for(footing.staff[Role.OWNER], tenant))
            known_paths[template] = known_path_parameters(Client(headers=headers), template) or (
                known_path_parameters(owner, template)
            )
        known = known_paths[template]
        drawn = next(iter(case.path_parameters.values()))
        if known and isinstance(drawn, int) and drawn % 2 == 0:
            case.path_parameters = dict(known[(drawn // 2) % len(known)])
    SENT[role] = SENT.get(role, 0) + 1
    FUZZED.add(case.operation.label)
    with connection_kept():
        case.call_and_validate(headers=headers, checks=CHECKS)


@schema.parametrize()
@hypothesis.settings(
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_fuzz(case, fuzz_footing, known_paths):
    """As the owner: every operation, with the schema's own examples and edge cases (the
    coverage phase) and FUZZ_MAX_EXAMPLES generated requests."""
    fuzz(case, Role.OWNER, fuzz_footing, known_paths)


@schema.parametrize()
@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
@hypothesis.settings(
    deadline=None,
    max_examples=ROLE_MAX_EXAMPLES,
    phases=[hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_fuzz_as_role(case, role, fuzz_footing, known_paths):
    """As a member and as a viewer: every operation again, with fewer requests (generated ones
    only), since most of what they may not do is refused before the request is read."""
    fuzz(case, role, fuzz_footing, known_paths)


# The role table of docs/api-roles.md -----------------------------------------------------

ROLES_DOC = Path(settings.BASE_DIR) / "docs" / "api-roles.md"
TABLE_START = "<!-- The table below is checked by tests/crm/test_api_fuzz.py; API_ROLES_DOC_WRITE=1 rewrites it. -->"
TABLE_END = "<!-- End of the checked table. -->"
NO_ROW = 999_999_999  # a path id no row has, for a path whose collection the fuzzer cannot list


def probes() -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, query) for every operation of the schema, and again with each of its
    true/false query parameters set (`?deleted=true` asks more of the role than a plain list)."""
    found: list[tuple[str, str, dict[str, str]]] = []
    for path, item in schema.raw_schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            found.append((method.upper(), path, {}))
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter.get("schema", {}).get("type") == "boolean":
                    found.append((method.upper(), path, {parameter["name"]: "true"}))
    return found


def probe_label(method: str, path: str, query: dict[str, str]) -> str:
    return f"{method} {path}" + "".join(f"?{name}={value}" for name, value in query.items())


def probe(footing: Footing, role: Role, method: str, path: str, query: dict[str, str]) -> int:
    """The status `role` gets for the operation on the footing's rows, with an empty body: the
    refusals of a role come before the body is read (the services' own, which depend on what
    is asked, are described in the doc's text)."""
    client = Client(headers=headers_for(footing.staff[role], footing.tenant))
    owner = Client(headers=headers_for(footing.staff[Role.OWNER], footing.tenant))
    parameters = {}
    if "{" in path:
        known = known_path_parameters(client, path) or known_path_parameters(owner, path)
        names = [segment[1:-1] for segment in path.split("/") if segment.startswith("{")]
        # The newest row the role lists: its own where it has one (a saved filter, a conversation).
        parameters = max(known, key=lambda values: tuple(values.values())) if known else dict.fromkeys(names, NO_ROW)
    url = path.format(**parameters) + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    body = {"data": {}, "content_type": "application/json"} if method in ("POST", "PUT", "PATCH") else {}
    with transaction.atomic():  # undone: the owner's DELETE must not take the next probe's row away
        status = getattr(client, method.lower())(url, **body).status_code
        transaction.set_rollback(True)
    return status


def role_table(footing: Footing) -> tuple[list[tuple[str, str, str]], dict[str, set[Role]]]:
    """The rows of the table (operation, member, viewer) where a member or a viewer is refused
    what the owner may do; and, per operation, the roles the API refused."""
    refused: dict[str, set[Role]] = {}
    plain: dict[str, tuple[str, str]] = {}
    rows = []
    for method, path, query in probes():
        answers = {role: probe(footing, role, method, path, query) for role in (Role.OWNER, Role.MEMBER, Role.VIEWER)}
        operation = f"{method} {path}"
        refused.setdefault(operation, set()).update(role for role, status in answers.items() if status == 403)
        member, viewer = ("403" if answers[role] == 403 else "allowed" for role in (Role.MEMBER, Role.VIEWER))
        cells = (member, viewer)
        if not query:
            plain[operation] = cells
        if answers[Role.OWNER] == 403 or "403" not in cells or (query and plain.get(operation) == cells):
            continue
        rows.append((probe_label(method, path, query), *cells))
    return rows, refused


def render(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| operation | member | viewer |", "|---|---|---|"]
    lines += [f"| `{label}` | {member} | {viewer} |" for label, member, viewer in rows]
    return "\n".join(lines)


def test_the_documented_role_table_is_what_the_api_answers(fuzz_footing):
    rows, refused = role_table(fuzz_footing)
    table = render(rows)
    text = ROLES_DOC.read_text()
    before, rest = text.split(TABLE_START + "\n")
    _, after = rest.split(TABLE_END)
    if os.environ.get("API_ROLES_DOC_WRITE") == "1":
        ROLES_DOC.write_text(f"{before}{TABLE_START}\n{table}\n{TABLE_END}{after}")
    documented = rest.split("\n" + TABLE_END)[0]

    assert documented == table, f"docs/api-roles.md is out of date; the API answers:\n{table}"
    declared = {
        f"{method.upper()} {path}"
        for path, item in schema.raw_schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "403" in operation.get("responses", {})
    }
    assert {label for label, roles in refused.items() if roles} <= declared
