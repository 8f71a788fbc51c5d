"""Password guessing is throttled per client address and per account, on the token endpoint
and the admin's log-in alike (django-axes, counted in Redis)."""

from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from crm.auth import client_ip
from crm.models import AuthToken
from tests.api import assert_error
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"  # tests/factories.py UserFactory
TOKEN_URL = "/api/v1/auth/token/"
LIMIT = 10  # LOGIN_FAILURE_LIMIT's default
LOCKOUT = "900"  # LOGIN_LOCKOUT_SECONDS's default, in Retry-After


@pytest.fixture
def dana(db):
    return UserFactory(username="dana", email="dana@example.com")


def attempt(login, password, *, address="192.0.2.10", forwarded=None):
    headers = {"REMOTE_ADDR": address}
    if forwarded:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return APIClient().post(TOKEN_URL, {"username": login, "password": password}, format="json", **headers)


def assert_locked(response):
    assert_error(
        response, 429, code="throttled", detail=f"Request was throttled. Expected available in {LOCKOUT} seconds."
    )
    assert response["Retry-After"] == LOCKOUT


def test_a_new_x_forwarded_for_on_each_request_does_not_sidestep_the_address_count(dana):
    statuses = [attempt(f"guess{n}", "guess", forwarded=f"198.51.100.{n}").status_code for n in range(LIMIT - 1)]
    limit_reached = attempt("guess9", "guess", forwarded="198.51.100.9")
    right_password = attempt("dana", PASSWORD, forwarded="198.51.100.200")

    assert statuses == [400] * (LIMIT - 1)
    assert_locked(limit_reached)
    assert_locked(right_password)
    assert not AuthToken.objects.exists()
    # Another client address is not throttled.
    assert attempt("dana", PASSWORD, address="192.0.2.11").status_code == 200


def test_guessing_at_one_account_from_many_addresses_is_throttled(dana):
    logins = ["dana", "dana@example.com", "DANA@Example.COM", "dana"]  # one account, one count
    statuses = [
        attempt(logins[n % len(logins)], "guess", address=f"203.0.113.{n}").status_code for n in range(LIMIT - 1)
    ]
    limit_reached = attempt("dana@example.com", "guess", address="203.0.113.9")
    right_password = attempt("dana", PASSWORD, address="203.0.113.200")

    assert statuses == [400] * (LIMIT - 1)
    assert_locked(limit_reached)
    assert_locked(right_password)
    assert not AuthToken.objects.exists()
    # Other accounts, from the same addresses, are not throttled.
    UserFactory(username="luis")
    assert attempt("luis", PASSWORD, address="203.0.113.1").status_code == 200


def test_guessing_at_an_unknown_account_is_throttled_the_same(db):
    statuses = [attempt("Nobody", "guess", address=f"203.0.113.{n}").status_code for n in range(LIMIT)]

    assert statuses == [400] * (LIMIT - 1) + [429]
    assert_locked(attempt("nobody", "guess", address="203.0.113.200"))


def test_a_successful_log_in_clears_the_accounts_count(dana):
    failures = [attempt("dana", "guess", address=f"203.0.113.{n}").status_code for n in range(LIMIT - 1)]
    success = attempt("dana", PASSWORD, address="203.0.113.100")
    again = [attempt("dana", "guess", address=f"203.0.113.{n}").status_code for n in range(20, 20 + LIMIT - 1)]

    assert failures == again == [400] * (LIMIT - 1)
    assert success.status_code == 200
    assert_locked(attempt("dana", "guess", address="203.0.113.99"))


