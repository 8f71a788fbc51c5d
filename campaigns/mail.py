"""A campaign email as it leaves: the tenant's sender, tracked links, an open pixel and unsubscribe.

The step's body is plain text with merge fields. The message carries it as text (links wrapped
in signed click redirects, an unsubscribe line added unless the body has `{{ unsubscribe_url }}`)
and as HTML (the same text escaped, links clickable, plus the open pixel). The
`List-Unsubscribe` and `List-Unsubscribe-Post` headers (RFC 2369, RFC 8058) let mail clients
offer their own one-click unsubscribe.

Sent through a django-anymail backend, the message's id at the ESP (`anymail_status.message_id`)
is what its webhooks name it by, so that is the provider id recorded; through any other backend
(SMTP, console, locmem) it is the Message-ID header.
"""

from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.utils.html import escape, linebreaks

from campaigns.content import MergeContext, render
from campaigns.links import URL_PATTERN, links_rewrite, open_url, unsubscribe_url
from campaigns.models import CampaignStepExecution
from crm.models import EMAIL_FROM, Tenant

UNSUBSCRIBE_LINE = "To stop receiving these emails, unsubscribe: {url}"


class EmailRefused(OSError):
    """The ESP refused the recipient (anymail's AnymailRecipientsRefused: suppressed, invalid):
    nothing was sent. An OSError, as smtplib's refusals are, so it is recorded as a final failure."""


def tenant_sender(tenant: Tenant) -> str:
    """The tenant's sender (`settings["email_from"]`, validated when saved), else DEFAULT_FROM_EMAIL."""
    sender = (tenant.settings or {}).get(EMAIL_FROM)
    return sender if isinstance(sender, str) and sender else settings.DEFAULT_FROM_EMAIL


def _html(text: str) -> str:
    """The text as HTML: escaped, paragraphs kept, URLs clickable (already wrapped for tracking)."""
    parts: list[str] = []
    last = 0
    for match in URL_PATTERN.finditer(text):
        parts.append(escape(text[last : match.start()]))
        url = escape(match.group(0))
        parts.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    parts.append(escape(text[last:]))
    return linebreaks("".join(parts), autoescape=False)


def campaign_email(
    *, execution: CampaignStepExecution, subject: str, body: str, message_id: str
) -> EmailMultiAlternatives:
    """The email of a send_email execution, from the step's (or its variant's) `subject` and `body`.

    Precondition: the execution was loaded with its enrollment, campaign, tenant and contact.
    """
    enrollment = execution.enrollment
    tenant, contact = enrollment.campaign.tenant, enrollment.contact
    unsubscribe = unsubscribe_url(tenant_id=tenant.pk, contact_id=contact.pk, campaign_id=enrollment.campaign_id)
    context = MergeContext(
        tenant=tenant,
        contact=contact,
        project=enrollment.project,
        user=contact.assigned_to,
        unsubscribe_url=unsubscribe,
    )
    text = links_rewrite(render(body, context), tenant_id=tenant.pk, execution_id=execution.pk)
    if unsubscribe not in text:
        text = f"{text}\n\n{UNSUBSCRIBE_LINE.format(url=unsubscribe)}"
    pixel = open_url(tenant_id=tenant.pk, execution_id=execution.pk)
    html = f'{_html(text)}\n<img src="{escape(pixel)}" width="1" height="1" alt="" style="display:none">'
    message = EmailMultiAlternatives(
        subject=render(subject, context),
        body=text,
        from_email=tenant_sender(tenant),
        to=[contact.email or ""],  # consent_refusal refuses a contact without an email
        headers={
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(html, "text/html")
    return message


def campaign_email_send(*, execution: CampaignStepExecution, subject: str, body: str) -> str:
    """Send the execution's email through Django's email backend; its provider id: the ESP's
    message id under django-anymail, else the Message-ID header it was given.

    Raises OSError (connection failures, smtplib's errors, EmailRefused) when it was not sent.
    Precondition: as campaign_email's."""
    message_id = make_msgid(domain=settings.CAMPAIGN_EMAIL_DOMAIN)
    message = campaign_email(execution=execution, subject=subject, body=body, message_id=message_id)
    try:
        message.send()
    except AnymailRecipientsRefused as exc:
        raise EmailRefused(str(exc)) from exc
    status = getattr(message, "anymail_status", None)  # set by anymail's backends only
    esp_id = getattr(status, "message_id", None)  # a set when recipients got different ids: one recipient here
    return str(esp_id) if isinstance(esp_id, str | int) else message_id
