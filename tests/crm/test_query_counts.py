"""A page of 50 rows costs the same queries as a page of 5: no query per row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Role
from tests.api import TENANT_RESOURCES, app_queries
from tests.conftest import client_for
from tests.factories import MembershipFactory, UserFactory

# Resolving the tenant (membership + tenant), counting the rows, fetching the page; plus a
# resource's prefetches (Resource.prefetches).
LIST_QUERIES = 3


def queries_for(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"page_size": 200})
    assert response.status_code == 200
    return len(response.json()["results"]), [query["sql"] for query in app_queries(captured)]


@pytest.mark.parametrize("resource", TENANT_RESOURCES, ids=str)
def test_listing_50_rows_costs_what_listing_5_does(resource, tenant, owner):
    client = client_for(owner)
    for _ in range(5):
        resource.make(tenant)
    few, few_queries = queries_for(client, resource.url)
    for _ in range(45):
        resource.make(tenant)

    many, many_queries = queries_for(client, resource.url)

    assert (few, many) == (5, 50)
    assert len(many_queries) == len(few_queries) == LIST_QUERIES + resource.prefetches, many_queries


def test_listing_50_members_costs_what_listing_5_does(tenant, owner):
    client = client_for(owner)
    for _ in range(4):
        MembershipFactory(tenant=tenant, user=UserFactory(), role=Role.MEMBER)
    few, few_queries = queries_for(client, "/api/v1/memberships/")
    for _ in range(45):
        MembershipFactory(tenant=tenant, user=UserFactory(), role=Role.VIEWER)

    many, many_queries = queries_for(client, "/api/v1/memberships/")

    assert (few, many) == (5, 50)
    assert len(many_queries) == len(few_queries) == LIST_QUERIES, many_queries


@pytest.mark.parametrize("resource", TENANT_RESOURCES, ids=str)
def test_search_and_filters_add_no_queries(resource, tenant, owner):
    for _ in range(10):
        resource.make(tenant)

    _, queries = queries_for(client_for(owner), resource.url + "?search=a&ordering=-created_at")

    assert len(queries) == LIST_QUERIES + resource.prefetches
