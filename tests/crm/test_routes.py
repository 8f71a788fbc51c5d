"""Routes answer with and without their trailing slash (a redirect would turn a POST into a GET)."""

import pytest

from tests.api import RESOURCES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource.url)
def test_collection_and_detail_routes_work_without_the_trailing_slash(owner_client, tenant, resource):
    created = owner_client.post(resource.url.rstrip("/"), resource.payload(tenant), format="json")

    assert created.status_code == 201, created.content
    detail = owner_client.get(resource.detail(created.json()["id"]).rstrip("/"))
    assert detail.status_code == 200
    assert detail.json()["id"] == created.json()["id"]
