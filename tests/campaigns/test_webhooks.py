"""The webhook step against a real HTTP server on loopback: signed, retried on 5xx, guarded."""

import datetime as dt
import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from campaigns.models import CampaignStepExecution
from campaigns.services import campaign_enroll
from campaigns.webhooks import webhook_post
from tests.campaigns.conftest import TASK, build
from tests.campaigns.test_engine import drain, ledger
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

SECRET = "webhook-test-secret"  # noqa: S105


@pytest.fixture
def receiver():
    """An HTTP server on loopback answering each POST with the next status of `answers` (then 200)."""
    received: list[tuple[dict, bytes]] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received, answers
    server.shutdown()


@pytest.fixture
def webhook_settings(settings):
    settings.CAMPAIGN_WEBHOOK_SECRET = SECRET
    settings.CAMPAIGN_WEBHOOK_ALLOW_PRIVATE = True
    return settings


def webhook_campaign(actor, url):
    step = {"step_type": "webhook", "step_config": {"url": url, "payload": {"source": "storm"}}}
    return build(actor, steps=[step, TASK])


def test_a_webhook_is_posted_once_signed(actor, tenant, receiver, webhook_settings, django_capture_on_commit_callbacks):
    url, received, _ = receiver
    campaign = webhook_campaign(actor, url)
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    drain(django_capture_on_commit_callbacks)

    [(headers, body)] = received
    row = CampaignStepExecution.objects.get(step__step_order=1)
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Ridgeline-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert headers["X-Ridgeline-Delivery"] == f"campaign-execution-{row.pk}"
    payload = json.loads(body)
    assert (payload["execution"], payload["contact"]["email"], payload["data"]) == (
        row.pk,
        contact.email,
        {"source": "storm"},
    )
    assert ledger(campaign) == [(contact.pk, 1, 1, "completed", None), (contact.pk, 2, 1, "completed", None)]
    assert row.result_data == {"status": 200}


def test_a_5xx_is_retried_later_with_the_same_delivery_id(
    actor, tenant, receiver, webhook_settings, django_capture_on_commit_callbacks
):
    url, received, answers = receiver
    answers.append(503)
    campaign = webhook_campaign(actor, url)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])

    drain(django_capture_on_commit_callbacks)
    row = CampaignStepExecution.objects.get(step__step_order=1)
    assert (row.status, row.attempts, row.error_message) == ("pending", 1, "The receiver answered 503.")
    assert timezone.now() < row.scheduled_at <= timezone.now() + dt.timedelta(minutes=1)

    CampaignStepExecution.objects.filter(pk=row.pk).update(scheduled_at=timezone.now())
    drain(django_capture_on_commit_callbacks)

    assert CampaignStepExecution.objects.get(pk=row.pk).status == "completed"
    assert [headers["X-Ridgeline-Delivery"] for headers, _ in received] == [f"campaign-execution-{row.pk}"] * 2


@pytest.mark.parametrize(
    ("allow_private", "secret", "answer", "error"),
    [
        (False, SECRET, 200, "127.0.0.1 resolves to 127.0.0.1, a non-public address."),
        (True, "", 200, "CAMPAIGN_WEBHOOK_SECRET is not set: nothing is sent unsigned."),
        (True, SECRET, 400, "The receiver answered 400."),
    ],
    ids=["loopback", "no-secret", "4xx"],
)
def test_a_refused_or_rejected_webhook_fails_at_once_and_the_enrollment_moves_on(
    allow_private, secret, answer, error, actor, tenant, receiver, settings, django_capture_on_commit_callbacks
):
    url, received, answers = receiver
    answers.append(answer)
    settings.CAMPAIGN_WEBHOOK_SECRET = secret
    settings.CAMPAIGN_WEBHOOK_ALLOW_PRIVATE = allow_private
    campaign = webhook_campaign(actor, url)
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    drain(django_capture_on_commit_callbacks)

    row = CampaignStepExecution.objects.get(step__step_order=1)
    assert (row.status, row.attempts, row.error_message) == ("failed", 0, error)
    assert len(received) == (1 if answer == 400 else 0)
    assert ledger(campaign)[1] == (contact.pk, 2, 1, "completed", None)


@pytest.fixture
def dns(monkeypatch):
    """A DNS whose answers for `hooks.example` change: the first lookup gets `answers[0]`, every
    later one `answers[1]` (a rebinding attacker's name). Other names resolve as usual."""
    real = socket.getaddrinfo
    answers: list[str] = []
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "hooks.example":
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        address = answers[0] if len(lookups) == 1 else answers[1]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def test_the_post_goes_to_the_address_that_was_checked(
    actor, tenant, receiver, webhook_settings, dns, django_capture_on_commit_callbacks
):
    url, received, _ = receiver
    answers, lookups = dns
    answers.extend(["127.0.0.1", "192.0.2.1"])  # checked, then a second answer nothing listens on
    port = url.split(":")[2].split("/")[0]
    campaign = webhook_campaign(actor, f"http://hooks.example:{port}/hook")
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])

    drain(django_capture_on_commit_callbacks)

    assert CampaignStepExecution.objects.get(step__step_order=1).status == "completed"
    assert [headers["Host"] for headers, _ in received] == [f"hooks.example:{port}"]
    assert lookups == ["hooks.example"]


def test_a_name_rebinding_to_loopback_after_the_check_never_reaches_it(
    actor, tenant, receiver, settings, dns, django_capture_on_commit_callbacks
):
    url, received, _ = receiver
    settings.CAMPAIGN_WEBHOOK_SECRET = SECRET
    settings.CAMPAIGN_WEBHOOK_ALLOW_PRIVATE = False
    settings.CAMPAIGN_WEBHOOK_TIMEOUT_SECONDS = 1
    answers, lookups = dns
    answers.extend(["93.184.216.34", "127.0.0.1"])  # public when checked, loopback when connecting
    port = url.split(":")[2].split("/")[0]
    campaign = webhook_campaign(actor, f"http://hooks.example:{port}/hook")
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])

    drain(django_capture_on_commit_callbacks, rounds=1)

    row = CampaignStepExecution.objects.get(step__step_order=1)
    assert row.error_message.startswith("No answer from the receiver")
    assert received == []
    assert lookups == ["hooks.example"]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://hooks.example/x", "Only http(s) URLs are called."),
        ("http://hooks.example:99999/x", "The URL's port is not a port number."),
    ],
)
def test_a_url_that_cannot_be_called_fails_at_once(url, error, settings):
    settings.CAMPAIGN_WEBHOOK_SECRET = SECRET

    delivery = webhook_post(url=url, payload={}, delivery_id="x")

    assert (delivery.status, delivery.error, delivery.transient) == (0, error, False)
