"""The execution engine: PostgreSQL holds the schedule, Redis only carries "run these rows now".

A row's life: `pending` (due at `scheduled_at`) -> `running` (claimed, with a lease) ->
[`sending` (handed to the channel, committed first)] -> `completed` / `failed` / `skipped`.

- `executions_claim` claims due rows with `SELECT ... FOR UPDATE SKIP LOCKED` (two claims never
  take the same row), marks them `running` until `lease_until`, and after commit hands each batch
  to one task.
- `execution_run` re-reads the row under lock and goes on only while the claim is still its own
  (status `running`, lease alive); it re-checks the enrollment, the campaign, the contact and
  consent at that moment. A step that only writes to our database runs in the same transaction
  that records it `completed`, updates the counters and schedules the next step: exactly once.
  A message is recorded `sending` and committed before the channel is called, so a worker that
  dies mid-send leaves a `sending` row, never a blind second send.
- `executions_reap` returns expired claims to `pending` and turns expired sends into `unknown`,
  which a person resolves (`execution_resolve`: mark sent, or send again).
"""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail.message import make_msgid
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from campaigns.ab import variant_content, variant_for
from campaigns.content import CONTACTS, UPDATABLE_FIELDS, MergeContext, consent_refusal, contact_zone, render
from campaigns.mail import campaign_email
from campaigns.models import (
    IN_FLIGHT,
    MESSAGE_STEPS,
    Campaign,
    CampaignEnrollment,
    CampaignStatus,
    CampaignStep,
    CampaignStepExecution,
    CampaignTrigger,
    CatchUpPolicy,
    EnrollmentStatus,
    ExecutionStatus,
    ExitReason,
    SkipReason,
    StepType,
)
from campaigns.schedule import business_hours_next, execution_due
from campaigns.sms import sms_send
from campaigns.webhooks import Delivery, webhook_post
from contacts.models import Contact
from contacts.services import contact_update
from crm.actor import Actor, Source
from crm.errors import ApplicationError, Conflict
from crm.models import Activity, ActivityType, Membership, MembershipStatus, Project, ProjectStatus, User
from crm.services import activity_create, notice_send, project_update

SEND_INTERRUPTED = "The worker stopped while the channel was sending: it is unknown whether the message went out."

# Why an enrollment left, as the skip reason of the steps it did not reach.
EXIT_SKIPS = {
    ExitReason.GOAL: SkipReason.GOAL_MET,
    ExitReason.EXCLUDED: SkipReason.EXCLUDED,
    ExitReason.ARCHIVED: SkipReason.ARCHIVED,
    ExitReason.CONTACT_DELETED: SkipReason.CONTACT_DELETED,
}
# A step skipped for these reasons ends the enrollment, with this exit reason.
SKIP_EXITS = {
    SkipReason.GOAL_MET: ExitReason.GOAL,
    SkipReason.EXCLUDED: ExitReason.EXCLUDED,
    SkipReason.CONTACT_DELETED: ExitReason.CONTACT_DELETED,
}
STEP_COUNTERS = {
    StepType.SEND_EMAIL: "emails_sent",
    StepType.SEND_SMS: "sms_sent",
    StepType.CREATE_TASK: "tasks_created",
}


def lease() -> timedelta:
    """How long a claim or a send holds its row: longer than a task may run (its hard time limit)."""
    return timedelta(seconds=settings.CAMPAIGN_EXECUTION_LEASE_SECONDS)


# Claiming ---------------------------------------------------------------------------------


