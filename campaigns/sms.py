"""The SMS channel: a provider interface (console, Twilio's REST API) and inbound messages.

Outbound, a provider answers with a `Sent`: the provider's message id, or an error that is final
(the number was refused), transient (the request never reached the provider: sent again later),
or `unknown` (the provider may have taken it: a person decides, as for a worker killed mid-send).

Inbound (Twilio's webhook, one URL per tenant), a STOP keyword opts the sender's number out of
SMS, START opts it back in, and anything else is a reply to the latest SMS the tenant's
campaigns sent to that number.

Twilio's status callbacks (one URL per execution, asked for on each SMS when CAMPAIGN_PUBLIC_URL
is a public origin) report the delivery: `delivered`, `undelivered` or `failed` is recorded once
in the execution's `result_data["delivery"]`. An error that is about the number itself (the
recipient unsubscribed at the carrier, the number is not one SMS can reach), in a callback or in
Twilio's answer to the send, opts the contact out of SMS with the code as its reason: the model
has no "invalid number" flag, and opting out is what stops every campaign from sending to it.
"""

import base64
import hashlib
import hmac
import ipaddress
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx2
from django.conf import settings
from django.db.models import F, Func, Q, QuerySet, Value
from django.urls import reverse
from django.utils import timezone

from campaigns.content import MergeContext, render
from campaigns.models import CampaignStepExecution, ExecutionStatus, StepType
from campaigns.tracking import execution_delivery, execution_event
from contacts.models import Contact
from contacts.services import contact_update
from crm.actor import Actor, Source
from crm.models import SMS_FROM, Tenant

STOP_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_KEYWORDS = frozenset({"START", "UNSTOP"})


# Twilio's error codes that are about the number, not the message: each opts the contact out.
PERMANENT_ERRORS = {
    "21610": "the recipient unsubscribed from this sender (replied STOP at the carrier)",
    "21211": "the number is not a valid phone number",
    "21614": "the number is not a mobile number",
    "30005": "the number is unknown to its carrier (it may no longer exist)",
    "30006": "the number is a landline or its carrier cannot receive SMS",
}
# Twilio's final message statuses; the others (queued, sending, sent, ...) are on the way.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})


@dataclass(frozen=True)
class Sent:
    message_id: str = ""
    error: str = ""
    transient: bool = False
    unknown: bool = False
    error_code: str = ""


class SmsProvider(Protocol):
    def send(self, *, to: str, sender: str, body: str, status_callback: str = "") -> Sent: ...


def e164(raw: str) -> str:
    """A contact's phone number in E.164 (+ and digits); empty when it cannot be one.

    A number written without its country code gets SMS_DEFAULT_COUNTRY_CODE."""
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        number = digits
    elif digits.startswith("00"):
        number = digits[2:]
    else:
        code = settings.SMS_DEFAULT_COUNTRY_CODE
        number = digits if digits.startswith(code) and len(digits) > 10 else code + digits
    return f"+{number}" if 8 <= len(number) <= 15 and not number.startswith("0") else ""


class ConsoleProvider:
    """Prints the message (development and `make run`); its id is made up."""

    def send(self, *, to: str, sender: str, body: str, status_callback: str = "") -> Sent:
        sys.stdout.write(f"SMS from {sender or '(default sender)'} to {to}:\n{body}\n")
        sys.stdout.flush()
        return Sent(message_id=f"console-{uuid.uuid4()}")


