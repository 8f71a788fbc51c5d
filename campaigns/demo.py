"""The demo's campaigns: two of the default templates made live in Summit Roofing, with people
in them (a `crm.demo` step). The six default templates come with the migrations."""

from typing import Any

from campaigns.defaults import default_templates_ensure
from campaigns.models import Campaign, CampaignTemplate, EnrollmentSource
from campaigns.services import campaign_enroll, campaign_from_template, campaign_publish
from contacts.models import Contact
from crm.actor import Actor
from crm.demo import DemoStep, demo_register
from crm.models import Tenant

LIVE: dict[str, dict[str, Any]] = {
    # template key -> which live contacts the office enrolled
    "new-lead-welcome": {"stage": "new"},
    "storm-damage-outreach": {"stage__in": ["contacted", "qualified"]},
}
ENROLLED_EACH = 12


def campaigns_present(tenant: Tenant) -> bool:
    return Campaign.objects.filter(tenant=tenant).exists()


def campaigns_build(actor: Actor) -> str:
    default_templates_ensure()
    added = []
    for key, who in LIVE.items():
        template = CampaignTemplate.objects.get(tenant__isnull=True, key=key)
        campaign = campaign_from_template(actor=actor, template=template)
        campaign_publish(campaign=campaign, actor=actor)
        contacts = list(
            Contact.objects.alive()
            .filter(tenant=actor.tenant, is_organization=False, email__isnull=False, **who)
            .order_by("pk")[:ENROLLED_EACH]
        )
        result = campaign_enroll(campaign=campaign, actor=actor, contacts=contacts, source=EnrollmentSource.BULK_IMPORT)
        added.append(f"{campaign.name} ({result.count} enrolled)")
    return f"{len(added)} active campaigns: {'; '.join(added)}"


demo_register(
    DemoStep(name="campaigns.live", build=campaigns_build, present=campaigns_present, after=("contacts.parties",))
)
