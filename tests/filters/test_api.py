"""?filter= and ?saved_filter= on the lists, validate/count, the catalog and saved-filter endpoints."""

import json
from urllib.parse import quote

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from crm.actor import Actor
from crm.models import Role
from filters.models import FilterConfig, SavedFilter
from filters.services import filter_config_update
from tests.api import api_errors, assert_error, assert_invalid, row, tables
from tests.conftest import client_for, member
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory


def url(path: str, tree) -> str:
    return f"{path}?filter={quote(json.dumps(tree))}"


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


@pytest.fixture
def contacts(tenant, owner):
    return {
        "hot": ContactFactory(tenant=tenant, first_name="Hot", stage="qualified", lead_score=90, assigned_to=owner),
        "cold": ContactFactory(tenant=tenant, first_name="Cold", stage="new", lead_score=10),
        "won": ContactFactory(tenant=tenant, first_name="Won", stage="won", lead_score=95, assigned_to=owner),
    }


# The lists -------------------------------------------------------------------------------


def test_filter_narrows_contacts_and_ands_with_the_other_parameters(owner_client, contacts):
    tree = {"field": "lead_score", "op": "greater_than", "value": 50}

    assert ids(owner_client.get(url("/api/v1/contacts/", tree))) == {contacts["hot"].pk, contacts["won"].pk}
    assert ids(owner_client.get(url("/api/v1/contacts/", tree) + "&stage=won")) == {contacts["won"].pk}
    assert ids(owner_client.get(url("/api/v1/contacts/", tree) + "&search=hot")) == {contacts["hot"].pk}


def test_filter_on_projects_and_activities(owner_client, tenant, contacts):
    job = ProjectFactory(tenant=tenant, status="scheduled")
    ProjectFactory(tenant=tenant, status="estimate")
    call = ActivityFactory(tenant=tenant, type="door_knock")
    ActivityFactory(tenant=tenant, type="call")

    projects = owner_client.get(url("/api/v1/projects/", {"field": "status", "op": "in", "value": ["scheduled"]}))
    activities = owner_client.get(url("/api/v1/activities/", {"field": "type", "op": "in", "value": ["door_knock"]}))

    assert ids(projects) == {job.pk}
    assert ids(activities) == {call.pk}


def test_a_bad_filter_is_a_400_with_one_error_per_problem(owner_client, contacts):
    tree = {
        "and": [{"field": "password", "op": "equals", "value": "x"}, {"field": "stage", "op": "in", "value": "new"}]
    }

    errors = api_errors(owner_client.get(url("/api/v1/contacts/", tree)), 400, type="validation_error")

    assert errors == [
        {"code": "invalid_filter", "detail": "and[0].field: unknown field 'password' for contacts", "attr": "filter"},
        {"code": "invalid_filter", "detail": "and[1].value: expected a list of 1 to 500 values", "attr": "filter"},
    ]


def test_a_filter_that_is_not_json_is_a_400(owner_client):
    response = owner_client.get("/api/v1/contacts/?filter=%7Bnope")
    errors = api_errors(response, 400, type="validation_error")
    assert errors[0]["attr"] == "filter"
    assert errors[0]["detail"].startswith("filter: not valid JSON")


def test_a_filtered_page_costs_the_queries_an_unfiltered_one_does(owner_client, contacts):
    tree = {
        "and": [
            {"field": "stage", "op": "in", "value": ["new", "qualified"]},
            {
                "or": [
                    {"field": "address_city", "op": "contains", "value": "a"},
                    {"field": "created_at", "op": "last_n_days", "value": 30},
                ]
            },
            {"not": {"field": "is_organization", "op": "equals", "value": True}},
            {"field": "assigned_to", "op": "equals", "value": "me"},
        ]
    }
    owner_client.get(url("/api/v1/contacts/", tree))  # the catalog is cached from here on

    with CaptureQueriesContext(connection) as plain:
        assert owner_client.get("/api/v1/contacts/").status_code == 200
    with CaptureQueriesContext(connection) as filtered:
        assert ids(owner_client.get(url("/api/v1/contacts/", tree))) == {contacts["hot"].pk}

    assert len(filtered) == len(plain), [q["sql"] for q in filtered.captured_queries]


def test_an_injection_in_the_url_is_only_a_parameter(owner_client, contacts):
    attack = "'); DELETE FROM contacts; --"

    response = owner_client.get(url("/api/v1/contacts/", {"field": "address_city", "op": "equals", "value": attack}))

    assert ids(response) == set()
    assert len(ids(owner_client.get("/api/v1/contacts/"))) == 3


