"""What recipients reach without logging in: unsubscribe, the open pixel, click redirects (signed
links, `/mail/<tenant>/...`, not part of the API schema); and what providers post: Twilio's
inbound-SMS webhook (`/api/v1/webhooks/twilio/<tenant>/sms/`) and its status callbacks
(`/api/v1/webhooks/twilio/<tenant>/status/<execution>/`), each checked by Twilio's signature; the
mail provider's bounces and complaints, signed by us (`/api/v1/webhooks/email/<tenant>/events/`)
or through django-anymail's webhooks (`/webhooks/anymail/<esp>/tracking/`, its basic auth and the
ESP's own signature), whose `tracking` signal `anymail_tracking_received` takes.

A token that is not ours, is malformed, or belongs to another tenant is a 404, as is a tenant
or row that does not exist: nothing tells a stranger which tokens or tenants are real.
"""

import logging
import re
from base64 import b64decode
from collections.abc import Mapping
from typing import cast

from anymail.signals import AnymailTrackingEvent, EventType
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import path, register_converter
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_serializers import ErrorResponse403Serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from campaigns.links import BadToken, click_read, open_read, unsubscribe_read
from campaigns.models import Campaign, CampaignStepExecution, StepType
from campaigns.sms import sms_inbound, sms_status_record, twilio_signature_valid
from campaigns.tracking import (
    BOUNCE,
    COMPLAINT,
    DELIVERED,
    contact_email_unsubscribe,
    email_event_record,
    email_event_signature_valid,
    email_execution_find,
    execution_event,
)
from contacts.models import Contact
from crm.actor import Actor
from crm.api.parsers import JSONParser
from crm.errors import Forbidden, NotFound
from crm.models import Tenant
from crm.rls import cross_tenant, publishes_url_tenant

logger = logging.getLogger(__name__)

# A transparent 1x1 GIF.
PIXEL = b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ONE_CLICK = "List-Unsubscribe=One-Click"


def _email_execution(tenant_id: int, execution_id: int) -> CampaignStepExecution:
    return get_object_or_404(
        CampaignStepExecution.objects.only("pk", "enrollment_id"),
        pk=execution_id,
        tenant_id=tenant_id,
        step__step_type=StepType.SEND_EMAIL,
    )


@csrf_exempt  # mail clients POST the one-click unsubscribe with no cookie or token (RFC 8058)
@never_cache
@require_http_methods(["GET", "POST"])
@publishes_url_tenant
def unsubscribe(request: HttpRequest, tenant_id: int, token: str) -> HttpResponse:
    """GET: a page asking to confirm (link scanners follow GETs, so a GET changes nothing).
    POST: the contact is opted out of email (the page's button, or a mail client's one-click)."""
    try:
        link = unsubscribe_read(token, tenant_id=tenant_id)
    except BadToken:
        raise Http404 from None
    contact = get_object_or_404(Contact.objects.select_related("tenant"), pk=link.contact_id, tenant_id=tenant_id)
    context = {"tenant": contact.tenant, "email": contact.email, "done": contact.email_opt_out}
    if request.method == "POST":
        campaign = Campaign.objects.filter(pk=link.campaign_id, tenant_id=tenant_id).first()
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        contact_email_unsubscribe(contact=contact, campaign=campaign, one_click=one_click)
        context["done"] = True
    return render(request, "campaigns/unsubscribe.html", context)


@never_cache
@require_http_methods(["GET", "HEAD"])
@publishes_url_tenant
def email_open(request: HttpRequest, tenant_id: int, token: str) -> HttpResponse:
    try:
        execution_id = open_read(token, tenant_id=tenant_id)
    except BadToken:
        raise Http404 from None
    execution_event(execution=_email_execution(tenant_id, execution_id), event="opened")
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_http_methods(["GET", "HEAD"])
@publishes_url_tenant
def email_click(request: HttpRequest, tenant_id: int, token: str) -> HttpResponse:
    """A redirect to the URL that was signed into the token, and nowhere else."""
    try:
        link = click_read(token, tenant_id=tenant_id)
    except BadToken:
        raise Http404 from None
    execution_event(execution=_email_execution(tenant_id, link.execution_id), event="clicked")
    return HttpResponseRedirect(link.url)


class TenantIdConverter:
    """A tenant id that fits a bigint (a longer one is a 404, not a database error)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(TenantIdConverter, "tenant_id")

urlpatterns = [
    path("<tenant_id:tenant_id>/unsubscribe/<str:token>/", unsubscribe, name="campaign-unsubscribe"),
    path("<tenant_id:tenant_id>/open/<str:token>.gif", email_open, name="campaign-open"),
    path("<tenant_id:tenant_id>/click/<str:token>/", email_click, name="campaign-click"),
]


# Providers' webhooks --------------------------------------------------------------------------

TENANT_ID = OpenApiParameter("tenant_id", int, OpenApiParameter.PATH, description="The tenant's id.")
EXECUTION_ID = OpenApiParameter("execution_id", int, OpenApiParameter.PATH, description="The SMS's execution id.")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class TwilioInboundSerializer(serializers.Serializer):
    """The fields of Twilio's request that Ridgeline reads (Twilio sends more; they are signed too)."""

    From = serializers.CharField(max_length=32, help_text="The sender's number, E.164.")
    Body = serializers.CharField(max_length=1600, allow_blank=True, trim_whitespace=False)
    MessageSid = serializers.CharField(max_length=64, required=False)


