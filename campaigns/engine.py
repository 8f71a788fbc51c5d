"""The execution engine: PostgreSQL holds the schedule, Redis only carries "run these rows now".

A row's life: `pending` (due at `scheduled_at`) -> `running` (claimed, with a lease) ->
[`sending` (handed to the channel, committed first)] -> `completed` / `failed` / `skipped`.

- `executions_claim` claims due rows with `SELECT ... FOR UPDATE SKIP LOCKED` (two claims never
  take the same row), marks them `running` until `lease_until`, and after commit hands each batch
  to one task.
- `executions_run` runs a claimed batch set-based: it re-reads the batch's rows under lock in
  one query and goes on with those whose claim is still its own (status `running`, lease
  alive); it re-checks the enrollments, the campaigns, the contacts and consent at that moment,
  for the whole batch in a few queries. A step that only writes to our database runs in the
  same transaction that records it `completed`, updates the counters and schedules the next
  step: exactly once. Messages are recorded `sending` and committed a few at a time before
  their channel is called, so a worker that dies mid-send leaves those few `sending`, never a
  blind second send; what the channels answered is recorded in bulk after each few.
- `executions_reap` returns expired claims to `pending` and turns expired sends into `unknown`,
  which a person resolves (`execution_resolve`: mark sent, or send again).
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from campaigns.ab import variant_content, variants_for
from campaigns.content import CONTACTS, UPDATABLE_FIELDS, MergeContext, consent_refusal, contact_zone, render
from campaigns.mail import campaign_email_send
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
#
# A claimed batch runs set-based: its rows are re-read under lock in one query, the checks read
# what they need for the whole batch in a few queries, and the outcomes (rows, counters, next
# executions) are written in bulk, so a batch of 100 costs about as many queries as one row did.

# Sends are committed `sending` and recorded RECORD_EVERY at a time: a worker killed mid-batch
# leaves at most this many rows in `sending` (for the reaper to call `unknown`).
RECORD_EVERY = 20
# Steps whose work leaves our database: recorded `sending` and committed before the call.
CHANNEL_STEPS = (StepType.SEND_EMAIL, StepType.SEND_SMS, StepType.WEBHOOK)
# Local steps that write the contact row: their contacts are locked with the caps' (pk order).
CONTACT_WRITES = (StepType.UPDATE_FIELD, StepType.MANAGE_TAGS)
NOT_OURS = "not_ours"


def _locked(ids: Iterable[int]) -> list[CampaignStepExecution]:
    """The rows of `ids` that exist, locked in primary-key order (two workers never wait on each
    other in a cycle), with everything running them reads. Precondition: inside a transaction."""
    return list(
        CampaignStepExecution.objects.select_for_update(of=("self",))
        .select_related(
            "step",
            "enrollment__campaign__tenant",
            "enrollment__contact__assigned_to",
            "enrollment__project",
        )
        .filter(pk__in=list(ids))
        .order_by("pk")
    )


def _campaign_actor(execution: CampaignStepExecution, user: User | None = None) -> Actor:
    return Actor(tenant=execution.enrollment.campaign.tenant, user=user, source=Source.CAMPAIGN)


def _rows_update(fields: Sequence[str], rows: Sequence[Sequence[Any]], *, now: datetime) -> None:
    """Write per-row values of `fields` (rows of (pk, value, ...)) to campaign_step_executions in
    one `UPDATE ... FROM (VALUES ...)`."""
    if not rows:
        return
    meta = CampaignStepExecution._meta
    concrete = {field.name: field for field in meta.concrete_fields}
    columns = [concrete[name] for name in fields]
    quote = connection.ops.quote_name
    row_sql = "(%s::bigint, " + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    params: list[Any] = []
    for pk, *row in rows:
        params.append(pk)
        params += [field.get_db_prep_save(value, connection) for field, value in zip(columns, row, strict=True)]
    quoted = [quote(cast(str, field.column)) for field in columns]  # a concrete field has a column
    names = ", ".join(quoted)
    assignments = ", ".join(f"{name} = v.{name}" for name in quoted)
    table, values = quote(meta.db_table), ", ".join([row_sql] * len(rows))
    # The model's own table and column names; every value is a parameter.
    sql = f"UPDATE {table} AS t SET {assignments}, updated_at = %s FROM (VALUES {values}) AS v(id, {names}) WHERE t.id = v.id"  # noqa: S608, E501
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, *params])


Changes = tuple[dict[str, Any], dict[str, int]]  # columns set, counters incremented


def _enrollments_update(changes: dict[int, Changes], *, now: datetime) -> None:
    """Apply each enrollment's changes: one UPDATE per distinct set of changes (most of a batch
    shares one), counters through F() so concurrent writers add up."""
    groups: dict[tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, int], ...]], list[int]] = defaultdict(list)
    for pk, (sets, increments) in changes.items():
        groups[(tuple(sorted(sets.items())), tuple(sorted(increments.items())))].append(pk)
    for (columns, counters), pks in groups.items():
        CampaignEnrollment.objects.filter(pk__in=pks).update(
            **dict(columns), **{name: F(name) + by for name, by in counters}, updated_at=now
        )


def _next_steps(
    executions: Sequence[CampaignStepExecution],
) -> tuple[dict[int, CampaignStep | None], dict[int, dict[str, Any]]]:
    """Where each enrollment goes after its row's step, and what the step decided (a branch);
    by execution. The steps of the rows' versions are read in one query, each `conditional`
    step's tree in one query for all its contacts (the filters app's SQL, as `filter_matches`)."""
    if not executions:
        return {}, {}
    from filters.services import filter_queryset

    paths = {
        path
        for execution in executions
        for path in (execution.step.true_path_step_id, execution.step.false_path_step_id)
        if path is not None
    }
    steps = CampaignStep.objects.filter(
        Q(version_id__in={execution.step.version_id for execution in executions}) | Q(pk__in=paths)
    ).order_by("version_id", "step_order", "pk")
    by_pk: dict[int, CampaignStep] = {}
    after: dict[int, CampaignStep | None] = {}
    in_version: dict[int, list[CampaignStep]] = defaultdict(list)
    for step in steps:
        by_pk[step.pk] = step
        in_version[step.version_id].append(step)
    for ordered in in_version.values():
        for step in ordered:
            after[step.pk] = next((later for later in ordered if later.step_order > step.step_order), None)
    matched: dict[int, set[int]] = {}
    for execution in executions:
        step = execution.step
        if step.step_type == StepType.CONDITIONAL and step.pk not in matched:
            contacts = {row.enrollment.contact_id for row in executions if row.step_id == step.pk}
            matched[step.pk] = set(
                filter_queryset(actor=_campaign_actor(execution), entity_type=CONTACTS, tree=step.conditions)
                .filter(pk__in=contacts)
                .values_list("pk", flat=True)
            )
    following: dict[int, CampaignStep | None] = {}
    decided: dict[int, dict[str, Any]] = {}
    for execution in executions:
        step = execution.step
        if step.step_type == StepType.CONDITIONAL:
            hit = execution.enrollment.contact_id in matched[step.pk]
            target = step.true_path_step_id if hit else step.false_path_step_id
            following[execution.pk] = by_pk[target] if target is not None else None
            decided[execution.pk] = {"branch": "true" if hit else "false"}
        else:
            following[execution.pk] = after[step.pk]
    return following, decided


@dataclass
class Finish:
    """A row's outcome for `_finish`: its status, why (a skip) and what it did."""

    execution: CampaignStepExecution
    status: str
    skip_reason: str | None = None
    error: str = ""
    result: dict[str, Any] | None = None
    advance: bool = True


