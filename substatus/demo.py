"""The demo tenant's own substatuses, beyond the catalog every tenant starts with: what a roofing
company adds for its HOAs, insurance supplements and storm canvassing (a `crm.demo` step)."""

from typing import NamedTuple

from contacts.models import ContactStage
from crm.actor import Actor
from crm.demo import DemoStep, demo_register
from crm.models import ProjectStatus, Tenant
from substatus.catalog import STATUS_COLORS
from substatus.models import Entity, SubstatusConfig
from substatus.services import substatus_create


class Own(NamedTuple):
    entity: str
    status: str
    key: str
    label: str
    description: str
    moves_to: str | None = None  # the catalog substatus its records move to automatically (Celery beat)
    after_hours: int | None = None


OWN = [
    Own(
        Entity.PROJECT,
        ProjectStatus.APPROVED,
        "hoa_approval_pending",
        "Waiting on HOA approval",
        "The HOA approves the shingle color before the crew is scheduled.",
    ),
    Own(
        Entity.PROJECT,
        ProjectStatus.IN_PROGRESS,
        "supplement_submitted",
        "Supplement submitted",
        "Code items missing from the adjuster's scope were sent to the insurer.",
    ),
    Own(
        Entity.CONTACT,
        ContactStage.NEW,
        "storm_lead",
        "Storm canvass lead",
        "Met at the door after a hail storm; calls start two days later.",
        moves_to="attempting_contact",
        after_hours=48,
    ),
]


def own_present(tenant: Tenant) -> bool:
    return SubstatusConfig.objects.filter(tenant=tenant, key__in=[own.key for own in OWN]).exists()


def own_build(actor: Actor) -> str:
    added = []
    for own in OWN:
        target = (
            SubstatusConfig.objects.get(tenant=actor.tenant, entity=own.entity, status=own.status, key=own.moves_to)
            if own.moves_to
            else None
        )
        config = substatus_create(
            actor=actor,
            entity=own.entity,
            status=own.status,
            key=own.key,
            label=own.label,
            description=own.description,
            color=STATUS_COLORS[own.entity, own.status],
            auto_transition_to=target,
            auto_transition_delay_hours=own.after_hours,
        )
        moves = f", to {target.label} after {own.after_hours} h" if target else ""
        added.append(f"{config.label} ({own.entity} {own.status}{moves})")
    return f"{len(added)} substatuses of its own: {'; '.join(added)}"


demo_register(DemoStep(name="substatus.own", build=own_build, present=own_present))
