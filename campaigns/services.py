"""Writes to campaigns: the campaign, its draft version's steps and triggers, publishing,
pause/resume/archive, templates, and enrollment (who gets in, who leaves).

Locks: a service that changes who is in a campaign locks the campaign row first
(`_lock_campaign`), so the caps (`max_enrollments`), rotations and "one active enrollment"
are decided one writer at a time; the database's unique constraints stay the final word.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypedDict, Unpack

from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError

from campaigns.ab import AB_FIELDS, ab_config_check
from campaigns.content import (
    CONTACTS,
    MergeContext,
    consent_refusal,
    contact_zone,
    render,
    tenant_zone,
    validate_business_hours,
    validate_step_config,
    validate_variants,
)
from campaigns.engine import executions_cancel, executions_catch_up, goal_met_enrollments
from campaigns.models import (
    IN_FLIGHT,
    MESSAGE_STEPS,
    Campaign,
    CampaignEnrollment,
    CampaignStatus,
    CampaignStep,
    CampaignStepExecution,
    CampaignTemplate,
    CampaignTrigger,
    CampaignVersion,
    EnrollmentSource,
    EnrollmentStatus,
    ExecutionStatus,
    ExitReason,
    SkipReason,
    StepType,
    TriggerType,
    VersionStatus,
)
from campaigns.schedule import execution_due
from contacts.models import Contact, ContactStage
from crm.actor import Actor
from crm.constraints import constraint_violation
from crm.errors import ApplicationError, Conflict
from crm.models import Activity, ActivityType, Membership, Project, ProjectStatus
from crm.records import (
    record_assign,
    record_check_links,
    record_purge,
    record_restore,
    record_save,
    record_soft_delete,
)

logger = logging.getLogger(__name__)

DRY_RUN_SHOWN = 20


# Campaigns --------------------------------------------------------------------------------

CAMPAIGN_WRITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "campaign_type",
        "goal_type",
        "goal_target",
        "allow_re_enrollment",
        "re_enrollment_delay_days",
        "respect_business_hours",
        "business_hours",
        "enrollment_type",
        "max_enrollments",
        "max_messages_per_day",
        "max_messages_per_week",
        "catch_up_policy",
        "catch_up_hours",
    }
)


class CampaignFields(TypedDict, total=False):
    """CAMPAIGN_WRITABLE_FIELDS, for campaign_create and campaign_update."""

    name: str
    description: str
    campaign_type: str
    goal_type: str
    goal_target: int | None
    allow_re_enrollment: bool
    re_enrollment_delay_days: int
    respect_business_hours: bool
    business_hours: dict[str, Any]
    enrollment_type: str
    max_enrollments: int | None
    max_messages_per_day: int | None
    max_messages_per_week: int | None
    catch_up_policy: str
    catch_up_hours: int | None


def _check_campaign(fields: CampaignFields) -> None:
    if "business_hours" in fields:
        validate_business_hours(fields["business_hours"])


def campaign_create(*, actor: Actor, **fields: Unpack[CampaignFields]) -> Campaign:
    """A draft campaign with an empty draft version (version 1)."""
    _check_campaign(fields)
    campaign = Campaign(tenant=actor.require_tenant(), created_by=actor.user)
    record_assign(campaign, fields, allowed=CAMPAIGN_WRITABLE_FIELDS)
    with actor.atomic():
        record_save(campaign, actor=actor)
        CampaignVersion.objects.create(tenant=campaign.tenant, campaign=campaign, number=1)
    return campaign


def campaign_update(*, campaign: Campaign, actor: Actor, **fields: Unpack[CampaignFields]) -> Campaign:
    if campaign.status == CampaignStatus.ARCHIVED:
        raise Conflict("This campaign is archived: it cannot change.", code="archived")
    _check_campaign(fields)
    changed = record_assign(campaign, fields, allowed=CAMPAIGN_WRITABLE_FIELDS)
    return record_save(campaign, actor=actor, update_fields=[*changed, "updated_at"])


def campaign_delete(*, campaign: Campaign, actor: Actor) -> Campaign:
    """Soft delete; a campaign with people in flight must be archived (or paused) first."""
    if campaign.status == CampaignStatus.ACTIVE:
        raise Conflict("This campaign is active: pause or archive it before deleting it.", code="active")
    return record_soft_delete(record=campaign, actor=actor)


def campaign_restore(*, campaign: Campaign, actor: Actor) -> Campaign:
    return record_restore(record=campaign, actor=actor)


def campaign_purge(*, campaign: Campaign, actor: Actor) -> None:
    """Delete a deleted campaign for good, with its versions, steps, triggers and enrollments."""
    with actor.atomic():
        CampaignEnrollment.objects.filter(campaign=campaign).delete()  # they PROTECT their version
        Campaign.objects.filter(pk=campaign.pk).update(active_version=None)
        campaign.active_version = None
        record_purge(record=campaign, actor=actor)


def _lock_campaign(campaign: Campaign) -> Campaign:
    """Precondition: inside a transaction. The campaign row, locked and fresh."""
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def campaign_pause(*, campaign: Campaign, actor: Actor) -> Campaign:
    with actor.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status != CampaignStatus.ACTIVE:
            raise Conflict(f"Only an active campaign can be paused; this one is {campaign.status}.", code="not_active")
        campaign.status = CampaignStatus.PAUSED
        return record_save(campaign, actor=actor, update_fields=["status", "updated_at"])


def campaign_resume(*, campaign: Campaign, actor: Actor) -> Campaign:
    """Active again; what fell due meanwhile follows the campaign's catch-up policy (in this transaction)."""
    with actor.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status != CampaignStatus.PAUSED:
            raise Conflict(f"Only a paused campaign can resume; this one is {campaign.status}.", code="not_paused")
        campaign.status = CampaignStatus.ACTIVE
        campaign = record_save(campaign, actor=actor, update_fields=["status", "updated_at"])
        executions_catch_up(campaign=campaign, now=timezone.now())
        return campaign


