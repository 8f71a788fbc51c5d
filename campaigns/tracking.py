"""What recipients do with a campaign message: unsubscribe, open, click, reply, bounce, complain.

Each event counts once however often it arrives (a pixel loads on every view of the message,
Twilio retries its webhooks): the execution's timestamp is set by a conditional UPDATE (`WHERE
opened_at IS NULL`), and the enrollment's counter moves only when that UPDATE changed a row, in
the same transaction.
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

from campaigns.models import Campaign, CampaignEnrollment, CampaignStepExecution
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
