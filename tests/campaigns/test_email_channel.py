"""Campaign email: the tenant's sender, the unsubscribe link and headers, the unsubscribe page,
bounces and complaints."""

import hashlib
import hmac
import json
import re
import time

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from campaigns.links import unsubscribe_url
from campaigns.models import CampaignStepExecution
from campaigns.services import campaign_enroll
from crm.models import Role
from tests.api import assert_invalid, row
from tests.campaigns.conftest import EMAIL, build
from tests.campaigns.test_engine import drain
from tests.conftest import client_for, member
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PUBLIC = "http://localhost:8000"


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.CAMPAIGN_PUBLIC_URL = PUBLIC


def send(actor, tenant, django_capture_on_commit_callbacks, *, steps=None, **contact_fields):
    campaign = build(actor, steps=steps or [EMAIL])
    contact = ContactFactory(tenant=tenant, first_name="Ada", **contact_fields)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    drain(django_capture_on_commit_callbacks)
    [message] = mail.outbox
    return campaign, contact, message


def unsubscribe_link(message) -> str:
    return message.extra_headers["List-Unsubscribe"][1:-1].removeprefix(PUBLIC)


def test_the_email_comes_from_the_tenants_sender(actor, tenant, django_capture_on_commit_callbacks):
    tenant.settings = {"email_from": "Summit Roofing <office@summit.example>"}
    tenant.save()

    _campaign, _contact, message = send(actor, tenant, django_capture_on_commit_callbacks)

    assert message.from_email == "Summit Roofing <office@summit.example>"


def test_without_a_sender_the_email_comes_from_the_default(actor, tenant, settings, django_capture_on_commit_callbacks):
    settings.DEFAULT_FROM_EMAIL = "Ridgeline <campaigns@ridgeline.example>"

    _campaign, _contact, message = send(actor, tenant, django_capture_on_commit_callbacks)

    assert message.from_email == "Ridgeline <campaigns@ridgeline.example>"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("not an address", "settings.email_from: not an address is not a valid email address."),
        (
            "a@summit.example, b@summit.example",
            "settings.email_from is an email address, optionally with a name: Summit Roofing <office@summit.example>.",
        ),
        (
            "Summit\r\nBcc: x@evil.example <a@summit.example>",
            "settings.email_from is an email address, optionally with a name: Summit Roofing <office@summit.example>.",
        ),
        (
            "office@bank.example",
            "settings.email_from: Ridgeline does not send for bank.example; use an address at summit.example.",
        ),
        (42, "settings.email_from is text."),
    ],
)
def test_a_bad_sender_is_refused_naming_the_setting(tenant, settings, value, detail):
    settings.TENANT_EMAIL_FROM_DOMAINS = ["summit.example"]
    client = client_for(member(tenant, Role.ADMIN, "the-admin"), tenant)
    before = row(tenant)

    response = client.patch("/api/v1/tenant/", {"settings": {"email_from": value}}, format="json")

    assert_invalid(response, attr="settings", code="invalid_setting", detail=detail)
    assert row(tenant) == before