def claim_due(*, batch_size: int, enqueue: Callable[[list[int]], Any], now: datetime | None = None) -> list[int]:
    """Claim up to `batch_size` due rows of active enrollments in active campaigns, oldest first.

    The rows are `running` with a lease when this commits; `enqueue(ids)` runs after the commit
    (one task for the batch). Rows locked by a concurrent claim are skipped, not waited for.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            CampaignStepExecution.objects.filter(
                status=ExecutionStatus.PENDING,
                scheduled_at__lte=now,
                enrollment__status=EnrollmentStatus.ACTIVE,
                enrollment__campaign__status=CampaignStatus.ACTIVE,
            )
            .order_by("scheduled_at", "pk")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            lease_until = now + lease()
            CampaignStepExecution.objects.filter(pk__in=ids).update(
                status=ExecutionStatus.RUNNING, lease_until=lease_until, updated_at=now
            )
            transaction.on_commit(lambda: _hand_over(ids, lease_until, enqueue))
    return ids


def _hand_over(ids: list[int], lease_until: datetime, enqueue: Callable[[list[int]], Any]) -> None:
    """Enqueue a committed claim. A broker that refuses it gets the rows back to `pending` at
    once (else they would wait out their lease for the reaper) and the error goes on: the rows
    are due in PostgreSQL, and the next claim after the broker returns takes them.

    A message the broker took despite the error finds its rows no longer claimed and does nothing.
    """
    try:
        enqueue(ids)
    except BrokerError:
        CampaignStepExecution.objects.filter(
            pk__in=ids, status=ExecutionStatus.RUNNING, lease_until=lease_until
        ).update(status=ExecutionStatus.PENDING, lease_until=None, updated_at=timezone.now())
        raise


def executions_claim(*, enqueue: Callable[[list[int]], Any], batch_size: int, max_outstanding: int) -> int:
    """Claim batch after batch (each its own transaction and task) until nothing is due or
    `max_outstanding` rows are claimed and not yet run; how many rows this call claimed.

    The cap is back-pressure: rows claimed faster than the workers run them would wait in the
    broker past their lease, to be returned by the reaper and claimed again for nothing.
    """
    room = max_outstanding - CampaignStepExecution.objects.filter(status=ExecutionStatus.RUNNING).count()
    claimed = 0
    while room > 0:
        wanted = min(batch_size, room)
        ids = claim_due(batch_size=wanted, enqueue=enqueue)
        claimed += len(ids)
        room -= len(ids)
        if len(ids) < wanted:
            break
    return claimed


# Running ----------------------------------------------------------------------------------


def _locked(execution_id: int) -> CampaignStepExecution | None:
    return (
        CampaignStepExecution.objects.select_for_update(of=("self",))
        .select_related(
            "step",
            "enrollment__campaign__tenant",
            "enrollment__contact__assigned_to",
            "enrollment__project",
        )
        .filter(pk=execution_id)
        .first()
    )


def _campaign_actor(execution: CampaignStepExecution, user: User | None = None) -> Actor:
    return Actor(tenant=execution.enrollment.campaign.tenant, user=user, source=Source.CAMPAIGN)


def _next_step(execution: CampaignStepExecution) -> tuple[CampaignStep | None, dict[str, Any]]:
    """Where the enrollment goes after this step, and what the step decided (a branch)."""
    step = execution.step
    if step.step_type == StepType.EXIT_CAMPAIGN:
        return None, {}
    if step.step_type == StepType.CONDITIONAL:
        from filters.services import filter_matches

        matched = filter_matches(
            actor=_campaign_actor(execution),
            entity_type=CONTACTS,
            tree=step.conditions,
            record=execution.enrollment.contact,
        )
        target = step.true_path_step if matched else step.false_path_step
        return target, {"branch": "true" if matched else "false"}
    following = (
        CampaignStep.objects.filter(version_id=step.version_id, step_order__gt=step.step_order)
        .order_by("step_order")
        .first()
    )
    return following, {}


def _finish(
    execution: CampaignStepExecution,
    *,
    status: str,
    now: datetime,
    skip_reason: str | None = None,
    error: str = "",
    result: dict[str, Any] | None = None,
    advance: bool = True,
) -> None:
    """Record the row's outcome and, with `advance`, move the enrollment on: its counters, its
    current step and the next step's execution (or its end), all in the caller's transaction.

    Precondition: the caller holds the row's lock, inside a transaction.
    """
    step, enrollment = execution.step, execution.enrollment
    decided: dict[str, Any] = {}
    following: CampaignStep | None = None
    if advance and step.step_type != StepType.EXIT_CAMPAIGN:
        following, decided = _next_step(execution)
    execution.status = status
    execution.skip_reason = skip_reason
    execution.error_message = error
    execution.result_data = {**execution.result_data, **(result or {}), **decided}
    execution.lease_until = None
    execution.completed_at = now
    execution.save(
        update_fields=[
            "status",
            "skip_reason",
            "error_message",
            "result_data",
            "provider_message_id",
            "lease_until",
            "completed_at",
            "updated_at",
        ]
    )
    if status == ExecutionStatus.COMPLETED:
        CampaignStep.objects.filter(pk=step.pk).update(
            total_executed=F("total_executed") + 1, total_succeeded=F("total_succeeded") + 1
        )
    elif status == ExecutionStatus.FAILED:
        CampaignStep.objects.filter(pk=step.pk).update(
            total_executed=F("total_executed") + 1, total_failed=F("total_failed") + 1
        )
    if not advance:
        return
    changes: dict[str, Any] = {"last_step_executed_at": now, "updated_at": now}
    if status == ExecutionStatus.COMPLETED:
        changes["steps_completed"] = F("steps_completed") + 1
        if step.step_type in STEP_COUNTERS:
            counter = STEP_COUNTERS[StepType(step.step_type)]
            changes[counter] = F(counter) + 1
    if step.step_type == StepType.EXIT_CAMPAIGN and status == ExecutionStatus.COMPLETED:
        changes.update(
            status=EnrollmentStatus.EXITED, exit_reason=ExitReason.EXIT_STEP, exited_at=now, next_step_scheduled_at=None
        )
    elif following is None:
        changes.update(status=EnrollmentStatus.COMPLETED, completed_at=now, next_step_scheduled_at=None)
    else:
        due = execution_due(
            following,
            now,
            campaign=enrollment.campaign,
            zone=contact_zone(enrollment.campaign.tenant, enrollment.contact),
        )
        # The graph has no cycles: the next step is reached on the same visit, and the unique
        # key refuses a second row for it (a doubled advance fails instead of running twice).
        CampaignStepExecution.objects.create(
            tenant_id=execution.tenant_id,
            enrollment=enrollment,
            step=following,
            visit=execution.visit,
            scheduled_at=due,
        )
        changes.update(current_step=following, current_step_order=following.step_order, next_step_scheduled_at=due)
    CampaignEnrollment.objects.filter(pk=enrollment.pk).update(**changes)


def goal_met_enrollments(campaign: Campaign) -> QuerySet[CampaignEnrollment]:
    """Enrollments in flight whose contact met the campaign's goal since entering."""
    in_flight = CampaignEnrollment.objects.filter(campaign=campaign, status__in=IN_FLIGHT)
    met: QuerySet[Any]
    if campaign.goal_type == "appointments":
        met = Activity.objects.filter(
            contact_id=OuterRef("contact_id"), type=ActivityType.MEETING, created_at__gte=OuterRef("enrolled_at")
        )
    elif campaign.goal_type == "deals":
        from substatus.models import SubstatusHistory

        met = SubstatusHistory.objects.filter(
            entity="project",
            to_status=ProjectStatus.APPROVED,
            changed_at__gte=OuterRef("enrolled_at"),
            record_id__in=Project.objects.filter(contact_id=OuterRef(OuterRef("contact_id"))).values("pk"),
        )
    else:  # reviews are clicks on a tracked link, which the engine does not track yet
        return in_flight.none()
    return in_flight.filter(Exists(met))


