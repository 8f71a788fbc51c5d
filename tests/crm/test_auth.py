"""Authentication: token and session (with CSRF); no credentials is a 401 everywhere."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from contacts.models import Contact
from crm.models import Membership
from substatus.models import SubstatusConfig
from tests.api import RESOURCES, SOFT_DELETE_RESOURCES, api_errors, assert_error, make_deleted, tables
from tests.factories import ContactFactory, ProjectContactFactory, UserFactory

PASSWORD = "correct horse battery staple"  # tests/factories.py UserFactory
TOKEN_URL = "/api/v1/auth/token/"


def endpoints(tenant):
    """Every API operation, with real rows of `tenant` behind the detail URLs."""
    calls = [("get", "/api/v1/me/", None)]
    for resource in RESOURCES:
        record = resource.make(tenant)
        calls += [
            ("get", resource.url, None),
            ("post", resource.url, resource.payload(tenant)),
            ("get", resource.detail(record.pk), None),
            ("put", resource.detail(record.pk), resource.payload(tenant)),
            ("patch", resource.detail(record.pk), resource.change),
            ("delete", resource.detail(record.pk), None),
        ]
    for resource in SOFT_DELETE_RESOURCES:
        deleted = make_deleted(resource, tenant)
        calls += [
            ("get", resource.url + "?deleted=true", None),
            ("post", resource.detail(deleted.pk) + "restore/", None),
            ("delete", resource.detail(deleted.pk) + "?purge=true", None),
        ]
    party = ProjectContactFactory(tenant=tenant)
    parties = f"/api/v1/projects/{party.project_id}/contacts/"
    calls += [
        ("get", parties, None),
        ("post", parties, {"contact": ContactFactory(tenant=tenant).pk, "role": "adjuster"}),
        ("get", f"{parties}{party.pk}/", None),
        ("delete", f"{parties}{party.pk}/", None),
    ]
    substatus = SubstatusConfig.objects.filter(tenant=tenant, entity="project", status="estimate").first()
    body = {"entity": "project", "status": "estimate", "key": "drone_survey", "label": "Drone survey"}
    calls += [
        ("get", "/api/v1/substatuses/", None),
        ("post", "/api/v1/substatuses/", body),
        ("get", f"/api/v1/substatuses/{substatus.pk}/", None),
        ("put", f"/api/v1/substatuses/{substatus.pk}/", {**body, "key": substatus.key}),
        ("patch", f"/api/v1/substatuses/{substatus.pk}/", {"label": "Renamed"}),
        ("delete", f"/api/v1/substatuses/{substatus.pk}/", None),
        ("post", "/api/v1/substatuses/reorder/", {"ids": [substatus.pk]}),
    ]
    membership = Membership.objects.filter(tenant=tenant).first()
    calls += [
        ("post", "/api/v1/contacts/reassign/", {"from_user": membership.user_id, "to_user": None}),
        ("get", "/api/v1/memberships/", None),
        ("post", "/api/v1/memberships/", {"email": "someone@example.com", "role": "member"}),
        ("get", f"/api/v1/memberships/{membership.pk}/", None),
        ("patch", f"/api/v1/memberships/{membership.pk}/", {"role": "viewer"}),
        ("delete", f"/api/v1/memberships/{membership.pk}/", None),
    ]
    return calls


@pytest.mark.parametrize("credentials", [None, "Token not-a-real-token"], ids=["none", "bad-token"])
def test_every_endpoint_needs_credentials(tenant, owner, credentials):
    client = APIClient()
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)
    calls = endpoints(tenant)
    before = tables()

    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json", HTTP_X_TENANT="summit")
        if credentials is None:
            assert_error(
                response, 401, code="not_authenticated", detail="Authentication credentials were not provided."
            )
        else:
            assert_error(response, 401, code="authentication_failed", detail="Invalid token.")
        assert response["WWW-Authenticate"] == "Token"

    assert tables() == before


def token_for(username, password=PASSWORD):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


@pytest.mark.parametrize("login", ["member", "member@example.com", "MEMBER@Example.COM"])
def test_token_by_username_or_email_authenticates_requests(member_user, tenant, login):
    contact = ContactFactory(tenant=tenant)

    response = token_for(login)

    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=member_user).key}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/v1/me/").json()["username"] == "member"
    assert [item["id"] for item in client.get("/api/v1/contacts/").json()["results"]] == [contact.pk]


def test_token_is_stable_across_log_ins(member_user):
    assert token_for("member").json() == token_for("member@example.com").json()


@pytest.mark.parametrize(
    ("login", "password"),
    [("member", "wrong password"), ("nobody", PASSWORD), ("nobody@example.com", "x"), ("inactive", PASSWORD)],
    ids=["bad-password", "unknown-user", "unknown-email", "inactive-user"],
)
def test_bad_credentials_get_one_message_that_does_not_say_which_part(member_user, login, password):
    UserFactory(username="inactive", is_active=False)

    response = token_for(login, password)

    assert_error(
        response,
        400,
        type="validation_error",
        code="authorization",
        detail="Unable to log in with provided credentials.",
        attr="non_field_errors",
    )
    assert not Token.objects.exists()


def test_token_request_names_missing_fields(db):
    response = APIClient().post(TOKEN_URL, {}, format="json")

    errors = api_errors(response, 400, type="validation_error")
    assert errors == [
        {"code": "required", "detail": "This field is required.", "attr": "username"},
        {"code": "required", "detail": "This field is required.", "attr": "password"},
    ]


@pytest.fixture
def session_client(member_user):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="member", password=PASSWORD)
    return client


def test_session_reads_without_csrf_token(session_client, tenant):
    contact = ContactFactory(tenant=tenant)

    response = session_client.get("/api/v1/contacts/")

    assert [item["id"] for item in response.json()["results"]] == [contact.pk]


def test_session_write_without_csrf_token_is_403_and_writes_nothing(session_client, tenant):
    response = session_client.post("/api/v1/contacts/", {"first_name": "Dana"}, format="json")

    assert_error(response, 403, code="permission_denied", detail="CSRF Failed: CSRF cookie not set.")
    assert not Contact.objects.exists()


def test_session_write_with_csrf_token_succeeds(session_client, member_user, tenant):
    session_client.get("/admin/login/")  # any page rendering {% csrf_token %} sets the cookie
    csrf = session_client.cookies["csrftoken"].value

    response = session_client.post("/api/v1/contacts/", {"first_name": "Dana"}, format="json", HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 201, response.content
    assert Contact.objects.get().created_by == member_user


def test_token_requests_need_no_csrf_token(member_user, tenant):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_for('member').json()['token']}")

    response = client.post("/api/v1/contacts/", {"first_name": "Dana"}, format="json")

    assert response.status_code == 201
    assert get_user_model().objects.get(pk=Contact.objects.get().created_by_id) == member_user


def test_a_username_wins_over_another_users_email_spelled_the_same(db):
    by_email = UserFactory(username="dana", email="boss@example.com", password="the email owner's password")
    by_username = UserFactory(username="boss@example.com", email="other@example.com")

    response = APIClient().post(TOKEN_URL, {"username": "boss@example.com", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    assert Token.objects.get(key=response.json()["token"]).user == by_username
    assert not Token.objects.filter(user=by_email).exists()


def test_password_guessing_is_throttled_per_address(db, settings):
    settings.LOGIN_THROTTLE_RATE = "3/minute"
    cache.clear()
    UserFactory(username="dana")
    client = APIClient()
    wrong = {"username": "dana", "password": "guess"}

    statuses = [client.post(TOKEN_URL, wrong, format="json").status_code for _ in range(3)]
    blocked = client.post(TOKEN_URL, {"username": "dana", "password": PASSWORD}, format="json")

    assert statuses == [400, 400, 400]
    assert_error(
        blocked,
        429,
        code="throttled",
        detail="Request was throttled. Expected available in 60 seconds.",
    )
    assert blocked["Retry-After"] == "60"
    assert not Token.objects.exists()
