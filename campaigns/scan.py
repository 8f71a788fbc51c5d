"""Who enters by trigger: changes read from what the database records on every write path.

- `stage_change`: the substatus history (written by triggers for ORM, admin, API, Celery and
  raw SQL writes alike), after the trigger's watermark (a history id);
- `event`: new activities after the watermark (an activity id);
- `time_based`: a day-by-day scan of a date column plus an offset (or a fixed date), after
  the watermark (the last day scanned, in the tenant's time zone).

Each trigger is scanned under its row lock taken with SKIP LOCKED, so two scans running at
once share the work instead of doing it twice; and every enrollment carries the change that
caused it (`trigger_event`), which a unique constraint allows once per trigger and contact.
A transaction that commits late can make a history row appear below the watermark: the scan
also re-reads the last few minutes (LATE_COMMIT_WINDOW), which the constraint makes harmless.
"""

import logging
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from campaigns.content import tenant_zone
from campaigns.models import Campaign, CampaignStatus, CampaignTrigger, EnrollmentSource, TriggerType
from campaigns.services import campaign_enroll
from contacts.models import Contact
from crm.actor import Actor, Source
from crm.errors import ApplicationError
from crm.models import Activity, Project

logger = logging.getLogger(__name__)

LATE_COMMIT_WINDOW = timedelta(minutes=5)
BATCH = 500


def triggers_due() -> QuerySet[CampaignTrigger]:
    """Active triggers of the active version of active campaigns."""
    return CampaignTrigger.objects.filter(
        is_active=True,
        version_id=F("campaign__active_version_id"),
        campaign__status=CampaignStatus.ACTIVE,
        campaign__is_deleted=False,
        trigger_type__in=[TriggerType.STAGE_CHANGE, TriggerType.EVENT, TriggerType.TIME_BASED],
    ).order_by("-priority", "pk")


def campaign_triggers_scan(*, now: Any = None) -> int:
    """Scan every due trigger once; returns how many enrollments were created."""
    now = now or timezone.now()
    created = 0
    for pk in triggers_due().values_list("pk", flat=True):
        try:
            created += trigger_scan(trigger_id=pk, now=now)
        except ApplicationError:  # e.g. a condition whose filter field was since removed
            logger.warning("Campaign trigger %s skipped until the next run", pk, exc_info=True)
    return created


def trigger_scan(*, trigger_id: int, now: Any = None) -> int:
    """Scan one trigger: a no-op when another scan holds it."""
    now = now or timezone.now()
    with transaction.atomic():
        trigger = (
            triggers_due()
            .filter(pk=trigger_id)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("campaign", "tenant")
            .first()
        )
        if trigger is None:
            return 0
        if trigger.trigger_type == TriggerType.TIME_BASED:
            changes, trigger.watermark_date = _times(trigger, now)
        elif trigger.trigger_type == TriggerType.EVENT:
            changes, trigger.watermark_id = _events(trigger, now)
        else:
            changes, trigger.watermark_id = _stage_changes(trigger, now)
        created = 0
        for event, entries in changes.items():
            created += _enroll(trigger, event, entries)
        trigger.save(update_fields=["watermark_id", "watermark_date", "updated_at"])
        return created


Entries = list[tuple[Contact, Project | None]]


def _enroll(trigger: CampaignTrigger, event: str, entries: Entries) -> int:
    actor = Actor(tenant=trigger.tenant, user=None, source=Source.TASK)
    contacts = [contact for contact, _ in entries]
    projects = {contact.pk: project for contact, project in entries if project is not None}
    with transaction.atomic():  # a savepoint: a refusal of one change leaves the others
        result = campaign_enroll(
            campaign=trigger.campaign,
            actor=actor,
            contacts=contacts,
            source=EnrollmentSource.AUTOMATIC_TRIGGER,
            trigger=trigger,
            trigger_event=event,
            projects=projects,
        )
    return result.count


def _records(entity: str, ids: list[int]) -> dict[int, tuple[Contact, Project | None]]:
    """record id -> (the contact who enters, the project in context)."""
    if entity == "contact":
        return {contact.pk: (contact, None) for contact in Contact.objects.filter(pk__in=ids)}
    return {
        project.pk: (project.contact, project)
        for project in Project.objects.filter(pk__in=ids).select_related("contact")
        if project.contact is not None
    }