def _excluded(execution: CampaignStepExecution) -> bool:
    """Whether the contact now matches an exclusion of a trigger of the enrollment's version."""
    from filters.services import filter_matches

    enrollment = execution.enrollment
    triggers = CampaignTrigger.objects.filter(
        campaign_id=enrollment.campaign_id,
        version_id=enrollment.version_id,
        is_active=True,
        exclusion_conditions__isnull=False,
    ).exclude(exclusion_conditions={})
    return any(
        filter_matches(
            actor=_campaign_actor(execution),
            entity_type=CONTACTS,
            tree=trigger.exclusion_conditions,
            record=enrollment.contact,
        )
        for trigger in triggers
    )


def _skip_reason(execution: CampaignStepExecution) -> tuple[str | None, str] | None:
    """Why the row must not run now (skip reason, message), or None to run it."""
    enrollment, campaign, contact = execution.enrollment, execution.enrollment.campaign, execution.enrollment.contact
    if enrollment.status != EnrollmentStatus.ACTIVE:
        reason = EXIT_SKIPS.get(ExitReason(enrollment.exit_reason)) if enrollment.exit_reason else None
        return reason, f"The enrollment is {enrollment.status} ({enrollment.exit_reason or 'no reason'})."
    if campaign.status == CampaignStatus.ARCHIVED or campaign.is_deleted:
        return SkipReason.ARCHIVED, "The campaign is archived."
    if contact.is_deleted:
        return SkipReason.CONTACT_DELETED, "The contact was deleted."
    if goal_met_enrollments(campaign).filter(pk=enrollment.pk).exists():
        return SkipReason.GOAL_MET, "The contact met the campaign's goal."
    if _excluded(execution):
        return SkipReason.EXCLUDED, "The contact now matches an exclusion."
    if execution.step.step_type in MESSAGE_STEPS and consent_refusal(contact, execution.step.step_type):
        return SkipReason.NO_CONSENT, "The contact has no consent (or no address) for this channel."
    return None


