"""Who may impersonate whom: every forbidden pair is refused, and nothing is written."""

import pytest

from crm.models import Membership
from tests.api import assert_error, persona
from tests.conftest import member
from tests.factories import MembershipFactory
from tests.impersonation.conftest import logs, start, token_client

ALLOWED = [
    ("owner", "manager"),
    ("owner", "member"),
    ("owner", "viewer"),
    ("admin", "manager"),
    ("admin", "member"),
    ("admin", "viewer"),
]
PEER_OR_HIGHER = [("owner", "admin"), ("admin", "owner")]
NOT_IMPERSONATORS = [
    (impersonator, target)
    for impersonator in ("manager", "member", "viewer")
    for target in ("owner", "admin", "manager", "member", "viewer")
    if impersonator != target
]


@pytest.mark.parametrize(("impersonator", "target"), ALLOWED)
def test_owners_and_admins_may_impersonate_lower_roles(request, impersonator, target):
    admin, victim = persona(request, impersonator), persona(request, target)

    response = start(token_client(admin), victim)

    assert response.status_code == 201, response.content
    assert [(row["admin_user_id"], row["impersonated_user_id"], row["status"]) for row in logs()] == [
        (admin.pk, victim.pk, "active")
    ]


@pytest.mark.parametrize(("impersonator", "target"), PEER_OR_HIGHER)
def test_an_admin_or_owner_target_is_refused(request, impersonator, target):
    response = start(token_client(persona(request, impersonator)), persona(request, target))

    assert_error(
        response,
        403,
        code="impersonate_peer_or_higher",
        detail=f"You cannot impersonate a user with the {target} role: only managers, members and viewers.",
        attr="target",
    )
    assert logs() == []


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_a_peer_is_refused(tenant, request, role):
    peer = member(tenant, role, f"peer-{role}")

    response = start(token_client(persona(request, role)), peer)

    assert_error(
        response,
        403,
        code="impersonate_peer_or_higher",
        detail=f"You cannot impersonate a user with the {role} role: only managers, members and viewers.",
        attr="target",
    )
    assert logs() == []


@pytest.mark.parametrize(("impersonator", "target"), NOT_IMPERSONATORS)
def test_managers_members_and_viewers_impersonate_nobody(request, impersonator, target):
    response = start(token_client(persona(request, impersonator)), persona(request, target))

    assert_error(
        response, 403, code="not_an_impersonator", detail="Only the tenant's owners and admins can impersonate."
    )
    assert logs() == []


@pytest.mark.parametrize("impersonator", ["owner", "admin"])
def test_a_superuser_is_never_impersonated(request, impersonator, superuser):
    response = start(token_client(persona(request, impersonator)), superuser)

    assert_error(
        response, 403, code="impersonate_superuser", detail="Nobody can impersonate a superuser.", attr="target"
    )
    assert logs() == []


def test_a_superuser_may_impersonate_an_owner_but_not_another_superuser(tenant, superuser, owner):
    other_root = member(tenant, "viewer", "other-root")
    other_root.is_superuser = True
    other_root.save()
    client = token_client(superuser)

    assert start(client, owner).status_code == 201
    assert_error(
        start(client, other_root),
        403,
        code="impersonate_superuser",
        detail="Nobody can impersonate a superuser.",
        attr="target",
    )
    assert [row["impersonated_user_id"] for row in logs()] == [owner.pk]


def test_an_inactive_user_is_refused(owner, member_user):
    member_user.is_active = False
    member_user.save()

    response = start(token_client(owner), member_user)

    assert_error(response, 403, code="inactive_user", detail="This user is inactive.", attr="target")
    assert logs() == []


@pytest.mark.parametrize(
    "status", [Membership.Status.DEACTIVATED, Membership.Status.SUSPENDED, Membership.Status.PENDING]
)
def test_an_inactive_membership_is_refused(owner, member_user, status):
    Membership.objects.filter(user=member_user).update(status=status)

    response = start(token_client(owner), member_user)

    assert_error(
        response, 403, code="inactive_membership", detail="This user's membership is not active.", attr="target"
    )
    assert logs() == []


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_yourself_is_refused(request, role):
    user = persona(request, role)

    response = start(token_client(user), user)

    assert_error(response, 403, code="impersonate_self", detail="You cannot impersonate yourself.", attr="target")
    assert logs() == []


def test_another_tenants_user_is_404_like_a_missing_one(owner, other_user):
    client = token_client(owner)

    foreign = start(client, other_user)
    missing = client.post("/api/v1/impersonation/start/", {"target": 987654321, "reason": "x" * 20})

    assert_error(foreign, 404, code="not_found", detail=f'User "{other_user.pk}" does not exist.', attr="target")
    assert_error(missing, 404, code="not_found", detail='User "987654321" does not exist.', attr="target")
    assert logs() == []


def test_a_user_of_two_tenants_is_impersonated_only_in_the_tenant_of_the_session(
    tenant, other_tenant, owner, member_user
):
    """Valley's owner may view Summit's owner as the viewer he is at Valley, never at Summit."""
    MembershipFactory(tenant=other_tenant, user=owner, role="viewer")
    foreign_owner = member(other_tenant, "owner", "foreign-owner")
    token = start(token_client(foreign_owner), owner).json()["token"]
    as_owner = token_client(owner, token)

    at_summit = as_owner.get("/api/v1/contacts/", HTTP_X_TENANT=tenant.subdomain)
    at_valley = as_owner.get("/api/v1/contacts/", HTTP_X_TENANT=other_tenant.subdomain)
    no_header = as_owner.get("/api/v1/memberships/")

    assert [row["tenant_id"] for row in logs()] == [other_tenant.pk]
    assert_error(at_summit, 403, code="impersonation_tenant", detail="This impersonation is limited to Valley Roofing.")
    assert at_valley.status_code == 200
    assert sorted(row["user"]["username"] for row in no_header.json()["results"]) == ["foreign-owner", "owner"]
