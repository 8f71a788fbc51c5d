"""Two requests on one row, fired together on two threads against the real database: the loser
gets 404 (the row is gone) or 409 (it changed under it), never a 500.

Each pair ran many times answered 500 before: an activity's PATCH and its DELETE ("Save with
update_fields did not affect any rows"), a contact's restore and its purge, a membership's
PATCH and its DELETE (DoesNotExist after the re-read).
"""

import threading
from typing import Any

import pytest
from django.db import connection

from contacts.models import Contact
from crm.models import Activity, Membership, Role
from tests.conftest import client_for
from tests.factories import ActivityFactory, ContactFactory, MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 25


def fire_together(user: Any, *requests: tuple[str, str, dict[str, Any] | None]) -> list[int]:
    """Send the requests (method, url, body) as `user` on threads released at the same instant;
    their status codes, in order."""
    start = threading.Barrier(len(requests))
    statuses: list[int] = [0] * len(requests)
    errors: list[BaseException] = []

    def run(index: int, method: str, url: str, body: dict[str, Any] | None) -> None:
        client = client_for(user)
        try:
            start.wait()
            statuses[index] = getattr(client, method)(url, body).status_code
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return statuses


@pytest.fixture
def staff():
    tenant = TenantFactory(subdomain="summit")
    owner = UserFactory(username="owner")
    MembershipFactory(tenant=tenant, user=owner, role=Role.OWNER)
    return tenant, owner


def test_an_activitys_patch_and_delete_together(staff):
    tenant, owner = staff
    for _ in range(ROUNDS):
        activity = ActivityFactory(tenant=tenant)
        url = f"/api/v1/activities/{activity.pk}/"
        patched, deleted = fire_together(owner, ("patch", url, {"outcome": "voicemail"}), ("delete", url, None))
        assert (patched, deleted) in {(200, 204), (404, 204)}
        assert not Activity.objects.filter(pk=activity.pk).exists()


def test_a_contacts_restore_and_purge_together(staff):
    tenant, owner = staff
    for _ in range(ROUNDS):
        contact = ContactFactory(tenant=tenant, is_deleted=True)
        url = f"/api/v1/contacts/{contact.pk}/"
        restored, purged = fire_together(owner, ("post", url + "restore/", None), ("delete", url + "?purge=true", None))
        stored = Contact.objects.filter(pk=contact.pk).values_list("is_deleted", flat=True).first()
        # Restored first: the purge finds a live contact (409) and it stays. Purged first: gone (404).
        assert (restored, purged, stored) in {(200, 409, False), (404, 204, None)}


def test_a_memberships_patch_and_delete_together(staff):
    tenant, owner = staff
    for round_ in range(ROUNDS):
        membership = MembershipFactory(tenant=tenant, user=UserFactory(username=f"crew{round_}"), role=Role.MEMBER)
        url = f"/api/v1/memberships/{membership.pk}/"
        patched, deleted = fire_together(owner, ("patch", url, {"role": Role.MANAGER}), ("delete", url, None))
        assert (patched, deleted) in {(200, 204), (404, 204)}
        assert not Membership.objects.filter(pk=membership.pk).exists()