# Messages a contact got (or is being sent) count towards the caps from when they started.
SENT_OR_SENDING = (ExecutionStatus.COMPLETED, ExecutionStatus.SENDING, ExecutionStatus.UNKNOWN)
CAP_WINDOWS = (("max_messages_per_day", timedelta(days=1)), ("max_messages_per_week", timedelta(weeks=1)))


def _deferral(execution: CampaignStepExecution, now: datetime) -> tuple[str, datetime] | None:
    """Whether a message must wait, and until when: outside the campaign's business hours (to the
    next opening), or over its frequency cap (until the oldest message in the window leaves it).

    The caps count the contact's messages from every campaign of the tenant, over rolling
    windows. Precondition: inside a transaction; the contact row is locked here, so two
    campaigns' messages to one contact are counted one after the other.
    """
    enrollment, campaign = execution.enrollment, execution.enrollment.campaign
    if campaign.respect_business_hours:
        zone = contact_zone(campaign.tenant, enrollment.contact)
        opening = business_hours_next(now, campaign.business_hours, zone)
        if opening > now:
            return SkipReason.QUIET_HOURS_MOVED, opening
    caps = [(getattr(campaign, name), window) for name, window in CAP_WINDOWS if getattr(campaign, name)]
    if not caps:
        return None
    Contact.objects.select_for_update().filter(pk=enrollment.contact_id).values_list("pk", flat=True).first()
    for cap, window in caps:
        started = list(
            CampaignStepExecution.objects.filter(
                enrollment__contact_id=enrollment.contact_id,
                step__step_type__in=MESSAGE_STEPS,
                status__in=SENT_OR_SENDING,
                started_at__gt=now - window,
            )
            .exclude(pk=execution.pk)
            .order_by("-started_at")
            .values_list("started_at", flat=True)[:cap]
        )
        if len(started) >= cap:
            # The cap-th most recent message leaving the window makes room for one more.
            return SkipReason.FREQUENCY_CAP, started[cap - 1] + window
    return None


def _defer(execution: CampaignStepExecution, reason: str, until: datetime, *, now: datetime) -> None:
    """Back to `pending`, due at `until`, the move noted (`skip_reason` and `result_data.moved`).

    Precondition: the caller holds the row's lock."""
    moves = [*execution.result_data.get("moved", []), {"reason": reason, "to": until.isoformat()}]
    execution.result_data = {**execution.result_data, "moved": moves}
    execution.status, execution.lease_until = ExecutionStatus.PENDING, None
    execution.scheduled_at, execution.skip_reason = until, reason
    execution.save(update_fields=["status", "lease_until", "scheduled_at", "skip_reason", "result_data", "updated_at"])
    CampaignEnrollment.objects.filter(pk=execution.enrollment_id).update(next_step_scheduled_at=until, updated_at=now)


