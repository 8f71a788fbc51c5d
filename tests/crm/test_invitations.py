"""Adding a member is an invitation, not a takeover (issue 11, section 2): a pending membership
for an email, the same answer whether the email has an account or not, a signed expiring link
by email, accepted by the email's owner (signed in, or creating the account)."""

import re
import socket
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from crm.invitations import invitation_token
from crm.models import Membership, Role, User
from tests.admin import admin_url, post_page
from tests.api import CONTACTS, assert_error, assert_invalid, row, table
from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory

URL = "/api/v1/memberships/"
ACCEPT = "/api/v1/invitations/accept/"


def detail(membership) -> str:
    return f"{URL}{membership.pk}/"


def token_in(message) -> str:
    found = re.search(r"\?token=(\S+)", message.body)
    assert found, message.body
    return found.group(1)


@pytest.fixture
def invite(admin_user, django_capture_on_commit_callbacks, mailoutbox):
    """POST an invitation as the tenant's admin; returns the response (the email, if any, is sent)."""

    def invite(email: str, role: str = Role.MEMBER):
        with django_capture_on_commit_callbacks(execute=True):
            return client_for(admin_user).post(URL, {"email": email, "role": role})

    return invite


@pytest.fixture
def outsider(other_tenant):
    """A user of another tenant, with a real name: nothing of theirs may show in Summit."""
    user = UserFactory.create(username="outsider", email="pat@valley.example", first_name="Pat", last_name="Quinn")
    MembershipFactory(tenant=other_tenant, user=user, role=Role.OWNER)
    return user


def shown(response) -> dict:
    body = dict(response.json())
    body.pop("id")
    body.pop("invited_at")
    body.pop("joined_at")  # when the row was made; set again on acceptance
    return body


# The finding ------------------------------------------------------------------------------


def test_inviting_another_tenants_user_takes_nothing_and_shows_only_the_email(
    tenant, admin_user, outsider, other_tenant, invite, mailoutbox
):
    memberships_before = list(Membership.objects.filter(user=outsider).values())

    response = invite("Pat@Valley.example", Role.ADMIN)

    assert response.status_code == 201, response.content
    assert shown(response) == {
        "user": None,
        "email": "Pat@Valley.example",
        "role": "admin",
        "status": "pending",
        "invited_by": admin_user.pk,
        "deactivated_at": None,
        "deactivated_by": None,
        "deactivated_reason": None,
    }
    assert "outsider" not in response.content.decode()
    assert "Quinn" not in response.content.decode()
    # Their memberships are as they were, and their API clients still need no X-Tenant.
    assert list(Membership.objects.filter(user=outsider).values()) == memberships_before
    assert client_for(outsider).get(CONTACTS.url).status_code == 200
    assert [message.to for message in mailoutbox] == [["Pat@Valley.example"]]


def test_the_answer_is_the_same_whether_the_email_has_an_account_or_not(tenant, outsider, invite):
    known = invite("pat@valley.example")
    unknown = invite("nobody@valley.example")

    assert known.status_code == unknown.status_code == 201
    assert {**shown(known), "email": "x"} == {**shown(unknown), "email": "x"}
    assert set(known.json()) == set(unknown.json())


def test_the_email_carries_a_signed_link_to_accept(tenant, invite, mailoutbox):
    invite("newcomer@example.com", Role.MANAGER)

    (message,) = mailoutbox
    assert message.subject == "You are invited to Summit Roofing on Ridgeline"
    assert message.to == ["newcomer@example.com"]
    assert "join Summit Roofing on Ridgeline as manager" in message.body
    assert "http://localhost:8000/api/v1/invitations/accept/?token=" in message.body
    response = Client().get(ACCEPT, {"token": token_in(message)})
    assert response.status_code == 200, response.content
    assert {key: response.json()[key] for key in ("tenant", "email", "role")} == {
        "tenant": "Summit Roofing",
        "email": "newcomer@example.com",
        "role": "manager",
    }


def test_a_pending_membership_grants_nothing(tenant, outsider, invite):
    invite("pat@valley.example")

    response = client_for(outsider).get(CONTACTS.url, HTTP_X_TENANT="summit")

    assert_error(response, 403, code="permission_denied", detail="You are not an active member of tenant 'summit'.")
    assert client_for(outsider).get("/api/v1/me/").json()["memberships"][0]["subdomain"] == "valley"


