"""/api/v1/projects/: roofing jobs."""

import datetime as dt

import pytest
from django.utils import timezone

from crm.models import Project
from tests.api import api_errors, assert_invalid, row, table
from tests.conftest import client_for
from tests.factories import ContactFactory, ProjectFactory

URL = "/api/v1/projects/"


def detail(project):
    return f"{URL}{project.pk}/"


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_create_stores_every_field(tenant, member_user):
    contact = ContactFactory(tenant=tenant)
    parent = ProjectFactory(tenant=tenant, contact=contact)
    body = {
        "contact": contact.pk,
        "parent_project": parent.pk,
        "name": "Hail damage replacement",
        "project_number": "J-2026-001",
        "status": "scheduled",
        "type": "replacement",
        "estimated_value": "18500.00",
        "approved_value": "17900.00",
        "final_value": None,
        "materials_cost": "6200.00",
        "labor_cost": "4800.00",
        "overhead_cost": "900.00",
        "profit_margin": "22.50",
        "estimated_start": "2026-06-01",
        "scheduled_start": "2026-06-03",
        "actual_start": None,
        "estimated_completion": "2026-06-05",
        "actual_completion": None,
        "description": "Full tear-off",
        "scope_of_work": "Replace 28 squares of shingles",
        "materials_list": [{"item": "shingles", "squares": 28}],
        "insurance_approved": True,
        "insurance_approval_amount": "15000.00",
        "deductible_collected": True,
        "supplements": [{"reason": "drip edge", "amount": "450.00"}],
        "crew_assigned": ["crew-a"],
        "weather_delays": 2,
        "quality_score": 95,
        "custom_fields": {"permit": "B-77"},
    }

    response = client_for(member_user).post(URL, body)

    assert response.status_code == 201, response.content
    project = Project.objects.get(name="Hail damage replacement")
    result = response.json()
    assert {key: result[key] for key in body} == body
    assert result["id"] == project.pk
    assert (result["created_by"], result["updated_by"], result["is_deleted"]) == (member_user.pk, member_user.pk, False)
    assert "organization" not in result  # removed by the organizations merge
    assert (project.tenant, project.parent_project, project.contact) == (tenant, parent, contact)


def test_partial_update(tenant, member_user):
    project = ProjectFactory(tenant=tenant)

    response = client_for(member_user).patch(detail(project), {"status": "completed", "final_value": "20000"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["final_value"]) == ("completed", "20000.00")
    project.refresh_from_db()
    assert (project.status, project.updated_by) == ("completed", member_user)


def test_project_number_is_unique_per_tenant(tenant, other_tenant, member_user):
    ProjectFactory(tenant=tenant, project_number="J-1")
    ProjectFactory(tenant=other_tenant, project_number="J-2")
    before = table(Project)
    client = client_for(member_user)

    response = client.post(URL, {"name": "Gutters", "project_number": "J-1"})

    assert_invalid(
        response,
        attr="project_number",
        code="projects_number_unique_per_tenant",
        detail="Another project of this tenant has this project number.",
    )
    assert table(Project) == before
    assert client.post(URL, {"name": "Gutters", "project_number": "J-2"}).status_code == 201


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_a_project_cannot_be_its_own_ancestor(tenant, member_user, depth):
    root = ProjectFactory(tenant=tenant)
    chain = [root]
    for _ in range(depth):
        chain.append(ProjectFactory(tenant=tenant, parent_project=chain[-1]))
    before = row(root)

    response = client_for(member_user).patch(detail(root), {"parent_project": chain[-1].pk})

    assert_invalid(response, attr="parent_project", code="cycle", detail="A project cannot be its own parent.")
    assert row(root) == before


@pytest.mark.parametrize(
    ("body", "attrs"),
    [
        ({}, ["name"]),
        ({"name": "x", "status": "bogus"}, ["status"]),
        ({"name": "x", "type": "bogus"}, ["type"]),
        ({"name": "x", "estimated_value": "-1"}, ["estimated_value"]),
        ({"name": "x", "estimated_value": "10000000000.00"}, ["estimated_value"]),
        ({"name": "x", "quality_score": 101}, ["quality_score"]),
        ({"name": "x", "materials_list": {"a": 1}}, ["materials_list"]),
        ({"name": "x", "custom_fields": []}, ["custom_fields"]),
        ({"name": "x", "scheduled_start": "June 3rd"}, ["scheduled_start"]),
        ({"name": "", "contact": "abc", "supplements": "s"}, ["name", "contact", "supplements"]),
    ],
)
def test_invalid_fields_are_named_and_nothing_is_written(tenant, member_user, body, attrs):
    before = table(Project)

    response = client_for(member_user).post(URL, body)

    assert sorted(error["attr"] for error in api_errors(response, 400, type="validation_error")) == sorted(attrs)
    assert table(Project) == before


@pytest.fixture
def jobs(tenant):
    first, second = ContactFactory(tenant=tenant), ContactFactory(tenant=tenant)
    parent = ProjectFactory(tenant=tenant, contact=first, name="Main roof", status="approved", type="replacement")
    return {
        "parent": parent,
        "child": ProjectFactory(
            tenant=tenant,
            contact=first,
            parent_project=parent,
            name="Garage roof",
            project_number="G-7",
            status="scheduled",
            type="repair",
            insurance_approved=True,
            scheduled_start=dt.date(2026, 7, 1),
        ),
        "other": ProjectFactory(
            tenant=tenant,
            contact=second,
            name="Gutter cleaning",
            status="completed",
            type="maintenance",
            scheduled_start=dt.date(2026, 5, 1),
        ),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=approved", ["parent"]),
        ("status=approved&status=completed", ["parent", "other"]),
        ("type=repair", ["child"]),
        ("contact={first}", ["parent", "child"]),
        ("parent_project={parent}", ["child"]),
        ("insurance_approved=true", ["child"]),
        ("insurance_approved=false", ["parent", "other"]),
        ("scheduled_after=2026-06-01", ["child"]),
        ("scheduled_before=2026-06-01", ["other"]),
        ("search=roof", ["parent", "child"]),
        ("search=g-7", ["child"]),
        ("search=%25", []),
    ],
)
def test_filters(jobs, member_user, query, expected):
    query = query.format(first=jobs["parent"].contact_id, parent=jobs["parent"].pk)

    response = client_for(member_user).get(f"{URL}?{query}")

    assert sorted(ids(response)) == sorted(jobs[name].pk for name in expected)


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [("name", ["child", "other", "parent"]), ("-scheduled_start,name", ["parent", "child", "other"])],
)
def test_ordering(jobs, member_user, ordering, expected):
    assert ids(client_for(member_user).get(URL, {"ordering": ordering})) == [jobs[name].pk for name in expected]


def test_created_range_filters(tenant, member_user):
    old = ProjectFactory(tenant=tenant, created_at=timezone.now() - dt.timedelta(days=3))
    new = ProjectFactory(tenant=tenant)
    cutoff = (timezone.now() - dt.timedelta(days=1)).isoformat()

    assert ids(client_for(member_user).get(URL, {"created_after": cutoff})) == [new.pk]
    assert ids(client_for(member_user).get(URL, {"created_before": cutoff})) == [old.pk]
