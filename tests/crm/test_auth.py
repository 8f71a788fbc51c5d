"""Authentication: tokens (django-rest-knox) and session (with CSRF); no credentials is a 401 everywhere."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from knox.crypto import hash_token
from rest_framework.test import APIClient

from contacts.models import Contact
from crm.models import AuthToken, Membership
from crm.tasks import auth_tokens_purge_expired_task
from substatus.models import SubstatusConfig
from tests.api import RESOURCES, SOFT_DELETE_RESOURCES, api_errors, assert_error, make_deleted, tables
from tests.factories import ContactFactory, ProjectContactFactory, UserFactory

PASSWORD = "correct horse battery staple"  # tests/factories.py UserFactory
TOKEN_URL = "/api/v1/auth/token/"
TOKENS_URL = "/api/v1/auth/tokens/"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TTL = timedelta(days=14)


def endpoints(tenant):
    """Every API operation, with real rows of `tenant` behind the detail URLs."""
    calls = [("get", "/api/v1/me/", None), ("get", TOKENS_URL, None)]
    calls += [("post", "/api/v1/auth/logout/", None), ("post", "/api/v1/auth/logout-all/", None)]
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


@pytest.mark.parametrize(
    "credentials",
    [None, "Token not-a-real-token", "Token rdg_0123456789abcdef", b"Token \xe9t\xe9".decode("latin-1")],
    ids=["none", "bad-token", "unknown-token", "not-utf8"],
)
def test_every_endpoint_needs_credentials(tenant, owner, credentials):
    AuthToken.objects.create(user=owner)
    client = APIClient()
    if credentials:
        client.credentials(HTTP_AUTHORIZATION=credentials)
    calls = endpoints(tenant)
    before = tables(), list(AuthToken.objects.values())

    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json", HTTP_X_TENANT="summit")
        if credentials is None:
            assert_error(
                response, 401, code="not_authenticated", detail="Authentication credentials were not provided."
            )
        else:
            assert_error(response, 401, code="authentication_failed", detail="Invalid token.")
        assert response["WWW-Authenticate"] == "Token"

    assert (tables(), list(AuthToken.objects.values())) == before


def log_in(username, password=PASSWORD, **extra):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def token_client(token, **extra):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}", **extra)
    return client


@pytest.mark.parametrize("login", ["member", "member@example.com", "MEMBER@Example.COM"])
def test_token_by_username_or_email_authenticates_requests(member_user, tenant, login):
    contact = ContactFactory(tenant=tenant)

    with time_machine.travel(NOW, tick=False):
        response = log_in(login)

        assert response.status_code == 200
        body = response.json()
        assert list(body) == ["token", "expiry"]
        assert body["expiry"] == "2026-03-16T09:30:00Z"  # 14 days
        token = AuthToken.objects.get()
        assert (token.user, token.digest, token.token_key) == (
            member_user,
            hash_token(body["token"]),
            body["token"][:15],
        )
        assert body["token"].startswith("rdg_")
        assert len(body["token"]) == 4 + 64
        member_user.refresh_from_db()
        assert member_user.last_login == NOW
        client = token_client(body["token"])
        assert client.get("/api/v1/me/").json()["username"] == "member"
        assert [item["id"] for item in client.get("/api/v1/contacts/").json()["results"]] == [contact.pk]


def test_the_token_is_never_stored(member_user):
    token = log_in("member").json()["token"]

    stored = [str(value) for row in AuthToken.objects.values() for value in row.values()]
    assert not any(token in value or token[15:] in value for value in stored)


def test_every_log_in_gets_a_new_token_and_both_work(member_user):
    first, second = log_in("member").json()["token"], log_in("member@example.com").json()["token"]

    assert first != second
    assert AuthToken.objects.filter(user=member_user).count() == 2
    assert token_client(first).get("/api/v1/me/").status_code == 200
    assert token_client(second).get("/api/v1/me/").status_code == 200


@pytest.mark.parametrize(
    ("login", "password"),
    [("member", "wrong password"), ("nobody", PASSWORD), ("nobody@example.com", "x"), ("inactive", PASSWORD)],
    ids=["bad-password", "unknown-user", "unknown-email", "inactive-user"],
)
def test_bad_credentials_get_one_message_that_does_not_say_which_part(member_user, login, password):
    UserFactory(username="inactive", is_active=False)

    response = log_in(login, password)

    assert_error(
        response,
        400,
        type="validation_error",
        code="authorization",
        detail="Unable to log in with provided credentials.",
        attr="non_field_errors",
    )
    assert not AuthToken.objects.exists()


def test_token_request_names_missing_fields(db):
    response = APIClient().post(TOKEN_URL, {}, format="json")

    errors = api_errors(response, 400, type="validation_error")
    assert errors == [
        {"code": "required", "detail": "This field is required.", "attr": "username"},
        {"code": "required", "detail": "This field is required.", "attr": "password"},
    ]


def test_a_username_wins_over_another_users_email_spelled_the_same(db):
    by_email = UserFactory(username="dana", email="boss@example.com", password="the email owner's password")
    by_username = UserFactory(username="boss@example.com", email="other@example.com")

    response = log_in("boss@example.com")

    assert response.status_code == 200
    assert AuthToken.objects.get(digest=hash_token(response.json()["token"])).user == by_username
    assert not AuthToken.objects.filter(user=by_email).exists()


# Expiry: 14 days after the last use.


def test_a_token_ends_14_days_after_its_last_use(member_user):
    with time_machine.travel(NOW, tick=False):
        token = log_in("member").json()["token"]
    client = token_client(token)

    with time_machine.travel(NOW + timedelta(days=10), tick=False):
        assert client.get("/api/v1/me/").status_code == 200
    stored = AuthToken.objects.get()
    assert (stored.expiry, stored.last_used_at) == (NOW + timedelta(days=24), NOW + timedelta(days=10))
    with time_machine.travel(NOW + timedelta(days=23), tick=False):
        assert client.get("/api/v1/me/").status_code == 200
    with time_machine.travel(NOW + timedelta(days=37, seconds=1), tick=False):
        assert_error(client.get("/api/v1/me/"), 401, code="authentication_failed", detail="Invalid token.")


def test_use_is_written_at_most_once_a_minute(member_user, django_assert_num_queries):
    with time_machine.travel(NOW, tick=False):
        token = log_in("member").json()["token"]
    client = token_client(token)

    with time_machine.travel(NOW + timedelta(seconds=30), tick=False):
        client.get(TOKENS_URL)  # the first use is written
    with time_machine.travel(NOW + timedelta(seconds=89), tick=False), django_assert_num_queries(3):
        client.get(TOKENS_URL)  # the token and its user, the count, the page: no UPDATE

    stored = AuthToken.objects.get()
    assert (stored.last_used_at, stored.expiry) == (NOW + timedelta(seconds=30), NOW + timedelta(seconds=30) + TTL)


def test_use_never_extends_a_token_past_its_max_expiry(member_user):
    token, secret = AuthToken.objects.create(user=member_user)
    AuthToken.objects.filter(pk=token.pk).update(max_expiry=token.expiry)

    with time_machine.travel(token.expiry - timedelta(days=1)):
        assert token_client(secret).get("/api/v1/me/").status_code == 200
    token.refresh_from_db()
    assert token.expiry == token.max_expiry
    with time_machine.travel(token.max_expiry + timedelta(seconds=1)):
        assert token_client(secret).get("/api/v1/me/").status_code == 401


def test_the_daily_task_deletes_expired_tokens_only(member_user):
    with time_machine.travel(NOW, tick=False):
        old, _ = AuthToken.objects.create(user=member_user)
    with time_machine.travel(NOW + timedelta(days=10), tick=False):
        live, _ = AuthToken.objects.create(user=member_user)

    with time_machine.travel(NOW + TTL + timedelta(seconds=1), tick=False):
        assert auth_tokens_purge_expired_task.apply().get() == 1

    assert list(AuthToken.objects.all()) == [live]


# Listing and revoking.


def test_a_user_lists_their_live_tokens_without_their_secrets(member_user, other_user):
    with time_machine.travel(NOW, tick=False):
        first = log_in("member").json()["token"]
        expired, _ = AuthToken.objects.create(user=member_user, expiry=-timedelta(seconds=1))
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        second = log_in("member").json()["token"]
        log_in("other-owner")
        response = token_client(second).get(TOKENS_URL)

    assert response.status_code == 200
    first_row = AuthToken.objects.get(digest=hash_token(first))
    second_row = AuthToken.objects.get(digest=hash_token(second))
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": second_row.pk,
                "token_key": second[:15],
                "created": "2026-03-02T10:30:00Z",
                "expiry": "2026-03-16T10:30:00Z",
                "last_used_at": "2026-03-02T10:30:00Z",
                "current": True,
            },
            {
                "id": first_row.pk,
                "token_key": first[:15],
                "created": "2026-03-02T09:30:00Z",
                "expiry": "2026-03-16T09:30:00Z",
                "last_used_at": None,
                "current": False,
            },
        ],
    }


def test_a_user_revokes_one_of_their_tokens(member_user):
    keep, revoke = log_in("member").json()["token"], log_in("member").json()["token"]
    revoked = AuthToken.objects.get(digest=hash_token(revoke))

    response = token_client(keep).delete(f"{TOKENS_URL}{revoked.pk}/")

    assert response.status_code == 204
    assert list(AuthToken.objects.values_list("digest", flat=True)) == [hash_token(keep)]
    assert_error(token_client(revoke).get("/api/v1/me/"), 401, code="authentication_failed", detail="Invalid token.")


def test_another_users_token_is_not_found_and_stays(member_user, other_user):
    mine = log_in("member").json()["token"]
    theirs = AuthToken.objects.get(digest=hash_token(log_in("other-owner").json()["token"]))

    response = token_client(mine).delete(f"{TOKENS_URL}{theirs.pk}/")

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert AuthToken.objects.filter(pk=theirs.pk).exists()


def test_log_out_revokes_the_token_it_was_sent_with(member_user, other_user):
    current, other = log_in("member").json()["token"], log_in("member").json()["token"]
    theirs = log_in("other-owner").json()["token"]

    response = token_client(current).post("/api/v1/auth/logout/")

    assert response.status_code == 204
    assert token_client(current).get("/api/v1/me/").status_code == 401
    assert token_client(other).get("/api/v1/me/").status_code == 200
    assert token_client(theirs).get("/api/v1/me/").status_code == 200


def test_log_out_everywhere_revokes_every_token_of_the_user(member_user, other_user):
    tokens = [log_in("member").json()["token"] for _ in range(3)]
    theirs = log_in("other-owner").json()["token"]

    response = token_client(tokens[0]).post("/api/v1/auth/logout-all/")

    assert response.status_code == 204
    assert not AuthToken.objects.filter(user=member_user).exists()
    assert [token_client(token).get("/api/v1/me/").status_code for token in tokens] == [401, 401, 401]
    assert token_client(theirs).get("/api/v1/me/").status_code == 200


def test_log_out_with_a_session_ends_the_session_and_keeps_tokens(member_user):
    token = log_in("member").json()["token"]
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member_user)
    client.get("/admin/login/")

    response = client.post("/api/v1/auth/logout/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)

    assert response.status_code == 204
    assert client.get("/api/v1/me/").status_code == 401
    assert token_client(token).get("/api/v1/me/").status_code == 200


# Tokens end with the credentials they were issued for.


def test_a_password_change_ends_every_token(member_user, other_user):
    tokens = [log_in("member").json()["token"] for _ in range(2)]
    theirs = log_in("other-owner").json()["token"]

    member_user.set_password("a new password for the member")
    member_user.save()

    assert not AuthToken.objects.filter(user=member_user).exists()
    assert [token_client(token).get("/api/v1/me/").status_code for token in tokens] == [401, 401]
    assert token_client(theirs).get("/api/v1/me/").status_code == 200
    assert log_in("member", "a new password for the member").status_code == 200


def test_a_password_set_in_the_admin_ends_every_token(member_user):
    token = log_in("member").json()["token"]
    superuser = UserFactory(username="ops", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(superuser)

    response = admin.post(
        f"/admin/crm/user/{member_user.pk}/password/",
        {"password1": "an admin-chosen password", "password2": "an admin-chosen password", "usable_password": "true"},
    )

    assert response.status_code == 302, response.content
    assert token_client(token).get("/api/v1/me/").status_code == 401
    assert not AuthToken.objects.filter(user=member_user).exists()


def test_deactivation_ends_every_token_for_good(member_user):
    token = log_in("member").json()["token"]

    get_user_model().objects.filter(pk=member_user.pk).update(is_active=False)
    get_user_model().objects.filter(pk=member_user.pk).update(is_active=True)

    assert not AuthToken.objects.exists()
    assert token_client(token).get("/api/v1/me/").status_code == 401


def test_other_changes_to_the_user_keep_their_tokens(member_user):
    token = log_in("member").json()["token"]

    member_user.first_name = "Dana"
    member_user.save()
    log_in("member")  # saves last_login

    assert AuthToken.objects.filter(user=member_user).count() == 2
    assert token_client(token).get("/api/v1/me/").status_code == 200


# Session authentication.


@pytest.fixture
def session_client(member_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(member_user)
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
    client.credentials(HTTP_AUTHORIZATION=f"Token {log_in('member').json()['token']}")

    response = client.post("/api/v1/contacts/", {"first_name": "Dana"}, format="json")

    assert response.status_code == 201
    assert get_user_model().objects.get(pk=Contact.objects.get().created_by_id) == member_user