# Accepting --------------------------------------------------------------------------------


def test_the_emails_owner_accepts_signed_in(tenant, outsider, invite, mailoutbox):
    invite("pat@valley.example", Role.MANAGER)

    response = client_for(outsider).post(ACCEPT, {"token": token_in(mailoutbox[0])})

    assert response.status_code == 200, response.content
    assert response.json() == {
        "id": tenant.pk,
        "subdomain": "summit",
        "name": "Summit Roofing",
        "timezone": tenant.timezone,
        "role": "manager",
    }
    membership = Membership.objects.get(tenant=tenant, user=outsider)
    assert (membership.status, membership.role, membership.invited_email) == ("active", "manager", None)
    assert client_for(outsider).get(CONTACTS.url, HTTP_X_TENANT="summit").status_code == 200


def test_someone_else_signed_in_cannot_accept(tenant, member_user, invite, mailoutbox):
    invite("pat@valley.example")
    before = table(Membership)

    response = client_for(member_user).post(ACCEPT, {"token": token_in(mailoutbox[0])})

    assert_error(
        response,
        403,
        code="permission_denied",
        detail="This invitation is for another email address than your account's: log in with the invited account.",
        attr="token",
    )
    assert table(Membership) == before


def test_accepting_creates_the_account_for_a_new_email(tenant, invite, mailoutbox):
    invite("newcomer@example.com", Role.VIEWER)

    response = Client().post(
        ACCEPT,
        {
            "token": token_in(mailoutbox[0]),
            "username": "newcomer",
            "password": "a long and unusual passphrase",
            "first_name": "Nia",
            "last_name": "Cole",
        },
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    user = User.objects.get(username="newcomer")
    assert (user.email, user.first_name, user.last_name, user.is_active) == (
        "newcomer@example.com",
        "Nia",
        "Cole",
        True,
    )
    assert user.check_password("a long and unusual passphrase")
    assert Membership.objects.get(tenant=tenant, user=user).status == "active"
    token = Client().post(
        "/api/v1/auth/token/",
        {"username": "newcomer", "password": "a long and unusual passphrase"},
        content_type="application/json",
    )
    assert token.status_code == 200


def test_an_existing_account_must_sign_in_to_accept(tenant, outsider, invite, mailoutbox):
    invite("pat@valley.example")
    users, memberships = table(User), table(Membership)

    response = Client().post(
        ACCEPT,
        {"token": token_in(mailoutbox[0]), "username": "pat2", "password": "a long and unusual passphrase"},
        content_type="application/json",
    )

    assert_error(
        response,
        409,
        code="account_exists",
        detail="An account with this email exists already: log in with it and accept the invitation.",
        attr="username",
    )
    assert (table(User), table(Membership)) == (users, memberships)


@pytest.mark.parametrize(
    ("body", "attr", "code", "detail"),
    [
        ({"username": "newcomer", "password": "123"}, "password", "password_too_short", None),
        ({"username": "newcomer"}, "password", "invalid", "A new account needs both a username and a password."),
        ({}, "username", "required", "Log in with the invited account, or give a username and password to create one."),
        ({"username": "member", "password": "a long and unusual passphrase"}, "username", "unique", None),
    ],
    ids=["weak-password", "no-password", "nothing", "taken-username"],
)
def test_a_new_account_is_validated(tenant, member_user, invite, mailoutbox, body, attr, code, detail):
    invite("newcomer@example.com")
    users, memberships = table(User), table(Membership)

    response = Client().post(ACCEPT, {"token": token_in(mailoutbox[0]), **body}, content_type="application/json")

    assert response.status_code == 400, response.content
    (error, *_) = response.json()["errors"]
    assert (error["attr"], error["code"]) == (attr, code)
    if detail is not None:
        assert error["detail"] == detail
    assert (table(User), table(Membership)) == (users, memberships)


def test_an_expired_link_is_refused(tenant, outsider, invite, mailoutbox, settings):
    invite("pat@valley.example")
    settings.INVITATION_MAX_AGE = timedelta(seconds=-1)
    before = table(Membership)

    response = client_for(outsider).post(ACCEPT, {"token": token_in(mailoutbox[0])})

    assert_invalid(
        response,
        attr="token",
        code="expired",
        detail="This invitation link has expired: ask an admin of the company to send it again.",
    )
    assert table(Membership) == before


def test_a_tampered_link_is_refused(tenant, outsider, invite, mailoutbox):
    invite("pat@valley.example")
    token = token_in(mailoutbox[0])

    response = client_for(outsider).post(ACCEPT, {"token": token[:-2] + ("AA" if token[-2:] != "AA" else "BB")})

    assert_invalid(response, attr="token", code="invalid", detail="This invitation link is not valid.")


def test_a_link_works_once(tenant, outsider, invite, mailoutbox):
    invite("pat@valley.example")
    token = token_in(mailoutbox[0])
    assert client_for(outsider).post(ACCEPT, {"token": token}).status_code == 200

    response = client_for(outsider).post(ACCEPT, {"token": token})

    assert_invalid(
        response,
        attr="token",
        code="invitation_gone",
        detail="This invitation was revoked, accepted already or replaced by a newer link.",
    )


def test_a_former_member_who_accepts_is_reactivated(tenant, member_user, invite, mailoutbox):
    former = Membership.objects.get(user=member_user)
    Membership.objects.filter(pk=former.pk).update(
        status="deactivated", deactivated_at=timezone.now(), deactivated_reason="Seasonal"
    )
    invite("member@example.com", Role.MANAGER)

    response = client_for(member_user).post(ACCEPT, {"token": token_in(mailoutbox[0])})

    assert response.status_code == 200, response.content
    assert list(Membership.objects.filter(tenant=tenant, user=member_user).values_list("pk", "role", "status")) == [
        (former.pk, "manager", "active")
    ]
    assert not Membership.objects.filter(tenant=tenant, status="pending").exists()
    assert row(former)["deactivated_reason"] is None


# Superusers -------------------------------------------------------------------------------


def test_a_superuser_is_never_invited(tenant, invite, mailoutbox):
    ops = UserFactory.create(username="ops", email="ops@ridgeline.example", is_superuser=True, is_staff=True)
    other = invite("someone@ridgeline.example")
    mailoutbox.clear()

    response = invite("ops@ridgeline.example")

    assert response.status_code == 201
    assert {**shown(response), "email": "x"} == {**shown(other), "email": "x"}
    assert mailoutbox == []  # no link ever reaches them
    pending = Membership.objects.get(invited_email="ops@ridgeline.example")

    refused = client_for(ops).post(ACCEPT, {"token": invitation_token(pending)})
    assert_error(
        refused,
        403,
        code="permission_denied",
        detail="Superusers are not members of tenants: they reach every tenant already.",
        attr="token",
    )
    assert not Membership.objects.filter(user=ops).exists()


# Admins list, resend and revoke ----------------------------------------------------------


def test_pending_invitations_are_listed_for_admins_only(tenant, admin_user, member_user, invite):
    pending = Membership.objects.get(pk=invite("newcomer@example.com").json()["id"])

    for_admin = client_for(admin_user).get(URL, {"status": "pending"})
    for_member = client_for(member_user).get(URL)

    assert [item["email"] for item in for_admin.json()["results"]] == ["newcomer@example.com"]
    assert "newcomer@example.com" not in for_member.content.decode()
    assert_error(client_for(member_user).get(detail(pending)), 404, code="not_found", detail="Not found.")


def test_resending_sends_a_new_link_and_the_old_one_stops(
    tenant, admin_user, outsider, invite, mailoutbox, django_capture_on_commit_callbacks
):
    pending = Membership.objects.get(pk=invite("pat@valley.example").json()["id"])
    old = token_in(mailoutbox[0])

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin_user).post(f"{detail(pending)}resend/")

    assert response.status_code == 200, response.content
    assert len(mailoutbox) == 2
    new = token_in(mailoutbox[1])
    assert new != old
    assert client_for(outsider).post(ACCEPT, {"token": old}).json()["errors"][0]["code"] == "invitation_gone"
    assert client_for(outsider).post(ACCEPT, {"token": new}).status_code == 200