class TwilioProvider:
    """Twilio's Messages API (form POST, basic auth with the account's SID and auth token); with a
    `status_callback` URL, Twilio posts the message's delivery status there."""

    def send(self, *, to: str, sender: str, body: str, status_callback: str = "") -> Sent:
        sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
        if not sid or not token:
            return Sent(error="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set to send SMS through Twilio.")
        if not sender:
            return Sent(error="No sender number: set the tenant's settings.sms_from or TWILIO_FROM_NUMBER.")
        url = f"{settings.TWILIO_API_URL}/2010-04-01/Accounts/{sid}/Messages.json"
        form = {"To": to, "From": sender, "Body": body}
        if status_callback:
            form["StatusCallback"] = status_callback
        try:
            response = httpx2.post(
                url,
                data=form,
                auth=(sid, token),
                timeout=settings.SMS_TIMEOUT_SECONDS,
            )
        except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
            return Sent(error=f"Twilio could not be reached: {exc}", transient=True)
        except httpx2.HTTPError as exc:  # the request went out; whether Twilio took it is unknown
            return Sent(error=f"No answer from Twilio after sending: {exc}", unknown=True)
        if response.status_code in (200, 201):
            try:
                message_id = response.json()["sid"]
            except (ValueError, KeyError, TypeError):
                return Sent(error=f"Twilio answered {response.status_code} without a message sid.", unknown=True)
            return Sent(message_id=str(message_id))
        detail, code = _twilio_error(response)
        if response.status_code in (429, 503):  # refused for now: nothing was sent
            return Sent(error=f"Twilio answered {response.status_code}: {detail}", transient=True)
        if response.status_code >= 500:
            return Sent(error=f"Twilio answered {response.status_code}: {detail}", unknown=True)
        return Sent(error=f"Twilio refused the SMS ({response.status_code}): {detail}", error_code=code)


def _twilio_error(response: httpx2.Response) -> tuple[str, str]:
    """Twilio's error message and its code (empty when it gave none)."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200], ""
    if isinstance(payload, dict):
        code = str(payload.get("code") or "")
        return f"{payload.get('message', '')} (code {code or '?'})", code
    return str(payload)[:200], ""


def sms_provider() -> SmsProvider:
    return TwilioProvider() if settings.SMS_PROVIDER == "twilio" else ConsoleProvider()


def tenant_sms_sender(tenant: Tenant) -> str:
    sender = (tenant.settings or {}).get(SMS_FROM)
    return sender if isinstance(sender, str) and sender else settings.TWILIO_FROM_NUMBER


def status_callback_url(execution: CampaignStepExecution) -> str:
    """Where Twilio posts the SMS's delivery status; empty while CAMPAIGN_PUBLIC_URL is a local
    origin (localhost, a loopback address), which Twilio could not reach."""
    host = urlsplit(settings.CAMPAIGN_PUBLIC_URL).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    if not host or loopback:
        return ""
    path = reverse("twilio-status-callback", kwargs={"tenant_id": execution.tenant_id, "execution_id": execution.pk})
    return settings.CAMPAIGN_PUBLIC_URL + path


def sms_send(*, execution: CampaignStepExecution, body: str) -> Sent:
    """Send a send_sms execution to its contact: `body` is the step's (or its variant's) text.
    A refusal that is about the number (PERMANENT_ERRORS) also opts the contact out of SMS.

    Preconditions: the engine checked consent (sms_opt_in and not sms_opt_out, a number); the
    execution was loaded with its enrollment, campaign, tenant and contact."""
    enrollment = execution.enrollment
    tenant, contact = enrollment.campaign.tenant, enrollment.contact
    raw = contact.mobile_phone or contact.phone or ""
    to = e164(raw)
    if not to:
        return Sent(error=f"The contact's number {raw!r} is not a phone number SMS can reach.")
    context = MergeContext(tenant=tenant, contact=contact, project=enrollment.project, user=contact.assigned_to)
    sent = sms_provider().send(
        to=to,
        sender=tenant_sms_sender(tenant),
        body=render(body, context),
        status_callback=status_callback_url(execution),
    )
    if sent.error_code in PERMANENT_ERRORS:
        contact_sms_refused(contact=contact, error_code=sent.error_code)
    return sent


def contact_sms_refused(*, contact: Contact, error_code: str, now: datetime | None = None) -> bool:
    """Opt the contact out of SMS for a Twilio error about its number (one of PERMANENT_ERRORS),
    with the date and the code; whether this call did (an earlier opt-out is kept as it was)."""
    now = now or timezone.now()
    actor = Actor(tenant=contact.tenant, user=None, source=Source.CAMPAIGN)
    with actor.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.sms_opt_out:
            return False
        contact_update(
            contact=locked,
            actor=actor,
            sms_opt_out=True,
            sms_opt_out_date=now,
            sms_opt_out_reason=f"Twilio error {error_code}: {PERMANENT_ERRORS[error_code]}.",
        )
    return True


def sms_status_record(*, execution: CampaignStepExecution, status: str, error_code: str = "") -> bool:
    """What Twilio's status callback says of the execution's SMS: a final status is recorded once
    (with its error code), and an error about the number opts the contact out. Whether this call
    changed anything (an intermediate status changes nothing).

    Precondition: the execution was loaded with its enrollment's contact and its tenant."""
    changed = False
    if status in FINAL_STATUSES:
        changed = execution_delivery(execution=execution, status=status, error_code=error_code)
    if status in ("undelivered", "failed") and error_code in PERMANENT_ERRORS:
        changed = contact_sms_refused(contact=execution.enrollment.contact, error_code=error_code) or changed
    return changed