def _notify(execution: CampaignStepExecution) -> list[int]:
    """A notice (crm's `notice_send`: on the user's own feed, seen only by them) about the
    contact for the named user, the contact's owner, or every active member holding the
    role; the users notified."""
    enrollment, config = execution.enrollment, execution.step.step_config
    contact = enrollment.contact
    members = Membership.objects.select_related("user").filter(
        tenant_id=execution.tenant_id, status=MembershipStatus.ACTIVE
    )
    if "role" in config:
        chosen = members.filter(role=config["role"]).order_by("user_id")
    elif config["user"] == "owner":
        owner = contact.assigned_to_id
        chosen = members.filter(user_id=owner) if owner is not None else members.none()
    else:
        chosen = members.filter(user_id=config["user"])
    users = [membership.user for membership in chosen if membership.user is not None]
    for user in users:
        context = MergeContext(
            tenant=enrollment.campaign.tenant, contact=contact, project=enrollment.project, user=user
        )
        notice_send(
            actor=_campaign_actor(execution),
            recipient=user,
            contact=contact,
            project=enrollment.project,
            subject=f"Campaign: {enrollment.campaign.name}"[:255],
            content=render(config["message"], context),
        )
    return [user.pk for user in users]


def _run_local(execution: CampaignStepExecution, now: datetime) -> dict[str, Any]:
    """Run a step that only writes to our database; what it did, for `result_data`.

    Precondition: inside the transaction that records the row `completed`.
    """
    step, enrollment = execution.step, execution.enrollment
    contact, config = enrollment.contact, step.step_config
    if step.step_type == StepType.CREATE_TASK:
        assignee = contact.assigned_to
        wanted = config.get("assign_to", "owner")
        if wanted != "owner":
            membership = (
                Membership.objects.select_related("user")
                .filter(tenant_id=execution.tenant_id, user_id=wanted, status=MembershipStatus.ACTIVE)
                .first()
            )
            assignee = membership.user if membership else assignee
        context = MergeContext(
            tenant=enrollment.campaign.tenant, contact=contact, project=enrollment.project, user=assignee
        )
        activity = activity_create(
            actor=_campaign_actor(execution, assignee),
            contact=contact,
            project=enrollment.project,
            type=ActivityType.TASK,
            subtype="campaign",
            subject=render(config["title"], context),
            content=render(config.get("description", ""), context) or None,
            scheduled_at=now + timedelta(days=config.get("due_in_days", 0)),
            external_id=f"campaign-execution:{execution.pk}",
        )
        return {"activity": activity.pk, "assigned_to": assignee.pk if assignee else None}
    if step.step_type == StepType.NOTIFY:
        return {"notified": _notify(execution)}
    if step.step_type == StepType.UPDATE_FIELD:
        entity = config.get("entity", "contact")
        model, _allowed = UPDATABLE_FIELDS[entity]
        value = model._meta.get_field(config["field"]).to_python(config.get("value"))  # type: ignore[union-attr]
        if entity == "contact":
            contact_update(contact=contact, actor=_campaign_actor(execution), **{config["field"]: value})
            return {"contact": contact.pk, "field": config["field"]}
        if enrollment.project is None:
            raise ApplicationError("The enrollment has no project to update.", code="no_project")
        project_update(project=enrollment.project, actor=_campaign_actor(execution), **{config["field"]: value})
        return {"project": enrollment.project.pk, "field": config["field"]}
    if step.step_type == StepType.MANAGE_TAGS:
        removed = set(config.get("remove", []))
        tags = [tag for tag in contact.tags if tag not in removed]
        tags += [tag for tag in dict.fromkeys(config.get("add", [])) if tag not in tags]
        contact_update(contact=contact, actor=_campaign_actor(execution), tags=tags)
        return {"tags": tags}
    return {}


def _send_email(execution: CampaignStepExecution) -> str:
    """Send the step's email through Django's email backend; the Message-ID we gave it."""
    config = variant_content(execution.step, execution.variant)
    message_id = make_msgid(domain=settings.CAMPAIGN_EMAIL_DOMAIN)
    campaign_email(execution=execution, subject=config["subject"], body=config["body"], message_id=message_id).send()
    return message_id


