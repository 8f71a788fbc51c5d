"""Helpers for API tests: the documented error shape, row snapshots and the resources under test."""

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.db import models
from rest_framework.test import APIClient

from ai_chat.models import Conversation
from ai_chat.services import conversation_create
from campaigns.models import (
    Campaign,
)
from campaigns.services import campaign_create
from contacts.models import Contact
from crm.actor import Actor
from crm.models import Activity, Membership, Project, Role, Tenant
from filters.models import FilterConfig, SavedFilter
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, MembershipFactory, ProjectFactory

# The persona fixture (tests/conftest.py) holding each role in `tenant`.
ROLE_PERSONAS = {
    Role.OWNER: "owner",
    Role.ADMIN: "admin_user",
    Role.MANAGER: "manager",
    Role.MEMBER: "member_user",
    Role.VIEWER: "viewer",
}


def persona(request: pytest.FixtureRequest, role: str) -> Any:
    return request.getfixturevalue(ROLE_PERSONAS[Role(role)])


def role_client(request: pytest.FixtureRequest, role: str) -> APIClient:
    return client_for(persona(request, role))


def api_errors(response: Any, status: int, *, type: str = "client_error") -> list[dict[str, Any]]:
    """Assert the status and the documented error shape; return the errors."""
    assert response.status_code == status, response.content
    body = response.json()
    assert list(body) == ["type", "errors"]
    assert body["type"] == type
    assert body["errors"]
    for error in body["errors"]:
        assert list(error) == ["code", "detail", "attr"]
    return body["errors"]


def assert_error(
    response: Any, status: int, *, code: str, detail: str, attr: str | None = None, type: str = "client_error"
) -> None:
    """Exactly one error, exactly this one."""
    assert api_errors(response, status, type=type) == [{"code": code, "detail": detail, "attr": attr}]


def assert_invalid(response: Any, *, attr: str, code: str, detail: str) -> None:
    assert_error(response, 400, type="validation_error", code=code, detail=detail, attr=attr)


def row(instance: models.Model) -> dict[str, Any] | None:
    """The row as the database holds it now (None when it is gone)."""
    return type(instance)._default_manager.filter(pk=instance.pk).values().first()


def table(model: type[models.Model]) -> list[dict[str, Any]]:
    return list(model._default_manager.order_by("pk").values())


# The apps whose tables a request could write: every one of their models is in `tables()`,
# so a table added later is covered without anyone listing it.
PROJECT_APPS = ("crm", "contacts", "substatus", "filters", "impersonation", "ai_chat", "campaigns", "legacy_import")


def tables() -> dict[str, list[dict[str, Any]]]:
    """Every table of the project's apps, to prove a refused request changed nothing."""
    return {
        model._meta.db_table: table(model)
        for label in PROJECT_APPS
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and not model._meta.proxy
    }


@dataclass(frozen=True)
class Resource:
    """A tenant-owned API resource: how to make a row and what a valid write looks like."""

    name: str
    model: type[models.Model]
    make: Callable[[Tenant], models.Model]
    payload: Callable[[Tenant], dict[str, Any]]  # a valid full body, with references in that tenant
    change: dict[str, Any]  # a valid PATCH body
    soft_delete: bool
    list_query: str = ""  # narrows a list to the rows the test made (tenants start with default rows)
    # The least role of an action where it differs from the rule of tests/crm/test_roles.py.
    roles: Mapping[str, Role] = field(default_factory=dict)
    # Prefetch queries a list page adds (one per prefetched relation, whatever the page size).
    prefetches: int = 0

    @property
    def url(self) -> str:
        return f"/api/v1/{self.name}/"

    @property
    def list_url(self) -> str:
        return self.url + self.list_query

    def detail(self, pk: int) -> str:
        return f"/api/v1/{self.name}/{pk}/"

    def __str__(self) -> str:
        return self.name