# Saved filters on the lists ---------------------------------------------------------------


def saved(tenant, owner, **fields) -> SavedFilter:
    defaults = {
        "entity_type": "contacts",
        "name": "Mine",
        "filter_criteria": {"field": "stage", "op": "equals", "value": "won"},
    }
    return SavedFilter.objects.create(tenant=tenant, created_by=owner, **(defaults | fields))


def test_saved_filter_applies_and_ands_with_filter(owner_client, tenant, owner, contacts):
    mine = saved(tenant, owner, filter_criteria={"field": "lead_score", "op": "greater_than", "value": 50})

    assert ids(owner_client.get(f"/api/v1/contacts/?saved_filter={mine.pk}")) == {
        contacts["hot"].pk,
        contacts["won"].pk,
    }
    both = url("/api/v1/contacts/", {"field": "stage", "op": "equals", "value": "won"}) + f"&saved_filter={mine.pk}"
    assert ids(owner_client.get(both)) == {contacts["won"].pk}


def test_the_system_filter_my_active_leads_uses_me(tenant, owner, member_user, contacts):
    system = SavedFilter.objects.get(tenant=tenant, name="My Active Leads")
    ContactFactory(tenant=tenant, stage="contacted", assigned_to=member_user)

    assert ids(client_for(owner).get(f"/api/v1/contacts/?saved_filter={system.pk}")) == {contacts["hot"].pk}
    assert len(ids(client_for(member_user).get(f"/api/v1/contacts/?saved_filter={system.pk}"))) == 1


def test_another_tenants_saved_filter_is_a_404(owner_client, other_tenant, other_user):
    foreign = saved(other_tenant, other_user)
    assert_error(
        owner_client.get(f"/api/v1/contacts/?saved_filter={foreign.pk}"),
        404,
        code="not_found",
        detail="No such saved filter.",
        attr="saved_filter",
    )


def test_another_members_personal_filter_is_a_404_and_a_shared_one_applies(tenant, owner, member_user, contacts):
    personal = saved(tenant, owner, name="Owner's")
    shared = saved(tenant, owner, name="Team's", is_shared=True)
    client = client_for(member_user)

    assert api_errors(client.get(f"/api/v1/contacts/?saved_filter={personal.pk}"), 404)[0]["attr"] == "saved_filter"
    assert ids(client.get(f"/api/v1/contacts/?saved_filter={shared.pk}")) == {contacts["won"].pk}


def test_a_stale_saved_filter_is_a_409_with_the_reason(owner_client, tenant, owner):
    mine = saved(tenant, owner)
    config = FilterConfig.objects.get(tenant=tenant, entity_type="contacts", field_name="stage")

    filter_config_update(
        config=config, actor=Actor(tenant=tenant, user=owner), field_type="select", filter_operator="equals"
    )

    assert_error(
        owner_client.get(f"/api/v1/contacts/?saved_filter={mine.pk}"),
        409,
        code="stale_filter",
        detail="This saved filter is stale: The filter Stage (stage) changed type from multi_select to select.",
        attr="saved_filter",
    )


def test_a_saved_filter_for_another_entity_is_a_400(owner_client, tenant):
    jobs = SavedFilter.objects.get(tenant=tenant, name="Projects In Progress")
    errors = api_errors(owner_client.get(f"/api/v1/contacts/?saved_filter={jobs.pk}"), 400, type="validation_error")
    assert errors == [
        {"code": "invalid", "detail": "This saved filter is for projects, not contacts.", "attr": "saved_filter"}
    ]


# validate / count ------------------------------------------------------------------------


