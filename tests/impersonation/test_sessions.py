"""A session's life through the API, as attacks: each asserts the status and that nothing changed."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from contacts.models import Contact
from crm.errors import ApplicationError
from crm.models import AuthToken, Membership
from impersonation.models import ImpersonationLog
from impersonation.services import Credential, impersonation_end_stale, impersonation_start
from tests.api import assert_error, assert_invalid, row, tables
from tests.factories import ContactFactory, ProjectFactory
from tests.impersonation.conftest import REASON, START, STATUS, STOP, logs, start, started_token, token_client

INVALID_TOKEN = {"code": "authentication_failed", "detail": "Invalid token."}


def assert_token_refused(client: APIClient) -> None:
    assert_error(client.get("/api/v1/contacts/"), 401, **INVALID_TOKEN)


def ended(log_id: int) -> tuple[str, str | None]:
    log = ImpersonationLog.objects.get(pk=log_id)
    return log.status, log.end_reason


# Starting ---------------------------------------------------------------------------------


def test_start_returns_a_token_that_acts_as_the_target(tenant, owner, member_user):
    ContactFactory(tenant=tenant, first_name="Visible")
    token = started_token(token_client(owner), member_user, ticket="SUP-42", duration_minutes=45)
    as_member = token_client(member_user, token)

    me = as_member.get("/api/v1/me/")
    status = as_member.get(STATUS).json()

    assert token.startswith("rdgimp_")
    assert len(token) == 7 + 64
    assert me.json()["username"] == "member"
    assert status["active"] is True
    session = status["session"]
    assert (session["admin_user"]["id"], session["impersonated_user"]["id"]) == (owner.pk, member_user.pk)
    assert (session["reason"], session["ticket"], session["allow_writes"]) == (REASON, "SUP-42", False)
    log = ImpersonationLog.objects.get()
    assert log.expires_at - log.started_at == timedelta(minutes=45)
    assert log.token_digest is not None
    assert token not in str(row(log))


def test_status_without_an_impersonation_is_inactive(owner):
    assert token_client(owner).get(STATUS).json() == {"active": False, "session": None}


def test_start_while_impersonating_is_409_and_changes_nothing(tenant, owner, member_user, viewer):
    token = started_token(token_client(owner), member_user, allow_writes=True)
    before = logs()

    response = start(token_client(member_user, token), viewer)

    assert_error(
        response, 409, code="nested_impersonation", detail="You are impersonating someone: stop that session first."
    )
    assert logs() == before


def test_starting_again_replaces_the_active_session(owner, member_user, viewer):
    client = token_client(owner)
    first = started_token(client, member_user)
    first_id = ImpersonationLog.objects.get().pk

    second = started_token(client, member_user)

    assert ended(first_id) == ("terminated", "replaced")
    assert_token_refused(token_client(member_user, first))
    assert token_client(member_user, second).get("/api/v1/me/").json()["username"] == "member"
    started_token(client, viewer)  # another target: one active session per admin
    assert [(log["impersonated_user_id"], log["status"]) for log in logs()] == [
        (member_user.pk, "terminated"),
        (member_user.pk, "terminated"),
        (viewer.pk, "active"),
    ]


def test_start_is_post_only(owner):
    assert_error(token_client(owner).get(START), 405, code="method_not_allowed", detail='Method "GET" not allowed.')
    assert logs() == []


def test_start_with_a_session_needs_the_csrf_token(owner, member_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)

    response = start(client, member_user)

    assert_error(response, 403, code="permission_denied", detail="CSRF Failed: CSRF cookie not set.")
    assert logs() == []


@pytest.mark.parametrize(
    ("body", "attr", "code", "detail"),
    [
        ({"reason": None}, "reason", "null", "This field may not be null."),
        ({"reason": ""}, "reason", "blank", "This field may not be blank."),
        ({"reason": "too short"}, "reason", "min_length", "Ensure this field has at least 10 characters."),
        ({"duration_minutes": 241}, "duration_minutes", "max_value", "Ensure this value is less than or equal to 240."),
        ({"duration_minutes": 0}, "duration_minutes", "min_value", "Ensure this value is greater than or equal to 1."),
    ],
)
def test_bad_input_is_400_naming_the_field(owner, member_user, body, attr, code, detail):
    response = token_client(owner).post(START, {"target": member_user.pk, "reason": REASON, **body})

    assert_invalid(response, attr=attr, code=code, detail=detail)
    assert logs() == []


def test_a_reason_of_spaces_is_refused_by_the_service(tenant, owner, member_user):
    with pytest.raises(ApplicationError) as refused:
        impersonation_start(
            impersonator=owner,
            target=member_user,
            tenant=tenant,
            reason="   short          ",
            credential=Credential(session_key="k"),
        )

    assert (refused.value.attr, refused.value.code) == ("reason", "min_length")
    assert logs() == []


def test_only_owners_may_allow_writes(admin_user, member_user):
    response = start(token_client(admin_user), member_user, allow_writes=True)

    assert_error(
        response,
        403,
        code="allow_writes",
        detail="Only owners can allow writes while impersonating.",
        attr="allow_writes",
    )
    assert logs() == []


# Read-only and always-denied -------------------------------------------------------------


@pytest.fixture
def contact(tenant):
    return ContactFactory(tenant=tenant, first_name="Jane")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/contacts/", {"first_name": "New"}),
        ("patch", "/api/v1/contacts/{contact}/", {"first_name": "Changed"}),
        ("put", "/api/v1/contacts/{contact}/", {"first_name": "Changed"}),
        ("delete", "/api/v1/contacts/{contact}/", None),
        ("post", "/api/v1/activities/", {"type": "note", "contact": "{contact}", "content": "hi"}),
    ],
)
def test_a_write_while_read_only_is_403_and_changes_nothing(owner, manager, contact, method, path, body):
    as_manager = token_client(manager, started_token(token_client(owner), manager))
    body = {key: int(contact.pk) if value == "{contact}" else value for key, value in (body or {}).items()}
    before = tables()

    response = getattr(as_manager, method)(path.format(contact=contact.pk), body or None)

    assert_error(response, 403, code="read_only_impersonation", detail="read-only impersonation")
    assert tables() == before
    assert ImpersonationLog.objects.get().write_count == 0


def denied_routes(tenant, manager):
    project = ProjectFactory(tenant=tenant, is_deleted=True)
    membership = Membership.objects.get(user=manager)
    token = AuthToken.objects.filter(user=manager).first()
    return [
        ("post", "/api/v1/memberships/", {"email": "someone@example.com", "role": "viewer"}),
        ("patch", f"/api/v1/memberships/{membership.pk}/", {"role": "admin"}),
        ("delete", f"/api/v1/memberships/{membership.pk}/", None),
        ("post", "/api/v1/auth/token/", {"username": "manager", "password": "correct horse battery staple"}),
        ("post", "/api/v1/auth/logout-all/", None),
        ("post", "/api/v1/auth/logout/", None),
        ("delete", f"/api/v1/auth/tokens/{token.pk}/", None),
        ("delete", f"/api/v1/projects/{project.pk}/?purge=true", None),
    ]


@pytest.mark.parametrize("index", range(8))
def test_always_denied_routes_are_403_even_with_writes_allowed(tenant, owner, manager, index):
    token_client(manager)  # the manager has a token of their own, which must survive
    as_manager = token_client(manager, started_token(token_client(owner), manager, allow_writes=True))
    method, path, body = denied_routes(tenant, manager)[index]
    before = (tables(), list(AuthToken.objects.order_by("pk").values()))

    response = getattr(as_manager, method)(path, body)

    assert_error(response, 403, code="impersonation_denied", detail="This is never allowed while impersonating.")
    assert (tables(), list(AuthToken.objects.order_by("pk").values())) == before


def test_writes_allowed_by_an_owner_go_through_and_are_counted(owner, manager, contact):
    as_manager = token_client(manager, started_token(token_client(owner), manager, allow_writes=True))

    read = as_manager.get(f"/api/v1/contacts/{contact.pk}/")
    write = as_manager.patch(f"/api/v1/contacts/{contact.pk}/", {"first_name": "Janet"})
    refused = as_manager.patch(f"/api/v1/contacts/{contact.pk}/", {"email": "not an email"})

    assert (read.status_code, write.status_code, refused.status_code) == (200, 200, 400)
    contact.refresh_from_db()
    assert (contact.first_name, contact.updated_by_id) == ("Janet", manager.pk)
    log = ImpersonationLog.objects.get()
    assert (log.request_count, log.write_count) == (3, 1)


# Ending ----------------------------------------------------------------------------------


def test_stop_ends_the_session_and_the_token(owner, member_user):
    token = started_token(token_client(owner), member_user)
    as_member = token_client(member_user, token)
    assert as_member.get("/api/v1/contacts/").status_code == 200

    stopped = as_member.post(STOP)

    assert stopped.json() == {"active": False, "session": None}
    log = ImpersonationLog.objects.get()
    assert (log.status, log.end_reason, log.request_count) == ("ended", "stopped", 2)
    assert log.duration_seconds == int((log.ended_at - log.started_at).total_seconds())
    assert_token_refused(as_member)
    assert ImpersonationLog.objects.get().request_count == 2


def test_the_admin_stops_with_their_own_credential(owner, member_user):
    admin = token_client(owner)
    token = started_token(admin, member_user)

    admin.post(STOP)

    assert ended(ImpersonationLog.objects.get().pk) == ("ended", "stopped")
    assert_token_refused(token_client(member_user, token))


def test_the_token_stops_at_expiry(owner, member_user):
    token = started_token(token_client(owner), member_user, duration_minutes=5)
    as_member = token_client(member_user, token)
    log = ImpersonationLog.objects.get()

    with time_machine.travel(log.expires_at - timedelta(seconds=1)):
        assert as_member.get("/api/v1/contacts/").status_code == 200
    with time_machine.travel(log.expires_at + timedelta(seconds=1)):
        assert_token_refused(as_member)

    log.refresh_from_db()
    assert (log.status, log.end_reason) == ("expired", "expired")
    assert (log.ended_at, log.duration_seconds) == (log.expires_at, 300)


def test_the_admins_logout_ends_the_session(owner, member_user):
    admin = token_client(owner)
    token = started_token(admin, member_user)

    assert admin.post("/api/v1/auth/logout/").status_code == 204

    assert_token_refused(token_client(member_user, token))
    assert ended(ImpersonationLog.objects.get().pk) == ("terminated", "logout")


def test_deleting_the_admins_token_ends_the_session(owner, member_user):
    token = started_token(token_client(owner), member_user)

    AuthToken.objects.filter(user=owner).delete()

    assert_token_refused(token_client(member_user, token))
    assert ended(ImpersonationLog.objects.get().pk) == ("terminated", "logout")


def test_a_session_bound_to_the_admins_session_ends_with_it(owner, member_user):
    client = APIClient()
    client.force_login(owner)
    token = started_token(client, member_user)
    as_member = token_client(member_user, token)
    assert as_member.get("/api/v1/me/").status_code == 200

    client.logout()

    assert_token_refused(as_member)
    assert ended(ImpersonationLog.objects.get().pk) == ("terminated", "logout")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda owner, target: type(target).objects.filter(pk=target.pk).update(is_active=False), "target_deactivated"),
        (lambda owner, target: type(owner).objects.filter(pk=owner.pk).update(is_active=False), "admin_deactivated"),
        (lambda owner, target: Membership.objects.filter(user=target).delete(), "membership_removed"),
        (lambda owner, target: Membership.objects.filter(user=target).update(status="suspended"), "membership_removed"),
        (lambda owner, target: Membership.objects.filter(user=owner).update(role="manager"), "membership_removed"),
    ],
    ids=["target-deactivated", "admin-deactivated", "target-removed", "target-suspended", "admin-demoted"],
)
def test_a_deactivated_user_or_lost_membership_ends_the_session(owner, member_user, change, reason):
    token = started_token(token_client(owner), member_user)

    change(owner, member_user)

    assert_token_refused(token_client(member_user, token))
    assert ended(ImpersonationLog.objects.get().pk) == ("terminated", reason)


def test_the_periodic_sweep_ends_sessions_nobody_uses(owner, admin_user, member_user, viewer):
    started_token(token_client(owner), member_user, duration_minutes=5)
    started_token(token_client(admin_user), viewer, duration_minutes=60)
    expired, live = ImpersonationLog.objects.order_by("pk")

    with time_machine.travel(timezone.now() + timedelta(minutes=6)):
        assert impersonation_end_stale() == 1

    assert [ended(expired.pk), ended(live.pk)] == [("expired", "expired"), ("active", None)]


def test_nothing_is_written_to_contacts_by_reads(owner, member_user, contact):
    before = row(contact)
    as_member = token_client(member_user, started_token(token_client(owner), member_user))

    as_member.get(f"/api/v1/contacts/{contact.pk}/")

    assert row(contact) == before
    assert Contact.objects.count() == 1