class TwilioInboundSmsView(APIView):
    """An SMS the tenant's number received, as Twilio posts it (configure this URL on the number).

    Signed by Twilio (X-Twilio-Signature, HMAC-SHA1 with the auth token over this URL and the
    form fields). STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT opt the number out of SMS;
    START or UNSTOP opt it back in; anything else is a reply to the latest campaign SMS sent to
    the number. The answer is empty TwiML (no reply is sent back)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    @extend_schema(
        parameters=[TENANT_ID],
        request=TwilioInboundSerializer,
        responses={
            200: OpenApiResponse(description="Empty TwiML: <Response/>."),
            403: OpenApiResponse(ErrorResponse403Serializer, description="X-Twilio-Signature is missing or wrong."),
        },
    )
    @method_decorator(publishes_url_tenant)
    def post(self, request: Request, tenant_id: int) -> HttpResponse:
        _twilio_signed(request)
        # After the signature: a stranger learns nothing about which tenants exist.
        tenant = get_object_or_404(Tenant, pk=tenant_id, is_active=True)
        payload = TwilioInboundSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        sms_inbound(tenant=tenant, sender=payload.validated_data["From"], body=payload.validated_data["Body"])
        return HttpResponse(EMPTY_TWIML, content_type="text/xml")


class TwilioStatusSerializer(serializers.Serializer):
    """The fields of Twilio's status callback that Ridgeline reads (the others are signed too)."""

    MessageSid = serializers.CharField(max_length=64, help_text="The message's sid, as Twilio answered the send.")
    MessageStatus = serializers.CharField(
        max_length=32, help_text="queued, sending, sent, delivered, undelivered, failed, ..."
    )
    ErrorCode = serializers.RegexField(
        r"^[0-9]{1,10}$", required=False, allow_blank=True, default="", help_text="Twilio's error code, if any."
    )


class TwilioStatusCallbackView(APIView):
    """The delivery status of a campaign SMS, as Twilio posts it to the StatusCallback URL the send
    gave it (signed like the inbound webhook). `delivered`, `undelivered` and `failed` are recorded
    once in the execution's `result_data["delivery"]` (with the error code); an error about the
    number (21610 unsubscribed, 21211 invalid, 21614 not mobile, 30005 unknown, 30006 landline)
    opts the contact out of SMS with the code as reason. A callback about another message than the
    execution's (a person sent it again since) is answered and ignored."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    @extend_schema(
        parameters=[TENANT_ID, EXECUTION_ID],
        request=TwilioStatusSerializer,
        responses={
            204: OpenApiResponse(description="Recorded, recorded before, or nothing to record."),
            403: OpenApiResponse(ErrorResponse403Serializer, description="X-Twilio-Signature is missing or wrong."),
        },
    )
    @method_decorator(publishes_url_tenant)
    def post(self, request: Request, tenant_id: int, execution_id: int) -> HttpResponse:
        _twilio_signed(request)
        execution = get_object_or_404(
            CampaignStepExecution.objects.select_related("enrollment__contact__tenant"),
            pk=execution_id,
            tenant_id=tenant_id,
            step__step_type=StepType.SEND_SMS,
        )
        payload = TwilioStatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        # Empty while the engine still records the send (Twilio can be that quick): the URL is this execution's.
        if execution.provider_message_id and execution.provider_message_id != data["MessageSid"]:
            logger.info(
                "Twilio status %s for %s, not execution %s's message: ignored.",
                data["MessageStatus"],
                data["MessageSid"],
                execution.pk,
            )
        else:
            sms_status_record(execution=execution, status=data["MessageStatus"], error_code=data["ErrorCode"])
        return HttpResponse(status=204)


def _twilio_signed(request: Request) -> None:
    """Refuse (403) a request X-Twilio-Signature does not sign: the public URL and the form."""
    url = settings.CAMPAIGN_PUBLIC_URL + request.get_full_path()
    form = cast(QueryDict, request.data)  # FormParser's
    params = {name: form.getlist(name) for name in form}
    if not twilio_signature_valid(url=url, params=params, signature=request.headers.get("X-Twilio-Signature", "")):
        raise Forbidden("X-Twilio-Signature is missing or does not match this request.", attr="X-Twilio-Signature")


class EmailEventSerializer(serializers.Serializer):
    event = serializers.ChoiceField(
        choices=[BOUNCE, COMPLAINT],
        help_text="bounce: a permanent (hard) bounce, the address is invalid; complaint: marked as spam.",
    )
    message_id = serializers.CharField(
        max_length=255, help_text="The Message-ID of the campaign email it is about, with or without <>."
    )
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class EmailEventView(APIView):
    """A bounce or complaint about a campaign email, from the mail provider or an adapter in front
    of it, signed `X-Ridgeline-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>` with
    CAMPAIGN_EMAIL_EVENTS_SECRET. A bounce sets the contact's `email_invalid`, a complaint its
    `email_opt_out`, with the date and reason; a repeat changes nothing."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[TENANT_ID],
        request=EmailEventSerializer,
        responses={
            204: OpenApiResponse(description="Recorded (or recorded before)."),
            403: OpenApiResponse(ErrorResponse403Serializer, description="X-Ridgeline-Signature is missing or wrong."),
        },
    )
    @method_decorator(publishes_url_tenant)
    def post(self, request: Request, tenant_id: int) -> HttpResponse:
        body = request.body  # read before the parser consumes it: the signature covers these bytes
        if not email_event_signature_valid(body=body, header=request.headers.get("X-Ridgeline-Signature", "")):
            raise Forbidden(
                "X-Ridgeline-Signature is missing, expired or does not match this request.",
                attr="X-Ridgeline-Signature",
            )
        payload = EmailEventSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        execution = email_execution_find(message_id=f"<{data['message_id'].strip().strip('<>')}>", tenant_id=tenant_id)
        if execution is None:
            raise NotFound("No campaign email of this tenant has this Message-ID.", attr="message_id")
        email_event_record(execution=execution, event=data["event"], reason=data["reason"])
        return HttpResponse(status=204)