def campaign_archive(*, campaign: Campaign, actor: Actor) -> Campaign:
    """Archived for good: everyone in flight leaves (`archived`), triggers stop."""
    with actor.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status == CampaignStatus.ARCHIVED:
            return campaign
        CampaignEnrollment.objects.filter(campaign=campaign, status__in=IN_FLIGHT).update(
            status=EnrollmentStatus.EXITED,
            exit_reason=ExitReason.ARCHIVED,
            exited_at=Now(),
            next_step_scheduled_at=None,
            updated_at=Now(),
        )
        # What was still to run is cancelled; a claimed row's worker finds it no longer its own.
        CampaignStepExecution.objects.filter(
            enrollment__campaign=campaign, status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        ).update(
            status=ExecutionStatus.SKIPPED,
            skip_reason=SkipReason.ARCHIVED,
            lease_until=None,
            completed_at=Now(),
            updated_at=Now(),
        )
        campaign.status = CampaignStatus.ARCHIVED
        return record_save(campaign, actor=actor, update_fields=["status", "updated_at"])


# Versions, steps and triggers -------------------------------------------------------------


def campaign_draft(*, campaign: Campaign, actor: Actor) -> CampaignVersion:
    """The campaign's draft version; a new one (a copy of the active version) when it has none."""
    if campaign.status == CampaignStatus.ARCHIVED:
        raise Conflict("This campaign is archived: it cannot change.", code="archived")
    with actor.atomic():
        _lock_campaign(campaign)
        draft = CampaignVersion.objects.filter(campaign=campaign, status=VersionStatus.DRAFT).first()
        if draft is not None:
            return draft
        last = CampaignVersion.objects.filter(campaign=campaign).aggregate(last=Max("number"))["last"] or 0
        draft = CampaignVersion.objects.create(tenant=campaign.tenant, campaign=campaign, number=last + 1)
        if campaign.active_version_id is not None:
            _copy_version(campaign.active_version_id, draft)
        return draft


def _copy_version(source_id: int, draft: CampaignVersion) -> None:
    steps = list(CampaignStep.objects.filter(version_id=source_id).order_by("step_order"))
    copies = {}
    for step in steps:
        copy = CampaignStep(
            tenant=draft.tenant,
            campaign=draft.campaign,
            version=draft,
            name=step.name,
            step_order=step.step_order,
            step_type=step.step_type,
            step_config=step.step_config,
            delay_value=step.delay_value,
            delay_unit=step.delay_unit,
            conditions=step.conditions,
            variants=step.variants,
            **{name: getattr(step, name) for name in AB_FIELDS},
        )
        copies[step.pk] = copy
    CampaignStep.objects.bulk_create(copies.values())
    relinked = []
    for step in steps:
        copy = copies[step.pk]
        for name in ("parent_step_id", "true_path_step_id", "false_path_step_id"):
            old = getattr(step, name)
            setattr(copy, name, copies[old].pk if old in copies else None)
        relinked.append(copy)
    CampaignStep.objects.bulk_update(relinked, ["parent_step", "true_path_step", "false_path_step"])
    CampaignTrigger.objects.bulk_create(
        CampaignTrigger(
            tenant=draft.tenant,
            campaign=draft.campaign,
            version=draft,
            trigger_type=trigger.trigger_type,
            trigger_config=trigger.trigger_config,
            enrollment_conditions=trigger.enrollment_conditions,
            exclusion_conditions=trigger.exclusion_conditions,
            priority=trigger.priority,
            is_active=trigger.is_active,
        )
        for trigger in CampaignTrigger.objects.filter(version_id=source_id)
    )


STEP_WRITABLE_FIELDS = frozenset(
    {
        "name",
        "step_order",
        "parent_step",
        "step_type",
        "step_config",
        "delay_value",
        "delay_unit",
        "conditions",
        "true_path_step",
        "false_path_step",
        "variants",
        *AB_FIELDS,
    }
)


class StepFields(TypedDict, total=False):
    """STEP_WRITABLE_FIELDS, for step_create and step_update."""

    name: str
    step_order: int
    parent_step: CampaignStep | None
    step_type: str
    step_config: dict[str, Any]
    delay_value: int
    delay_unit: str
    conditions: dict[str, Any] | None
    true_path_step: CampaignStep | None
    false_path_step: CampaignStep | None
    variants: list[dict[str, Any]]
    ab_metric: str
    ab_test_size: int | None
    ab_window_hours: int | None
    ab_fallback_variant: str


def _active_members(tenant_id: int, ids: list[int]) -> set[int]:
    return set(
        Membership.objects.active().filter(tenant_id=tenant_id, user_id__in=ids).values_list("user_id", flat=True)
    )