FINISH_FIELDS = (
    "status",
    "skip_reason",
    "error_message",
    "result_data",
    "provider_message_id",
    "lease_until",
    "started_at",
    "completed_at",
)


def _finish(items: Sequence[Finish], *, now: datetime) -> None:
    """Record the rows' outcomes and, with `advance`, move their enrollments on: the counters,
    the current step and the next step's execution (or the end), in bulk, in the caller's transaction.

    Precondition: the caller holds the rows' locks, inside a transaction.
    """
    if not items:
        return
    following, decided = _next_steps(
        [item.execution for item in items if item.advance and item.execution.step.step_type != StepType.EXIT_CAMPAIGN]
    )
    rows: list[tuple[Any, ...]] = []
    step_counts: dict[int, Counter[str]] = defaultdict(Counter)
    enrollments: dict[int, Changes] = {}
    created: list[CampaignStepExecution] = []
    for item in items:
        execution, status = item.execution, item.status
        step, enrollment = execution.step, execution.enrollment
        execution.status, execution.skip_reason, execution.error_message = status, item.skip_reason, item.error
        execution.result_data = {**execution.result_data, **(item.result or {}), **decided.get(execution.pk, {})}
        execution.lease_until, execution.completed_at = None, now
        rows.append(
            (
                execution.pk,
                status,
                item.skip_reason,
                item.error,
                execution.result_data,
                execution.provider_message_id,
                None,
                execution.started_at,
                now,
            )
        )
        if status == ExecutionStatus.COMPLETED:
            step_counts[step.pk].update(total_executed=1, total_succeeded=1)
        elif status == ExecutionStatus.FAILED:
            step_counts[step.pk].update(total_executed=1, total_failed=1)
        if not item.advance:
            continue
        sets: dict[str, Any] = {"last_step_executed_at": now}
        increments: dict[str, int] = {}
        if status == ExecutionStatus.COMPLETED:
            increments["steps_completed"] = 1
            if step.step_type in STEP_COUNTERS:
                increments[STEP_COUNTERS[StepType(step.step_type)]] = 1
        target = following.get(execution.pk)
        if step.step_type == StepType.EXIT_CAMPAIGN and status == ExecutionStatus.COMPLETED:
            sets.update(
                status=EnrollmentStatus.EXITED,
                exit_reason=ExitReason.EXIT_STEP,
                exited_at=now,
                next_step_scheduled_at=None,
            )
        elif target is None:
            sets.update(status=EnrollmentStatus.COMPLETED, completed_at=now, next_step_scheduled_at=None)
        else:
            due = execution_due(
                target,
                now,
                campaign=enrollment.campaign,
                zone=contact_zone(enrollment.campaign.tenant, enrollment.contact),
            )
            # The graph has no cycles: the next step is reached on the same visit, and the unique
            # key refuses a second row for it (a doubled advance fails instead of running twice).
            created.append(
                CampaignStepExecution(
                    tenant_id=execution.tenant_id,
                    enrollment_id=enrollment.pk,
                    step=target,
                    visit=execution.visit,
                    scheduled_at=due,
                )
            )
            sets.update(current_step_id=target.pk, current_step_order=target.step_order, next_step_scheduled_at=due)
        enrollments[enrollment.pk] = (sets, increments)
    _rows_update(FINISH_FIELDS, rows, now=now)
    for step_pk in sorted(step_counts):  # one order for every worker: no lock cycles on the counters
        CampaignStep.objects.filter(pk=step_pk).update(
            **{name: F(name) + by for name, by in step_counts[step_pk].items()}
        )
    CampaignStepExecution.objects.bulk_create(created)
    _enrollments_update(enrollments, now=now)


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


