"""Campaign email: the tenant's sender, the unsubscribe link and headers, the unsubscribe page,
bounces and complaints (signed by us, or an ESP's through django-anymail)."""

import base64
import hashlib
import hmac
import json
import re
import time

import pytest
from anymail.message import AnymailRecipientStatus
from anymail.signals import pre_send
from django.core import mail
from django.test import Client
from django.utils import timezone

from campaigns.links import unsubscribe_url
from campaigns.mail import EmailRefused, campaign_email_send
from campaigns.models import CampaignEnrollment, CampaignStepExecution
from campaigns.services import campaign_enroll
from crm.actor import Actor, Source
from crm.models import Role
from tests.api import assert_invalid, row, table
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
    delivery = CampaignStepExecution.objects.get(provider_message_id=message_id).result_data["delivery"]
    assert (delivery["status"], delivery["detail"]) == ("bounced", "550 5.1.1 unknown user")


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


# Through django-anymail ----------------------------------------------------------------------


@pytest.fixture
def due_later(actor, tenant, django_capture_on_commit_callbacks):
    """A send_email execution not run yet (its step waits a day), loaded as the engine loads it."""
    campaign = build(actor, steps=[{**EMAIL, "delay_value": 1, "delay_unit": "days"}])
    contact = ContactFactory(tenant=tenant, first_name="Ada")
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    drain(django_capture_on_commit_callbacks)
    return CampaignStepExecution.objects.select_related(
        "step", "enrollment__campaign__tenant", "enrollment__contact", "enrollment__project"
    ).get(enrollment__contact=contact)


def test_through_an_anymail_backend_the_provider_id_is_the_esps(settings, due_later):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    provider_id = campaign_email_send(execution=due_later, subject="Hello", body="From us")

    [message] = mail.outbox
    assert message.anymail_status.status == {"sent"}
    assert provider_id == str(message.anymail_status.message_id)
    assert message.anymail_test_params["to"][0].addr_spec == due_later.enrollment.contact.email
    assert provider_id != message.extra_headers["Message-ID"]


def test_through_another_backend_the_provider_id_is_the_message_id(due_later):
    provider_id = campaign_email_send(execution=due_later, subject="Hello", body="From us")

    [message] = mail.outbox
    assert provider_id == message.extra_headers["Message-ID"]
    assert re.fullmatch(r"<.+@ridgeline\.localhost>", provider_id)


def test_a_recipient_the_esp_refuses_is_an_os_error_nothing_sent(settings, due_later):
    """As smtplib's refusals are: the engine records a final failure, never `unknown`."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"

    def refuse(sender, message, esp_name, **kwargs):
        message.anymail_test_response = {
            "recipient_status": {message.to[0]: AnymailRecipientStatus(message_id=None, status="rejected")}
        }

    pre_send.connect(refuse, weak=False, dispatch_uid="test-refuse")
    try:
        with pytest.raises(EmailRefused) as refused:
            campaign_email_send(execution=due_later, subject="Hello", body="From us")
    finally:
        pre_send.disconnect(dispatch_uid="test-refuse")

    assert isinstance(refused.value, OSError)


ANYMAIL_AUTH = "Basic " + base64.b64encode(b"ridgeline-test:anymail-webhook-secret").decode()
POSTMARK_ID = "883953f4-6105-42a2-a16a-77a8eac79483"


def postmark(payload, *, auth=ANYMAIL_AUTH):
    """POST a Postmark webhook to anymail's tracking URL, with the basic auth set in Postmark's URL."""
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    return Client().post(
        "/webhooks/anymail/postmark/tracking/", json.dumps(payload), content_type="application/json", **headers
    )


def postmark_bounce(message_id: str, email: str, kind: str = "HardBounce") -> dict:
    """Postmark's bounce webhook, as its documentation shows it."""
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "Name": "Hard bounce" if kind == "HardBounce" else "Soft bounce",
        "Tag": "",
        "MessageID": message_id,
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "office@summit.example",
        "BouncedAt": "2026-11-05T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": kind == "HardBounce",
        "CanActivate": True,
        "Subject": "Hello Ada",
    }


def postmark_complaint(message_id: str, email: str) -> dict:
    return {
        **postmark_bounce(message_id, email),
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Description": "",
        "Details": "Test spam complaint details",
        "CanActivate": False,
    }


def postmark_engagement(record_type: str, message_id: str, email: str) -> dict:
    """Postmark's Delivery, Open and Click webhooks (the fields anymail reads, and some more)."""
    payload = {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": email,
        "Tag": "",
        "Metadata": {},
        "ServerID": 23,
    }
    if record_type == "Delivery":
        return {**payload, "DeliveredAt": "2026-11-05T16:33:54Z", "Details": "Test delivery webhook details"}
    payload.update(ReceivedAt="2026-11-05T16:40:00Z", UserAgent="Mozilla/5.0", Platform="Desktop")
    if record_type == "Click":
        payload.update(ClickLocation="HTML", OriginalLink="https://summit.example/roofs")
    return {**payload, "FirstOpen": True} if record_type == "Open" else payload