def test_logging_in_to_ones_own_account_does_not_clear_the_address_count(dana):
    """axes clears both counts on success by default: an attacker with one account could
    then guess at others from one address for ever."""
    UserFactory(username="mallory")
    guesses = [attempt(f"victim{n}", "guess").status_code for n in range(LIMIT - 1)]
    own = attempt("mallory", PASSWORD)

    assert guesses == [400] * (LIMIT - 1)
    assert own.status_code == 200
    assert_locked(attempt("victim9", "guess"))


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "client"),
    [
        (0, "192.0.2.10", None, "192.0.2.10"),
        (0, "192.0.2.10", "198.51.100.1", "192.0.2.10"),
        (1, "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        (1, "10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (1, "10.0.0.2", " 6.6.6.6 ,198.51.100.1 ", "198.51.100.1"),
        (2, "10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9", "198.51.100.1"),
        (2, "10.0.0.2", "198.51.100.1", "198.51.100.1"),
        (1, "10.0.0.2", None, "10.0.0.2"),
        (1, "10.0.0.2", "", "10.0.0.2"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(settings, proxies, remote, forwarded, client):
    settings.TRUSTED_PROXY_COUNT = proxies
    headers = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {})

    assert client_ip(RequestFactory().post(TOKEN_URL, **headers)) == client


def test_behind_a_proxy_the_address_count_follows_the_address_it_saw(settings, dana):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    statuses = [
        attempt(f"guess{n}", "guess", address=proxy, forwarded=f"6.6.6.{n}, 198.51.100.7").status_code
        for n in range(LIMIT)
    ]

    assert statuses == [400] * (LIMIT - 1) + [429]
    assert_locked(attempt("dana", PASSWORD, address=proxy, forwarded="198.51.100.7"))
    assert attempt("dana", PASSWORD, address=proxy, forwarded="198.51.100.8").status_code == 200


def admin_log_in(client, username, password, address="192.0.2.10"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_admin_log_in_shows_a_lockout_page(db):
    UserFactory(username="ops", is_staff=True, is_superuser=True)
    client = Client()
    failures = [admin_log_in(client, "ops", "guess", f"203.0.113.{n}").status_code for n in range(LIMIT - 1)]

    limit_reached = admin_log_in(client, "ops", "guess", "203.0.113.9")
    right_password = admin_log_in(client, "ops", PASSWORD, "203.0.113.200")

    assert failures == [200] * (LIMIT - 1)  # the form again, with its error
    for response in (limit_reached, right_password):
        assert response.status_code == 429
        assert response["Retry-After"] == LOCKOUT
        assert "Too many failed log-in attempts" in response.content.decode()
        assert "Log-in is refused for 15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # to the log-in page


def test_the_admin_and_the_token_endpoint_share_one_count(dana):
    dana.is_staff = True
    dana.save()
    client = Client()
    api = [attempt("dana", "guess", address=f"203.0.113.{n}").status_code for n in range(LIMIT - 1)]
    admin = admin_log_in(client, "dana@example.com", "guess", "203.0.113.50")

    assert api == [400] * (LIMIT - 1)
    assert admin.status_code == 429
    assert_locked(attempt("dana", PASSWORD, address="203.0.113.51"))
    assert admin_log_in(client, "dana", PASSWORD, "203.0.113.52").status_code == 429


def test_a_successful_admin_log_in_clears_the_accounts_count(dana):
    dana.is_staff = True
    dana.save()
    failures = [attempt("dana", "guess", address=f"203.0.113.{n}").status_code for n in range(LIMIT - 1)]

    logged_in = admin_log_in(Client(), "dana", PASSWORD, "203.0.113.100")

    assert failures == [400] * (LIMIT - 1)
    assert (logged_in.status_code, logged_in["Location"]) == (302, "/admin/")
    assert attempt("dana", "guess", address="203.0.113.101").status_code == 400


@pytest.mark.parametrize(("limit", "lockout"), [(3, 60), (1, 5)])
def test_the_limit_and_the_lockout_come_from_the_settings(settings, dana, limit, lockout):
    settings.AXES_FAILURE_LIMIT = limit
    settings.AXES_COOLOFF_TIME = timedelta(seconds=lockout)

    statuses = [attempt("dana", "guess", address=f"203.0.113.{n}").status_code for n in range(limit)]
    locked = attempt("dana", PASSWORD, address="203.0.113.200")

    assert statuses == [400] * (limit - 1) + [429]
    assert locked.status_code == 429
    assert locked["Retry-After"] == str(lockout)