def _skip_reasons(executions: Sequence[CampaignStepExecution]) -> dict[int, tuple[str | None, str]]:
    """Why rows must not run now (skip reason, message), by execution; the others run.

    The checks in their order of precedence, each over the rows the earlier ones let through:
    the enrollment, the campaign, the contact, the goal (one query per campaign), the exclusions
    (one query per trigger) and consent.
    """
    skips: dict[int, tuple[str | None, str]] = {}
    for execution in executions:
        enrollment, campaign = execution.enrollment, execution.enrollment.campaign
        if enrollment.status != EnrollmentStatus.ACTIVE:
            reason = EXIT_SKIPS.get(ExitReason(enrollment.exit_reason)) if enrollment.exit_reason else None
            why = enrollment.exit_reason or "no reason"
            skips[execution.pk] = reason, f"The enrollment is {enrollment.status} ({why})."
        elif campaign.status == CampaignStatus.ARCHIVED or campaign.is_deleted:
            skips[execution.pk] = SkipReason.ARCHIVED, "The campaign is archived."
        elif enrollment.contact.is_deleted:
            skips[execution.pk] = SkipReason.CONTACT_DELETED, "The contact was deleted."
    by_campaign: dict[int, list[CampaignStepExecution]] = defaultdict(list)
    for execution in executions:
        if execution.pk not in skips:
            by_campaign[execution.enrollment.campaign_id].append(execution)
    for rows in by_campaign.values():
        met = set(
            goal_met_enrollments(rows[0].enrollment.campaign)
            .filter(pk__in=[row.enrollment_id for row in rows])
            .values_list("pk", flat=True)
        )
        for row in rows:
            if row.enrollment_id in met:
                skips[row.pk] = SkipReason.GOAL_MET, "The contact met the campaign's goal."
    by_version: dict[tuple[int, int | None], list[CampaignStepExecution]] = defaultdict(list)
    for execution in executions:
        if execution.pk not in skips:
            by_version[(execution.enrollment.campaign_id, execution.enrollment.version_id)].append(execution)
    for (campaign_id, version_id), rows in by_version.items():
        excluded = set(_excluded_contacts(rows, campaign_id=campaign_id, version_id=version_id))
        for row in rows:
            if row.enrollment.contact_id in excluded:
                skips[row.pk] = SkipReason.EXCLUDED, "The contact now matches an exclusion."
    for execution in executions:
        step_type = execution.step.step_type
        if (
            execution.pk not in skips
            and step_type in MESSAGE_STEPS
            and consent_refusal(execution.enrollment.contact, step_type)
        ):
            skips[execution.pk] = SkipReason.NO_CONSENT, "The contact has no consent (or no address) for this channel."
    return skips


