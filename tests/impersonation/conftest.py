"""Clients signed in with real credentials (impersonation binds itself to them)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from crm.services import auth_token_create
from impersonation.models import ImpersonationLog
from tests.conftest import member
from tests.factories import MembershipFactory, UserFactory

REASON = "Support ticket: cannot see their jobs"
START = "/api/v1/impersonation/start/"
STOP = "/api/v1/impersonation/stop/"
STATUS = "/api/v1/impersonation/status/"
LOGS = "/api/v1/impersonation/logs/"


def token_client(user, secret=None) -> APIClient:
    """A client signed in with a real API token of `user` (or the token given)."""
    if secret is None:
        _, secret = auth_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def start(client: APIClient, target, **body):
    return client.post(START, {"target": target.pk, "reason": REASON, **body})


def started_token(client: APIClient, target, **body) -> str:
    response = start(client, target, **body)
    assert response.status_code == 201, response.content
    return response.json()["token"]


def logs() -> list[Any]:
    return list(ImpersonationLog.objects.order_by("pk").values())


@pytest.fixture
def second_admin(tenant):
    return member(tenant, "admin", "second-admin")


@pytest.fixture
def second_owner(tenant):
    return member(tenant, "owner", "second-owner")


@pytest.fixture
def superuser(tenant):
    user = UserFactory(username="root", is_superuser=True, is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role="viewer")
    return user