def postmarked(actor, tenant, capture, *, provider_id=POSTMARK_ID, **contact_fields):
    """A campaign email the engine sent, with the id Postmark gave it (campaign_email_send's
    answer under Postmark's anymail backend, recorded as the execution's provider_message_id)."""
    campaign = build(actor, steps=[EMAIL])
    contact = ContactFactory(tenant=tenant, first_name="Ada", **contact_fields)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    drain(capture)
    execution = CampaignStepExecution.objects.get(enrollment__contact=contact)
    CampaignStepExecution.objects.filter(pk=execution.pk).update(provider_message_id=provider_id)
    execution.refresh_from_db()
    return contact, execution


@pytest.fixture
def sent(actor, tenant, django_capture_on_commit_callbacks):
    return postmarked(actor, tenant, django_capture_on_commit_callbacks)


def test_a_hard_bounce_marks_the_address_invalid_once(sent):
    contact, execution = sent

    first = postmark(postmark_bounce(POSTMARK_ID, contact.email))
    after = (row(contact), row(execution))
    second = postmark(postmark_bounce(POSTMARK_ID, contact.email.upper()))

    assert (first.status_code, second.status_code) == (200, 200)
    assert (after[0]["email_invalid"], after[0]["email_invalid_reason"], after[0]["email_opt_out"]) == (
        True,
        "The mail provider reported a bounce: Postmark: smtp;550 5.1.1 The email account that you tried to reach "
        "does not exist.",
        False,
    )
    assert after[0]["email_invalid_date"] is not None
    assert after[1]["result_data"]["delivery"]["status"] == "bounced"
    assert (after[1]["status"], after[1]["error_message"]) == ("completed", "")
    assert (row(contact), row(execution)) == after


def test_a_soft_bounce_changes_nothing(sent):
    contact, execution = sent
    before = (row(contact), row(execution))

    assert postmark(postmark_bounce(POSTMARK_ID, contact.email, kind="SoftBounce")).status_code == 200

    assert (row(contact), row(execution)) == before


def test_a_complaint_opts_the_contact_out_of_email(sent):
    contact, _execution = sent

    assert postmark(postmark_complaint(POSTMARK_ID, contact.email)).status_code == 200

    contact.refresh_from_db()
    assert (contact.email_opt_out, contact.email_opt_out_reason, contact.email_invalid) == (
        True,
        "The recipient marked a campaign email as spam: Postmark: Test spam complaint details",
        False,
    )
    assert contact.email_opt_out_date is not None


def test_delivery_opens_and_clicks_count_once(sent):
    contact, execution = sent

    for record_type in ("Delivery", "Delivery", "Open", "Open", "Click", "Click"):
        assert postmark(postmark_engagement(record_type, POSTMARK_ID, contact.email)).status_code == 200

    execution.refresh_from_db()
    assert execution.result_data["delivery"]["status"] == "delivered"
    assert (execution.opened_at is not None, execution.clicked_at is not None) == (True, True)
    enrollment = CampaignEnrollment.objects.get(pk=execution.enrollment_id)
    assert (enrollment.emails_sent, enrollment.emails_opened, enrollment.emails_clicked) == (1, 1, 1)
    assert (row(contact)["email_invalid"], row(contact)["email_opt_out"]) == (False, False)


@pytest.mark.parametrize("case", ["unknown message", "no message id", "another address"])
def test_an_event_about_no_campaign_email_of_the_address_is_ignored_with_a_200(sent, case):
    contact, _execution = sent
    before = (table(CampaignStepExecution), row(contact))
    payload = postmark_bounce(POSTMARK_ID, contact.email)
    if case == "unknown message":
        payload["MessageID"] = "00000000-0000-0000-0000-000000000000"
    elif case == "no message id":
        del payload["MessageID"]
    else:
        payload["Email"] = "somebody.else@example.com"

    assert postmark(payload).status_code == 200

    assert (table(CampaignStepExecution), row(contact)) == before


@pytest.mark.parametrize("auth", ["", "Basic " + base64.b64encode(b"ridgeline-test:guess").decode()])
def test_an_event_without_the_webhook_secret_is_refused_and_changes_nothing(sent, auth):
    contact, execution = sent
    before = (row(contact), row(execution))

    assert postmark(postmark_bounce(POSTMARK_ID, contact.email), auth=auth).status_code == 400

    assert (row(contact), row(execution)) == before


def test_another_tenants_email_and_contact_are_never_touched(
    tenant, other_tenant, sent, django_capture_on_commit_callbacks
):
    """Their contact has the same address; their email has its own id."""
    contact, execution = sent
    their_actor = Actor(
        tenant=other_tenant, user=member(other_tenant, Role.MANAGER, "their-manager"), source=Source.API
    )
    theirs = postmarked(
        their_actor, other_tenant, django_capture_on_commit_callbacks, provider_id="their-id", email=contact.email
    )
    before = (row(theirs[0]), row(theirs[1]))

    for payload in (
        postmark_bounce(POSTMARK_ID, contact.email),
        postmark_complaint(POSTMARK_ID, contact.email),
        postmark_engagement("Click", POSTMARK_ID, contact.email),
    ):
        assert postmark(payload).status_code == 200

    assert (row(theirs[0]), row(theirs[1])) == before
    contact.refresh_from_db()
    execution.refresh_from_db()
    assert (contact.email_invalid, contact.email_opt_out, execution.clicked_at is not None) == (True, True, True)
