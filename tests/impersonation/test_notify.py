"""The tenant setting `notify_impersonated_users`: starting a session leaves a notice on the
target's activity feed, which only they see."""

import pytest

from crm.models import Activity
from impersonation.models import ImpersonationLog
from tests.api import assert_invalid, row
from tests.conftest import client_for
from tests.factories import ActivityFactory
from tests.impersonation.conftest import REASON, start, started_token, token_client

FEED = "/api/v1/activities/"


def notify(tenant, on: bool) -> None:
    tenant.settings = {**tenant.settings, "notify_impersonated_users": on}
    tenant.save()


def feed(client) -> list[int]:
    response = client.get(FEED)
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


@pytest.mark.parametrize("settings", [{}, {"notify_impersonated_users": False}])
def test_no_notice_unless_the_tenant_asks_for_it(tenant, owner, member_user, settings):
    tenant.settings = settings
    tenant.save()

    started_token(token_client(owner), member_user)

    assert ImpersonationLog.objects.count() == 1
    assert not Activity.objects.exists()


def test_the_target_gets_one_notice_from_the_admin(tenant, owner, member_user):
    owner.first_name, owner.last_name = "Sam", "Rivera"
    owner.save()
    notify(tenant, True)

    started_token(token_client(owner), member_user, ticket="SUP-42", duration_minutes=45)

    notice = Activity.objects.get()
    assert (notice.tenant, notice.type, notice.recipient, notice.contact, notice.project) == (
        tenant,
        Activity.Type.NOTICE,
        member_user,
        None,
        None,
    )
    assert notice.subject == f"Your account was viewed by Sam Rivera: {REASON}"
    assert notice.content == f"Reason: {REASON}\nTicket: SUP-42\nAccess: read-only, for up to 45 minutes."
    # Written by the admin themselves, not as an action done while impersonating.
    assert (notice.created_by, notice.performed_by, notice.on_behalf_of, notice.is_impersonated_action) == (
        owner,
        owner,
        None,
        False,
    )


def test_the_notice_names_writes_and_the_username_without_a_full_name(tenant, owner, member_user):
    owner.first_name = owner.last_name = ""
    owner.save()
    notify(tenant, True)

    started_token(token_client(owner), member_user, allow_writes=True)

    notice = Activity.objects.get()
    assert notice.subject == f"Your account was viewed by owner: {REASON}"
    assert notice.content == f"Reason: {REASON}\nAccess: with changes allowed, for up to 30 minutes."


def test_a_long_reason_is_cut_in_the_subject_and_whole_in_the_content(tenant, owner, member_user):
    notify(tenant, True)
    reason = "Checking the estimate totals " * 20

    response = start(token_client(owner), member_user, reason=reason)

    assert response.status_code == 201, response.content
    notice = Activity.objects.get()
    assert len(notice.subject) == 255
    assert notice.subject.endswith("…")
    assert notice.content.startswith(f"Reason: {reason.strip()}\n")


def test_superusers_impersonations_are_notified_too(tenant, superuser, member_user):
    notify(tenant, True)

    started_token(token_client(superuser), member_user)

    notice = Activity.objects.get()
    assert (notice.recipient, notice.created_by) == (member_user, superuser)


def test_a_refused_start_leaves_no_notice(tenant, admin_user, second_admin):
    notify(tenant, True)

    response = start(token_client(admin_user), second_admin)

    assert response.status_code == 403
    assert not Activity.objects.exists()
    assert not ImpersonationLog.objects.exists()


def test_only_the_target_sees_the_notice(tenant, owner, member_user, manager, other_tenant_client):
    notify(tenant, True)
    own = ActivityFactory(tenant=tenant)
    token = started_token(token_client(owner), member_user)
    notice = Activity.objects.get(type=Activity.Type.NOTICE)

    assert feed(client_for(member_user)) == [notice.pk, own.pk]
    assert client_for(member_user).get(f"{FEED}{notice.pk}/").json()["recipient"] == member_user.pk
    # What the target sees, the admin impersonating them sees too; as themselves, not.
    assert feed(token_client(member_user, token)) == [notice.pk, own.pk]
    for other in (owner, manager):
        assert feed(client_for(other)) == [own.pk]
        assert client_for(other).get(f"{FEED}{notice.pk}/").status_code == 404
    assert other_tenant_client.get(f"{FEED}{notice.pk}/").status_code == 404


def test_the_feed_filters_notices_by_type(tenant, owner, member_user):
    notify(tenant, True)
    ActivityFactory(tenant=tenant)
    started_token(token_client(owner), member_user)
    notice = Activity.objects.get(type=Activity.Type.NOTICE)

    response = client_for(member_user).get(FEED, {"type": "notice"})

    assert [item["id"] for item in response.json()["results"]] == [notice.pk]


def test_others_cannot_change_or_delete_the_notice(tenant, owner, member_user):
    notify(tenant, True)
    started_token(token_client(owner), member_user)
    notice = Activity.objects.get()
    before = row(notice)

    assert client_for(owner).patch(f"{FEED}{notice.pk}/", {"subject": "Nothing to see"}).status_code == 404
    assert client_for(owner).delete(f"{FEED}{notice.pk}/").status_code == 404
    assert row(notice) == before


def test_the_setting_is_true_or_false(tenant, owner):
    before = row(tenant)

    response = client_for(owner).patch("/api/v1/tenant/", {"settings": {"notify_impersonated_users": "yes"}})

    assert_invalid(
        response, attr="settings", code="invalid_setting", detail="settings.notify_impersonated_users is true or false."
    )
    assert row(tenant) == before


def test_admins_turn_the_setting_on(tenant, admin_user, member_user):
    tenant.settings = {"ai": {"retention_days": 30}}
    tenant.save()

    response = client_for(admin_user).patch(
        "/api/v1/tenant/", {"settings": {"ai": {"retention_days": 30}, "notify_impersonated_users": True}}
    )

    assert response.status_code == 200, response.content
    tenant.refresh_from_db()
    assert tenant.settings == {"ai": {"retention_days": 30}, "notify_impersonated_users": True}
    assert tenant.notifies_impersonated_users is True
