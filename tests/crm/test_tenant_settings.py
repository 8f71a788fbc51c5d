"""Tenant settings by role (issue 11, section 3): admins change the profile, owners also the
subdomain and custom domain, Ridgeline's operators (superusers) the subscription, the limits
and `is_active`; the same rules in `/api/v1/tenant/` and the admin."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from crm.models import Role, Tenant, User
from tests.admin import admin_url, post_page
from tests.api import assert_error, assert_invalid, persona, row
from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory

URL = "/api/v1/tenant/"
EXPIRY = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)

PROFILE = ["logo_url", "name", "primary_color", "secondary_color", "settings", "timezone"]
ADDRESSES = ["custom_domain", "subdomain"]
OPS = ["features", "is_active", "subscription_expires_at", "subscription_status"]

# field -> (the value sent to the API, the value posted in the admin, the value stored)
CHANGES = {
    "name": ("Summit Roofing Co", "Summit Roofing Co", "Summit Roofing Co"),
    "logo_url": (
        "https://summit.example/logo.png",
        "https://summit.example/logo.png",
        "https://summit.example/logo.png",
    ),
    "primary_color": ("#112233", "#112233", "#112233"),
    "secondary_color": ("#445566", "#445566", "#445566"),
    "timezone": ("America/Denver", "America/Denver", "America/Denver"),
    "settings": ({"brand": "blue"}, '{"brand": "blue"}', {"brand": "blue"}),
    "subdomain": ("summit-roofing", "summit-roofing", "summit-roofing"),
    "custom_domain": ("crm.summitroofing.example", "crm.summitroofing.example", "crm.summitroofing.example"),
    "subscription_status": ("active", "active", "active"),
    "features": (
        {"seats": 50, "contacts": 100000},
        '{"seats": 50, "contacts": 100000}',
        {"seats": 50, "contacts": 100000},
    ),
    "is_active": (False, None, False),
    "subscription_expires_at": ("2027-06-30T12:00:00Z", None, EXPIRY),
}
LEAST = {**dict.fromkeys(PROFILE, "admin"), **dict.fromkeys(ADDRESSES, "owner"), **dict.fromkeys(OPS, "superuser")}
RANK = {"admin": 1, "owner": 2, "superuser": 3}
DENIED = {
    "admin": "Changing the tenant's {field} needs the admin role.",
    "owner": "Changing the tenant's {field} needs the owner role.",
    "superuser": "Only Ridgeline's operators change a tenant's {field}.",
}


def personas(tenant) -> dict[str, User]:
    """The three who may change something, each also staff (for the admin). The API lets only
    admins and owners change the tenant: the superuser acts there as one of its owners."""
    found: dict[str, User] = {}
    for name, role in (("admin", Role.ADMIN), ("owner", Role.OWNER), ("superuser", Role.OWNER)):
        user = UserFactory.create(username=f"the-{name}", is_staff=True, is_superuser=name == "superuser")
        MembershipFactory(tenant=tenant, user=user, role=role)
        found[name] = user
    return found


@pytest.mark.parametrize("role", list(Role))
def test_every_member_reads_the_tenant(request, tenant, role):
    tenant.features = {"seats": 10}
    tenant.save()

    response = client_for(persona(request, role)).get(URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["name"], body["subdomain"], body["features"]) == (
        tenant.pk,
        "Summit Roofing",
        "summit",
        {"seats": 10},
    )
    expected = {Role.OWNER: PROFILE + ADDRESSES, Role.ADMIN: PROFILE}.get(role, [])
    assert body["editable_fields"] == sorted(expected)


@pytest.mark.parametrize("who", ["admin", "owner", "superuser"])
@pytest.mark.parametrize("field", sorted(CHANGES))
def test_api_changes_each_field_by_role(tenant, who, field):
    user = personas(tenant)[who]
    sent, _, stored = CHANGES[field]
    before = row(tenant)

    response = client_for(user).patch(URL, {field: sent})

    tenant.refresh_from_db()
    if RANK[who] >= RANK[LEAST[field]]:
        assert response.status_code == 200, response.content
        assert getattr(tenant, field) == stored
    else:
        assert_error(
            response, 403, code="permission_denied", detail=DENIED[LEAST[field]].format(field=field), attr=field
        )
        assert row(tenant) == before


@pytest.mark.parametrize("who", ["admin", "owner", "superuser"])
@pytest.mark.parametrize("field", sorted(CHANGES))
def test_admin_changes_each_field_by_role(tenant, who, field):
    user = personas(tenant)[who]
    client = Client()
    client.force_login(user)
    url = admin_url("change", Tenant, tenant.pk)
    _, posted, stored = CHANGES[field]
    if field == "subscription_expires_at":
        changes = {f"{field}_0": "2027-06-30", f"{field}_1": "12:00:00"}
    else:
        changes = {field: posted}
    before = row(tenant)

    response = post_page(client, url, changes)

    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant.refresh_from_db()
    readonly = client.get(url).context["adminform"].readonly_fields
    if RANK[who] >= RANK[LEAST[field]]:
        assert getattr(tenant, field) == stored
        assert field not in readonly
    else:
        assert row(tenant) == before
        assert field in readonly


def test_a_tenant_admin_cannot_lock_the_owner_out(tenant, owner, admin_user):
    """The finding: unticking `is_active` in the admin locked the tenant's owner out."""
    admin_user.is_staff = True
    admin_user.save()
    client = Client()
    client.force_login(admin_user)

    post_page(client, admin_url("change", Tenant, tenant.pk), {"is_active": None})

    tenant.refresh_from_db()
    assert tenant.is_active is True
    assert client_for(owner).get(URL).status_code == 200