def _excluded_contacts(
    executions: Sequence[CampaignStepExecution], *, campaign_id: int, version_id: int | None
) -> set[int]:
    """The rows' contacts that now match an exclusion of an active trigger of their version
    (the filters app's SQL, as `filter_matches`: one query per trigger for all of them)."""
    from filters.services import filter_queryset

    triggers = CampaignTrigger.objects.filter(
        campaign_id=campaign_id, version_id=version_id, is_active=True, exclusion_conditions__isnull=False
    ).exclude(exclusion_conditions={})
    contacts = {execution.enrollment.contact_id for execution in executions}
    excluded: set[int] = set()
    for trigger in triggers:
        excluded |= set(
            filter_queryset(
                actor=_campaign_actor(executions[0]), entity_type=CONTACTS, tree=trigger.exclusion_conditions
            )
            .filter(pk__in=contacts)
            .values_list("pk", flat=True)
        )
    return excluded


# Messages a contact got (or is being sent) count towards the caps from when they started.
SENT_OR_SENDING = (ExecutionStatus.COMPLETED, ExecutionStatus.SENDING, ExecutionStatus.UNKNOWN)
CAP_WINDOWS = (("max_messages_per_day", timedelta(days=1)), ("max_messages_per_week", timedelta(weeks=1)))


def _contacts_lock(contact_ids: Iterable[int]) -> None:
    """Lock contact rows in primary-key order (the caps count a contact's messages one campaign
    after the other; the same order in every worker leaves no lock cycle)."""
    ids = sorted(set(contact_ids))
    if ids:
        list(Contact.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))


def _deferrals(messages: Sequence[CampaignStepExecution], now: datetime) -> dict[int, tuple[str, datetime]]:
    """The messages that must wait, and until when, by execution: outside the campaign's business
    hours (to the next opening), or over its frequency cap (until the oldest message in the
    window leaves it).

    The caps count the contact's messages from every campaign of the tenant over rolling windows,
    the batch's own sends (in primary-key order) included. Precondition: inside a transaction,
    with the capped rows' contacts locked (`_contacts_lock`).
    """
    deferred: dict[int, tuple[str, datetime]] = {}
    sending: list[CampaignStepExecution] = []
    for execution in messages:
        enrollment, campaign = execution.enrollment, execution.enrollment.campaign
        if campaign.respect_business_hours:
            zone = contact_zone(campaign.tenant, enrollment.contact)
            opening = business_hours_next(now, campaign.business_hours, zone)
            if opening > now:
                deferred[execution.pk] = SkipReason.QUIET_HOURS_MOVED, opening
                continue
        sending.append(execution)
    capped = {execution.enrollment.contact_id for execution in sending if _caps(execution.enrollment.campaign)}
    if not capped:
        return deferred
    widest = max(window for _, window in CAP_WINDOWS)
    started: dict[int, list[datetime]] = defaultdict(list)
    for contact_id, at in (
        CampaignStepExecution.objects.filter(
            enrollment__contact_id__in=capped,
            step__step_type__in=MESSAGE_STEPS,
            status__in=SENT_OR_SENDING,
            started_at__gt=now - widest,
        )
        .exclude(pk__in=[execution.pk for execution in messages])
        .values_list("enrollment__contact_id", "started_at")
    ):
        started[contact_id].append(cast(datetime, at))  # not null: compared above
    for execution in sending:
        contact_id = execution.enrollment.contact_id
        recent = sorted(started[contact_id], reverse=True)
        for cap, window in _caps(execution.enrollment.campaign):
            within = [at for at in recent if at > now - window]
            if len(within) >= cap:
                # The cap-th most recent message leaving the window makes room for one more.
                deferred[execution.pk] = SkipReason.FREQUENCY_CAP, within[cap - 1] + window
                break
        else:
            started[contact_id].append(now)
    return deferred