CONTACTS = Resource(
    name="contacts",
    model=Contact,
    make=lambda tenant: ContactFactory.create(tenant=tenant),
    payload=lambda tenant: {"first_name": "Dana", "last_name": "Whitfield", "email": "dana@example.com"},
    change={"stage": Contact.Stage.QUALIFIED},
    soft_delete=True,
)
PROJECTS = Resource(
    name="projects",
    model=Project,
    make=lambda tenant: ProjectFactory.create(tenant=tenant),
    payload=lambda tenant: {"name": "Hail damage replacement", "contact": ContactFactory.create(tenant=tenant).pk},
    change={"status": Project.Status.APPROVED},
    soft_delete=True,
)
ACTIVITIES = Resource(
    name="activities",
    model=Activity,
    make=lambda tenant: ActivityFactory.create(tenant=tenant),
    payload=lambda tenant: {
        "type": Activity.Type.NOTE,
        "contact": ContactFactory.create(tenant=tenant).pk,
        "content": "Hi",
    },
    change={"outcome": "voicemail"},
    soft_delete=False,
)
CAMPAIGNS = Resource(
    name="campaigns",
    model=Campaign,
    make=lambda tenant: campaign_create(actor=Actor(tenant=tenant, user=None), name="Storm follow-up"),
    payload=lambda tenant: {"name": "Hail season", "campaign_type": "event", "goal_type": "appointments"},
    change={"description": "After the June storms"},
    soft_delete=True,
    prefetches=1,  # the campaigns' versions (active and draft)
    # Campaigns message customers: members read them, managers change them.
    roles={
        "list": Role.MEMBER,
        "retrieve": Role.MEMBER,
        "create": Role.MANAGER,
        "update": Role.MANAGER,
        "partial_update": Role.MANAGER,
    },
)


def make_conversation(tenant: Tenant) -> Conversation:
    """A conversation of the tenant's first owner (a user sees only their own conversations)."""
    membership = Membership.objects.filter(tenant=tenant, role=Role.OWNER).order_by("pk").first()
    user = membership.user if membership else MembershipFactory.create(tenant=tenant, role=Role.OWNER).user
    return conversation_create(actor=Actor(tenant=tenant, user=user))


AI_CONVERSATIONS = Resource(
    name="ai/conversations",
    model=Conversation,
    make=make_conversation,
    payload=lambda tenant: {"title": "Storm leads", "pinned": True, "metadata": {"page": "contacts"}},
    change={"pinned": True},
    soft_delete=False,
)
# Role-checked tenant resources: every member of the tenant reads the tenant's rows.
RESOURCES = [CONTACTS, PROJECTS, ACTIVITIES, CAMPAIGNS]
# Tenant resources whose rows only their own user sees (any role may write their own).
OWN_RESOURCES = [AI_CONVERSATIONS]
TENANT_RESOURCES = RESOURCES + OWN_RESOURCES

_numbers = itertools.count(1)


def _saved_filter(tenant: Tenant) -> SavedFilter:
    owner = MembershipFactory.create(tenant=tenant).user
    return SavedFilter.objects.create(
        tenant=tenant,
        entity_type="contacts",
        name=f"Saved {next(_numbers)}",
        filter_criteria={"and": []},
        created_by=owner,
    )


def _custom_config(tenant: Tenant) -> FilterConfig:
    key = f"key{next(_numbers)}"
    return FilterConfig.objects.create(
        tenant=tenant,
        entity_type="contacts",
        field_name=f"custom_fields.{key}",
        field_label=key,
        field_type="text",
        filter_operator="contains",
        custom_field_id=key,
    )


# Tenant configuration the filters app adds (every tenant also starts with default rows).
SAVED_FILTERS = Resource(
    name="saved-filters",
    model=SavedFilter,
    make=_saved_filter,
    payload=lambda tenant: {"entity_type": "contacts", "name": "Hot", "filter_criteria": {"and": []}},
    change={"name": "Warm"},
    soft_delete=False,
    list_query="?is_system=false",
)
FILTER_CONFIGS = Resource(
    name="filter-configs",
    model=FilterConfig,
    make=_custom_config,
    payload=lambda tenant: {
        "entity_type": "contacts",
        "field_name": "custom_fields.roof_color",
        "field_label": "Roof color",
        "field_type": "text",
    },
    change={"field_label": "Colour"},
    soft_delete=False,
    list_query="?custom=true",
)
FILTER_RESOURCES = [SAVED_FILTERS, FILTER_CONFIGS]
SOFT_DELETE_RESOURCES = [resource for resource in RESOURCES if resource.soft_delete]


def make_deleted(resource: Resource, tenant: Tenant) -> models.Model:
    record = resource.make(tenant)
    resource.model._default_manager.filter(pk=record.pk).update(is_deleted=True)
    record.refresh_from_db()
    return record


def app_queries(captured: Any) -> list[dict[str, Any]]:
    """The queries an API request ran (a CaptureQueriesContext's), but its row-level security
    bookkeeping (issue 17), a fixed cost tests/crm/test_rls.py counts: the request's own
    transaction (a savepoint inside a test's, its first and last statement) and the
    publication of its actor (`SELECT set_config(...)`)."""
    queries = list(captured.captured_queries)
    if queries and queries[0]["sql"].startswith("SAVEPOINT") and queries[-1]["sql"].startswith("RELEASE"):
        queries = queries[1:-1]
    return [query for query in queries if not query["sql"].startswith("SELECT set_config(")]
