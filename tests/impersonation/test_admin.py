"""The admin's "log in as": POST only, bound to the admin's session, read-only by default,
the banner on every page, Stop, logout, and the log read-only."""

import pytest
from django.test import Client
from django.urls import reverse

from contacts.models import Contact
from crm.models import Activity, Membership
from impersonation.models import ImpersonationLog
from impersonation.requests import SESSION_KEY
from tests.admin import admin_url, post_page, staff_client
from tests.api import row
from tests.factories import ContactFactory, MembershipFactory, UserFactory
from tests.impersonation.conftest import REASON, counters, data, logs

START = "/admin/impersonation/impersonationlog/start/"
STOP = "/admin/impersonation/impersonationlog/stop/"


@pytest.fixture
def jane(tenant):
    """A staff member of the tenant (she uses the admin too)."""
    user = UserFactory(username="jane", first_name="Jane", last_name="Doe", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role="member")
    return user


@pytest.fixture
def owner_admin(tenant):
    return staff_client(tenant, "owner", "sam")


def start(client: Client, tenant, target, **fields):
    body = {"tenant": tenant.pk, "target": target.pk, "reason": REASON, "duration_minutes": 30, **fields}
    return client.post(START, body)


def test_starting_from_the_admin_views_the_admin_as_the_target(tenant, owner_admin, jane):
    client, sam = owner_admin

    response = start(client, tenant, jane, ticket="SUP-7")

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    log = ImpersonationLog.objects.get()
    assert (log.admin_user, log.impersonated_user, log.ticket, log.allow_writes) == (sam, jane, "SUP-7", False)
    assert (log.admin_session_key, log.token_digest) == (client.session.session_key, None)
    assert client.session[SESSION_KEY] == log.pk
    page = client.get(reverse("admin:index")).content.decode()
    assert "Viewing as Jane Doe" in page
    assert "— read-only" in page
    assert "— 30 min left" in page


def test_the_form_is_never_a_get_start(tenant, owner_admin, jane):
    client, _ = owner_admin

    response = client.get(START, {"tenant": tenant.pk, "target": jane.pk, "reason": REASON})

    assert response.status_code == 200
    assert response.context["form"].initial["target"] == str(jane.pk)
    assert logs() == []


def test_the_form_needs_the_csrf_token(tenant, jane):
    client = Client(enforce_csrf_checks=True)
    sam = UserFactory(username="sam", is_staff=True)
    MembershipFactory(tenant=tenant, user=sam, role="owner")
    client.force_login(sam)

    assert start(client, tenant, jane).status_code == 403
    assert logs() == []


def test_the_services_refusal_is_shown_on_its_field(tenant, jane):
    client, _ = staff_client(tenant, "admin", "adm")

    response = start(client, tenant, jane, allow_writes="on")

    assert response.status_code == 200
    assert response.context["form"].errors == {"allow_writes": ["Only owners can allow writes while impersonating."]}
    assert logs() == []


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_a_peer_or_higher_is_not_accepted(tenant, owner_admin, role):
    client, _ = owner_admin
    peer = UserFactory(username="peer", is_staff=True)
    MembershipFactory(tenant=tenant, user=peer, role=role)

    response = start(client, tenant, peer)

    assert response.status_code == 200
    assert list(response.context["form"].errors) == ["target"]
    assert logs() == []


def test_the_target_cannot_save_a_contact_while_read_only(tenant, owner_admin, jane):
    client, _ = owner_admin
    contact = ContactFactory(tenant=tenant, first_name="Maria")
    start(client, tenant, jane)
    url = admin_url("change", Contact, contact.pk)
    before = data()

    opened = client.get(url)
    saved = post_page(client, url, {"first_name": "Changed"})

    assert opened.status_code == 200
    assert "Viewing as Jane Doe" in opened.content.decode()
    assert saved.status_code == 403
    assert "read-only impersonation" in saved.content.decode()
    assert data() == before
    assert counters() == [(3, 0)]  # the page, opened again by post_page, and the refused save
    assert row(contact)["first_name"] == "Maria"


def test_an_admin_save_with_writes_allowed_records_the_target(tenant, owner_admin, jane):
    client, _ = owner_admin
    contact = ContactFactory(tenant=tenant, first_name="Maria")
    start(client, tenant, jane, allow_writes="on")

    saved = post_page(client, admin_url("change", Contact, contact.pk), {"first_name": "Mariana"})

    assert saved.status_code == 302
    assert (row(contact)["first_name"], row(contact)["updated_by_id"]) == ("Mariana", jane.pk)
    assert ImpersonationLog.objects.get().write_count == 1