def _caps(campaign: Campaign) -> list[tuple[int, timedelta]]:
    return [(getattr(campaign, name), window) for name, window in CAP_WINDOWS if getattr(campaign, name)]


def _defer(deferred: Sequence[tuple[CampaignStepExecution, str, datetime]], *, now: datetime) -> None:
    """Back to `pending`, due at `until`, each move noted (`skip_reason` and `result_data.moved`).

    Precondition: the caller holds the rows' locks."""
    rows = []
    enrollments: dict[int, Changes] = {}
    for execution, reason, until in deferred:
        moves = [*execution.result_data.get("moved", []), {"reason": reason, "to": until.isoformat()}]
        execution.result_data = {**execution.result_data, "moved": moves}
        rows.append((execution.pk, ExecutionStatus.PENDING, None, until, reason, execution.result_data))
        enrollments[execution.enrollment_id] = ({"next_step_scheduled_at": until}, {})
    _rows_update(("status", "lease_until", "scheduled_at", "skip_reason", "result_data"), rows, now=now)
    _enrollments_update(enrollments, now=now)


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
    """Send the step's email through Django's email backend; its provider id (the ESP's under
    django-anymail, which its bounce and complaint webhooks name)."""
    config = variant_content(execution.step, execution.variant)
    return campaign_email_send(execution=execution, subject=config["subject"], body=config["body"])


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


@dataclass
class Answer:
    """What a channel answered for one send."""

    provider_message_id: str = ""
    error: str = ""
    retry: bool = False  # a transient failure: try again later
    unknown: bool = False  # the provider may have sent it: a person decides
    result: dict[str, Any] | None = None


def _channel_call(execution: CampaignStepExecution) -> Answer:
    """Hand one `sending` row to its channel. Precondition: the row was committed `sending`."""
    step_type = execution.step.step_type
    if step_type == StepType.WEBHOOK:
        delivery = _call_webhook(execution)
        return Answer(error=delivery.error, retry=delivery.transient, result={"status": delivery.status})
    if step_type == StepType.SEND_SMS:
        sent = sms_send(execution=execution, body=variant_content(execution.step, execution.variant)["body"])
        return Answer(provider_message_id=sent.message_id, error=sent.error, retry=sent.transient, unknown=sent.unknown)
    try:
        return Answer(provider_message_id=_send_email(execution))
    except OSError as exc:  # smtplib's errors and connection failures
        return Answer(error=f"The email could not be sent: {exc}")