def conditions_check(*, actor: Actor, tree: Any, attr: str) -> None:
    """A filter tree the filters app accepts for contacts (its error names the node's path)."""
    if tree is None:
        return
    from filters.services import filter_queryset

    try:
        filter_queryset(actor=actor, entity_type=CONTACTS, tree=tree)
    except ApplicationError as exc:
        raise ApplicationError(f"{attr}: {exc.message}", code=exc.code, attr=attr) from exc


def _check_step(step: CampaignStep, fields: StepFields, *, actor: Actor) -> None:
    record_check_links(step, fields)
    links: dict[str, CampaignStep | None] = {
        "parent_step": fields.get("parent_step"),
        "true_path_step": fields.get("true_path_step"),
        "false_path_step": fields.get("false_path_step"),
    }
    for name, other in links.items():
        if other is not None and other.version_id != step.version_id:
            raise ApplicationError(
                f"Step {other.pk} belongs to another version of the campaign.", code="other_version", attr=name
            )
    step_type = fields.get("step_type", step.step_type)
    config = fields.get("step_config", step.step_config if "step_type" not in fields else {})
    validate_step_config(step_type, config, members=lambda ids: _active_members(step.tenant_id, ids))
    variants = fields.get("variants", step.variants)
    validate_variants(step_type, variants)
    ab_config_check(
        step_type=step_type,
        variants=variants,
        config={name: fields.get(name, getattr(step, name)) for name in AB_FIELDS},
    )
    if "conditions" in fields:
        conditions_check(actor=actor, tree=fields["conditions"], attr="conditions")


def _draft_of(version: CampaignVersion) -> None:
    if version.status != VersionStatus.DRAFT:
        raise Conflict(
            f"Version {version.number} is published: edit the draft version instead.", code="published_version"
        )


def step_create(*, actor: Actor, campaign: Campaign, **fields: Unpack[StepFields]) -> CampaignStep:
    """A step of the campaign's draft version (made from the active version when there is none)."""
    draft = campaign_draft(campaign=campaign, actor=actor)
    step = CampaignStep(tenant=campaign.tenant, campaign=campaign, version=draft)
    if "step_config" not in fields:
        fields["step_config"] = {}
    _check_step(step, fields, actor=actor)
    record_assign(step, fields, allowed=STEP_WRITABLE_FIELDS)
    if "step_order" not in fields:
        last = CampaignStep.objects.filter(version=draft).aggregate(last=Max("step_order"))["last"]
        step.step_order = 1 if last is None else last + 1
    return record_save(step, actor=actor)


def step_update(*, step: CampaignStep, actor: Actor, **fields: Unpack[StepFields]) -> CampaignStep:
    _draft_of(step.version)
    _check_step(step, fields, actor=actor)
    changed = record_assign(step, fields, allowed=STEP_WRITABLE_FIELDS)
    return record_save(step, actor=actor, update_fields=[*changed, "updated_at"])


def step_delete(*, step: CampaignStep, actor: Actor) -> None:
    _draft_of(step.version)
    with actor.atomic():
        step.delete()


TRIGGER_WRITABLE_FIELDS = frozenset(
    {"trigger_type", "trigger_config", "enrollment_conditions", "exclusion_conditions", "priority", "is_active"}
)


class TriggerFields(TypedDict, total=False):
    """TRIGGER_WRITABLE_FIELDS, for trigger_create and trigger_update."""

    trigger_type: str
    trigger_config: dict[str, Any]
    enrollment_conditions: dict[str, Any] | None
    exclusion_conditions: dict[str, Any] | None
    priority: int
    is_active: bool


# The date columns a time-based trigger counts from.
TIME_FIELDS = {
    "contact": {"created_at", "last_inspection_date"},
    "project": {
        "created_at",
        "estimated_start",
        "scheduled_start",
        "actual_start",
        "estimated_completion",
        "actual_completion",
    },
}
STATUS_VALUES = {"contact": ContactStage.values, "project": ProjectStatus.values}
# A notice is private to its recipient and written by Ridgeline: no campaign starts from one.
TRIGGER_ACTIVITY_TYPES = [value for value in ActivityType.values if value != ActivityType.NOTICE]


def _only_keys(config: Mapping[str, Any], allowed: set[str], attr: str) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ApplicationError(
            f"{attr}: unknown key(s) {unknown}; allowed: {sorted(allowed)}.", code="unknown_key", attr=attr
        )


