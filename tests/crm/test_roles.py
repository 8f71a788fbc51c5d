"""Who may do what: viewers read, members write, managers delete and restore, admins purge."""

import pytest

from crm.models import ROLE_RANK, Role
from tests.api import RESOURCES, assert_error, make_deleted, persona, tables
from tests.conftest import client_for
from tests.factories import ContactFactory

ROLES = list(Role)

# action -> (least role, method, url suffix, body builder, success status); `deleted` rows for the last ones.
ACTIONS = {
    "list": (Role.VIEWER, "get", "", None, 200),
    "retrieve": (Role.VIEWER, "get", "{pk}/", None, 200),
    "create": (Role.MEMBER, "post", "", "payload", 201),
    "update": (Role.MEMBER, "put", "{pk}/", "payload", 200),
    "partial_update": (Role.MEMBER, "patch", "{pk}/", "change", 200),
    "destroy": (Role.MANAGER, "delete", "{pk}/", None, 204),
    "list_deleted": (Role.MANAGER, "get", "?deleted=true", None, 200),
    "retrieve_deleted": (Role.MANAGER, "get", "{deleted}/?deleted=true", None, 200),
    "restore": (Role.MANAGER, "post", "{deleted}/restore/", None, 200),
    "purge": (Role.ADMIN, "delete", "{deleted}/?purge=true", None, 204),
}
SOFT_DELETE_ONLY = {"list_deleted", "retrieve_deleted", "restore", "purge"}

CASES = [
    (resource, action)
    for resource in RESOURCES
    for action in ACTIONS
    if resource.soft_delete or action not in SOFT_DELETE_ONLY
]


def denied_message(required: Role, role: Role) -> str:
    return f"This needs the {required.value} role or above in Summit Roofing; your role is {role.value}."


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("resource", "action"), CASES, ids=lambda value: str(value))
def test_role_matrix(request, tenant, resource, action, role):
    required, method, suffix, body, success = ACTIONS[action]
    required = resource.roles.get(action, required)
    record = resource.make(tenant)
    deleted = make_deleted(resource, tenant) if resource.soft_delete else None
    url = resource.url + suffix.format(pk=record.pk, deleted=deleted.pk if deleted else None)
    data = {"payload": resource.payload(tenant), "change": resource.change}.get(body)
    client = client_for(persona(request, role))
    before = tables()

    response = getattr(client, method)(url, data)

    if ROLE_RANK[role] >= ROLE_RANK[required]:
        assert response.status_code == success, response.content
    else:
        assert_error(response, 403, code="permission_denied", detail=denied_message(required, role))
        assert tables() == before


@pytest.mark.parametrize("role", ROLES)
def test_reassign_needs_manager(request, tenant, member_user, role, django_capture_on_commit_callbacks):
    ContactFactory(tenant=tenant, assigned_to=member_user)
    client = client_for(persona(request, role))
    before = tables()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/api/v1/contacts/reassign/", {"from_user": member_user.pk, "to_user": None})

    if ROLE_RANK[role] >= ROLE_RANK[Role.MANAGER]:
        assert response.status_code == 202
        assert response.json() == {"contacts": 1}
        assert len(callbacks) == 1
    else:
        assert_error(response, 403, code="permission_denied", detail=denied_message(Role.MANAGER, role))
        assert callbacks == []
    assert tables() == before  # the task does the work, after commit