def _start(ids: Sequence[int], now: datetime, outcomes: dict[int, str]) -> list[CampaignStepExecution]:
    """The first transaction of a batch: everything but the channel calls. Rows no longer this
    claim's are left alone; a paused campaign's go back to waiting; skips, moves and the steps
    that only write to our database are recorded (with their next executions); the messages and
    webhooks that may go are returned (still `running`, their variant chosen) for `_sending`."""
    with transaction.atomic():
        rows = [
            execution
            for execution in _locked(ids)
            if execution.status == ExecutionStatus.RUNNING
            and execution.lease_until is not None
            and execution.lease_until > now
        ]
        paused = [
            execution.pk
            for execution in rows
            if execution.enrollment.campaign.status not in (CampaignStatus.ACTIVE, CampaignStatus.ARCHIVED)
        ]
        paused_set = set(paused)
        if paused:
            # Paused since the claim: not sent now, they wait for the campaign to resume.
            CampaignStepExecution.objects.filter(pk__in=paused).update(
                status=ExecutionStatus.PENDING, lease_until=None, updated_at=now
            )
            outcomes.update(dict.fromkeys(paused, ExecutionStatus.PENDING))
        rows = [execution for execution in rows if execution.pk not in paused_set]
        contacts: dict[int, Contact] = {}
        for execution in rows:
            execution.started_at = now
            # One instance per contact: a second step for the same contact in this batch (another
            # campaign's) sees what the first wrote (its tags, say), as a later row's re-read did.
            execution.enrollment.contact = contacts.setdefault(
                execution.enrollment.contact_id, execution.enrollment.contact
            )
        skips = _skip_reasons(rows)
        finished: list[Finish] = []
        exits: dict[int, Changes] = {}
        for execution in rows:
            if execution.pk not in skips:
                continue
            reason, message = skips[execution.pk]
            active = execution.enrollment.status == EnrollmentStatus.ACTIVE
            leaves = SKIP_EXITS.get(SkipReason(reason)) if active and reason else None
            ended = not active or reason == SkipReason.ARCHIVED or leaves is not None
            finished.append(
                Finish(execution, ExecutionStatus.SKIPPED, skip_reason=reason, error=message, advance=not ended)
            )
            if leaves is not None:
                goal = leaves == ExitReason.GOAL
                exits[execution.enrollment_id] = (
                    {
                        "status": EnrollmentStatus.EXITED,
                        "exit_reason": leaves,
                        "exited_at": now,
                        "goal_achieved": goal,
                        "goal_achieved_at": now if goal else None,
                        "next_step_scheduled_at": None,
                    },
                    {},
                )
            outcomes[execution.pk] = ExecutionStatus.SKIPPED
        running = [execution for execution in rows if execution.pk not in skips]
        messages = [execution for execution in running if execution.step.step_type in MESSAGE_STEPS]
        local = [execution for execution in running if execution.step.step_type not in CHANNEL_STEPS]
        _contacts_lock(
            [row.enrollment.contact_id for row in messages if _caps(row.enrollment.campaign)]
            + [row.enrollment.contact_id for row in local if row.step.step_type in CONTACT_WRITES]
        )
        deferred = _deferrals(messages, now)
        _defer([(execution, *deferred[execution.pk]) for execution in messages if execution.pk in deferred], now=now)
        outcomes.update(dict.fromkeys(deferred, ExecutionStatus.PENDING))
        # In contact order, the order every worker locks contacts in.
        for execution in sorted(local, key=lambda row: (row.enrollment.contact_id, row.pk)):
            try:
                with transaction.atomic():
                    result = _run_local(execution, now)
            except ApplicationError as exc:
                finished.append(Finish(execution, ExecutionStatus.FAILED, error=exc.message))
                outcomes[execution.pk] = ExecutionStatus.FAILED
            else:
                finished.append(Finish(execution, ExecutionStatus.COMPLETED, result=result))
                outcomes[execution.pk] = ExecutionStatus.COMPLETED
        _finish(finished, now=now)
        _enrollments_update(exits, now=now)
        sends = [
            execution
            for execution in running
            if execution.step.step_type in CHANNEL_STEPS and execution.pk not in deferred
        ]
        variants = variants_for(sends)  # kept from a first attempt: a retry never re-rolls
        for execution in sends:
            execution.variant = variants[execution.pk]
    return sends