def _stage_changes(trigger: CampaignTrigger, now: Any) -> tuple[dict[str, Entries], int]:
    from substatus.models import SubstatusHistory

    config = trigger.trigger_config
    entity = config["entity"]
    watermark = trigger.watermark_id or 0
    rows = SubstatusHistory.objects.filter(tenant_id=trigger.tenant_id, entity=entity).filter(
        Q(pk__gt=watermark) | Q(changed_at__gte=now - LATE_COMMIT_WINDOW)
    )
    if "to" in config:
        rows = rows.filter(to_status=config["to"])
    if "from" in config:
        rows = rows.filter(from_status=config["from"])
    if "substatus" in config:  # entering the substatus, within the status or with it
        rows = rows.filter(to_substatus_id=config["substatus"]).exclude(from_substatus_id=config["substatus"])
    elif "from" not in config:  # a status change (or a new record), not a substatus move within a status
        rows = rows.exclude(from_status=F("to_status"))
    found = list(rows.order_by("pk").values_list("pk", "record_id")[:BATCH])
    records = _records(entity, [record for _, record in found])
    changes = {f"history:{pk}": [records[record]] for pk, record in found if record in records}
    return changes, max([watermark, *(pk for pk, _ in found)])


def _events(trigger: CampaignTrigger, now: Any) -> tuple[dict[str, Entries], int]:
    config = trigger.trigger_config
    watermark = trigger.watermark_id or 0
    rows = Activity.objects.filter(tenant_id=trigger.tenant_id, type=config["activity_type"]).filter(
        Q(pk__gt=watermark) | Q(created_at__gte=now - LATE_COMMIT_WINDOW)
    )
    if config.get("subtype"):
        rows = rows.filter(subtype=config["subtype"])
    found = list(rows.order_by("pk").values_list("pk", "contact_id", "project_id")[:BATCH])
    contacts = Contact.objects.in_bulk([contact for _, contact, _ in found if contact])
    projects = Project.objects.select_related("contact").in_bulk([project for _, _, project in found if project])
    changes: dict[str, Entries] = {}
    for pk, contact_id, project_id in found:
        project = projects.get(project_id) if project_id else None
        contact = contacts.get(contact_id) if contact_id else (project.contact if project else None)
        if contact is not None:
            changes[f"activity:{pk}"] = [(contact, project)]
    return changes, max([watermark, *(pk for pk, _, _ in found)])


def _times(trigger: CampaignTrigger, now: Any) -> tuple[dict[str, Entries], date]:
    config = trigger.trigger_config
    today = timezone.localdate(now, timezone=tenant_zone(trigger.tenant))
    since = trigger.watermark_date or today - timedelta(days=1)
    if since >= today:
        return {}, since
    if "date" in config:
        fixed = date.fromisoformat(config["date"])
        if not since < fixed <= today:
            return {}, today
        contacts = Contact.objects.alive().filter(tenant_id=trigger.tenant_id).order_by("pk")
        return {f"date:{fixed.isoformat()}": [(contact, None) for contact in contacts]}, today
    entity, name, offset = config["entity"], config["field"], timedelta(days=config.get("offset_days", 0))
    model = Contact if entity == "contact" else Project
    first, last = since + timedelta(days=1) - offset, today - offset
    column = f"{name}__date" if name == "created_at" else name
    found = (
        model.objects.alive()
        .filter(tenant_id=trigger.tenant_id, **{f"{column}__gte": first, f"{column}__lte": last})
        .order_by("pk")
    )
    records = _records(entity, list(found.values_list("pk", flat=True)))
    changes: dict[str, Entries] = defaultdict(list)
    for pk, value in found.values_list("pk", name):
        day = timezone.localdate(value, timezone=tenant_zone(trigger.tenant)) if isinstance(value, datetime) else value
        if pk in records:
            changes[f"time:{entity}:{pk}:{(day + offset).isoformat()}"].append(records[pk])
    return dict(changes), today


def campaigns_check_exits() -> dict[str, int]:
    """Goal and exclusion exits for every active campaign."""
    from campaigns.services import campaign_enrollments_check_exits

    totals: dict[str, int] = defaultdict(int)
    for campaign in Campaign.objects.filter(
        status__in=[CampaignStatus.ACTIVE, CampaignStatus.PAUSED], is_deleted=False
    ):
        for reason, count in campaign_enrollments_check_exits(campaign=campaign).items():
            totals[reason] += count
    return dict(totals)