def test_sending_back_a_field_unchanged_is_allowed(tenant, admin_user):
    """The SPA may send the whole tenant back: only the fields whose value changes need the role."""
    body = client_for(admin_user).get(URL).json()
    body["name"] = "Summit Roofing Co"

    response = client_for(admin_user).patch(URL, {k: v for k, v in body.items() if k not in {"id", "editable_fields"}})

    assert response.status_code == 200, response.content
    tenant.refresh_from_db()
    assert (tenant.name, tenant.subdomain, tenant.is_active) == ("Summit Roofing Co", "summit", True)


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MEMBER, Role.VIEWER])
def test_below_admin_changes_nothing(request, tenant, role):
    before = row(tenant)

    response = client_for(persona(request, role)).patch(URL, {"name": "Taken Over"})

    assert_error(
        response,
        403,
        code="permission_denied",
        detail=f"This needs the admin role or above in Summit Roofing; your role is {role.value}.",
    )
    assert row(tenant) == before


@pytest.mark.parametrize(
    ("body", "attr", "code", "detail"),
    [
        ({"primary_color": "red"}, "primary_color", "invalid", "Use a hex color like #1f6feb."),
        (
            {"timezone": "Mars/Olympus"},
            "timezone",
            "invalid_timezone",
            "Mars/Olympus is not an IANA time zone (e.g. America/New_York).",
        ),
        ({"name": ""}, "name", "blank", "This field may not be blank."),
    ],
)
def test_bad_input_names_the_field(tenant, admin_user, body, attr, code, detail):
    before = row(tenant)

    response = client_for(admin_user).patch(URL, body)

    assert_invalid(response, attr=attr, code=code, detail=detail)
    assert row(tenant) == before


def test_an_invalid_subdomain_is_400_for_the_owner(tenant, owner):
    before = row(tenant)

    response = client_for(owner).patch(URL, {"subdomain": "www"})

    assert_invalid(
        response, attr="subdomain", code="reserved_subdomain", detail="www is reserved: choose another subdomain."
    )
    assert row(tenant) == before


def test_put_is_not_offered(tenant, owner):
    before = row(tenant)

    response = client_for(owner).put(URL, {"name": "X"})

    assert response.status_code == 405
    assert row(tenant) == before


@pytest.mark.parametrize("method", ["get", "patch"])
def test_anonymous_is_401(anonymous_client, tenant, method):
    before = row(tenant)

    response = getattr(anonymous_client, method)(URL, {"name": "X"} if method == "patch" else None)

    assert response.status_code == 401
    assert row(tenant) == before