def validate_trigger_config(trigger_type: str, config: Any, *, tenant_id: int) -> None:
    attr = "trigger_config"
    if not isinstance(config, dict):
        raise ApplicationError("trigger_config must be an object.", code="invalid", attr=attr)
    if trigger_type == TriggerType.STAGE_CHANGE:
        _only_keys(config, {"entity", "from", "to", "substatus"}, attr)
        entity = config.get("entity")
        if entity not in STATUS_VALUES:
            raise ApplicationError(f"{attr}.entity: contact or project.", code="invalid", attr=attr)
        if "from" not in config and "to" not in config:
            raise ApplicationError(f"{attr}: name a `from` or a `to` {entity} status.", code="required", attr=attr)
        for key in ("from", "to"):
            if key in config and config[key] not in STATUS_VALUES[entity]:
                raise ApplicationError(
                    f"{attr}.{key}: one of {STATUS_VALUES[entity]}.", code="invalid_choice", attr=attr
                )
        if "substatus" in config:
            from substatus.models import SubstatusConfig

            substatus = config["substatus"]
            if (
                not isinstance(substatus, int)
                or isinstance(substatus, bool)
                or not SubstatusConfig.objects.filter(pk=substatus, tenant_id=tenant_id, entity=entity).exists()
            ):
                raise ApplicationError(
                    f'{attr}.substatus: Invalid pk "{substatus}" - object does not exist.',
                    code="does_not_exist",
                    attr=attr,
                )
    elif trigger_type == TriggerType.EVENT:
        _only_keys(config, {"activity_type", "subtype"}, attr)
        if config.get("activity_type") not in TRIGGER_ACTIVITY_TYPES:
            raise ApplicationError(
                f"{attr}.activity_type: one of {TRIGGER_ACTIVITY_TYPES}.", code="invalid_choice", attr=attr
            )
        if "subtype" in config and (not isinstance(config["subtype"], str) or len(config["subtype"]) > 50):
            raise ApplicationError(f"{attr}.subtype: text of at most 50 characters.", code="invalid", attr=attr)
    elif trigger_type == TriggerType.TIME_BASED:
        _only_keys(config, {"entity", "field", "offset_days", "date"}, attr)
        if "date" in config:
            if set(config) != {"date"}:
                raise ApplicationError(f"{attr}: a fixed date, or a date field and offset.", code="invalid", attr=attr)
            try:
                date.fromisoformat(config["date"])
            except (TypeError, ValueError):
                raise ApplicationError(f"{attr}.date: a date (YYYY-MM-DD).", code="invalid", attr=attr) from None
            return
        entity = config.get("entity")
        if entity not in TIME_FIELDS:
            raise ApplicationError(f"{attr}.entity: contact or project.", code="invalid", attr=attr)
        if config.get("field") not in TIME_FIELDS[entity]:
            raise ApplicationError(
                f"{attr}.field: one of {sorted(TIME_FIELDS[entity])}.", code="invalid_choice", attr=attr
            )
        offset = config.get("offset_days", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or not -3650 <= offset <= 3650:
            raise ApplicationError(f"{attr}.offset_days: whole days, -3650 to 3650.", code="invalid", attr=attr)
    elif trigger_type == TriggerType.MANUAL:
        _only_keys(config, set(), attr)


def _check_trigger(trigger: CampaignTrigger, fields: TriggerFields, *, actor: Actor) -> None:
    trigger_type = fields.get("trigger_type", trigger.trigger_type)
    config = fields.get("trigger_config", trigger.trigger_config if "trigger_type" not in fields else {})
    validate_trigger_config(trigger_type, config, tenant_id=trigger.tenant_id)
    for name in ("enrollment_conditions", "exclusion_conditions"):
        if name in fields:
            conditions_check(actor=actor, tree=fields[name], attr=name)


def trigger_create(*, actor: Actor, campaign: Campaign, **fields: Unpack[TriggerFields]) -> CampaignTrigger:
    draft = campaign_draft(campaign=campaign, actor=actor)
    trigger = CampaignTrigger(tenant=campaign.tenant, campaign=campaign, version=draft)
    _check_trigger(trigger, fields, actor=actor)
    record_assign(trigger, fields, allowed=TRIGGER_WRITABLE_FIELDS)
    return record_save(trigger, actor=actor)


def trigger_update(*, trigger: CampaignTrigger, actor: Actor, **fields: Unpack[TriggerFields]) -> CampaignTrigger:
    _draft_of(trigger.version)
    _check_trigger(trigger, fields, actor=actor)
    changed = record_assign(trigger, fields, allowed=TRIGGER_WRITABLE_FIELDS)
    return record_save(trigger, actor=actor, update_fields=[*changed, "updated_at"])


def trigger_delete(*, trigger: CampaignTrigger, actor: Actor) -> None:
    _draft_of(trigger.version)
    with actor.atomic():
        trigger.delete()


# Publishing -------------------------------------------------------------------------------


def _next_steps(step: CampaignStep, ordered: list[CampaignStep]) -> list[tuple[str, CampaignStep]]:
    """Where a step leads: its branches (conditional), nothing (exit), else the next in order."""
    if step.step_type == StepType.CONDITIONAL:
        by_id = {candidate.pk: candidate for candidate in ordered}
        return [
            (name, by_id[target])
            for name, target in (
                ("true_path_step", step.true_path_step_id),
                ("false_path_step", step.false_path_step_id),
            )
            if target in by_id
        ]
    if step.step_type == StepType.EXIT_CAMPAIGN:
        return []
    later = [candidate for candidate in ordered if candidate.step_order > step.step_order]
    return [("next", later[0])] if later else []


def version_validate(*, version: CampaignVersion, sample: MergeContext) -> list[CampaignStep]:
    """The graph rules, each error naming the step's path (`steps[<order>].<field>`):
    at least one step, every conditional with both paths in this version, no cycle (so every
    path ends), every message renders for the sample contact."""
    ordered = list(CampaignStep.objects.filter(version=version).order_by("step_order"))
    if not ordered:
        raise ApplicationError("A campaign needs at least one step to be published.", code="no_steps", attr="steps")
    ids = {step.pk for step in ordered}
    for step in ordered:
        path = f"steps[{step.step_order}]"
        if step.step_type == StepType.CONDITIONAL:
            if step.conditions is None:
                raise ApplicationError(
                    f"{path}.conditions: a conditional step needs conditions.", code="required", attr="steps"
                )
            for name in ("true_path_step_id", "false_path_step_id"):
                target = getattr(step, name)
                if target is None or target not in ids:
                    raise ApplicationError(
                        f"{path}.{name.removesuffix('_id')}: a conditional step needs both paths, in this version.",
                        code="missing_path",
                        attr="steps",
                    )
        for content in [step.step_config, *step.variants] if step.step_type in MESSAGE_STEPS else []:
            for key in ("subject", "body"):
                if key in content:
                    try:
                        render(content[key], sample)
                    except ApplicationError as exc:
                        raise ApplicationError(f"{path}.{key}: {exc.message}", code=exc.code, attr="steps") from exc
    # Depth-first from the first step: a step met again on the current path is a cycle.
    state: dict[int, str] = {}

    def visit(step: CampaignStep, trail: list[int]) -> None:
        state[step.pk] = "open"
        for name, target in _next_steps(step, ordered):
            if state.get(target.pk) == "open":
                raise ApplicationError(
                    f"steps[{step.step_order}].{name}: leads back to step {target.step_order}, "
                    f"a cycle ({' -> '.join(map(str, [*trail, step.step_order, target.step_order]))}): "
                    "every path must end.",
                    code="cycle",
                    attr="steps",
                )
            if target.pk not in state:
                visit(target, [*trail, step.step_order])
        state[step.pk] = "done"

    visit(ordered[0], [])
    return ordered


@dataclass
class PublishResult:
    version: CampaignVersion
    moved: int = 0


def campaign_publish(
    *, campaign: Campaign, actor: Actor, step_mapping: Mapping[int, int] | None = None
) -> PublishResult:
    """Publish the draft version: validate it, freeze it, make it the active version.

    New enrollments use it. Enrollments in flight stay on their version, except those whose
    current step is a key of `step_mapping` (an old step id -> a step id of the new version):
    they move to the new version at the mapped step, in this same transaction.
    """
    with actor.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status == CampaignStatus.ARCHIVED:
            raise Conflict("This campaign is archived: it cannot be published.", code="archived")
        draft = CampaignVersion.objects.filter(campaign=campaign, status=VersionStatus.DRAFT).first()
        if draft is None:
            raise Conflict("There is no draft to publish: change a step or a trigger first.", code="no_draft")
        sample_contact = Contact.objects.alive().filter(tenant=campaign.tenant).order_by("pk").first()
        sample = MergeContext(
            tenant=campaign.tenant,
            contact=sample_contact or Contact(tenant=campaign.tenant, first_name="Sample", last_name="Contact"),
            project=Project(tenant=campaign.tenant, name="Sample project"),
            user=actor.user,
            unsubscribe_url="https://example.invalid/unsubscribe",
        )
        steps = version_validate(version=draft, sample=sample)
        mapping = dict(step_mapping or {})
        if mapping:
            _check_mapping(campaign, draft, mapping, steps)
        draft.status = VersionStatus.PUBLISHED
        draft.published_at = timezone.now()
        draft.published_by = actor.user
        draft.step_mapping = {str(old): new for old, new in mapping.items()}
        draft.save(update_fields=["status", "published_at", "published_by", "step_mapping"])
        _start_watermarks(draft)
        moved = 0
        orders = {step.pk: step.step_order for step in steps}
        for old, new in mapping.items():
            moved += CampaignEnrollment.objects.filter(
                campaign=campaign, status__in=IN_FLIGHT, current_step_id=old
            ).update(version=draft, current_step_id=new, current_step_order=orders[new], updated_at=Now())
            CampaignStepExecution.objects.filter(
                enrollment__campaign=campaign,
                enrollment__status__in=IN_FLIGHT,
                step_id=old,
                status=ExecutionStatus.PENDING,
            ).update(step_id=new, updated_at=Now())
        campaign.active_version = draft
        if campaign.status == CampaignStatus.DRAFT:
            campaign.status = CampaignStatus.ACTIVE
        campaign.save(update_fields=["active_version", "status", "updated_at"])
    return PublishResult(version=draft, moved=moved)


def _check_mapping(
    campaign: Campaign, draft: CampaignVersion, mapping: dict[int, int], steps: list[CampaignStep]
) -> None:
    new_ids = {step.pk for step in steps}
    old_ids = set(
        CampaignStep.objects.filter(campaign=campaign, pk__in=list(mapping))
        .exclude(version=draft)
        .values_list("pk", flat=True)
    )
    for old, new in mapping.items():
        if old not in old_ids:
            raise ApplicationError(
                f"step_mapping.{old}: not a step of an earlier version of this campaign.",
                code="does_not_exist",
                attr="step_mapping",
            )
        if new not in new_ids:
            raise ApplicationError(
                f"step_mapping.{old}: {new} is not a step of the version being published.",
                code="does_not_exist",
                attr="step_mapping",
            )


def _start_watermarks(version: CampaignVersion) -> None:
    """A new version's triggers see changes from now on, not the whole past."""
    from substatus.models import SubstatusHistory

    history = SubstatusHistory.objects.filter(tenant_id=version.tenant_id).aggregate(last=Max("id"))["last"] or 0
    activity = Activity.objects.filter(tenant_id=version.tenant_id).aggregate(last=Max("id"))["last"] or 0
    today = timezone.localdate(timezone=tenant_zone(version.tenant))
    for trigger in CampaignTrigger.objects.filter(version=version):
        if trigger.trigger_type == TriggerType.STAGE_CHANGE:
            trigger.watermark_id = history
        elif trigger.trigger_type == TriggerType.EVENT:
            trigger.watermark_id = activity
        elif trigger.trigger_type == TriggerType.TIME_BASED:
            trigger.watermark_date = today - timedelta(days=1)
        else:
            continue
        trigger.save(update_fields=["watermark_id", "watermark_date", "updated_at"])


# Templates --------------------------------------------------------------------------------


def templates_visible(*, tenant_id: int) -> QuerySet[CampaignTemplate]:
    """The defaults and the tenant's own templates."""
    return CampaignTemplate.objects.filter(Q(tenant__isnull=True) | Q(tenant_id=tenant_id))


def campaign_from_template(*, actor: Actor, template: CampaignTemplate, name: str = "") -> Campaign:
    """A draft campaign with the template's steps and triggers, for the office to edit and publish."""
    tenant = actor.require_tenant()
    if template.tenant_id not in (None, tenant.pk):
        raise ApplicationError(
            f'Invalid pk "{template.pk}" - object does not exist.', code="does_not_exist", attr="template"
        )
    with actor.atomic():
        campaign = campaign_create(
            actor=actor,
            name=name or template.name,
            description=template.description,
            campaign_type=template.campaign_type,
            goal_type=template.goal_type,
            goal_target=template.goal_target,
        )
        for order, definition in enumerate(template.steps, start=1):
            step_create(actor=actor, campaign=campaign, **_step_fields(definition, order))
        for definition in template.triggers:
            trigger_create(
                actor=actor,
                campaign=campaign,
                trigger_type=definition["trigger_type"],
                trigger_config=definition.get("trigger_config", {}),
            )
    return campaign


def _step_fields(definition: Mapping[str, Any], order: int) -> StepFields:
    fields: StepFields = {
        "step_order": order,
        "step_type": definition["step_type"],
        "step_config": definition.get("step_config", {}),
    }
    for name in ("name", "delay_value", "delay_unit"):
        if name in definition:
            fields[name] = definition[name]
    return fields


TEMPLATE_WRITABLE_FIELDS = frozenset(
    {"key", "name", "description", "campaign_type", "goal_type", "goal_target", "steps", "triggers"}
)


class TemplateFields(TypedDict, total=False):
    key: str
    name: str
    description: str
    campaign_type: str
    goal_type: str
    goal_target: int | None
    steps: list[dict[str, Any]]
    triggers: list[dict[str, Any]]


def _check_template(tenant_id: int, fields: TemplateFields) -> None:
    for index, definition in enumerate(fields.get("steps", [])):
        where = f"steps[{index}]"
        if not isinstance(definition, dict) or definition.get("step_type") not in StepType.values:
            raise ApplicationError(f"{where}.step_type: one of {StepType.values}.", code="invalid", attr="steps")
        try:
            validate_step_config(
                definition["step_type"],
                definition.get("step_config", {}),
                members=lambda ids: _active_members(tenant_id, ids),
            )
        except ApplicationError as exc:
            raise ApplicationError(f"{where}.{exc.message}", code=exc.code, attr="steps") from exc
    for index, definition in enumerate(fields.get("triggers", [])):
        where = f"triggers[{index}]"
        if not isinstance(definition, dict) or definition.get("trigger_type") not in TriggerType.values:
            raise ApplicationError(
                f"{where}.trigger_type: one of {TriggerType.values}.", code="invalid", attr="triggers"
            )
        try:
            validate_trigger_config(
                definition["trigger_type"], definition.get("trigger_config", {}), tenant_id=tenant_id
            )
        except ApplicationError as exc:
            raise ApplicationError(f"{where}.{exc.message}", code=exc.code, attr="triggers") from exc


def template_create(*, actor: Actor, **fields: Unpack[TemplateFields]) -> CampaignTemplate:
    tenant = actor.require_tenant()
    _check_template(tenant.pk, fields)
    template = CampaignTemplate(tenant=tenant, created_by=actor.user)
    record_assign(template, fields, allowed=TEMPLATE_WRITABLE_FIELDS)
    return record_save(template, actor=actor)


def template_update(*, template: CampaignTemplate, actor: Actor, **fields: Unpack[TemplateFields]) -> CampaignTemplate:
    if template.tenant_id is None:
        raise Conflict("A default template cannot change: create a campaign from it, or a template of your own.")
    _check_template(template.tenant_id, fields)
    changed = record_assign(template, fields, allowed=TEMPLATE_WRITABLE_FIELDS)
    return record_save(template, actor=actor, update_fields=[*changed, "updated_at"])


def template_delete(*, template: CampaignTemplate, actor: Actor) -> None:
    if template.tenant_id is None:
        raise Conflict("A default template cannot be deleted.", code="default_template")
    with actor.atomic():
        template.delete()


# Enrollment -------------------------------------------------------------------------------


class Refusal:
    """Why a contact does not enter (the dry run's reasons)."""

    DELETED = "deleted"
    ALREADY_ACTIVE = "already_active"
    ALREADY_ENROLLED = "already_enrolled"  # re-enrollment is off
    RE_ENROLLMENT_DELAY = "re_enrollment_delay"
    NOT_ELIGIBLE = "not_eligible"  # the enrollment conditions
    EXCLUDED = "excluded"
    CAP_REACHED = "cap_reached"
    NO_CONSENT = "no_consent"


@dataclass
class EnrollResult:
    entered: list[Contact] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # contact id -> Refusal
    enrollments: list[CampaignEnrollment] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.entered)