def test_only_a_pending_invitation_is_resent(tenant, admin_user, member_user, mailoutbox):
    membership = Membership.objects.get(user=member_user)
    before = row(membership)

    response = client_for(admin_user).post(f"{detail(membership)}resend/")

    assert_error(response, 409, code="not_pending", detail="Only a pending invitation can be sent again.")
    assert row(membership) == before
    assert mailoutbox == []


def test_revoking_ends_the_link(tenant, admin_user, outsider, invite, mailoutbox):
    pending = Membership.objects.get(pk=invite("pat@valley.example").json()["id"])

    assert client_for(admin_user).delete(detail(pending)).status_code == 204

    assert row(pending) is None
    response = client_for(outsider).post(ACCEPT, {"token": token_in(mailoutbox[0])})
    assert response.json()["errors"][0]["code"] == "invitation_gone"
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()


def test_inviting_the_same_email_twice_is_409(tenant, invite):
    invite("newcomer@example.com")
    before = table(Membership)

    response = invite("NEWCOMER@example.com")

    assert_error(
        response,
        409,
        code="already_invited",
        detail="This email has already been invited: resend the invitation instead.",
        attr="email",
    )
    assert table(Membership) == before


@pytest.mark.parametrize("status", ["active", "deactivated"])
def test_an_admin_cannot_activate_an_invitation(tenant, admin_user, invite, status):
    pending = Membership.objects.get(pk=invite("newcomer@example.com").json()["id"])
    before = row(pending)

    response = client_for(admin_user).patch(detail(pending), {"status": status})

    assert_invalid(
        response,
        attr="status",
        code="pending",
        detail="A pending invitation becomes active only when it is accepted, and a membership never "
        "becomes pending again.",
    )
    assert row(pending) == before


