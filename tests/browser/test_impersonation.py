"""One browser session (Playwright driving Debian's chromium): an owner starts viewing as Jane
from the admin, sees the banner, opens a contact, cannot save it, stops, and finds the session
in the log with its request count."""

import re

import pytest
from playwright.sync_api import expect

from contacts.models import Contact
from impersonation.models import ImpersonationLog
from tests.browser.conftest import log_in
from tests.factories import ContactFactory, MembershipFactory, UserFactory

PASSWORD = "correct horse battery staple"  # noqa: S105 (the factories' test password)


@pytest.fixture
def people(transactional_db, tenant):
    sam = UserFactory(username="sam", first_name="Sam", last_name="Reyes", is_staff=True)
    MembershipFactory(tenant=tenant, user=sam, role="owner")
    jane = UserFactory(username="jane", first_name="Jane", last_name="Doe", is_staff=True)
    MembershipFactory(tenant=tenant, user=jane, role="member")
    contact = ContactFactory(tenant=tenant, first_name="Maria", last_name="Lopez")
    return sam, jane, contact


def test_an_owner_views_the_admin_as_jane_read_only_and_stops(live_server, tenant, people, page, step):
    sam, jane, contact = people
    base = live_server.url
    seen: list[tuple[str, str]] = []  # what reached Django (static files are served before it)
    page.on(
        "requestfinished",
        lambda request: None if "/static/" in request.url else seen.append((request.method, request.url)),
    )
    log_in(page, base, "sam", PASSWORD)
    expect(page.locator("#user-tools")).to_contain_text("Sam")

    page.goto(f"{base}/admin/impersonation/impersonationlog/start/?tenant={tenant.pk}&target={jane.pk}")
    page.fill("#id_reason", "Jane cannot find the Lopez job")
    step("the start form")
    page.click("#impersonation-start-form input[type=submit]")
    banner = page.locator("#impersonation-banner")
    expect(banner).to_contain_text("Viewing as Jane Doe")
    expect(banner).to_contain_text("read-only")
    expect(banner).to_contain_text(re.compile(r"(29|30) min left"))
    step("viewing as Jane")

    page.goto(f"{base}/admin/contacts/contact/{contact.pk}/change/")
    expect(page.locator("#impersonation-banner")).to_contain_text("Viewing as Jane Doe")
    page.fill("#id_first_name", "Mariana")
    with page.expect_response(lambda response: response.request.method == "POST") as saved:
        page.click("input[name=_save]")
    assert saved.value.status == 403
    expect(page.locator("body")).to_contain_text("read-only impersonation")
    step("the save refused")

    page.goto(f"{base}/admin/")
    page.click("#impersonation-stop")
    expect(page.locator("#impersonation-banner")).to_have_count(0)
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("Stopped")
    step("stopped, the log")
    request_count = row.locator("td.field-request_count").inner_text()

    posts = [
        (index, url.removeprefix(base).split("?")[0]) for index, (method, url) in enumerate(seen) if method == "POST"
    ]
    started = next(index for index, path in posts if path == "/admin/impersonation/impersonationlog/start/")
    stopped = next(index for index, path in posts if path == "/admin/impersonation/impersonationlog/stop/")
    in_session = seen[started + 1 : stopped + 1]

    log = ImpersonationLog.objects.get()
    assert (log.admin_user, log.impersonated_user, log.status, log.end_reason) == (sam, jane, "ended", "stopped")
    # Every page, script and refused save from the start's redirect to the Stop (included).
    assert ("POST", f"{base}/admin/contacts/contact/{contact.pk}/change/") in in_session
    assert (log.request_count, log.write_count) == (len(in_session), 0)
    assert request_count == str(len(in_session))
    assert Contact.objects.get(pk=contact.pk).first_name == "Maria"