def _first_step(version: CampaignVersion) -> CampaignStep | None:
    return CampaignStep.objects.filter(version=version).order_by("step_order").first()


def _first_channel(version: CampaignVersion) -> str | None:
    """The channel of the first message a contact would get, before any branch."""
    for step in CampaignStep.objects.filter(version=version).order_by("step_order"):
        if step.step_type in MESSAGE_STEPS:
            return step.step_type
        if step.step_type in (StepType.CONDITIONAL, StepType.EXIT_CAMPAIGN):
            return None
    return None


def _matching(actor: Actor, tree: Any, ids: Iterable[int]) -> set[int]:
    from filters.services import filter_queryset

    return set(
        filter_queryset(actor=actor, entity_type=CONTACTS, tree=tree)
        .filter(pk__in=list(ids))
        .values_list("pk", flat=True)
    )


def enrollment_decide(
    *,
    actor: Actor,
    campaign: Campaign,
    version: CampaignVersion,
    contacts: list[Contact],
    trigger: CampaignTrigger | None,
    now: Any,
) -> tuple[list[Contact], dict[int, str], dict[int, int]]:
    """Who enters and why the others do not; and each entrant's rotation.

    Precondition: the caller holds the campaign lock (`campaign` is the locked row)."""
    refused: dict[int, str] = {}
    ids = [contact.pk for contact in contacts]
    past = {}
    for row in (
        CampaignEnrollment.objects.filter(campaign=campaign, contact_id__in=ids)
        .values("contact_id")
        .annotate(
            rotation=Max("rotation"),
            left=Max("exited_at"),
            completed=Max("completed_at"),
        )
    ):
        past[row["contact_id"]] = row
    active = set(
        CampaignEnrollment.objects.filter(campaign=campaign, contact_id__in=ids, status__in=IN_FLIGHT).values_list(
            "contact_id", flat=True
        )
    )
    eligible = (
        _matching(actor, trigger.enrollment_conditions, ids) if trigger and trigger.enrollment_conditions else None
    )
    excluded = (
        _matching(actor, trigger.exclusion_conditions, ids) if trigger and trigger.exclusion_conditions else set()
    )
    channel = _first_channel(version)
    delay = timedelta(days=campaign.re_enrollment_delay_days)
    room = None if campaign.max_enrollments is None else max(campaign.max_enrollments - campaign.total_enrolled, 0)
    entered: list[Contact] = []
    rotations: dict[int, int] = {}
    for contact in contacts:
        before = past.get(contact.pk)
        left = max(filter(None, [before["left"], before["completed"]]), default=None) if before else None
        if contact.is_deleted:
            reason = Refusal.DELETED
        elif contact.pk in active:
            reason = Refusal.ALREADY_ACTIVE
        elif before and not campaign.allow_re_enrollment:
            reason = Refusal.ALREADY_ENROLLED
        elif before and (left is None or left + delay > now):
            reason = Refusal.RE_ENROLLMENT_DELAY
        elif eligible is not None and contact.pk not in eligible:
            reason = Refusal.NOT_ELIGIBLE
        elif contact.pk in excluded:
            reason = Refusal.EXCLUDED
        elif consent_refusal(contact, channel):
            reason = Refusal.NO_CONSENT
        elif room is not None and len(entered) >= room:
            reason = Refusal.CAP_REACHED
        else:
            entered.append(contact)
            rotations[contact.pk] = (before["rotation"] + 1) if before else 1
            continue
        refused[contact.pk] = reason
    return entered, refused, rotations


