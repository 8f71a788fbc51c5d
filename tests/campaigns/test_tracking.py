"""Open pixel and click redirects: signed, tenant-scoped, counted once however often they load."""

import re
import threading

import pytest
from django.core import mail
from django.db import connections
from django.test import Client

from campaigns.links import click_url, open_url
from campaigns.models import CampaignEnrollment, CampaignStepExecution
from campaigns.public import PIXEL
from campaigns.services import campaign_enroll
from campaigns.tracking import execution_event
from tests.api import row
from tests.campaigns.conftest import EMAIL, build
from tests.campaigns.test_engine import drain
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PUBLIC = "http://localhost:8000"
BODY = "Book at https://summit.example/book?day=mon&slot=2. Reviews: http://reviews.example/summit!"


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.CAMPAIGN_PUBLIC_URL = PUBLIC


@pytest.fixture
def sent(actor, tenant, django_capture_on_commit_callbacks):
    """One email sent, with two links in its body: (its execution, the message)."""
    step = {**EMAIL, "step_config": {"subject": "Hi", "body": BODY}}
    campaign = build(actor, steps=[step])
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    drain(django_capture_on_commit_callbacks)
    [message] = mail.outbox
    return CampaignStepExecution.objects.get(enrollment__campaign=campaign), message


def counters(execution) -> tuple:
    execution.refresh_from_db()
    enrollment = CampaignEnrollment.objects.get(pk=execution.enrollment_id)
    return (
        execution.opened_at is not None,
        execution.clicked_at is not None,
        enrollment.emails_opened,
        enrollment.emails_clicked,
    )


def local(url: str) -> str:
    return url.removeprefix(PUBLIC)


def test_links_in_the_body_are_rewritten_to_signed_redirects(sent, tenant):
    """Each link becomes a signed redirect to its own target, in order (the footer's unsubscribe
    link follows), and the HTML part
    carries the open pixel. The signatures hold a timestamp, so the test follows the links
    instead of signing them again (a second may pass between the send and the test)."""
    _execution, message = sent

    links = re.findall(r"https?://[^\s!]+?(?=[.!]?(?:\s|$))", message.body)

    assert "summit.example/book" not in message.body
    assert "reviews.example" not in message.body
    assert all(link.startswith(f"{PUBLIC}/mail/{tenant.pk}/") for link in links)
    [book, reviews, unsubscribe] = links
    assert f"/mail/{tenant.pk}/unsubscribe/" in unsubscribe
    answers = [Client().get(local(link)) for link in (book, reviews)]
    assert [(a.status_code, a["Location"]) for a in answers] == [
        (302, "https://summit.example/book?day=mon&slot=2"),
        (302, "http://reviews.example/summit"),
    ]
    [(html, _mimetype)] = message.alternatives
    [pixel] = re.findall(r'<img src="([^"]+)"', html)
    assert pixel.startswith(f"{PUBLIC}/mail/{tenant.pk}/")
    assert Client().get(local(pixel)).content == PIXEL


def test_a_pixel_loaded_ten_times_counts_one_open(sent, tenant):
    execution, _message = sent
    pixel = local(open_url(tenant_id=tenant.pk, execution_id=execution.pk))
    client = Client()

    responses = [client.get(pixel) for _ in range(10)]

    assert {(r.status_code, r["Content-Type"], r.content) for r in responses} == {(200, "image/gif", PIXEL)}
    assert "no-cache" in responses[0]["Cache-Control"]
    assert counters(execution) == (True, False, 1, 0)


def test_the_first_open_keeps_its_time(sent, tenant):
    execution, _message = sent
    pixel = local(open_url(tenant_id=tenant.pk, execution_id=execution.pk))
    Client().get(pixel)
    execution.refresh_from_db()
    first = execution.opened_at

    Client().get(pixel)

    execution.refresh_from_db()
    assert execution.opened_at == first


def test_a_click_redirects_to_the_signed_url_and_counts_once_with_its_open(sent, tenant):
    execution, _message = sent
    link = local(click_url(tenant_id=tenant.pk, execution_id=execution.pk, url="https://summit.example/book?day=mon"))
    client = Client()

    responses = [client.get(link) for _ in range(3)]

    assert {(r.status_code, r["Location"]) for r in responses} == {(302, "https://summit.example/book?day=mon")}
    assert counters(execution) == (True, True, 1, 1)  # a click implies the open (images may be blocked)


