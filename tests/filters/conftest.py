import pytest

from crm.actor import Actor
from filters.services import filter_config_create


@pytest.fixture
def actor(tenant, owner):
    return Actor(tenant=tenant, user=owner)


@pytest.fixture
def extra_catalog(actor):
    """Catalog entries beyond the defaults, for every kind of column the tests reach."""
    for entity_type, field_name, field_type in [
        ("contacts", "roof_age", "number"),
        ("contacts", "last_inspection_date", "date"),
        ("contacts", "first_name", "text"),
        ("contacts", "custom_fields.roof_color", "select"),
        ("contacts", "custom_fields.square_feet", "number"),
        ("contacts", "custom_fields.storm_date", "date"),
        ("contacts", "custom_fields.gutters", "boolean"),
        ("projects", "contact.city", "text"),
        ("projects", "contact.assigned_to", "user_select"),
        ("activities", "contact.stage", "multi_select"),
        ("activities", "project.status", "select"),
    ]:
        filter_config_create(
            actor=actor, entity_type=entity_type, field_name=field_name, field_label=field_name, field_type=field_type
        )