def _sending(chunk: Sequence[CampaignStepExecution]) -> list[CampaignStepExecution]:
    """Commit the chunk's rows that are still this claim's (`running`, lease alive) as `sending`,
    with their variant; those rows, to be handed to their channels. The batch's other sends stay
    `running` meanwhile: a crash leaves them to the reaper, which returns them to `pending`."""
    now = timezone.now()
    with transaction.atomic():
        ours = set(
            CampaignStepExecution.objects.select_for_update()
            .filter(pk__in=[execution.pk for execution in chunk], status=ExecutionStatus.RUNNING, lease_until__gt=now)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        claimed = [execution for execution in chunk if execution.pk in ours]
        until = now + lease()
        for execution in claimed:
            execution.status, execution.lease_until = ExecutionStatus.SENDING, until
        _rows_update(
            ("variant", "status", "started_at", "lease_until"),
            [(row.pk, row.variant, row.status, row.started_at, row.lease_until) for row in claimed],
            now=now,
        )
    return claimed


def _record(answers: Sequence[tuple[CampaignStepExecution, Answer]], outcomes: dict[int, str]) -> None:
    """Record what the channels answered for rows this worker was sending.

    A transient failure (`retry`) goes back to `pending` after 1, 2, 4, ... minutes until the
    webhook's attempts are spent; an `unknown` outcome (the provider may have sent it) waits for a
    person, as after a crash mid-send; any other failure is final (`failed`, the enrollment moves on).
    """
    now = timezone.now()
    with transaction.atomic():
        # The rows' own state, re-read under lock; what they belong to is as `_start` read it.
        state = {
            pk: (status, attempts, result_data)
            for pk, status, attempts, result_data in CampaignStepExecution.objects.select_for_update()
            .filter(pk__in=[sent.pk for sent, _ in answers])
            .order_by("pk")
            .values_list("pk", "status", "attempts", "result_data")
        }
        finished: list[Finish] = []
        retries: list[tuple[Any, ...]] = []
        unknown: list[tuple[Any, ...]] = []
        for execution, answer in answers:
            if execution.pk in state:
                execution.status, execution.attempts, execution.result_data = state[execution.pk]
            # `unknown`: the reaper gave up on this send meanwhile, but it did end; record how.
            if execution.pk not in state or execution.status not in (ExecutionStatus.SENDING, ExecutionStatus.UNKNOWN):
                outcomes[execution.pk] = NOT_OURS
            elif answer.error and answer.retry and execution.attempts + 1 < settings.CAMPAIGN_WEBHOOK_MAX_ATTEMPTS:
                result_data = {**execution.result_data, **(answer.result or {})}
                due = now + timedelta(minutes=2**execution.attempts)
                attempts = execution.attempts + 1
                retries.append((execution.pk, ExecutionStatus.PENDING, None, due, attempts, answer.error, result_data))
                outcomes[execution.pk] = ExecutionStatus.PENDING
            elif answer.error and answer.unknown:
                unknown.append((execution.pk, ExecutionStatus.UNKNOWN, None, answer.error))
                outcomes[execution.pk] = ExecutionStatus.UNKNOWN
            elif answer.error:
                finished.append(Finish(execution, ExecutionStatus.FAILED, error=answer.error, result=answer.result))
                outcomes[execution.pk] = ExecutionStatus.FAILED
            else:
                execution.provider_message_id = answer.provider_message_id
                finished.append(Finish(execution, ExecutionStatus.COMPLETED, result=answer.result))
                outcomes[execution.pk] = ExecutionStatus.COMPLETED
        _rows_update(
            ("status", "lease_until", "scheduled_at", "attempts", "error_message", "result_data"), retries, now=now
        )
        _rows_update(("status", "lease_until", "error_message"), unknown, now=now)
        _finish(finished, now=now)


def executions_run(*, ids: Sequence[int], now: datetime | None = None) -> dict[str, int]:
    """Run a claimed batch; counts by outcome (a status, or `not_ours` for a row whose claim was lost).

    Safe to call twice or after a crash: only the claim's holder (status `running`, lease alive)
    proceeds, and the rows' statuses change under their locks. Sends are committed `sending`
    before their channel is called, RECORD_EVERY at a time, and recorded after each such chunk.
    """
    outcomes = _run(ids, now or timezone.now())
    return dict(Counter(outcomes.values()))


def execution_run(*, execution_id: int, now: datetime | None = None) -> str:
    """Run one claimed row (a batch of one); what became of it."""
    return _run([execution_id], now or timezone.now())[execution_id]


def _run(ids: Sequence[int], now: datetime) -> dict[int, str]:
    outcomes = dict.fromkeys(ids, NOT_OURS)
    sends = _start(ids, now, outcomes)
    for start in range(0, len(sends), RECORD_EVERY):
        chunk = _sending(sends[start : start + RECORD_EVERY])
        # Committed as `sending`: a crash from here on leaves them for the reaper to call `unknown`.
        _record([(execution, _channel_call(execution)) for execution in chunk], outcomes)
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
        rows = _locked(overdue.values_list("pk", flat=True))
        skipped = [
            Finish(row, ExecutionStatus.SKIPPED, skip_reason=SkipReason.PAUSED, error=OVERDUE_SKIPPED) for row in rows
        ]
        _finish(skipped, now=now)
        return {"skipped": len(rows)}
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
        locked = next(iter(_locked([execution.pk])), None)
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
            _finish([Finish(locked, ExecutionStatus.COMPLETED)], now=now)
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