def test_an_open_then_a_click_count_one_each(sent, tenant):
    execution, _message = sent
    Client().get(local(open_url(tenant_id=tenant.pk, execution_id=execution.pk)))

    Client().get(local(click_url(tenant_id=tenant.pk, execution_id=execution.pk, url="https://summit.example/")))

    assert counters(execution) == (True, True, 1, 1)


def test_a_click_link_cannot_be_pointed_elsewhere(sent, tenant):
    """The URL is inside the signature: changing it, or signing it for another purpose, is a 404."""
    execution, _message = sent
    link = local(click_url(tenant_id=tenant.pk, execution_id=execution.pk, url="https://summit.example/"))
    token = link.split("/")[-2]
    payload, rest = token.split(":", 1)
    forged = click_url(tenant_id=tenant.pk, execution_id=execution.pk, url="https://evil.example/")
    forged_payload = local(forged).split("/")[-2].split(":", 1)[0]
    pixel_token = local(open_url(tenant_id=tenant.pk, execution_id=execution.pk)).split("/")[-1].removesuffix(".gif")
    client = Client()

    for path in (
        f"/mail/{tenant.pk}/click/{forged_payload}:{rest}/",  # another URL with this link's signature
        f"/mail/{tenant.pk}/click/{pixel_token}/",  # the pixel's token as a click
        f"/mail/{tenant.pk}/click/{payload}/",
        f"/mail/{tenant.pk}/click/%00%ff/",
    ):
        assert client.get(path).status_code == 404, path

    assert counters(execution) == (False, False, 0, 0)


@pytest.mark.parametrize("kind", ["open", "click"])
def test_another_tenants_tokens_and_garbage_are_404_and_count_nothing(sent, tenant, other_tenant, kind):
    execution, _message = sent
    ours = (
        open_url(tenant_id=tenant.pk, execution_id=execution.pk)
        if kind == "open"
        else click_url(tenant_id=tenant.pk, execution_id=execution.pk, url="https://summit.example/")
    )
    # A token another tenant holds for this (our) execution id, as if it had been issued to them.
    theirs = (
        open_url(tenant_id=other_tenant.pk, execution_id=execution.pk)
        if kind == "open"
        else click_url(tenant_id=other_tenant.pk, execution_id=execution.pk, url="https://summit.example/")
    )
    before = (row(execution), row(execution.enrollment))
    client = Client()
    suffix = ".gif" if kind == "open" else "/"

    for path in (
        local(ours).replace(f"/mail/{tenant.pk}/", f"/mail/{other_tenant.pk}/"),
        local(theirs),  # their URL: the execution is not theirs
        local(theirs).replace(f"/mail/{other_tenant.pk}/", f"/mail/{tenant.pk}/"),
        f"/mail/{tenant.pk}/{kind}/garbage{suffix}",
        f"/mail/{tenant.pk}/{kind}/{'z' * 4000}{suffix}",
        f"/mail/{'1' * 25}/{kind}/garbage{suffix}",
    ):
        assert client.get(path).status_code == 404, path

    assert (row(execution), row(execution.enrollment)) == before


def test_a_token_for_a_deleted_execution_is_404(sent, tenant):
    execution, _message = sent
    pixel = local(open_url(tenant_id=tenant.pk, execution_id=execution.pk))
    execution.delete()

    assert Client().get(pixel).status_code == 404


def test_only_get_reaches_the_pixel(sent, tenant):
    execution, _message = sent

    response = Client().post(local(open_url(tenant_id=tenant.pk, execution_id=execution.pk)))

    assert response.status_code == 405
    assert counters(execution) == (False, False, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_opens_racing_in_parallel_count_once(actor, tenant):
    """Eight requests for the pixel at the same moment, each in its own connection and transaction."""
    campaign = build(actor, steps=[EMAIL])
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    enrollment = CampaignEnrollment.objects.get(campaign=campaign)
    execution = CampaignStepExecution.objects.get(enrollment=enrollment)
    start = threading.Barrier(8)
    recorded: list[bool] = []

    def load() -> None:
        try:
            start.wait()
            recorded.append(execution_event(execution=execution, event="opened"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(recorded) == [False] * 7 + [True]
    assert counters(execution) == (True, False, 1, 0)
