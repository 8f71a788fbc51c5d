"""Personas and clients shared by every app's tests (see STYLE.md)."""

import os

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from crm.models import Role
from tests.factories import MembershipFactory, TenantFactory, UserFactory


@pytest.fixture(scope="session")
def cache_redis():
    return redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])


@pytest.fixture(autouse=True)
def _empty_cache(cache_redis):
    """Every test starts with an empty cache (failed log-ins are counted there). Only this
    process's keys go: other test runs may share the Redis database, so no FLUSHDB."""
    yield
    keys = list(cache_redis.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*", count=1000))
    if keys:
        cache_redis.delete(*keys)


@pytest.fixture(scope="session")
def broker_redis():
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@pytest.fixture(autouse=True)
def _empty_task_queue(broker_redis):
    """Every test starts with this process's task queue empty: a task a test sent after a commit
    (enrolling asks for a claim) is never run by a later test's worker. The queue's name is this
    process's own (settings/test.py), its priority lists included."""
    yield
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    broker_redis.delete(name, *(f"{name}\x06\x16{priority}" for priority in range(10)))


@pytest.fixture
def tenant(db):
    return TenantFactory(name="Summit Roofing", subdomain="summit")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(name="Valley Roofing", subdomain="valley")


def member(tenant, role: str, username: str):
    return MembershipFactory(tenant=tenant, user=UserFactory(username=username), role=role).user


def client_for(user, tenant=None) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    if tenant is not None:
        client.credentials(HTTP_X_TENANT=tenant.subdomain)
    return client


@pytest.fixture
def owner(tenant):
    return member(tenant, Role.OWNER, "owner")


@pytest.fixture
def admin_user(tenant):
    return member(tenant, Role.ADMIN, "tenant-admin")


@pytest.fixture
def manager(tenant):
    return member(tenant, Role.MANAGER, "manager")


@pytest.fixture
def member_user(tenant):
    return member(tenant, Role.MEMBER, "member")


@pytest.fixture
def viewer(tenant):
    return member(tenant, Role.VIEWER, "viewer")


@pytest.fixture
def other_user(other_tenant):
    return member(other_tenant, Role.OWNER, "other-owner")


@pytest.fixture
def owner_client(owner):
    return client_for(owner)


@pytest.fixture
def admin_client_(admin_user):
    return client_for(admin_user)


@pytest.fixture
def manager_client(manager):
    return client_for(manager)


@pytest.fixture
def member_client(member_user):
    return client_for(member_user)


@pytest.fixture
def viewer_client(viewer):
    return client_for(viewer)


@pytest.fixture
def other_tenant_client(other_user):
    return client_for(other_user)


@pytest.fixture
def anonymous_client():
    return APIClient()


@pytest.fixture
def app_role_requests(settings, django_db_blocker):
    """Every request of the test client runs as the application's database role (tests/rls.py)."""
    from tests.rls import app_role_ready

    with django_db_blocker.unblock():
        app_role_ready()
    settings.MIDDLEWARE = ["tests.rls.AppRoleMiddleware", *settings.MIDDLEWARE]


@pytest.fixture(autouse=True)
def _app_role_everywhere(request):
    """RIDGELINE_TEST_APP_ROLE=1: every test that uses the database sends its requests as the app role."""
    if os.environ.get("RIDGELINE_TEST_APP_ROLE") and "db" in request.fixturenames:
        request.getfixturevalue("app_role_requests")
