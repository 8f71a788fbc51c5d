"""Server errors: JSON under /api/ with DEBUG off; a DEBUG page of bounded size with it on."""

import pytest
from django.test import Client

from tests.api import assert_error

pytestmark = [pytest.mark.urls("tests.crm.crash_urls"), pytest.mark.django_db]


@pytest.fixture
def client():
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("url", ["/api/v1/test-crash/", "/api/v1/test-crash-drf/"], ids=["django-view", "drf-view"])
def test_a_server_error_under_api_is_json(client, url):
    response = client.get(url)

    assert_error(response, 500, type="server_error", code="error", detail="Server Error (500)")


def test_a_server_error_elsewhere_is_djangos_page(client):
    response = client.get("/test-crash/")

    assert response.status_code == 500
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert b"<h1>Server Error (500)</h1>" in response.content


@pytest.mark.parametrize("url", ["/api/v1/test-crash/", "/api/v1/test-crash-drf/"], ids=["django-view", "drf-view"])
def test_the_debug_page_of_a_deep_recursion_stays_small(client, settings, url):
    """Django's own page printed every frame's variables in full: 3.5 MB, over three minutes."""
    settings.DEBUG = True

    response = client.get(url)

    page = response.content.decode()
    assert response.status_code == 500
    assert "RecursionError" in page
    assert "frames left out of this page]" in page
    assert page.count('<li class="frame ') == 20 + 1 + 40
    assert "x" * 1001 not in page  # the leaf string, cut at 1,000 characters
    assert len(response.content) < 600_000