def campaign_enroll(
    *,
    campaign: Campaign,
    actor: Actor,
    contacts: list[Contact],
    source: str = EnrollmentSource.API,
    dry_run: bool = False,
    trigger: CampaignTrigger | None = None,
    trigger_event: str | None = None,
    projects: Mapping[int, Project] | None = None,
) -> EnrollResult:
    """Enroll `contacts` in the campaign's active version (or say who would, with `dry_run`).

    Manual enrollment takes the conditions of the version's first active `manual` trigger,
    when it has one. A trigger's enrollment is recorded with the change that caused it
    (`trigger_event`): the database keeps it to one per change and contact.
    """
    with actor.atomic():
        campaign = _lock_campaign(campaign)
        if campaign.status != CampaignStatus.ACTIVE or campaign.active_version is None or campaign.is_deleted:
            raise Conflict(
                f"Only an active, published campaign takes enrollments; this one is {campaign.status}.",
                code="not_active",
            )
        version = campaign.active_version
        if trigger is None and source != EnrollmentSource.AUTOMATIC_TRIGGER:
            trigger = (
                CampaignTrigger.objects.filter(version=version, trigger_type=TriggerType.MANUAL, is_active=True)
                .order_by("-priority", "pk")
                .first()
            )
        now = timezone.now()
        entered, refused, rotations = enrollment_decide(
            actor=actor, campaign=campaign, version=version, contacts=contacts, trigger=trigger, now=now
        )
        result = EnrollResult(entered=entered, refused=refused)
        if dry_run or not entered:
            return result
        first = _first_step(version)
        due = {
            contact.pk: execution_due(first, now, campaign=campaign, zone=contact_zone(campaign.tenant, contact))
            for contact in entered
            if first is not None
        }
        rows = [
            CampaignEnrollment(
                tenant=campaign.tenant,
                campaign=campaign,
                version=version,
                contact=contact,
                project=(projects or {}).get(contact.pk),
                rotation=rotations[contact.pk],
                enrollment_source=source,
                trigger=trigger if source == EnrollmentSource.AUTOMATIC_TRIGGER else None,
                trigger_event=trigger_event,
                enrolled_by=actor.user,
                enrolled_at=now,
                current_step=first,
                current_step_order=first.step_order if first else None,
                next_step_scheduled_at=due.get(contact.pk),
            )
            for contact in entered
        ]
        try:
            result.enrollments = CampaignEnrollment.objects.bulk_create(rows)
        except IntegrityError as exc:
            raise constraint_violation(exc) from exc
        if first is not None:
            # The first step's execution, in the enrollment's transaction: the engine's schedule.
            CampaignStepExecution.objects.bulk_create(
                CampaignStepExecution(
                    tenant=campaign.tenant,
                    enrollment=enrollment,
                    step=first,
                    scheduled_at=due[enrollment.contact_id],
                )
                for enrollment in result.enrollments
            )
            if any(due_at <= now for due_at in due.values()):
                transaction.on_commit(_claim_due_now)
    return result