def test_a_member_cannot_be_made_pending_again(tenant, admin_user, member_user):
    membership = Membership.objects.get(user=member_user)
    before = row(membership)

    response = client_for(admin_user).patch(detail(membership), {"status": "pending"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "status"
    assert row(membership) == before


# Deactivation keeps when, by whom and why --------------------------------------------------


def test_deactivating_records_when_by_whom_and_why_and_reactivating_clears_it(tenant, admin_user, member_user):
    membership = Membership.objects.get(user=member_user)
    client = client_for(admin_user)

    response = client.patch(detail(membership), {"status": "deactivated", "deactivated_reason": "Left for a rival"})

    assert response.status_code == 200, response.content
    membership.refresh_from_db()
    assert (membership.status, membership.deactivated_by, membership.deactivated_reason) == (
        "deactivated",
        admin_user,
        "Left for a rival",
    )
    assert timezone.now() - membership.deactivated_at < timedelta(minutes=1)
    assert response.json()["deactivated_by"] == admin_user.pk

    client.patch(detail(membership), {"status": "active"})

    membership.refresh_from_db()
    assert (membership.deactivated_at, membership.deactivated_by, membership.deactivated_reason) == (None, None, None)


def test_a_reason_without_deactivating_is_400(tenant, admin_user, member_user):
    membership = Membership.objects.get(user=member_user)
    before = row(membership)

    response = client_for(admin_user).patch(detail(membership), {"deactivated_reason": "Why not"})

    assert_invalid(
        response,
        attr="deactivated_reason",
        code="not_deactivated",
        detail="A reason is kept only for a deactivated membership.",
    )
    assert row(membership) == before


# The admin: the same invitation -----------------------------------------------------------


def staff(tenant, role) -> tuple[Client, User]:
    user = UserFactory.create(username="office", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def test_the_admin_invites_by_email_without_revealing_accounts(
    tenant, outsider, mailoutbox, django_capture_on_commit_callbacks
):
    client, _ = staff(tenant, Role.ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            admin_url("add", Membership), {"tenant": tenant.pk, "email": "pat@valley.example", "role": "member"}
        )

    assert response.status_code == 302
    pending = Membership.objects.get(tenant=tenant, invited_email="pat@valley.example")
    assert (pending.user, pending.status) == (None, "pending")
    assert [message.to for message in mailoutbox] == [["pat@valley.example"]]
    page = client.get(admin_url("change", Membership, pending.pk)).content.decode()
    assert "outsider" not in page
    assert "Quinn" not in page


def test_the_admin_deactivates_with_a_reason(tenant, member_user):
    client, office = staff(tenant, Role.ADMIN)
    membership = Membership.objects.get(user=member_user)

    response = post_page(
        client,
        admin_url("change", Membership, membership.pk),
        {"status": "deactivated", "deactivated_reason": "Seasonal crew"},
    )

    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.status, membership.deactivated_by, membership.deactivated_reason) == (
        "deactivated",
        office,
        "Seasonal crew",
    )


def test_the_admin_resends_invitations(tenant, invite, mailoutbox, django_capture_on_commit_callbacks):
    pending = Membership.objects.get(pk=invite("newcomer@example.com").json()["id"])
    client, _ = staff(tenant, Role.ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            admin_url("changelist", Membership),
            {"action": "resend_invitations", "_selected_action": [pending.pk]},
        )

    assert len(mailoutbox) == 2
    assert token_in(mailoutbox[1]) != token_in(mailoutbox[0])


def test_a_mail_server_that_fails_leaves_the_invitation_to_send_again(tenant, invite, settings, caplog):
    """A real SMTP connection to a loopback port nobody listens on: the invitation stands."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2

    response = invite("newcomer@example.com")

    assert response.status_code == 201, response.content
    assert Membership.objects.get(pk=response.json()["id"]).status == "pending"
    assert f"Sending invitation {response.json()['id']} to its email failed" in caplog.text


# The migration (crm 0013) -----------------------------------------------------------------


def migrate_crm(name: str) -> None:
    MigrationExecutor(connection).migrate([("crm", name)])


def fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_memberships_and_refuses_to_go_back_over_invitations():
    latest = dict(MigrationExecutor(connection).loader.graph.leaf_nodes())["crm"]
    try:
        migrate_crm("0012_sub_contractor")
        fetch(
            "INSERT INTO users (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, "
            "date_joined) VALUES ('!', false, 'dana', 'Dana', 'W', 'dana@example.com', false, true, now()), "
            "('!', false, 'luis', 'Luis', 'O', 'luis@example.com', false, true, now()) RETURNING id"
        )
        (tenant,) = fetch("INSERT INTO tenants (name, subdomain) VALUES ('Legacy', 'legacy') RETURNING id")[0]
        fetch(
            "INSERT INTO tenant_users (tenant_id, user_id, role, status) SELECT %s, id, "
            "CASE username WHEN 'dana' THEN 'owner' ELSE 'member' END, "
            "CASE username WHEN 'dana' THEN 'active' ELSE 'pending' END FROM users RETURNING id",
            [tenant],
        )
        before = fetch("SELECT id, tenant_id, user_id, role, status, joined_at FROM tenant_users ORDER BY id")

        migrate_crm("0013_membership_invitations")

        assert fetch("SELECT id, tenant_id, user_id, role, status, joined_at FROM tenant_users ORDER BY id") == before
        assert fetch(
            "SELECT count(*) FROM tenant_users WHERE deactivated_at IS NULL AND deactivated_by_id IS NULL "
            "AND deactivated_reason IS NULL AND invited_email IS NULL"
        ) == [(2,)]
        (invitation,) = fetch(
            "INSERT INTO tenant_users (tenant_id, role, status, invited_email, invited_at) "
            "VALUES (%s, 'member', 'pending', 'new@example.com', now()) RETURNING id",
            [tenant],
        )[0]

        with pytest.raises(Exception, match="1 pending invitation\\(s\\) have no user yet") as refused:
            migrate_crm("0012_sub_contractor")

        assert f"membership {invitation} (tenant {tenant}): new@example.com" in str(refused.value)
        assert fetch("SELECT count(*) FROM tenant_users") == [(3,)]
        fetch("DELETE FROM tenant_users WHERE user_id IS NULL")
        migrate_crm("0012_sub_contractor")
        assert fetch("SELECT id, tenant_id, user_id, role, status, joined_at FROM tenant_users ORDER BY id") == before
        assert (
            fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'tenant_users' "
                "AND (column_name LIKE 'deactivated%%' OR column_name LIKE 'invited%%')"
            )
            == []
        )
    finally:
        migrate_crm(latest)