def test_validate_returns_the_normalised_tree(viewer_client):
    response = viewer_client.post(
        "/api/v1/filters/validate/",
        {"entity_type": "contacts", "filter": {"stage": {"operator": "in", "value": ["new"]}}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {
        "entity_type": "contacts",
        "filter": {"and": [{"field": "stage", "op": "in", "value": ["new"]}]},
    }


def test_validate_returns_every_error(viewer_client):
    response = viewer_client.post(
        "/api/v1/filters/validate/",
        {
            "entity_type": "projects",
            "filter": {
                "and": [
                    {"field": "status", "op": "between", "value": 1},
                    {"or": [{"field": "scheduled_start", "op": "equals", "value": "03/01/2026"}]},
                ]
            },
        },
        format="json",
    )
    assert [e["detail"] for e in api_errors(response, 400, type="validation_error")] == [
        "and[0].op: 'between' is not an operator of multi_select fields; "
        "use one of: equals, not_equals, in, not_in, is_null, is_not_null",
        "and[1].or[0].value: expected a date (YYYY-MM-DD)",
    ]


def test_count(viewer_client, contacts, other_tenant):
    ContactFactory(tenant=other_tenant, lead_score=99)
    response = viewer_client.post(
        "/api/v1/filters/count/",
        {"entity_type": "contacts", "filter": {"field": "lead_score", "op": "greater_than_or_equal", "value": 90}},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"entity_type": "contacts", "count": 2}


# The catalog -----------------------------------------------------------------------------


def test_the_filter_bar_for_contacts(member_client, tenant, owner, member_user):
    ContactFactory(tenant=tenant, tags=["storm", "vip"])
    ContactFactory(tenant=tenant, tags=["storm"])
    ContactFactory(tenant=tenant, tags=["gone"], is_deleted=True)

    response = member_client.get("/api/v1/filter-configs/?entity_type=contacts&page_size=200")

    assert response.status_code == 200
    entries = {e["field_name"]: e for e in response.json()["results"]}
    assert list(entries)[:3] == ["stage", "assigned_to", "source"]
    stage = entries["stage"]
    assert (stage["field_type"], stage["filter_operator"], stage["is_quick_filter"]) == ("multi_select", "in", True)
    assert stage["operators"] == ["equals", "not_equals", "in", "not_in", "is_null", "is_not_null"]
    assert stage["options"][0] == {"value": "new", "label": "New", "color": "blue"}
    assert entries["tags"]["operators"] == ["any_of", "all_of", "none_of", "is_null", "is_not_null"]
    assert entries["tags"]["options"] == [
        {"value": "storm", "label": "storm", "color": None, "count": 2},
        {"value": "vip", "label": "vip", "color": None, "count": 1},
    ]
    assert sorted(o["value"] for o in entries["assigned_to"]["options"]) == sorted([owner.pk, member_user.pk])
    assert {o["status"] for o in entries["substatus"]["options"]} == {
        "new",
        "contacted",
        "qualified",
        "proposal",
        "negotiation",
        "won",
        "lost",
    }
    assert "today" in entries["created_at"]["operators"]


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MANAGER])
def test_only_admins_and_owners_edit_the_catalog(request, tenant, role):
    client = client_for(member(tenant, role, f"someone-{role}"))
    before = tables()

    response = client.post(
        "/api/v1/filter-configs/",
        {"entity_type": "contacts", "field_name": "roof_age", "field_label": "Roof age", "field_type": "number"},
        format="json",
    )

    assert response.status_code == 403
    assert tables() == before