def _call_webhook(execution: CampaignStepExecution) -> Delivery:
    enrollment, config = execution.enrollment, execution.step.step_config
    contact = enrollment.contact
    payload = {
        "event": "campaign.step",
        "campaign": {"id": enrollment.campaign_id, "name": enrollment.campaign.name},
        "enrollment": enrollment.pk,
        "execution": execution.pk,
        "contact": {
            "id": contact.pk,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "email": contact.email,
            "phone": contact.phone,
        },
        "project": enrollment.project_id,
        "data": config.get("payload", {}),
    }
    return webhook_post(url=config["url"], payload=payload, delivery_id=f"campaign-execution-{execution.pk}")


def execution_run(*, execution_id: int, now: datetime | None = None) -> str:
    """Run one claimed row; what became of it (its status, or `not_ours` when the claim was lost).

    Safe to call twice or after a crash: only the claim's holder (status `running`, lease alive)
    proceeds, and the row's status changes under its lock.
    """
    now = now or timezone.now()
    with transaction.atomic():
        execution = _locked(execution_id)
        if (
            execution is None
            or execution.status != ExecutionStatus.RUNNING
            or execution.lease_until is None
            or execution.lease_until <= now
        ):
            return "not_ours"
        campaign = execution.enrollment.campaign
        if campaign.status != CampaignStatus.ACTIVE and campaign.status != CampaignStatus.ARCHIVED:
            # Paused since the claim: not sent now, it waits for the campaign to resume.
            execution.status, execution.lease_until = ExecutionStatus.PENDING, None
            execution.save(update_fields=["status", "lease_until", "updated_at"])
            return ExecutionStatus.PENDING
        execution.started_at = now
        skip = _skip_reason(execution)
        if skip is not None:
            reason, message = skip
            active = execution.enrollment.status == EnrollmentStatus.ACTIVE
            leaves = SKIP_EXITS.get(SkipReason(reason)) if active and reason else None
            ended = not active or reason == SkipReason.ARCHIVED or leaves is not None
            execution.save(update_fields=["started_at", "updated_at"])
            _finish(
                execution, status=ExecutionStatus.SKIPPED, now=now, skip_reason=reason, error=message, advance=not ended
            )
            if leaves is not None:
                CampaignEnrollment.objects.filter(pk=execution.enrollment_id).update(
                    status=EnrollmentStatus.EXITED,
                    exit_reason=leaves,
                    exited_at=now,
                    goal_achieved=leaves == ExitReason.GOAL,
                    goal_achieved_at=now if leaves == ExitReason.GOAL else None,
                    next_step_scheduled_at=None,
                    updated_at=now,
                )
            return ExecutionStatus.SKIPPED
        step_type = execution.step.step_type
        deferred = _deferral(execution, now) if step_type in MESSAGE_STEPS else None
        if deferred is not None:
            _defer(execution, *deferred, now=now)
            return ExecutionStatus.PENDING
        if step_type not in (StepType.SEND_EMAIL, StepType.SEND_SMS, StepType.WEBHOOK):
            execution.save(update_fields=["started_at", "updated_at"])
            try:
                with transaction.atomic():
                    result = _run_local(execution, now)
            except ApplicationError as exc:
                _finish(execution, status=ExecutionStatus.FAILED, now=now, error=exc.message)
                return ExecutionStatus.FAILED
            _finish(execution, status=ExecutionStatus.COMPLETED, now=now, result=result)
            return ExecutionStatus.COMPLETED
        execution.variant = variant_for(execution)  # kept from a first attempt: a retry never re-rolls
        execution.status = ExecutionStatus.SENDING
        execution.lease_until = now + lease()
        execution.save(update_fields=["variant", "status", "started_at", "lease_until", "updated_at"])
    # Committed as `sending`: a crash from here on leaves the row for the reaper to call `unknown`.
    if execution.step.step_type == StepType.WEBHOOK:
        delivery = _call_webhook(execution)
        return execution_sent(
            execution_id=execution_id,
            provider_message_id="",
            error=delivery.error,
            retry=delivery.transient,
            result={"status": delivery.status},
        )
    if execution.step.step_type == StepType.SEND_SMS:
        sent = sms_send(execution=execution, body=variant_content(execution.step, execution.variant)["body"])
        return execution_sent(
            execution_id=execution_id,
            provider_message_id=sent.message_id,
            error=sent.error,
            retry=sent.transient,
            unknown=sent.unknown,
        )
    try:
        message_id, error = _send_email(execution), ""
    except OSError as exc:  # smtplib's errors and connection failures
        message_id, error = "", f"The email could not be sent: {exc}"
    return execution_sent(execution_id=execution_id, provider_message_id=message_id, error=error)