# Inbound -------------------------------------------------------------------------------------


def twilio_signature(*, url: str, params: Mapping[str, Sequence[str]], auth_token: str) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by each POST parameter's
    name and value, sorted by name (then value)."""
    payload = url + "".join(f"{name}{value}" for name in sorted(params) for value in sorted(params[name]))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_signature_valid(*, url: str, params: Mapping[str, Sequence[str]], signature: str) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    if not token or not signature:
        return False
    return hmac.compare_digest(twilio_signature(url=url, params=params, auth_token=token), signature)


def _digits(expression: str) -> Func:
    return Func(F(expression), Value(r"\D"), Value(""), Value("g"), function="regexp_replace")


def contacts_with_number(*, tenant: Tenant, number: str) -> QuerySet[Contact]:
    """The tenant's live contacts whose mobile or other phone is `number`, however it is written
    (with or without the country code, spaces, dashes, brackets)."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return Contact.objects.none()
    code = settings.SMS_DEFAULT_COUNTRY_CODE
    forms = {digits, digits[len(code) :]} if digits.startswith(code) else {digits}
    return (
        Contact.objects.filter(tenant=tenant, is_deleted=False)
        .alias(mobile_digits=_digits("mobile_phone"), phone_digits=_digits("phone"))
        .filter(Q(mobile_digits__in=forms) | Q(phone_digits__in=forms))
        .order_by("pk")
    )


class Inbound:
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    REPLY = "reply"
    UNKNOWN_SENDER = "unknown_sender"


def sms_inbound(*, tenant: Tenant, sender: str, body: str, now: datetime | None = None) -> str:
    """Handle an SMS the tenant received from `sender`; what it was (an `Inbound` value)."""
    now = now or timezone.now()
    contacts = list(contacts_with_number(tenant=tenant, number=sender))
    if not contacts:
        return Inbound.UNKNOWN_SENDER
    keyword = re.sub(r"[^A-Z]", "", body.upper())
    actor = Actor(tenant=tenant, user=None, source=Source.CAMPAIGN)
    if keyword in STOP_KEYWORDS or keyword in START_KEYWORDS:
        stop = keyword in STOP_KEYWORDS
        with actor.atomic():
            for contact in Contact.objects.select_for_update().filter(pk__in=[c.pk for c in contacts]).order_by("pk"):
                if stop and not contact.sms_opt_out:
                    contact_update(
                        contact=contact,
                        actor=actor,
                        sms_opt_out=True,
                        sms_opt_out_date=now,
                        sms_opt_out_reason=f"Replied {keyword} by SMS.",
                    )
                elif not stop and (contact.sms_opt_out or not contact.sms_opt_in):
                    contact_update(
                        contact=contact, actor=actor, sms_opt_out=False, sms_opt_in=True, sms_opt_in_date=now
                    )
        return Inbound.OPTED_OUT if stop else Inbound.OPTED_IN
    latest = (
        CampaignStepExecution.objects.filter(
            tenant=tenant,
            enrollment__contact__in=contacts,
            step__step_type=StepType.SEND_SMS,
            status=ExecutionStatus.COMPLETED,
        )
        .order_by("-completed_at", "-pk")
        .first()
    )
    if latest is not None:
        execution_event(execution=latest, event="replied", now=now)
    return Inbound.REPLY
