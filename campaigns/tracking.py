"""What recipients do with a campaign message: unsubscribe, open, click, reply, bounce, complain;
and what the provider says of its delivery.

Each event counts once however often it arrives (a pixel loads on every view of the message,
Twilio and the ESPs retry their webhooks): the execution's timestamp is set by a conditional
UPDATE (`WHERE opened_at IS NULL`), and the enrollment's counter moves only when that UPDATE
changed a row, in the same transaction. The provider's last word on delivery (delivered,
bounced, undelivered, failed) is kept once, in the execution's `result_data["delivery"]`.
"""

import hashlib
import hmac
import re
import time
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign, CampaignEnrollment, CampaignStepExecution, StepType
from contacts.models import Contact
from contacts.services import contact_update
from crm.actor import Actor, Source
from crm.models import Tenant

# The execution's timestamp and the enrollment's counter each event sets once.
EVENTS = {
    "opened": ("opened_at", "emails_opened"),
    "clicked": ("clicked_at", "emails_clicked"),
    "replied": ("replied_at", "sms_replied"),
}


def execution_event(*, execution: CampaignStepExecution, event: str, now: datetime | None = None) -> bool:
    """Record `event` on the execution and its enrollment, unless it was recorded before; whether
    this call recorded it. A click also records the open it implies (images may be blocked)."""
    now = now or timezone.now()
    column, counter = EVENTS[event]
    with transaction.atomic():
        recorded = CampaignStepExecution.objects.filter(pk=execution.pk, **{f"{column}__isnull": True}).update(
            **{column: now, "updated_at": now}
        )
        if recorded:
            CampaignEnrollment.objects.filter(pk=execution.enrollment_id).update(
                **{counter: F(counter) + 1, "updated_at": now}
            )
        if event == "clicked":
            execution_event(execution=execution, event="opened", now=now)
    return bool(recorded)


def execution_delivery(
    *,
    execution: CampaignStepExecution,
    status: str,
    error_code: str = "",
    detail: str = "",
    now: datetime | None = None,
) -> bool:
    """Record the provider's final word on the message's delivery (`delivered`, `bounced`,
    `undelivered`, `failed`) in `result_data["delivery"]`, unless one was recorded before; whether
    this call recorded it. The execution's status stays what the send made it (it was sent).

    Safe while the engine still holds the row as `sending`: both write under the row's lock, and
    the engine keeps the result_data it finds."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = CampaignStepExecution.objects.select_for_update().only("pk", "result_data").get(pk=execution.pk)
        if "delivery" in locked.result_data:
            return False
        delivery = {"status": status, "at": now.isoformat()}
        if error_code:
            delivery["error_code"] = error_code
        if detail:
            delivery["detail"] = detail[:1000]
        locked.result_data = {**locked.result_data, "delivery": delivery}
        locked.save(update_fields=["result_data", "updated_at"])
    return True


def _recipient(tenant: Tenant) -> Actor:
    """The contact acting on their own consent: no user, recorded as coming from a campaign."""
    return Actor(tenant=tenant, user=None, source=Source.CAMPAIGN)


def contact_email_unsubscribe(*, contact: Contact, campaign: Campaign | None, one_click: bool) -> bool:
    """Opt the contact out of email, with the date and why; whether this call did (a second
    unsubscribe keeps the first one's date and reason)."""
    actor = _recipient(contact.tenant)
    with actor.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if locked.email_opt_out:
            return False
        how = "one-click unsubscribe from the mail client" if one_click else "unsubscribe link"
        where = f" in campaign “{campaign.name}” (#{campaign.pk})" if campaign is not None else ""
        contact_update(
            contact=locked,
            actor=actor,
            email_opt_out=True,
            email_opt_out_date=timezone.now(),
            email_opt_out_reason=f"The recipient used the {how}{where}.",
        )
    return True


# Bounces and complaints ------------------------------------------------------------------------

BOUNCE = "bounce"
COMPLAINT = "complaint"
DELIVERED = "delivered"
_SIGNATURE = re.compile(r"t=(?P<t>[0-9]{1,12}),v1=(?P<v1>[0-9a-f]{64})")


def email_event_signature_valid(*, body: bytes, header: str, now: float | None = None) -> bool:
    """`X-Ridgeline-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>`, under
    CAMPAIGN_EMAIL_EVENTS_SECRET, made within the tolerance (an old request is not replayed)."""
    secret = settings.CAMPAIGN_EMAIL_EVENTS_SECRET
    match = _SIGNATURE.fullmatch(header.strip())
    if not secret or match is None:
        return False
    if (
        abs((now if now is not None else time.time()) - int(match["t"]))
        > settings.CAMPAIGN_EMAIL_EVENTS_TOLERANCE_SECONDS
    ):
        return False
    expected = hmac.new(secret.encode(), match["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match["v1"])


def email_execution_find(*, message_id: str, tenant_id: int | None = None) -> CampaignStepExecution | None:
    """The campaign email the provider calls `message_id` (what the send recorded as
    provider_message_id), in `tenant_id` when given; None when no email, or more than one, has it."""
    if not message_id:
        return None
    executions = CampaignStepExecution.objects.select_related("enrollment__contact__tenant").filter(
        provider_message_id=message_id, step__step_type=StepType.SEND_EMAIL
    )
    if tenant_id is not None:
        executions = executions.filter(tenant_id=tenant_id)
    found = list(executions[:2])
    return found[0] if len(found) == 1 else None


def email_event_record(*, execution: CampaignStepExecution, event: str, reason: str = "") -> bool:
    """What the mail provider reported about a campaign email, once: a (permanent) bounce is its
    delivery and marks the address invalid, a complaint opts the contact out, delivered is its
    delivery, opened and clicked its engagement. Whether this call changed anything.

    Precondition: the execution was loaded with its enrollment's contact."""
    if event == BOUNCE:
        recorded = execution_delivery(execution=execution, status="bounced", detail=reason)
        return contact_email_event(contact=execution.enrollment.contact, event=BOUNCE, reason=reason) or recorded
    if event == COMPLAINT:
        return contact_email_event(contact=execution.enrollment.contact, event=COMPLAINT, reason=reason)
    if event == DELIVERED:
        return execution_delivery(execution=execution, status=DELIVERED)
    return execution_event(execution=execution, event=event)


def contact_email_event(*, contact: Contact, event: str, reason: str) -> bool:
    """A hard bounce marks the contact's email invalid; a complaint (marked as spam) opts it out
    of email. Whether this call changed the contact (a repeat keeps the first date and reason)."""
    actor = _recipient(contact.tenant)
    with actor.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        if event == BOUNCE and not locked.email_invalid:
            contact_update(
                contact=locked,
                actor=actor,
                email_invalid=True,
                email_invalid_date=timezone.now(),
                email_invalid_reason=f"The mail provider reported a bounce: {reason or 'no reason given'}",
            )
            return True
        if event == COMPLAINT and not locked.email_opt_out:
            contact_update(
                contact=locked,
                actor=actor,
                email_opt_out=True,
                email_opt_out_date=timezone.now(),
                email_opt_out_reason=f"The recipient marked a campaign email as spam: {reason or 'no reason given'}",
            )
            return True
    return False