# django-anymail's tracking webhooks ------------------------------------------------------------

# anymail's normalized event types and what a campaign email records of each; the others
# (queued, sent, deferred, rejected, unsubscribed, ...) change nothing.
ANYMAIL_EVENTS = {
    EventType.BOUNCED: BOUNCE,
    EventType.COMPLAINED: COMPLAINT,
    EventType.DELIVERED: DELIVERED,
    EventType.OPENED: "opened",
    EventType.CLICKED: "clicked",
}
# How ESPs mark a soft bounce that anymail still calls `bounced`: Postmark's Type, Brevo's event,
# SendGrid's type, Amazon SES's bounceType.
SOFT_BOUNCES = frozenset({"SoftBounce", "soft_bounce", "blocked", "Transient"})
_TEMPORARY_SMTP = re.compile(r"\s*(?:smtp;\s*)?4[0-9]{2}\b", re.IGNORECASE)


def _bounce_permanent(event: AnymailTrackingEvent) -> bool:
    """Whether a `bounced` event is a hard bounce: no ESP mark of a soft one, no 4xx SMTP reply.
    A soft bounce (mailbox full, greylisting) says nothing about the address being invalid."""
    esp = event.esp_event if isinstance(event.esp_event, Mapping) else {}
    ses = esp.get("bounce")
    marks = {esp.get("Type"), esp.get("event"), esp.get("type")}
    if isinstance(ses, Mapping):
        marks.add(ses.get("bounceType"))
    return not (marks & SOFT_BOUNCES) and not _TEMPORARY_SMTP.match(event.mta_response or "")


def anymail_tracking_received(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object) -> None:
    """anymail's `tracking` signal (connected in CampaignsConfig.ready): the event, about the
    campaign email the ESP calls `event.message_id` (its provider_message_id), sent to
    `event.recipient`. An event about no campaign email, or about another address than the
    contact's, is logged and ignored: the ESP still gets its 200, or it would retry for days."""
    kind = ANYMAIL_EVENTS.get(event.event_type)
    if kind is None or (kind == BOUNCE and not _bounce_permanent(event)):
        return
    # The ESP's webhooks name no tenant: the message id is unique across them, so the one
    # lookup goes through the cross-tenant path and the event is recorded in the row's tenant.
    with cross_tenant(f"anymail: the campaign email {esp_name} reported {kind} about"):
        execution = email_execution_find(message_id=str(event.message_id or ""))
    if execution is None:
        logger.info("%s reported %s about message %r, no campaign email: ignored.", esp_name, kind, event.message_id)
        return
    address = execution.enrollment.contact.email or ""
    if event.recipient and event.recipient.lower() != address.lower():
        logger.warning(
            "%s reported %s about message %r to %r, but execution %s went to another address: ignored.",
            esp_name,
            kind,
            event.message_id,
            event.recipient,
            execution.pk,
        )
        return
    detail = event.mta_response or event.description or event.reject_reason or ""
    with Actor(tenant=execution.enrollment.contact.tenant, user=None).atomic():
        email_event_record(execution=execution, event=kind, reason=f"{esp_name}: {detail}" if detail else esp_name)