def _claim_due_now() -> None:
    """Ask for a claim at once rather than at beat's next tick (after the enrollment committed).

    Without a broker the rows still run: beat claims them within seconds once it is back."""
    from campaigns.tasks import campaign_executions_claim_task  # tasks import this module

    try:
        campaign_executions_claim_task.delay()
    except OperationalError:
        logger.warning("The broker is unreachable: due executions wait for beat's next claim.", exc_info=True)


def enrollment_exit(
    *, enrollment: CampaignEnrollment, actor: Actor, reason: str = ExitReason.UNENROLLED
) -> CampaignEnrollment:
    """End an enrollment in flight (staff, an exclusion, the goal); a finished one stays as it is."""
    with actor.atomic():
        enrollment = CampaignEnrollment.objects.select_for_update().get(pk=enrollment.pk)
        if enrollment.status not in IN_FLIGHT:
            raise Conflict(f"This enrollment is already {enrollment.status}.", code="not_active")
        enrollment.status = EnrollmentStatus.EXITED
        enrollment.exit_reason = reason
        enrollment.exited_at = timezone.now()
        enrollment.next_step_scheduled_at = None
        if reason == ExitReason.GOAL:
            enrollment.goal_achieved = True
            enrollment.goal_achieved_at = enrollment.exited_at
        enrollment.save(
            update_fields=[
                "status",
                "exit_reason",
                "exited_at",
                "next_step_scheduled_at",
                "goal_achieved",
                "goal_achieved_at",
                "updated_at",
            ]
        )
        executions_cancel(enrollments=CampaignEnrollment.objects.filter(pk=enrollment.pk), now=enrollment.exited_at)
    return enrollment


