"""The demo tenant's own filters, beyond the catalog and saved filters every tenant starts with:
a filter on the last roof inspection, the sales manager's shared storm view and the member's
personal follow-up list (a `crm.demo` step)."""

from crm.actor import Actor
from crm.demo import DemoStep, demo_register, staff_username
from crm.models import Role, Tenant, User
from filters.models import FilterConfig, SavedFilter
from filters.services import filter_config_create, saved_filter_create

STORM_VIEW = "Storm leads in Denver"
FOLLOW_UPS = "My follow-ups this week"


def saved_present(tenant: Tenant) -> bool:
    return SavedFilter.objects.filter(tenant=tenant, name__in=[STORM_VIEW, FOLLOW_UPS]).exists()


def saved_build(actor: Actor) -> str:
    tenant = actor.require_tenant()
    filter_config_create(
        actor=actor,
        entity_type=FilterConfig.EntityType.CONTACTS,
        field_name="last_inspection_date",
        field_label="Last inspection",
        field_type=FilterConfig.FieldType.DATE_RANGE,
    )
    manager = Actor(tenant=tenant, user=User.objects.get(username=staff_username(Role.MANAGER)), source=actor.source)
    member = Actor(tenant=tenant, user=User.objects.get(username=staff_username(Role.MEMBER)), source=actor.source)
    saved_filter_create(
        actor=manager,
        entity_type=SavedFilter.EntityType.CONTACTS,
        name=STORM_VIEW,
        description="Open leads in Denver, or any lead added since the last hail storm.",
        filter_criteria={
            "and": [
                {"field": "stage", "op": "in", "value": ["new", "contacted", "qualified"]},
                {
                    "or": [
                        {"field": "address_city", "op": "equals", "value": "Denver"},
                        {"field": "created_at", "op": "last_n_days", "value": 30},
                    ]
                },
                {"not": {"field": "is_organization", "op": "equals", "value": True}},
            ]
        },
        sort="-lead_score",
        is_shared=True,
    )
    saved_filter_create(
        actor=member,
        entity_type=SavedFilter.EntityType.PROJECTS,
        name=FOLLOW_UPS,
        filter_criteria={
            "and": [
                {"field": "status", "op": "in", "value": ["estimate", "approved"]},
                {"field": "scheduled_start", "op": "this_week"},
            ]
        },
        is_default=True,
    )
    return f"a Last inspection filter; saved filters: {STORM_VIEW} (shared, manager), {FOLLOW_UPS} (member's default)"


demo_register(DemoStep(name="filters.saved", build=saved_build, present=saved_present))
