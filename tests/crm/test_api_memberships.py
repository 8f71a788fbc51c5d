"""/api/v1/memberships/ (the tenant's members) and /api/v1/me/ (the signed-in user's tenants)."""

import pytest

from crm.models import Membership, Role
from tests.api import api_errors, assert_error, assert_invalid, persona, row, table
from tests.conftest import client_for
from tests.factories import MembershipFactory, TenantFactory, UserFactory

URL = "/api/v1/memberships/"


def detail(membership):
    return f"{URL}{membership.pk}/"


def membership_of(user, tenant):
    return Membership.objects.get(user=user, tenant=tenant)


@pytest.fixture
def everyone(owner, admin_user, manager, member_user, viewer):
    return [owner, admin_user, manager, member_user, viewer]


@pytest.mark.parametrize("role", list(Role))
def test_every_member_lists_the_members(request, tenant, everyone, role):
    response = client_for(persona(request, role)).get(URL)

    assert response.status_code == 200
    assert [(item["user"]["username"], item["role"], item["status"]) for item in response.json()["results"]] == [
        ("manager", "manager", "active"),
        ("member", "member", "active"),
        ("owner", "owner", "active"),
        ("tenant-admin", "admin", "active"),
        ("viewer", "viewer", "active"),
    ]
    first = response.json()["results"][0]
    assert set(first) == {"id", "user", "role", "status", "joined_at"}
    assert set(first["user"]) == {"id", "username", "email", "first_name", "last_name"}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_admins_add_a_user_by_email(request, tenant, other_tenant, role):
    newcomer = UserFactory(username="newcomer", email="newcomer@example.com")
    MembershipFactory(tenant=other_tenant, user=newcomer)

    response = client_for(persona(request, role)).post(URL, {"email": "NewComer@Example.com", "role": "manager"})

    assert response.status_code == 201, response.content
    membership = membership_of(newcomer, tenant)
    assert (membership.role, membership.status) == ("manager", "active")
    assert response.json()["id"] == membership.pk
    assert response.json()["user"]["username"] == "newcomer"


def test_adding_an_unknown_email_is_400(tenant, admin_user):
    before = table(Membership)

    response = client_for(admin_user).post(URL, {"email": "ghost@example.com", "role": "member"})

    assert_invalid(
        response, attr="email", code="does_not_exist", detail="No Ridgeline user has the email 'ghost@example.com'."
    )
    assert table(Membership) == before


def test_adding_a_member_twice_is_409(tenant, admin_user, member_user):
    before = table(Membership)

    response = client_for(admin_user).post(URL, {"email": "member@example.com", "role": "viewer"})

    assert_error(response, 409, code="already_member", detail="member is already a member of Summit Roofing.")
    assert table(Membership) == before


def test_adding_a_former_member_reactivates_them(tenant, admin_user, member_user):
    Membership.objects.filter(user=member_user).update(status=Membership.Status.DEACTIVATED)

    response = client_for(admin_user).post(URL, {"email": "member@example.com", "role": "viewer"})

    assert response.status_code == 201
    assert Membership.objects.filter(user=member_user).values_list("role", "status").get() == ("viewer", "active")


@pytest.mark.parametrize(
    ("body", "attrs"),
    [
        ({"email": "not-an-email", "role": "member"}, ["email"]),
        ({"email": "member@example.com", "role": "emperor"}, ["role"]),
        ({}, ["email"]),
    ],
    ids=["bad-email", "bad-role", "empty"],
)
def test_adding_with_bad_input_names_the_field(tenant, admin_user, member_user, body, attrs):
    before = table(Membership)

    response = client_for(admin_user).post(URL, body)

    assert [error["attr"] for error in api_errors(response, 400, type="validation_error")] == attrs
    assert table(Membership) == before


def test_admin_cannot_grant_a_role_above_their_own(tenant, admin_user, member_user):
    newcomer = UserFactory(username="newcomer")
    before = table(Membership)
    client = client_for(admin_user)

    added = client.post(URL, {"email": newcomer.email, "role": "owner"})
    promoted = client.patch(detail(membership_of(member_user, tenant)), {"role": "owner"})

    for response in (added, promoted):
        assert_error(
            response,
            403,
            code="permission_denied",
            detail="You cannot grant the owner role: it is above yours.",
            attr="role",
        )
    assert table(Membership) == before


@pytest.mark.parametrize(
    ("method", "body"),
    [("patch", {"role": "member"}), ("patch", {"status": "deactivated"}), ("delete", None)],
    ids=["demote", "deactivate", "remove"],
)
def test_admin_cannot_change_a_member_above_them(tenant, owner, admin_user, method, body):
    before = table(Membership)

    response = getattr(client_for(admin_user), method)(detail(membership_of(owner, tenant)), body)

    assert_error(
        response,
        403,
        code="permission_denied",
        detail="You cannot change a member whose role (owner) is above yours.",
        attr="role",
    )
    assert table(Membership) == before


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("patch", {"role": "admin"}),
        ("patch", {"status": "deactivated"}),
        ("patch", {"status": "suspended"}),
        ("delete", None),
    ],
    ids=["demote", "deactivate", "suspend", "remove"],
)
def test_the_last_owner_stays(tenant, owner, method, body):
    before = table(Membership)

    response = getattr(client_for(owner), method)(detail(membership_of(owner, tenant)), body)

    assert_error(
        response,
        409,
        code="last_owner",
        detail="A tenant keeps at least one active owner: make someone else owner first.",
    )
    assert table(Membership) == before