@pytest.mark.parametrize(
    "target",
    ["membership-change", "user-password", "user-delete", "own-password"],
)
def test_always_denied_admin_routes_with_writes_allowed(tenant, owner_admin, jane, target):
    client, _ = owner_admin
    start(client, tenant, jane, allow_writes="on")
    membership = Membership.objects.get(user=jane)
    url = {
        "membership-change": admin_url("change", Membership, membership.pk),
        "user-password": reverse("admin:auth_user_password_change", args=[jane.pk]),
        "user-delete": f"/admin/crm/user/{jane.pk}/delete/",
        "own-password": reverse("admin:password_change"),
    }[target]
    before = (data(), row(jane))

    response = client.post(url, {"role": "owner", "password1": "n3w-Passw0rd!", "password2": "n3w-Passw0rd!"})

    assert response.status_code == 403
    assert "This is never allowed while impersonating." in response.content.decode()
    assert (data(), row(jane)) == before
    assert counters() == [(1, 0)]


def test_starting_again_while_impersonating_is_409(tenant, owner_admin, jane, viewer):
    client, _ = owner_admin
    start(client, tenant, jane, allow_writes="on")
    before = logs()

    assert start(client, tenant, viewer).status_code == 409
    assert logs() == before
    assert counters() == [(1, 0)]


def test_stop_ends_the_session_and_the_banner(tenant, owner_admin, jane):
    client, _ = owner_admin
    start(client, tenant, jane)
    client.get(reverse("admin:index"))

    stopped = client.post(STOP)

    assert stopped.status_code == 302
    log = ImpersonationLog.objects.get()
    assert (log.status, log.end_reason, log.request_count) == ("ended", "stopped", 2)
    assert SESSION_KEY not in client.session
    assert "Viewing as" not in client.get(reverse("admin:index")).content.decode()


def test_stop_is_post_only(tenant, owner_admin, jane):
    client, _ = owner_admin
    start(client, tenant, jane)

    assert client.get(STOP).status_code == 405
    assert ImpersonationLog.objects.get().status == "active"


def test_logging_out_of_the_admin_ends_the_session(tenant, owner_admin, jane):
    client, _ = owner_admin
    start(client, tenant, jane)

    client.post(reverse("admin:logout"))

    log = ImpersonationLog.objects.get()
    assert (log.status, log.end_reason) == ("terminated", "logout")


def test_the_log_is_read_only_in_the_admin(tenant, owner_admin, jane):
    client, _ = owner_admin
    start(client, tenant, jane)
    client.post(STOP)
    log = ImpersonationLog.objects.get()
    before = row(log)

    listed = client.get(admin_url("changelist", ImpersonationLog), {"status__exact": "ended"})
    detail = client.get(admin_url("change", ImpersonationLog, log.pk))
    edit = client.post(admin_url("change", ImpersonationLog, log.pk), {"reason": "rewritten"})
    delete = client.post(admin_url("delete", ImpersonationLog, log.pk), {"post": "yes"})

    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [log]
    assert detail.status_code == 200
    assert REASON in detail.content.decode()
    assert (edit.status_code, delete.status_code) == (403, 403)
    assert client.get(admin_url("add", ImpersonationLog)).status_code == 403
    assert row(log) == before


def test_members_do_not_see_the_log(tenant, jane):
    client = Client()
    client.force_login(jane)

    assert client.get(admin_url("changelist", ImpersonationLog)).status_code == 403


def test_a_session_started_from_the_admin_notifies_the_target_when_the_tenant_asks(tenant, owner_admin, jane):
    client, sam = owner_admin
    tenant.settings = {"notify_impersonated_users": True}
    tenant.save()
    changelist = admin_url("changelist", Activity)

    assert start(client, tenant, jane).status_code == 302

    notice = Activity.objects.get()
    assert (notice.type, notice.recipient, notice.created_by, notice.on_behalf_of) == ("notice", jane, sam, None)
    # Viewing as Jane, the admin sees her notice in the admin; as himself, not.
    assert list(client.get(changelist).context["cl"].result_list) == [notice]
    client.post(STOP)
    assert list(client.get(changelist).context["cl"].result_list) == []
