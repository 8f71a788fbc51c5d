"""Tenant isolation: resolving the request's tenant, 404 for other tenants' rows, foreign keys."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import timezone

from campaigns.services import (
    campaign_create,
    campaign_enroll,
    campaign_publish,
    step_create,
    template_create,
    trigger_create,
)
from contacts.models import Contact
from crm.actor import Actor
from crm.api.views import TenantScopedViewSet
from crm.models import AuthToken, Membership, Role
from crm.services import project_contact_add
from crm.urls import router
from impersonation.models import ImpersonationLog
from substatus.models import SubstatusConfig
from tests.api import (
    ACTIVITIES,
    CONTACTS,
    FILTER_CONFIGS,
    FILTER_RESOURCES,
    PROJECTS,
    SAVED_FILTERS,
    SOFT_DELETE_RESOURCES,
    TENANT_RESOURCES,
    assert_error,
    assert_invalid,
    make_conversation,
    make_deleted,
    row,
    table,
    tables,
)
from tests.conftest import client_for, member
from tests.factories import ActivityFactory, ContactFactory, MembershipFactory, ProjectFactory, UserFactory

# Tenant resolution ----------------------------------------------------------------------


@pytest.fixture
def two_tenant_user(tenant, other_tenant):
    """A member of both tenants, with one contact in each."""
    user = UserFactory(username="consultant")
    MembershipFactory(tenant=tenant, user=user, role=Role.MEMBER)
    MembershipFactory(tenant=other_tenant, user=user, role=Role.MEMBER)
    return user


def listed_contacts(response):
    assert response.status_code == 200, response.content
    return {contact["id"] for contact in response.json()["results"]}


@pytest.mark.parametrize("header", ["summit", "SUMMIT", " summit ", "id"])
def test_x_tenant_selects_the_tenant_by_subdomain_or_id(two_tenant_user, tenant, other_tenant, header):
    mine, theirs = ContactFactory(tenant=tenant), ContactFactory(tenant=other_tenant)
    value = str(tenant.pk) if header == "id" else header

    response = client_for(two_tenant_user).get(CONTACTS.url, HTTP_X_TENANT=value)

    assert listed_contacts(response) == {mine.pk}
    assert theirs.pk not in listed_contacts(response)


def test_x_tenant_switches_between_the_users_tenants(two_tenant_user, tenant, other_tenant):
    ContactFactory(tenant=tenant)
    theirs = ContactFactory(tenant=other_tenant)

    response = client_for(two_tenant_user).get(CONTACTS.url, HTTP_X_TENANT="valley")

    assert listed_contacts(response) == {theirs.pk}


def test_without_x_tenant_the_only_membership_is_used(member_user, tenant):
    contact = ContactFactory(tenant=tenant)

    assert listed_contacts(client_for(member_user).get(CONTACTS.url)) == {contact.pk}


def test_without_x_tenant_several_memberships_is_400(two_tenant_user):
    response = client_for(two_tenant_user).get(CONTACTS.url)

    assert_invalid(
        response,
        attr="X-Tenant",
        code="invalid",
        detail="You belong to several tenants: send the X-Tenant header with the tenant's subdomain or id.",
    )


@pytest.mark.parametrize("header", ["valley", "other-id", "no-such-tenant", "999999", "99999999999999999999"])
def test_x_tenant_the_user_does_not_belong_to_is_403(member_user, other_tenant, header):
    value = str(other_tenant.pk) if header == "other-id" else header
    before = tables()

    response = client_for(member_user).post(CONTACTS.url, {"first_name": "Dana"}, HTTP_X_TENANT=value)

    assert_error(response, 403, code="permission_denied", detail=f"You are not an active member of tenant {value!r}.")
    assert tables() == before


@pytest.mark.parametrize("header", ["²", "x\x00", "0" * 5000, "summit; drop table", "١"])
def test_malformed_x_tenant_is_400(member_user, header):
    response = client_for(member_user).get(CONTACTS.url, HTTP_X_TENANT=header)

    assert_invalid(
        response,
        attr="X-Tenant",
        code="invalid",
        detail="X-Tenant must be a tenant's subdomain or numeric id.",
    )


def test_user_without_membership_is_403(tenant):
    lonely = UserFactory(username="lonely")

    response = client_for(lonely).get(CONTACTS.url)

    assert_error(response, 403, code="permission_denied", detail="Your user is not an active member of any tenant.")


@pytest.mark.parametrize(
    "status", [Membership.Status.DEACTIVATED, Membership.Status.SUSPENDED, Membership.Status.PENDING]
)
def test_inactive_membership_does_not_count(two_tenant_user, tenant, other_tenant, status):
    Membership.objects.filter(user=two_tenant_user, tenant=tenant).update(status=status)
    theirs = ContactFactory(tenant=other_tenant)
    ContactFactory(tenant=tenant)
    client = client_for(two_tenant_user)

    # The one active membership is used without a header...
    assert listed_contacts(client.get(CONTACTS.url)) == {theirs.pk}
    # ...and naming the inactive one is refused.
    assert_error(
        client.get(CONTACTS.url, HTTP_X_TENANT="summit"),
        403,
        code="permission_denied",
        detail="You are not an active member of tenant 'summit'.",
    )


def test_inactive_tenant_does_not_count(two_tenant_user, tenant, other_tenant):
    tenant.is_active = False
    tenant.save()
    theirs = ContactFactory(tenant=other_tenant)
    client = client_for(two_tenant_user)

    assert listed_contacts(client.get(CONTACTS.url)) == {theirs.pk}
    assert_error(
        client.get(CONTACTS.url, HTTP_X_TENANT="summit"),
        403,
        code="permission_denied",
        detail="You are not an active member of tenant 'summit'.",
    )


def test_only_inactive_memberships_is_403(member_user, tenant):
    Membership.objects.filter(user=member_user).update(status=Membership.Status.DEACTIVATED)

    assert_error(
        client_for(member_user).get(CONTACTS.url),
        403,
        code="permission_denied",
        detail="Your user is not an active member of any tenant.",
    )


# Another tenant's rows ------------------------------------------------------------------


@pytest.mark.parametrize("resource", SOFT_DELETE_RESOURCES, ids=str)
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", "?deleted=true"), ("post", "restore/"), ("delete", "?purge=true")],
    ids=["retrieve-deleted", "restore", "purge"],
)
def test_another_tenants_deleted_row_is_404_and_unchanged(resource, method, suffix, other_tenant, owner):
    foreign = make_deleted(resource, other_tenant)
    before = row(foreign)

    response = getattr(client_for(owner), method)(resource.detail(foreign.pk) + suffix)

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert row(foreign) == before


@pytest.mark.parametrize(("method", "suffix"), [("get", ""), ("patch", ""), ("delete", ""), ("post", "resend/")])
@pytest.mark.parametrize("pending", [False, True], ids=["member", "invitation"])
def test_another_tenants_membership_is_404_and_unchanged(method, suffix, pending, owner, other_user, other_tenant):
    if pending:
        foreign = Membership.objects.create(
            tenant=other_tenant, status="pending", invited_email="x@example.com", invited_at=timezone.now()
        )
    else:
        foreign = Membership.objects.get(user=other_user)
    before = row(foreign)
    body = {"role": Role.VIEWER} if method == "patch" else None

    response = getattr(client_for(owner), method)(f"/api/v1/memberships/{foreign.pk}/{suffix}", body)

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert row(foreign) == before


def foreign_impersonation_log(other_tenant, other_user) -> ImpersonationLog:
    foreign_owner = member(other_tenant, Role.OWNER, "foreign-owner")
    return ImpersonationLog.objects.create(
        tenant=other_tenant,
        admin_user=foreign_owner,
        impersonated_user=other_user,
        reason="Another tenant's support session",
        expires_at=timezone.now() + timedelta(minutes=30),
        admin_session_key="another-tenants-session",
    )


@pytest.mark.parametrize("mine", ["", "?mine=true"])
def test_another_tenants_impersonation_log_is_404_and_never_listed(mine, owner, other_tenant, other_user):
    foreign = foreign_impersonation_log(other_tenant, other_user)
    before = row(foreign)
    client = client_for(owner)

    detail = client.get(f"/api/v1/impersonation/logs/{foreign.pk}/{mine}")
    listed = client.get(f"/api/v1/impersonation/logs/{mine}")

    assert_error(detail, 404, code="not_found", detail="Not found.")
    assert listed.json()["results"] == []
    assert row(foreign) == before


@pytest.mark.parametrize("resource", TENANT_RESOURCES + FILTER_RESOURCES, ids=str)
def test_lists_never_show_another_tenants_rows(resource, tenant, other_tenant, owner):
    mine = {resource.make(tenant).pk for _ in range(2)}
    resource.make(other_tenant)

    response = client_for(owner).get(resource.list_url)

    assert response.status_code == 200
    assert {item["id"] for item in response.json()["results"]} == mine
    assert response.json()["count"] == 2


@pytest.mark.parametrize("resource", SOFT_DELETE_RESOURCES, ids=str)
def test_deleted_lists_never_show_another_tenants_rows(resource, tenant, other_tenant, owner):
    mine = make_deleted(resource, tenant)
    make_deleted(resource, other_tenant)

    response = client_for(owner).get(resource.url + "?deleted=true")

    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [mine.pk]


def test_membership_list_never_shows_another_tenants_members(owner, admin_user, other_user):
    response = client_for(owner).get("/api/v1/memberships/")

    assert response.status_code == 200
    assert sorted(item["user"]["username"] for item in response.json()["results"]) == ["owner", "tenant-admin"]


# Foreign keys to another tenant's rows ---------------------------------------------------


def foreign_target(field, other_tenant, other_user):
    if field == "assigned_to":
        return other_user
    if field in ("contact",):
        return ContactFactory(tenant=other_tenant)
    return ProjectFactory(tenant=other_tenant)


FOREIGN_KEYS = [
    (CONTACTS, "assigned_to"),
    (PROJECTS, "contact"),
    (PROJECTS, "parent_project"),
    (ACTIVITIES, "contact"),
    (ACTIVITIES, "project"),
]


def foreign_key_error(field, target):
    if field == "assigned_to":
        return {"code": "does_not_exist", "detail": f'User "{target.pk}" is not an active member of this tenant.'}
    return {"code": "does_not_exist", "detail": f'Invalid pk "{target.pk}" - object does not exist.'}


@pytest.mark.parametrize(("resource", "field"), FOREIGN_KEYS, ids=lambda value: str(value))
def test_create_pointing_at_another_tenants_row_is_400_and_writes_nothing(
    resource, field, tenant, other_tenant, owner, other_user
):
    target = foreign_target(field, other_tenant, other_user)
    body = {**resource.payload(tenant), field: target.pk}
    before = tables()

    response = client_for(owner).post(resource.url, body)

    assert_invalid(response, attr=field, **foreign_key_error(field, target))
    assert tables() == before


@pytest.mark.parametrize(("resource", "field"), FOREIGN_KEYS, ids=lambda value: str(value))
@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_pointing_at_another_tenants_row_is_400_and_changes_nothing(
    resource, field, method, tenant, other_tenant, owner, other_user
):
    record = resource.make(tenant)
    target = foreign_target(field, other_tenant, other_user)
    body = {**(resource.payload(tenant) if method == "put" else {}), field: target.pk}
    before = row(record)

    response = getattr(client_for(owner), method)(resource.detail(record.pk), body)

    assert_invalid(response, attr=field, **foreign_key_error(field, target))
    assert row(record) == before


@pytest.mark.parametrize(
    "status", [Membership.Status.DEACTIVATED, Membership.Status.SUSPENDED, Membership.Status.PENDING]
)
def test_contact_cannot_be_assigned_to_an_inactive_member(tenant, owner, member_user, status):
    Membership.objects.filter(user=member_user).update(status=status)
    contact = ContactFactory(tenant=tenant)

    response = client_for(owner).patch(CONTACTS.detail(contact.pk), {"assigned_to": member_user.pk})

    assert_invalid(
        response,
        attr="assigned_to",
        code="does_not_exist",
        detail=f'User "{member_user.pk}" is not an active member of this tenant.',
    )
    assert Contact.objects.get(pk=contact.pk).assigned_to_id is None


@pytest.mark.parametrize("field", ["from_user", "to_user"])
def test_reassign_to_or_from_another_tenants_user_is_400(
    field, tenant, manager, member_user, other_user, django_capture_on_commit_callbacks
):
    ContactFactory(tenant=tenant, assigned_to=member_user)
    body = {"from_user": member_user.pk, "to_user": manager.pk, field: other_user.pk}
    before = table(Contact)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for(manager).post(CONTACTS.url + "reassign/", body)

    membership = "a member" if field == "from_user" else "an active member"  # a former member's contacts move too
    assert_invalid(
        response,
        attr=field,
        code="does_not_exist",
        detail=f'User "{other_user.pk}" is not {membership} of this tenant.',
    )
    assert callbacks == []
    assert table(Contact) == before


def test_overriding_get_queryset_is_refused_at_class_creation():
    with pytest.raises(ImproperlyConfigured, match=r"Sneaky overrides get_queryset\(\); override get_tenant_queryset"):

        class Sneaky(TenantScopedViewSet):
            def get_queryset(self):
                return Contact.objects.all()


# The request's tenant (/api/v1/tenant/) ---------------------------------------------------


def test_the_tenant_endpoint_is_the_request_tenant(two_tenant_user, tenant, other_tenant):
    client = client_for(two_tenant_user)

    assert client.get("/api/v1/tenant/", HTTP_X_TENANT="summit").json()["id"] == tenant.pk
    assert client.get("/api/v1/tenant/", HTTP_X_TENANT=str(other_tenant.pk)).json()["id"] == other_tenant.pk


@pytest.mark.parametrize("method", ["get", "patch"])
def test_another_tenant_is_never_read_nor_changed_through_the_tenant_endpoint(method, owner, other_tenant):
    before = row(other_tenant)
    body = {"name": "Taken Over"} if method == "patch" else None

    response = getattr(client_for(owner), method)("/api/v1/tenant/", body, HTTP_X_TENANT="valley")

    assert_error(response, 403, code="permission_denied", detail="You are not an active member of tenant 'valley'.")
    assert row(other_tenant) == before


def test_changing_ones_tenant_leaves_the_other_unchanged(owner, tenant, other_tenant):
    before = row(other_tenant)

    response = client_for(owner).patch("/api/v1/tenant/", {"name": "Summit Roofing Co", "subdomain": "summit-co"})

    assert response.status_code == 200, response.content
    assert row(other_tenant) == before


# Campaigns: their nested rows, enrollments, templates and actions ------------------------


def campaign_rows(tenant):
    """A published campaign of `tenant` with a step, a trigger, an enrollment, and a template of its own."""
    actor = Actor(tenant=tenant, user=None)
    campaign = campaign_create(actor=actor, name="Welcome")
    step = step_create(actor=actor, campaign=campaign, step_type="create_task", step_config={"title": "Call"})
    trigger = trigger_create(actor=actor, campaign=campaign, trigger_type="manual", trigger_config={})
    campaign_publish(campaign=campaign, actor=actor)
    enrollment = campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    template = template_create(actor=actor, key="ours", name="Ours", campaign_type="drip", steps=[])
    return {
        "campaign": campaign.pk,
        "step": step.pk,
        "trigger": trigger.pk,
        "version": step.version_id,
        "enrollment": enrollment.enrollments[0].pk,
        "template": template.pk,
        "contact": enrollment.enrollments[0].contact_id,
        "execution": enrollment.enrollments[0].executions.get().pk,
    }


def test_campaign_lists_never_show_another_tenants_rows(tenant, other_tenant, owner):
    mine = campaign_rows(tenant)
    campaign_rows(other_tenant)
    client = client_for(owner)

    enrollments = client.get("/api/v1/campaign-enrollments/").json()["results"]
    templates = client.get("/api/v1/campaign-templates/").json()["results"]
    executions = client.get("/api/v1/campaign-executions/").json()["results"]

    assert [row["id"] for row in enrollments] == [mine["enrollment"]]
    assert [row["id"] for row in executions] == [mine["execution"]]
    assert [row["id"] for row in templates if not row["is_default"]] == [mine["template"]]


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("campaigns/{campaign}/enroll/", "contacts", lambda theirs: {"contacts": [theirs["contact"]]}),
        ("campaigns/{campaign}/unenroll/", "contacts", lambda theirs: {"contacts": [theirs["contact"]]}),
        (
            "campaigns/{campaign}/steps/",
            "true_path_step",
            lambda theirs: {"step_type": "conditional", "true_path_step": theirs["step"]},
        ),
        ("campaigns/from-template/", "template", lambda theirs: {"template": theirs["template"]}),
    ],
    ids=["enroll", "unenroll", "step-path", "from-template"],
)
def test_campaign_references_to_another_tenants_rows_are_400_and_write_nothing(
    path, field, body, tenant, other_tenant, owner
):
    mine, theirs = campaign_rows(tenant), campaign_rows(other_tenant)
    before = tables()

    response = client_for(owner).post("/api/v1/" + path.format(**mine), body(theirs), format="json")

    assert response.status_code == 400, response.content
    assert [error["attr"] for error in response.json()["errors"]] == [field]
    assert tables() == before


# Every route with a row in its URL, every method ----------------------------------------
#
# The routes come from the router, so a new endpoint is proven here without anyone listing
# it: a route whose basename has no maker below fails until one is added.


def foreign_rows(tenant, other_user) -> dict[str, dict[str, object]]:
    """For each router basename, the URL kwargs of a row of `tenant` (another tenant's, in the
    test) that a route of that basename names."""
    campaign = campaign_rows(tenant)
    project = ProjectFactory.create(tenant=tenant)
    party = project_contact_add(
        actor=Actor(tenant=tenant, user=None),
        project=project,
        contact=ContactFactory.create(tenant=tenant),
        role="adjuster",
    )
    conversation = make_conversation(tenant).pk
    in_campaign = {"campaign_pk": campaign["campaign"]}
    return {
        "contact": {"pk": ContactFactory.create(tenant=tenant).pk},
        "project": {"pk": project.pk},
        "project-contact": {"project_pk": project.pk, "pk": party.pk},
        "activity": {"pk": ActivityFactory.create(tenant=tenant).pk},
        "membership": {"pk": Membership.objects.get(user=other_user).pk},
        "substatus": {"pk": SubstatusConfig.objects.filter(tenant=tenant).values_list("pk", flat=True).first()},
        "campaign": {"pk": campaign["campaign"]},
        "campaign-step": {**in_campaign, "pk": campaign["step"]},
        "campaign-trigger": {**in_campaign, "pk": campaign["trigger"]},
        "campaign-version": {**in_campaign, "pk": campaign["version"]},
        "campaign-enrollment": {"pk": campaign["enrollment"]},
        "campaign-execution": {"pk": campaign["execution"]},
        "campaign-template": {"pk": campaign["template"]},
        "filter-config": {"pk": FILTER_CONFIGS.make(tenant).pk},
        "saved-filter": {"pk": SAVED_FILTERS.make(tenant).pk},
        "auth-tokens": {"pk": AuthToken.objects.create(user=other_user)[0].pk},
        "impersonation-log": {"pk": foreign_impersonation_log(tenant, other_user).pk},
        "ai-conversation": {"pk": conversation},
        "ai-audit-conversation": {"pk": conversation},
    }


def row_routes() -> list[tuple[str, str, str, bool]]:
    """(basename, URL name, method, whether the URL names the row itself) of every router route
    with a row, or a parent row, in its URL."""
    found = []
    for _prefix, viewset, basename in router.registry:
        allowed = set(getattr(viewset, "http_method_names", ()))
        for route in router.get_routes(viewset):
            detail = "{lookup}" in route.url
            if not detail and "_pk>" not in route.url:
                continue
            for method, action in sorted(route.mapping.items()):
                if method in allowed and hasattr(viewset, action):
                    found.append((basename, route.name.format(basename=basename), method, detail))
    return found


@pytest.mark.parametrize(("basename", "name", "method", "detail"), row_routes(), ids=lambda value: str(value))
def test_every_route_answers_404_for_another_tenants_row_and_changes_nothing(
    basename, name, method, detail, other_tenant, other_user, owner
):
    rows = foreign_rows(other_tenant, other_user)
    assert basename in rows, f"{basename}: add a maker to foreign_rows() so its routes are proven here"
    kwargs = {key: value for key, value in rows[basename].items() if detail or key != "pk"}
    before = tables()

    response = getattr(client_for(owner), method)(reverse(name, kwargs=kwargs) + "/", {}, format="json")

    assert_error(response, 404, code="not_found", detail="Not found.")
    assert tables() == before
