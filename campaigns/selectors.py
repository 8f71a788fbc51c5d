"""Reads: template previews and the campaign simulator (both write nothing)."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from campaigns.content import MergeContext, contact_zone, render, tenant_zone
from campaigns.models import (
    MESSAGE_STEPS,
    Campaign,
    CampaignStep,
    CampaignTemplate,
    CampaignTrigger,
    CampaignVersion,
    StepType,
    VersionStatus,
)
from campaigns.schedule import business_hours_next, step_due
from campaigns.services import CONTACTS, enrollment_decide
from contacts.models import Contact
from crm.actor import Actor
from crm.errors import Conflict
from crm.models import Project

UNSUBSCRIBE_PREVIEW = "https://unsubscribe.example/preview"


def _context(actor: Actor, contact: Contact, project: Project | None) -> MergeContext:
    return MergeContext(
        tenant=actor.require_tenant(),
        contact=contact,
        project=project,
        user=contact.assigned_to or actor.user,
        unsubscribe_url=UNSUBSCRIBE_PREVIEW,
    )


def _rendered(step_type: str, config: dict[str, Any], context: MergeContext) -> dict[str, str]:
    keys = {
        StepType.SEND_EMAIL: ("subject", "body"),
        StepType.SEND_SMS: ("body",),
        StepType.CREATE_TASK: ("title", "description"),
        StepType.NOTIFY: ("message",),
    }.get(StepType(step_type), ())
    return {key: render(config[key], context) for key in keys if key in config}


def template_preview(
    *, template: CampaignTemplate, actor: Actor, contact: Contact, project: Project | None
) -> dict[str, Any]:
    """Each step of the template rendered for this contact (and project)."""
    context = _context(actor, contact, project)
    return {
        "template": template.pk,
        "contact": contact.pk,
        "steps": [
            {
                "position": position,
                "step_type": definition["step_type"],
                "delay_value": definition.get("delay_value", 0),
                "delay_unit": definition.get("delay_unit", "hours"),
                **_rendered(definition["step_type"], definition.get("step_config", {}), context),
            }
            for position, definition in enumerate(template.steps, start=1)
        ],
    }


def _version(campaign: Campaign) -> CampaignVersion:
    draft = campaign.versions.filter(status=VersionStatus.DRAFT).first()
    version = draft or campaign.active_version
    if version is None:
        raise Conflict("This campaign has no version to simulate.", code="no_version")
    return version


def _walk(
    *,
    actor: Actor,
    campaign: Campaign,
    steps: list[CampaignStep],
    contact: Contact,
    start: datetime,
    end: datetime,
    sent_per_day: dict[tuple[int, str], int],
) -> list[dict[str, Any]]:
    """What one contact would receive, and when, from `start` until `end`."""
    zone = contact_zone(campaign.tenant, contact)
    by_id = {step.pk: step for step in steps}
    context = _context(actor, contact, None)
    timeline: list[dict[str, Any]] = []
    step: CampaignStep | None = steps[0] if steps else None
    at = start
    for _ in range(len(steps) * 2):  # a published graph has no cycle; a draft may
        if step is None:
            break
        at = step_due(step, at, zone)
        if step.step_type in MESSAGE_STEPS:
            if campaign.respect_business_hours:
                at = business_hours_next(at, campaign.business_hours, zone)
            day = at.astimezone(zone).date().isoformat()
            cap = campaign.max_messages_per_day
            while cap is not None and sent_per_day[contact.pk, day] >= cap:
                at = business_hours_next(
                    datetime.combine(at.astimezone(zone).date() + timedelta(days=1), datetime.min.time(), tzinfo=zone),
                    campaign.business_hours if campaign.respect_business_hours else {},
                    zone,
                )
                day = at.astimezone(zone).date().isoformat()
        if at > end:
            break
        entry: dict[str, Any] = {"step": step.pk, "step_order": step.step_order, "step_type": step.step_type, "at": at}
        entry.update(_rendered(step.step_type, step.step_config, context))
        if step.step_type in MESSAGE_STEPS:
            sent_per_day[contact.pk, at.astimezone(zone).date().isoformat()] += 1
        if step.step_type == StepType.CONDITIONAL:
            from filters.services import filter_matches

            matched = filter_matches(actor=actor, entity_type=CONTACTS, tree=step.conditions, record=contact)
            entry["branch"] = matched
            timeline.append(entry)
            step = by_id.get(step.true_path_step_id if matched else step.false_path_step_id)  # type: ignore[arg-type]
            continue
        timeline.append(entry)
        if step.step_type == StepType.EXIT_CAMPAIGN:
            break
        later = [candidate for candidate in steps if candidate.step_order > step.step_order]
        step = later[0] if later else None
    return timeline


def campaign_simulate(
    *,
    campaign: Campaign,
    actor: Actor,
    days: int,
    sample_size: int,
    contacts: list[Contact] | None = None,
) -> dict[str, Any]:
    """Who of a sample of real contacts would enter now, what each would get and when over the
    next `days`, and the sends per day per step (days of the tenant's time zone) after business
    hours and the daily cap (both in each contact's time zone). The cap counts this campaign's
    messages: what other campaigns will send then is the engine's to know (part 2)."""
    version = _version(campaign)
    steps = list(CampaignStep.objects.filter(version=version).order_by("step_order"))
    trigger = CampaignTrigger.objects.filter(version=version, is_active=True).order_by("-priority", "pk").first()
    sample = contacts or list(Contact.objects.alive().filter(tenant=campaign.tenant).order_by("pk")[:sample_size])
    now = timezone.now()
    entered, refused, _ = enrollment_decide(
        actor=actor, campaign=campaign, version=version, contacts=sample, trigger=trigger, now=now
    )
    end = now + timedelta(days=days)
    zone = tenant_zone(campaign.tenant)
    sent_per_day: dict[tuple[int, str], int] = defaultdict(int)
    per_day: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    people = []
    for contact in entered:
        timeline = _walk(
            actor=actor, campaign=campaign, steps=steps, contact=contact, start=now, end=end, sent_per_day=sent_per_day
        )
        for entry in timeline:
            if entry["step_type"] in MESSAGE_STEPS:
                per_day[entry["at"].astimezone(zone).date().isoformat()][entry["step_order"]] += 1
        people.append({"contact": contact.pk, "display_name": contact.display_name, "timeline": timeline})
    return {
        "version": version.pk,
        "from": now,
        "to": end,
        "timezone": campaign.tenant.timezone,
        "sample": len(sample),
        "entering": len(entered),
        "refused": [{"contact": pk, "reason": reason} for pk, reason in refused.items()],
        "contacts": people,
        "sends_per_day": {day: dict(sorted(counts.items())) for day, counts in sorted(per_day.items())},
    }
