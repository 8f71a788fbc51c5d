"""The log through the API: owners and admins read the tenant's sessions, a target reads theirs."""

import pytest

from crm.models import Activity
from impersonation.models import ImpersonationLog
from tests.api import assert_error, assert_invalid, persona
from tests.conftest import client_for, member
from tests.factories import ContactFactory, ProjectFactory
from tests.impersonation.conftest import LOGS, STOP, started_token, token_client


@pytest.fixture
def sessions(tenant, other_tenant, owner, admin_user, manager, member_user, other_user):
    """Owner as manager (with writes: an activity and a substatus change), admin as member (read-only,
    still active), and a session in another tenant."""
    contact = ContactFactory(tenant=tenant)
    project = ProjectFactory(tenant=tenant, contact=contact)
    as_manager = token_client(manager, started_token(token_client(owner), manager, allow_writes=True))
    as_manager.post("/api/v1/activities/", {"type": "note", "contact": contact.pk, "content": "checked"})
    as_manager.patch(f"/api/v1/projects/{project.pk}/", {"status": "approved"})
    as_manager.post(STOP)
    token_client(manager).post("/api/v1/activities/", {"type": "note", "contact": contact.pk, "content": "own"})
    started_token(token_client(admin_user), member_user)
    foreign_owner = member(other_tenant, "owner", "foreign-owner")
    started_token(token_client(foreign_owner), member(other_tenant, "viewer", "foreign-viewer"))
    return {"activity": Activity.objects.get(content="checked"), "project": project}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [entry["id"] for entry in response.json()["results"]]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_read_the_tenants_sessions_with_their_writes(request, sessions, tenant, role):
    response = client_for(persona(request, role)).get(LOGS)

    mine = list(ImpersonationLog.objects.filter(tenant=tenant).order_by("-started_at").values_list("pk", flat=True))
    assert ids(response) == mine
    stopped, active = (
        ImpersonationLog.objects.get(status="ended"),
        ImpersonationLog.objects.get(tenant=tenant, status="active"),
    )
    by_id = {entry["id"]: entry for entry in response.json()["results"]}
    assert (by_id[stopped.pk]["request_count"], by_id[stopped.pk]["write_count"]) == (3, 2)
    writes = [(write["kind"], write["what"]) for write in by_id[stopped.pk]["writes"]]
    project = sessions["project"]
    assert writes == [
        ("activity", f"note on contact {sessions['activity'].contact_id}"),
        ("substatus_change", f"project {project.pk} to approved"),
    ]
    assert by_id[active.pk]["writes"] == []
    assert by_id[active.pk]["status"] == "active"


@pytest.mark.parametrize("role", ["manager", "member", "viewer"])
def test_other_roles_may_not_read_the_log(request, sessions, role):
    response = client_for(persona(request, role)).get(LOGS)

    assert_error(
        response,
        403,
        code="permission_denied",
        detail="Only owners and admins read the impersonation log; send mine=true for the sessions about you.",
    )


def test_the_impersonated_user_reads_the_sessions_about_them(sessions, manager, member_user):
    as_manager = ids(client_for(manager).get(LOGS, {"mine": "true"}))
    as_member = ids(client_for(member_user).get(LOGS, {"mine": "true"}))

    assert as_manager == [ImpersonationLog.objects.get(impersonated_user=manager).pk]
    assert as_member == [ImpersonationLog.objects.get(impersonated_user=member_user).pk]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (lambda users: {"admin": users["owner"].pk}, ["manager"]),
        (lambda users: {"target": users["member_user"].pk}, ["member"]),
        (lambda users: {"status": "active"}, ["member"]),
        (lambda users: {"status": "ended"}, ["manager"]),
        (lambda users: {"started_after": "2000-01-01T00:00:00Z"}, ["member", "manager"]),
        (lambda users: {"started_before": "2000-01-01T00:00:00Z"}, []),
    ],
    ids=["admin", "target", "active", "ended", "after", "before"],
)
def test_filters(sessions, owner, member_user, params, expected):
    response = client_for(owner).get(LOGS, params({"owner": owner, "member_user": member_user}))

    assert [entry["impersonated_user"]["username"] for entry in response.json()["results"]] == expected


def test_a_bad_filter_is_400_naming_it(sessions, owner):
    assert_invalid(
        client_for(owner).get(LOGS, {"status": "paused"}),
        attr="status",
        code="invalid_choice",
        detail="Select a valid choice. paused is not one of the available choices.",
    )
    assert_invalid(
        client_for(owner).get(LOGS, {"mine": "maybe"}),
        attr="mine",
        code="invalid",
        detail="mine must be true or false; got 'maybe'.",
    )


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_the_log_cannot_be_changed_through_the_api(sessions, owner, method):
    log = ImpersonationLog.objects.get(status="ended")
    before = list(ImpersonationLog.objects.order_by("pk").values())
    path = LOGS if method == "post" else f"{LOGS}{log.pk}/"

    response = getattr(client_for(owner), method)(path, {"reason": "rewritten history"})

    assert response.status_code == 405
    assert list(ImpersonationLog.objects.order_by("pk").values()) == before