def execution_sent(
    *,
    execution_id: int,
    provider_message_id: str,
    error: str = "",
    retry: bool = False,
    unknown: bool = False,
    result: dict[str, Any] | None = None,
) -> str:
    """Record what the channel answered for a row this worker was sending (or a person resolved).

    A transient failure (`retry`) goes back to `pending` after 1, 2, 4, ... minutes until the
    webhook's attempts are spent; an `unknown` outcome (the provider may have sent it) waits for a
    person, as after a crash mid-send; any other failure is final (`failed`, the enrollment moves on).
    """
    now = timezone.now()
    with transaction.atomic():
        execution = _locked(execution_id)
        # `unknown`: the reaper gave up on this send meanwhile, but it did end; record how.
        if execution is None or execution.status not in (ExecutionStatus.SENDING, ExecutionStatus.UNKNOWN):
            return "not_ours"
        if error and retry and execution.attempts + 1 < settings.CAMPAIGN_WEBHOOK_MAX_ATTEMPTS:
            execution.status, execution.lease_until = ExecutionStatus.PENDING, None
            execution.scheduled_at = now + timedelta(minutes=2**execution.attempts)
            execution.attempts += 1
            execution.error_message = error
            execution.result_data = {**execution.result_data, **(result or {})}
            execution.save(
                update_fields=[
                    "status",
                    "lease_until",
                    "scheduled_at",
                    "attempts",
                    "error_message",
                    "result_data",
                    "updated_at",
                ]
            )
            return ExecutionStatus.PENDING
        if error and unknown:
            execution.status, execution.lease_until, execution.error_message = ExecutionStatus.UNKNOWN, None, error
            execution.save(update_fields=["status", "lease_until", "error_message", "updated_at"])
            return ExecutionStatus.UNKNOWN
        if error:
            _finish(execution, status=ExecutionStatus.FAILED, now=now, error=error, result=result)
            return ExecutionStatus.FAILED
        execution.provider_message_id = provider_message_id
        _finish(execution, status=ExecutionStatus.COMPLETED, now=now, result=result)
    return ExecutionStatus.COMPLETED


