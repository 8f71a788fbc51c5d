"""A tenant with a row of every kind the API serves, for the tests that walk the whole schema
(the API fuzz and the role table's check): without rows, a path id only ever reaches a 404."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Model
from django.test import Client, override_settings

from ai_chat.services import conversation_create, message_send
from campaigns.services import (
    campaign_create,
    campaign_enroll,
    campaign_publish,
    step_create,
    template_create,
    trigger_create,
)
from crm.actor import Actor, Source
from crm.models import Membership, Role, Tenant, User
from filters.services import saved_filter_create
from impersonation.models import EndReason
from impersonation.services import Credential, impersonation_end, impersonation_start
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

TASK: dict[str, Any] = {"step_type": "create_task", "step_config": {"title": "Call {{ contact.first_name }}"}}
EMAIL: dict[str, Any] = {
    "step_type": "send_email",
    "step_config": {"subject": "Hi {{ contact.first_name }}", "body": "A note."},
}


@dataclass(frozen=True)
class Footing:
    tenant: Tenant
    staff: dict[Role, User]  # one user of each role


def tenant_with_data(subdomain: str) -> Footing:
    """A tenant with staff of each role and a row of every kind, live and deleted: contacts,
    projects and their links, activities, saved filters (one per user), campaigns (a draft, and a
    published one with a trigger, an enrollment and its executions), a template of the tenant's
    own, an AI conversation per user (a turn with the offline assistant) and an ended
    impersonation session. Its catalog of filters and its substatuses are the defaults every
    tenant starts with."""
    tenant = TenantFactory.create(name=f"{subdomain.title()} Roofing", subdomain=subdomain)
    staff = {role: UserFactory.create(username=f"{subdomain}-{role}") for role in Role}
    for role, user in staff.items():
        MembershipFactory.create(tenant=tenant, user=user, role=role)
    company = CompanyFactory.create(tenant=tenant)
    person = ContactFactory.create(tenant=tenant, company_contact=company)
    ContactFactory.create(tenant=tenant, is_deleted=True)
    project = ProjectFactory.create(tenant=tenant, contact=person, project_number=f"{subdomain}-1")
    ProjectFactory.create(tenant=tenant, contact=person, parent_project=project)
    ProjectFactory.create(tenant=tenant, is_deleted=True)
    ProjectContactFactory.create(tenant=tenant, project=project, contact=company, role="organization")
    ActivityFactory.create(tenant=tenant, contact=person, project=project)
    ActivityFactory.create(tenant=tenant, contact=person, outcome_details={"answered": True})

    owner = Actor(tenant=tenant, user=staff[Role.OWNER], source=Source.API)
    for role, user in staff.items():
        mine = Actor(tenant=tenant, user=user, source=Source.API)
        saved_filter_create(
            actor=mine,
            entity_type="contacts",
            name=f"Hot leads of the {role}",
            filter_criteria={"field": "lead_score", "op": "greater_than", "value": 80},
            is_shared=role == Role.MANAGER,
        )
        conversation = conversation_create(actor=mine, title=f"The {role}'s questions")
        message_send(conversation=conversation, actor=mine, content="How many contacts do we have?")

    campaign_create(actor=owner, name="Draft follow-up")
    campaign = campaign_create(actor=owner, name="Storm follow-up")
    step_create(actor=owner, campaign=campaign, **EMAIL)
    step_create(actor=owner, campaign=campaign, **TASK)
    trigger_create(actor=owner, campaign=campaign, trigger_type="manual", trigger_config={})
    campaign_publish(campaign=campaign, actor=owner)
    campaign_enroll(campaign=campaign, actor=owner, contacts=[person])
    template_create(actor=owner, key="ours", name="Ours", campaign_type="drip", steps=[TASK])

    started = impersonation_start(
        impersonator=staff[Role.OWNER],
        target=staff[Role.MEMBER],
        tenant=tenant,
        reason="Checking what the member sees",
        credential=Credential(session_key=f"{subdomain}-footing"),
        issue_token=False,
    )
    impersonation_end(log=started.log, reason=EndReason.STOPPED)
    return Footing(tenant=tenant, staff=staff)


@dataclass(frozen=True)
class Footings:
    ours: Footing
    other: Footing
    other_rows: dict[str, list[dict[str, Any]]]  # the other tenant's rows, as they were made


@contextmanager
def footings_kept(django_db_blocker: Any) -> Iterator[Footings]:
    """Two tenants with data (`summit`, ours, and `valley`), made once for a module, in a
    transaction rolled back after it: each test's own transaction (pytest-django's `db`) is a
    savepoint inside it, so every test starts from these rows. The AI assistant is the offline
    one, whatever the environment says."""
    with django_db_blocker.unblock(), override_settings(AI_BASE_URL=""), transaction.atomic():
        ours = tenant_with_data("summit")
        other = tenant_with_data("valley")
        yield Footings(ours=ours, other=other, other_rows=tenant_rows(other.tenant))
        transaction.set_rollback(True)


def _tenant_path(model: type[Model]) -> str | None:
    """The lookup from `model` to its tenant: `tenant`, or through one foreign key to a
    tenant-owned model (`conversation__tenant` for AI messages); None for other tables."""
    fields = model._meta.concrete_fields
    if any(field.name == "tenant" and field.is_relation for field in fields):
        return "tenant"
    for field in fields:
        target = field.related_model if field.many_to_one else None
        if target is not None and any(f.name == "tenant" and f.is_relation for f in target._meta.concrete_fields):
            return f"{field.name}__tenant"
    return None


def tenant_rows(tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    """Every row that belongs to `tenant` (in its own tables and in the tables reached through
    one of them), and its members' accounts."""
    rows = {}
    for model in apps.get_models():
        path = _tenant_path(model)
        if path is not None:
            rows[model._meta.label] = list(model._default_manager.filter(**{path: tenant}).order_by("pk").values())
    members = Membership.objects.filter(tenant=tenant).values("user_id")
    rows["users"] = [dict(user) for user in User.objects.filter(pk__in=members).order_by("pk").values()]
    return rows


def collection_ids(client: Client, path: str) -> list[int]:
    response = client.get(path, {"page_size": 200})
    if response.status_code != 200:
        return []
    body = response.json()
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    return [row["id"] for row in rows if isinstance(row, dict) and isinstance(row.get("id"), int)]


def known_path_parameters(client: Client, template: str) -> list[dict[str, int]]:
    """Every assignment of the path's parameters to ids the client can list, walking the path
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