def campaign_unenroll(*, campaign: Campaign, actor: Actor, contacts: list[Contact]) -> int:
    """Take these contacts out of the campaign (their enrollments in flight); returns how many left."""
    with actor.atomic():
        theirs = CampaignEnrollment.objects.filter(campaign=campaign, contact__in=contacts)
        left = theirs.filter(status__in=IN_FLIGHT).update(
            status=EnrollmentStatus.EXITED,
            exit_reason=ExitReason.UNENROLLED,
            exited_at=Now(),
            next_step_scheduled_at=None,
            updated_at=Now(),
        )
        executions_cancel(enrollments=theirs, now=timezone.now())
        return left


def enrollment_delete(*, enrollment: CampaignEnrollment, actor: Actor) -> None:
    """Remove an enrollment for good (the campaign's counters go down with it)."""
    with actor.atomic():
        enrollment.delete()


# Exits: exclusions and goals ---------------------------------------------------------------


def campaign_enrollments_check_exits(*, campaign: Campaign) -> dict[str, int]:
    """Exit enrollments in flight that met the goal (`goal`) or now match an exclusion (`excluded`)."""
    actor = Actor(tenant=campaign.tenant, user=None, source="task")
    exited = {ExitReason.GOAL: 0, ExitReason.EXCLUDED: 0}
    with actor.atomic():
        campaign = _lock_campaign(campaign)
        now = timezone.now()
        exited[ExitReason.GOAL] = goal_met_enrollments(campaign).update(
            status=EnrollmentStatus.EXITED,
            exit_reason=ExitReason.GOAL,
            exited_at=now,
            goal_achieved=True,
            goal_achieved_at=now,
            next_step_scheduled_at=None,
            updated_at=now,
        )
        for trigger in CampaignTrigger.objects.filter(
            campaign=campaign, is_active=True, exclusion_conditions__isnull=False
        ).exclude(exclusion_conditions={}):
            in_flight = CampaignEnrollment.objects.filter(
                campaign=campaign, version_id=trigger.version_id, status__in=IN_FLIGHT
            )
            matched = _matching(actor, trigger.exclusion_conditions, in_flight.values_list("contact_id", flat=True))
            exited[ExitReason.EXCLUDED] += in_flight.filter(contact_id__in=matched).update(
                status=EnrollmentStatus.EXITED,
                exit_reason=ExitReason.EXCLUDED,
                exited_at=now,
                next_step_scheduled_at=None,
                updated_at=now,
            )
        executions_cancel(enrollments=CampaignEnrollment.objects.filter(campaign=campaign), now=now)
    return {str(key): value for key, value in exited.items()}