def test_admin_adds_a_filter_with_its_default_operator(admin_client_):
    response = admin_client_.post(
        "/api/v1/filter-configs/",
        {
            "entity_type": "contacts",
            "field_name": "custom_fields.roof_color",
            "field_label": "Roof color",
            "field_type": "select",
            "filter_options": [{"value": "red", "label": "Red", "color": "red"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["filter_operator"], body["custom_field_id"], body["display_order"]) == ("equals", "roof_color", 13)


@pytest.mark.parametrize(
    ("body", "attr", "detail"),
    [
        ({"field_name": "password"}, "field_name", "'password' is not a field contacts can be filtered on."),
        (
            {"field_name": "custom_fields.a__b"},
            "field_name",
            "'custom_fields.a__b' is not a field contacts can be filtered on.",
        ),
        (
            {"field_name": "roof_age", "field_type": "text"},
            "field_type",
            "'roof_age' cannot be a text filter; use one of: number, number_range.",
        ),
        (
            {"field_name": "priority", "field_type": "select", "filter_operator": "contains"},
            "filter_operator",
            "'contains' is not an operator of select filters; "
            "use one of: equals, not_equals, in, not_in, is_null, is_not_null.",
        ),
        (
            {
                "field_name": "priority",
                "field_type": "select",
                "filter_options": [{"value": "asap", "label": "ASAP", "color": None}],
            },
            "filter_options",
            "asap not among priority's values: low, normal, high, urgent.",
        ),
    ],
)
def test_a_bad_catalog_entry_is_a_400_naming_the_field(admin_client_, body, attr, detail):
    before = tables()
    payload = {"entity_type": "contacts", "field_label": "X", "field_type": "number"} | body

    response = admin_client_.post("/api/v1/filter-configs/", payload, format="json")

    assert api_errors(response, 400, type="validation_error") == [{"code": "invalid", "detail": detail, "attr": attr}]
    assert tables() == before


def test_a_duplicate_field_is_a_400(admin_client_):
    response = admin_client_.post(
        "/api/v1/filter-configs/",
        {"entity_type": "contacts", "field_name": "stage", "field_label": "Stage again", "field_type": "select"},
        format="json",
    )
    errors = api_errors(response, 400, type="validation_error")
    assert errors[0]["detail"] == "This entity already has a filter on this field."


def test_reorder(admin_client_, tenant):
    order = list(
        FilterConfig.objects.filter(tenant=tenant, entity_type="activities")
        .order_by("-display_order")
        .values_list("pk", flat=True)
    )

    response = admin_client_.post(
        "/api/v1/filter-configs/reorder/", {"entity_type": "activities", "ids": order}, format="json"
    )

    assert response.status_code == 200, response.content
    assert [e["id"] for e in response.json()] == order
    incomplete = admin_client_.post(
        "/api/v1/filter-configs/reorder/", {"entity_type": "activities", "ids": order[:1]}, format="json"
    )
    assert api_errors(incomplete, 400, type="validation_error")[0]["attr"] == "ids"


def test_deactivating_makes_lists_refuse_the_field(admin_client_, tenant, owner_client):
    config = FilterConfig.objects.get(tenant=tenant, entity_type="contacts", field_name="source")
    tree = {"field": "source", "op": "equals", "value": "website"}
    assert owner_client.get(url("/api/v1/contacts/", tree)).status_code == 200

    assert (
        admin_client_.patch(f"/api/v1/filter-configs/{config.pk}/", {"is_active": False}, format="json").status_code
        == 200
    )

    errors = api_errors(owner_client.get(url("/api/v1/contacts/", tree)), 400, type="validation_error")
    assert errors[0]["detail"] == "field: the filter 'source' is inactive"


# Saved filters: the old row-level rules -----------------------------------------------------


def test_members_see_their_own_and_shared_filters(tenant, owner, member_user):
    mine = saved(tenant, member_user, name="Mine")
    shared = saved(tenant, owner, name="Shared", is_shared=True)
    saved(tenant, owner, name="Owner's own")
    system = set(SavedFilter.objects.filter(tenant=tenant, is_system=True).values_list("pk", flat=True))

    response = client_for(member_user).get("/api/v1/saved-filters/")

    assert ids(response) == {mine.pk, shared.pk} | system
    assert len(ids(client_for(owner).get("/api/v1/saved-filters/"))) == 6


def test_a_member_creates_one_normalised(member_client, member_user):
    response = member_client.post(
        "/api/v1/saved-filters/",
        {
            "entity_type": "contacts",
            "name": "Storm",
            "filter_criteria": {"tags": {"operator": "any_of", "value": ["storm"]}},
            "columns": ["name"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["filter_criteria"] == {"and": [{"field": "tags", "op": "any_of", "value": ["storm"]}]}
    assert (body["created_by"]["id"], body["is_shared"], body["is_system"]) == (member_user.pk, False, False)


def test_a_bad_tree_is_not_saved(member_client):
    before = tables()
    response = member_client.post(
        "/api/v1/saved-filters/",
        {"entity_type": "contacts", "name": "Bad", "filter_criteria": {"field": "nope", "op": "equals"}},
        format="json",
    )
    assert api_errors(response, 400, type="validation_error") == [
        {"code": "invalid_filter", "detail": "field: unknown field 'nope' for contacts", "attr": "filter"}
    ]
    assert tables() == before


@pytest.mark.parametrize(("method", "body"), [("patch", {"name": "Mine now"}), ("delete", None)])
def test_a_shared_filter_is_readable_but_not_editable(tenant, owner, member_user, method, body):
    shared = saved(tenant, owner, name="Shared", is_shared=True)
    before = row(shared)
    client = client_for(member_user)

    assert client.get(f"/api/v1/saved-filters/{shared.pk}/").status_code == 200
    response = getattr(client, method)(f"/api/v1/saved-filters/{shared.pk}/", body, format="json")

    assert response.status_code == 403
    assert row(shared) == before


def test_another_members_personal_filter_is_a_404(tenant, owner, member_user):
    personal = saved(tenant, owner, name="Owner's")
    before = row(personal)
    for method in ("get", "patch", "delete"):
        response = getattr(client_for(member_user), method)(
            f"/api/v1/saved-filters/{personal.pk}/", {"name": "x"}, format="json"
        )
        assert response.status_code == 404
    assert row(personal) == before


@pytest.mark.parametrize("persona", ["owner", "member_user"])
def test_system_filters_cannot_be_deleted(request, tenant, persona):
    system = SavedFilter.objects.get(tenant=tenant, name="Hot Leads (Score > 70)")
    before = row(system)

    response = client_for(request.getfixturevalue(persona)).delete(f"/api/v1/saved-filters/{system.pk}/")

    assert response.status_code == 409
    assert row(system) == before


def test_admins_deactivate_a_system_filter_members_cannot(tenant, admin_user, member_user):
    system = SavedFilter.objects.get(tenant=tenant, name="Hot Leads (Score > 70)")

    assert (
        client_for(member_user)
        .patch(f"/api/v1/saved-filters/{system.pk}/", {"is_active": False}, format="json")
        .status_code
        == 403
    )
    response = client_for(admin_user).patch(f"/api/v1/saved-filters/{system.pk}/", {"is_active": False}, format="json")

    assert response.status_code == 200, response.content
    system.refresh_from_db()
    assert system.is_active is False
    applied = client_for(admin_user).get(f"/api/v1/contacts/?saved_filter={system.pk}")
    assert_error(applied, 409, code="inactive_filter", detail="This saved filter is deactivated.", attr="saved_filter")


def test_one_default_per_user_and_entity(tenant, member_user, member_client):
    first = saved(tenant, member_user, name="First")
    second = saved(tenant, member_user, name="Second")

    assert member_client.post(f"/api/v1/saved-filters/{first.pk}/set-default/").status_code == 200
    assert member_client.post(f"/api/v1/saved-filters/{second.pk}/set-default/").status_code == 200

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)


def test_the_database_holds_one_default(tenant, member_user):
    saved(tenant, member_user, name="First", is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        saved(tenant, member_user, name="Second", is_default=True)


def test_someone_elses_filter_cannot_be_my_default(tenant, owner, member_client):
    shared = saved(tenant, owner, name="Shared", is_shared=True)
    response = member_client.post(f"/api/v1/saved-filters/{shared.pk}/set-default/")
    assert api_errors(response, 400, type="validation_error")[0]["attr"] == "is_default"


NAME_TAKEN = "A saved filter with this name already exists for this entity."


def test_a_taken_name_is_a_400_on_name_and_changes_nothing(tenant, member_user, member_client):
    mine = saved(tenant, member_user, name="Hail leads")
    other = saved(tenant, member_user, name="Storm leads")

    before = list(SavedFilter.objects.order_by("pk").values())

    created = member_client.post(
        "/api/v1/saved-filters/",
        {"entity_type": "contacts", "name": "Hail leads", "filter_criteria": mine.filter_criteria},
        format="json",
    )
    renamed = member_client.patch(f"/api/v1/saved-filters/{other.pk}/", {"name": "Hail leads"}, format="json")
    copied = member_client.post(f"/api/v1/saved-filters/{mine.pk}/duplicate/", {"name": "Hail leads"}, format="json")

    for response in (created, renamed, copied):
        assert_invalid(response, attr="name", code="saved_filters_unique_name", detail=NAME_TAKEN)
    assert list(SavedFilter.objects.order_by("pk").values()) == before


def test_duplicate_makes_a_private_copy(tenant, member_user, member_client):
    system = SavedFilter.objects.get(tenant=tenant, name="Projects In Progress")

    first = member_client.post(f"/api/v1/saved-filters/{system.pk}/duplicate/", {}, format="json")
    second = member_client.post(f"/api/v1/saved-filters/{system.pk}/duplicate/", {}, format="json")

    assert first.status_code == 201, first.content
    assert (first.json()["name"], second.json()["name"]) == (
        "Copy of Projects In Progress",
        "Copy of Projects In Progress (2)",
    )
    assert first.json()["filter_criteria"] == system.filter_criteria
    assert (first.json()["is_system"], first.json()["is_shared"], first.json()["created_by"]["id"]) == (
        False,
        False,
        member_user.pk,
    )