def test_a_sender_at_an_allowed_domain_is_kept(tenant, settings):
    settings.TENANT_EMAIL_FROM_DOMAINS = ["summit.example"]
    client = client_for(member(tenant, Role.ADMIN, "the-admin"), tenant)

    response = client.patch(
        "/api/v1/tenant/", {"settings": {"email_from": "Summit <office@mail.summit.example>"}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["settings"] == {"email_from": "Summit <office@mail.summit.example>"}


def test_the_email_carries_one_click_unsubscribe_headers_and_a_link(actor, tenant, django_capture_on_commit_callbacks):
    _campaign, contact, message = send(actor, tenant, django_capture_on_commit_callbacks)

    link = message.extra_headers["List-Unsubscribe"]
    assert re.fullmatch(rf"<{PUBLIC}/mail/{tenant.pk}/unsubscribe/[\w:-]+/>", link)
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.body == f"From {tenant.name}\n\nTo stop receiving these emails, unsubscribe: {link[1:-1]}"
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert f'<a href="{link[1:-1]}">' in html


def test_a_body_with_the_unsubscribe_merge_field_gets_no_second_link(actor, tenant, django_capture_on_commit_callbacks):
    step = {**EMAIL, "step_config": {"subject": "Hi", "body": "Bye: {{ unsubscribe_url }}"}}

    _campaign, _contact, message = send(actor, tenant, django_capture_on_commit_callbacks, steps=[step])

    assert message.body == f"Bye: {message.extra_headers['List-Unsubscribe'][1:-1]}"


def test_the_unsubscribe_page_asks_first_and_changes_nothing_on_get(actor, tenant, django_capture_on_commit_callbacks):
    _campaign, contact, message = send(actor, tenant, django_capture_on_commit_callbacks)
    before = row(contact)

    response = Client().get(unsubscribe_link(message))

    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert contact.email.encode() in response.content
    assert row(contact) == before


def test_posting_the_page_unsubscribes_once_with_the_date_and_reason(actor, tenant, django_capture_on_commit_callbacks):
    campaign, contact, message = send(actor, tenant, django_capture_on_commit_callbacks)
    client = Client(enforce_csrf_checks=True)  # the page's form carries no CSRF token, nor do mail clients

    first = client.post(unsubscribe_link(message))
    after_first = row(contact)
    second = client.post(unsubscribe_link(message), {"List-Unsubscribe": "One-Click"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert b"You are unsubscribed" in first.content
    assert after_first["email_opt_out"] is True
    assert after_first["email_opt_out_date"] is not None
    assert after_first["email_opt_out_reason"] == (
        f"The recipient used the unsubscribe link in campaign “{campaign.name}” (#{campaign.pk})."
    )
    assert row(contact) == after_first  # the second changed nothing, not even the date


def test_a_mail_clients_one_click_post_unsubscribes(actor, tenant, django_capture_on_commit_callbacks):
    campaign, contact, message = send(actor, tenant, django_capture_on_commit_callbacks)

    response = Client().post(
        unsubscribe_link(message), "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.email_opt_out, contact.email_opt_out_reason) == (
        True,
        f"The recipient used the one-click unsubscribe from the mail client in campaign “{campaign.name}” "
        f"(#{campaign.pk}).",
    )


def test_an_unsubscribed_contact_gets_no_more_email(actor, tenant, django_capture_on_commit_callbacks):
    later = {**EMAIL, "delay_value": 1, "delay_unit": "hours"}
    _campaign, contact, message = send(actor, tenant, django_capture_on_commit_callbacks, steps=[EMAIL, later])
    Client().post(unsubscribe_link(message))
    mail.outbox.clear()
    CampaignStepExecution.objects.filter(status="pending").update(scheduled_at=timezone.now())

    drain(django_capture_on_commit_callbacks)

    assert mail.outbox == []
    assert list(
        CampaignStepExecution.objects.filter(enrollment__contact=contact)
        .order_by("step__step_order")
        .values_list("status", "skip_reason")
    ) == [("completed", None), ("skipped", "no_consent")]


def test_another_tenants_link_garbage_and_tampering_are_404_and_change_nothing(tenant, other_tenant):
    contact = ContactFactory(tenant=tenant)
    theirs = ContactFactory(tenant=other_tenant)
    ours = unsubscribe_url(tenant_id=tenant.pk, contact_id=contact.pk, campaign_id=1).removeprefix(PUBLIC)
    other = unsubscribe_url(tenant_id=other_tenant.pk, contact_id=theirs.pk, campaign_id=1).removeprefix(PUBLIC)
    token = ours.split("/")[-2]
    before = (row(contact), row(theirs))
    client = Client()

    for path in (
        other.replace(f"/mail/{other_tenant.pk}/", f"/mail/{tenant.pk}/"),  # their token under our URL
        ours.replace(f"/mail/{tenant.pk}/", f"/mail/{other_tenant.pk}/"),  # our token under theirs
        ours.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B")),
        f"/mail/{tenant.pk}/unsubscribe/garbage/",
        f"/mail/{tenant.pk}/unsubscribe/{'x' * 5000}/",
        f"/mail/{'9' * 30}/unsubscribe/{token}/",
    ):
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code == 404, path

    assert (row(contact), row(theirs)) == before


def test_a_link_to_a_contact_gone_since_is_404(tenant):
    contact = ContactFactory(tenant=tenant)
    path = unsubscribe_url(tenant_id=tenant.pk, contact_id=contact.pk, campaign_id=1).removeprefix(PUBLIC)
    contact.delete()

    assert Client().post(path).status_code == 404


# Bounces and complaints ----------------------------------------------------------------------

SECRET = "email-events-secret"


def post_event(tenant_id, payload, *, signature=None, when=None):
    body = json.dumps(payload).encode()
    stamp = str(int(when if when is not None else time.time()))
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return Client().post(
        f"/api/v1/webhooks/email/{tenant_id}/events/",
        body,
        content_type="application/json",
        HTTP_X_RIDGELINE_SIGNATURE=signature if signature is not None else f"t={stamp},v1={digest}",
    )


@pytest.fixture
def emailed(actor, tenant, settings, django_capture_on_commit_callbacks):
    settings.CAMPAIGN_EMAIL_EVENTS_SECRET = SECRET
    _campaign, contact, message = send(actor, tenant, django_capture_on_commit_callbacks)
    return contact, message.extra_headers["Message-ID"]


def test_a_bounce_marks_the_email_invalid_once(tenant, emailed):
    contact, message_id = emailed

    first = post_event(tenant.pk, {"event": "bounce", "message_id": message_id, "reason": "550 5.1.1 unknown user"})
    after = row(contact)
    second = post_event(tenant.pk, {"event": "bounce", "message_id": message_id.strip("<>"), "reason": "again"})

    assert (first.status_code, second.status_code) == (204, 204)
    assert (after["email_invalid"], after["email_invalid_reason"]) == (
        True,
        "The mail provider reported a bounce: 550 5.1.1 unknown user",
    )
    assert after["email_invalid_date"] is not None
    assert row(contact) == after


def test_a_complaint_opts_the_contact_out(tenant, emailed):
    contact, message_id = emailed

    response = post_event(tenant.pk, {"event": "complaint", "message_id": message_id})

    assert response.status_code == 204
    contact.refresh_from_db()
    assert (contact.email_opt_out, contact.email_invalid, contact.email_opt_out_reason) == (
        True,
        False,
        "The recipient marked a campaign email as spam: no reason given",
    )


@pytest.mark.parametrize(
    ("case", "status", "attr"),
    [
        ("bad signature", 403, "X-Ridgeline-Signature"),
        ("no signature", 403, "X-Ridgeline-Signature"),
        ("expired", 403, "X-Ridgeline-Signature"),
        ("other tenant", 404, "message_id"),
        ("unknown message", 404, "message_id"),
        ("bad event", 400, "event"),
        ("no message id", 400, "message_id"),
    ],
)
def test_bad_email_events_are_refused_naming_the_problem_and_change_nothing(
    tenant, other_tenant, emailed, case, status, attr
):
    contact, message_id = emailed
    before = row(contact)
    payload = {"event": "bounce", "message_id": message_id}
    target, options = tenant.pk, {}
    if case == "bad signature":
        options["signature"] = "t=1,v1=" + "0" * 64
    elif case == "no signature":
        options["signature"] = ""
    elif case == "expired":
        options["when"] = time.time() - 3600
    elif case == "other tenant":
        target = other_tenant.pk
    elif case == "unknown message":
        payload["message_id"] = "<nobody@ridgeline.localhost>"
    elif case == "bad event":
        payload["event"] = "delivered"
    else:
        del payload["message_id"]

    response = post_event(target, payload, **options)

    assert response.status_code == status, response.content
    assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert row(contact) == before