def test_an_owner_can_step_down_once_there_is_another_owner(tenant, owner, admin_user):
    client = client_for(owner)

    promoted = client.patch(detail(membership_of(admin_user, tenant)), {"role": "owner"})
    demoted = client.patch(detail(membership_of(owner, tenant)), {"role": "admin"})

    assert (promoted.status_code, demoted.status_code) == (200, 200)
    assert demoted.json()["role"] == "admin"
    assert dict(Membership.objects.values_list("user__username", "role")) == {"owner": "admin", "tenant-admin": "owner"}


@pytest.mark.parametrize("other", ["membership deactivated", "membership pending", "account disabled"])
@pytest.mark.parametrize(("method", "body"), [("patch", {"role": "admin"}), ("delete", None)], ids=["demote", "remove"])
def test_an_unusable_owner_does_not_count_as_the_other_owner(tenant, owner, other, method, body):
    """Only an owner whose account and membership are both active keeps the tenant usable."""
    user = UserFactory(username="gone", is_active=other != "account disabled")
    status = {"membership deactivated": "deactivated", "membership pending": "pending"}.get(other, "active")
    MembershipFactory(tenant=tenant, user=user, role=Role.OWNER, status=status)
    before = table(Membership)

    response = getattr(client_for(owner), method)(detail(membership_of(owner, tenant)), body)

    assert_error(
        response,
        409,
        code="last_owner",
        detail="A tenant keeps at least one active owner: make someone else owner first.",
    )
    assert table(Membership) == before


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OWNER])
def test_admins_change_and_remove_members(request, tenant, member_user, viewer, role):
    client = client_for(persona(request, role))

    changed = client.patch(detail(membership_of(member_user, tenant)), {"role": "manager", "status": "suspended"})
    removed = client.delete(detail(membership_of(viewer, tenant)))

    assert changed.status_code == 200
    assert (changed.json()["role"], changed.json()["status"]) == ("manager", "suspended")
    assert membership_of(member_user, tenant).role == "manager"
    assert removed.status_code == 204
    assert not Membership.objects.filter(user=viewer).exists()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MEMBER, Role.VIEWER])
@pytest.mark.parametrize(
    ("method", "body"),
    [("post", {"email": "newcomer@example.com"}), ("patch", {"role": "viewer"}), ("delete", None)],
    ids=["add", "change", "remove"],
)
def test_only_admins_manage_members(request, tenant, member_user, role, method, body):
    UserFactory(username="newcomer", email="newcomer@example.com")
    url = URL if method == "post" else detail(membership_of(member_user, tenant))
    client = client_for(persona(request, role))
    before = table(Membership)

    response = getattr(client, method)(url, body)

    assert_error(
        response,
        403,
        code="permission_denied",
        detail=f"This needs the admin role or above in Summit Roofing; your role is {role.value}.",
    )
    assert table(Membership) == before


def test_membership_changes_are_validated(tenant, admin_user, member_user):
    membership = membership_of(member_user, tenant)
    before = row(membership)

    response = client_for(admin_user).patch(detail(membership), {"role": "emperor", "status": "asleep"})

    assert api_errors(response, 400, type="validation_error") == [
        {"code": "invalid_choice", "detail": '"emperor" is not a valid choice.', "attr": "role"},
        {"code": "invalid_choice", "detail": '"asleep" is not a valid choice.', "attr": "status"},
    ]
    assert row(membership) == before


def test_put_is_not_offered(tenant, admin_user, member_user):
    response = client_for(admin_user).put(detail(membership_of(member_user, tenant)), {"role": "viewer"})

    assert_error(response, 405, code="method_not_allowed", detail='Method "PUT" not allowed.')


@pytest.mark.parametrize(("query", "expected"), [("role=admin", ["tenant-admin"]), ("status=active", None)])
def test_members_can_be_filtered(tenant, everyone, query, expected):
    response = client_for(everyone[0]).get(f"{URL}?{query}")

    usernames = [item["user"]["username"] for item in response.json()["results"]]
    assert usernames == (expected or sorted(user.username for user in everyone))


def test_me_lists_the_users_active_memberships(tenant, other_tenant, member_user):
    MembershipFactory(tenant=other_tenant, user=member_user, role=Role.ADMIN)
    closed = TenantFactory(name="Closed Roofing", subdomain="closed", is_active=False)
    MembershipFactory(tenant=closed, user=member_user, role=Role.OWNER)
    left = TenantFactory(name="Alpine Roofing", subdomain="alpine")
    MembershipFactory(tenant=left, user=member_user, role=Role.OWNER, status="deactivated")

    response = client_for(member_user).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json() == {
        "id": member_user.pk,
        "username": "member",
        "email": "member@example.com",
        "first_name": member_user.first_name,
        "last_name": member_user.last_name,
        "memberships": [
            {
                "id": tenant.pk,
                "subdomain": "summit",
                "name": "Summit Roofing",
                "timezone": "America/New_York",
                "role": "member",
            },
            {
                "id": other_tenant.pk,
                "subdomain": "valley",
                "name": "Valley Roofing",
                "timezone": "America/New_York",
                "role": "admin",
            },
        ],
    }


def test_me_works_without_any_membership(db):
    lonely = UserFactory(username="lonely")

    response = client_for(lonely).get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["memberships"] == []