def executions_run(*, ids: Sequence[int]) -> dict[str, int]:
    """Run a claimed batch, row by row (each in its own transactions); counts by outcome."""
    outcomes: dict[str, int] = {}
    for execution_id in ids:
        outcome = execution_run(execution_id=execution_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


# Resuming a paused campaign ----------------------------------------------------------------

OVERDUE_SKIPPED = "It fell due while the campaign was paused; the catch-up policy skips what is overdue."


def executions_catch_up(*, campaign: Campaign, now: datetime) -> dict[str, int]:
    """What fell due while the campaign was paused, by its catch-up policy: sent at once
    (`send_now`), skipped with reason `paused` and the enrollment moved on (`skip_overdue`), or
    rescheduled evenly over the next `catch_up_hours` (`spread_over_hours`). Counts by outcome.

    Precondition: inside the resume's transaction, with the campaign row locked (nothing of a
    paused campaign is claimed, so its overdue rows are all `pending`).
    """
    overdue = CampaignStepExecution.objects.filter(
        enrollment__campaign=campaign,
        enrollment__status=EnrollmentStatus.ACTIVE,
        status=ExecutionStatus.PENDING,
        scheduled_at__lte=now,
    ).order_by("scheduled_at", "pk")
    if campaign.catch_up_policy == CatchUpPolicy.SEND_NOW:
        return {"due_now": overdue.count()}
    if campaign.catch_up_policy == CatchUpPolicy.SKIP_OVERDUE:
        skipped = 0
        for execution_id in overdue.values_list("pk", flat=True):
            execution = _locked(execution_id)
            if execution is not None:
                _finish(
                    execution,
                    status=ExecutionStatus.SKIPPED,
                    now=now,
                    skip_reason=SkipReason.PAUSED,
                    error=OVERDUE_SKIPPED,
                )
                skipped += 1
        return {"skipped": skipped}
    rows = list(overdue.select_for_update(of=("self",)))
    spread = timedelta(hours=campaign.catch_up_hours or 1)
    for index, execution in enumerate(rows):
        execution.scheduled_at = now + spread * index / len(rows)
        execution.updated_at = now
    CampaignStepExecution.objects.bulk_update(rows, ["scheduled_at", "updated_at"])
    return {"spread": len(rows)}


# Leaving ------------------------------------------------------------------------------------


def executions_cancel(*, enrollments: "QuerySet[CampaignEnrollment]", now: datetime) -> int:
    """The pending executions of those of `enrollments` that exited: skipped, with the exit's
    reason (goal, exclusion, archive, deleted contact) or none (staff took them out, an exit step).
    A claimed row is left to its worker, which finds the enrollment gone and skips it the same way.

    Precondition: inside the transaction that made them exit.
    """
    cancelled = 0
    for exit_reason in ExitReason:
        cancelled += CampaignStepExecution.objects.filter(
            status=ExecutionStatus.PENDING,
            enrollment__in=enrollments.filter(status=EnrollmentStatus.EXITED, exit_reason=exit_reason),
        ).update(
            status=ExecutionStatus.SKIPPED,
            skip_reason=EXIT_SKIPS.get(exit_reason),
            error_message=f"The enrollment exited ({exit_reason.label}).",
            completed_at=now,
            updated_at=now,
        )
    return cancelled


# The reaper and people resolving `unknown` -------------------------------------------------


def executions_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Expired claims go back to `pending` (attempts + 1); expired sends become `unknown`."""
    now = now or timezone.now()
    with transaction.atomic():
        returned = CampaignStepExecution.objects.filter(status=ExecutionStatus.RUNNING, lease_until__lt=now).update(
            status=ExecutionStatus.PENDING, lease_until=None, attempts=F("attempts") + 1, updated_at=now
        )
        unknown = CampaignStepExecution.objects.filter(status=ExecutionStatus.SENDING, lease_until__lt=now).update(
            status=ExecutionStatus.UNKNOWN, lease_until=None, error_message=SEND_INTERRUPTED, updated_at=now
        )
    return {"returned": returned, "unknown": unknown}


class Resolution:
    MARK_SENT = "mark_sent"
    SEND_AGAIN = "send_again"
    CHOICES = (MARK_SENT, SEND_AGAIN)


def execution_resolve(*, execution: CampaignStepExecution, actor: Actor, resolution: str) -> CampaignStepExecution:
    """A person's decision on an `unknown` row: it was sent (complete it and move on), or send it again."""
    now = timezone.now()
    with actor.atomic():
        locked = _locked(execution.pk)
        if locked is None or locked.status != ExecutionStatus.UNKNOWN:
            raise Conflict(
                f"Only an execution whose send is unknown can be resolved; this one is {execution.status}.",
                code="not_unknown",
            )
        locked.result_data = {
            **locked.result_data,
            "resolved": {"as": resolution, "by": actor.user.pk if actor.user else None, "at": now.isoformat()},
        }
        if resolution == Resolution.MARK_SENT:
            _finish(locked, status=ExecutionStatus.COMPLETED, now=now)
        else:
            locked.status = ExecutionStatus.PENDING
            locked.scheduled_at = now
            locked.attempts += 1
            locked.error_message = ""
            locked.save(
                update_fields=["status", "scheduled_at", "attempts", "error_message", "result_data", "updated_at"]
            )
    locked.refresh_from_db()
    return locked
