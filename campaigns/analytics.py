"""Campaign analytics (`campaign_analytics`), kept up to date incrementally.

Every execution and enrollment carries `analytics_counted`: the bits of its facts already
counted (finished, opened, clicked, replied; entered, completed, left, goal met). A row whose
facts differ from its bits has something new; a partial index finds exactly those rows, so a
refresh reads what changed since the last one and nothing else, and adds each new fact once,
to the period (the tenant's day, week, month, and all time) of the fact's own timestamp. The
facts only ever appear (a finished execution or a left enrollment stays so), so adding is enough.

Revenue cannot be seen on the rows themselves (a project gets approved): the refresh re-reads
the enrollments whose attribution window is still open (or closed since the last refresh
could run) and adds the difference from what the enrollment last had.

The refreshes take one advisory lock, so two never add the same fact twice; they lock no
execution or enrollment for reading (a row is marked with the facts read, so a fact that
appears meanwhile is counted by the next batch).
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DecimalField, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import (
    ALL_TIME_DATE,
    ENROLLMENT_FACTS,
    EXECUTION_FACTS,
    CampaignAnalytics,
    CampaignEnrollment,
    CampaignStepExecution,
    EnrollmentFact,
    ExecutionFact,
    ExecutionStatus,
    PeriodType,
    StepType,
)
from crm.models import Project, ProjectStatus

# The lock every refresh holds: two refreshes never count the same fact twice.
ANALYTICS_LOCK = 0x5249_4447_4141  # "RIDGAA"
# Revenue rows re-read this long after the window closed, so a refresh that could not run on
# time still sees the last approvals.
REVENUE_GRACE = timedelta(days=7)
SENT_COUNTERS = {
    StepType.SEND_EMAIL: "emails_sent",
    StepType.SEND_SMS: "sms_sent",
    StepType.CREATE_TASK: "tasks_created",
}
OUTCOME_COUNTERS = {
    ExecutionStatus.COMPLETED: "executions_completed",
    ExecutionStatus.FAILED: "executions_failed",
    ExecutionStatus.SKIPPED: "executions_skipped",
}
NO_REASON = "none"

# (tenant, campaign, period_type, snapshot_date, step, variant)
Key = tuple[int, int, str, date, int | None, str | None]


def period_starts(day: date) -> list[tuple[str, date]]:
    """The periods a day belongs to, each named by its first day (weeks start on Monday)."""
    return [
        (PeriodType.DAILY, day),
        (PeriodType.WEEKLY, day - timedelta(days=day.weekday())),
        (PeriodType.MONTHLY, day.replace(day=1)),
        (PeriodType.ALL_TIME, ALL_TIME_DATE),
    ]


class Deltas:
    """What a batch adds to the analytics rows, by row."""

    def __init__(self) -> None:
        self.counts: dict[Key, Counter[str]] = defaultdict(Counter)
        self.skips: dict[Key, Counter[str]] = defaultdict(Counter)
        self.money: dict[Key, Decimal] = defaultdict(Decimal)

    def add(
        self,
        *,
        tenant: int,
        campaign: int,
        when: datetime,
        zone: str,
        field: str,
        step: int | None = None,
        variant: str = "",
        amount: int = 1,
        skip: str | None = None,
    ) -> None:
        """`amount` more of `field` on the campaign's rows (and the step's and variant's, when given)."""
        day = timezone.localtime(when, ZoneInfo(zone)).date()
        levels: list[tuple[int | None, str | None]] = [(None, None)]
        if step is not None:
            levels.append((step, None))
            if variant:
                levels.append((step, variant))
        for period, start in period_starts(day):
            for level_step, level_variant in levels:
                key = (tenant, campaign, period, start, level_step, level_variant)
                self.counts[key][field] += amount
                if skip is not None:
                    self.skips[key][skip] += amount

    def add_revenue(self, *, tenant: int, campaign: int, when: datetime, zone: str, revenue: Decimal) -> None:
        day = timezone.localtime(when, ZoneInfo(zone)).date()
        for period, start in period_starts(day):
            self.money[(tenant, campaign, period, start, None, None)] += revenue

    def keys(self) -> set[Key]:
        return set(self.counts) | set(self.money)


def _execution_deltas(rows: Sequence[Mapping[str, Any]], deltas: Deltas) -> None:
    for row in rows:
        new = row["facts"] & ~row["analytics_counted"]
        common = {
            "tenant": row["tenant_id"],
            "campaign": row["campaign"],
            "zone": row["zone"],
            "step": row["step_id"],
            "variant": row["variant"],
        }
        if new & ExecutionFact.FINISHED:
            when = row["completed_at"] or row["updated_at"]
            status = ExecutionStatus(row["status"])
            skip = (row["skip_reason"] or NO_REASON) if status == ExecutionStatus.SKIPPED else None
            deltas.add(**common, when=when, field=OUTCOME_COUNTERS[status], skip=skip)
            if status == ExecutionStatus.COMPLETED and row["step_type"] in SENT_COUNTERS:
                deltas.add(**common, when=when, field=SENT_COUNTERS[StepType(row["step_type"])])
        if new & ExecutionFact.OPENED:
            deltas.add(**common, when=row["opened_at"], field="emails_opened")
        if new & ExecutionFact.CLICKED:
            deltas.add(**common, when=row["clicked_at"], field="emails_clicked")
        if new & ExecutionFact.REPLIED:
            deltas.add(**common, when=row["replied_at"], field="sms_replied")


def _enrollment_deltas(rows: Sequence[Mapping[str, Any]], deltas: Deltas) -> None:
    for row in rows:
        new = row["facts"] & ~row["analytics_counted"]
        common = {"tenant": row["tenant_id"], "campaign": row["campaign_id"], "zone": row["zone"]}
        left_at = row["exited_at"] or row["completed_at"] or row["updated_at"]
        if new & EnrollmentFact.ENTERED:
            deltas.add(**common, when=row["enrolled_at"], field="new_enrollments")
        if new & EnrollmentFact.COMPLETED:
            deltas.add(**common, when=row["completed_at"] or row["updated_at"], field="completed_enrollments")
        if new & EnrollmentFact.LEFT:
            deltas.add(**common, when=left_at, field="exited_enrollments")
        if new & EnrollmentFact.GOAL:
            deltas.add(**common, when=row["goal_achieved_at"] or left_at, field="goals_achieved")


def attributed(window: timedelta) -> tuple[Any, Any]:
    """Per enrollment: the approved_value total and the number of the contact's projects approved
    within `window` after enrolment (expressions over an enrollment queryset)."""
    from substatus.models import SubstatusHistory

    approved = SubstatusHistory.objects.filter(
        entity="project",
        record_id=OuterRef("pk"),
        to_status=ProjectStatus.APPROVED,
        changed_at__gte=OuterRef(OuterRef("enrolled_at")),
        changed_at__lte=OuterRef(OuterRef("enrolled_at")) + Value(window),
    )
    deals = Project.objects.alive().filter(Exists(approved), contact_id=OuterRef("contact_id"))
    revenue = Subquery(
        deals.values("contact_id").annotate(total=Sum(Coalesce("approved_value", Value(Decimal(0))))).values("total"),
        output_field=DecimalField(max_digits=14, decimal_places=2),
    )
    count = Subquery(deals.values("contact_id").annotate(n=Count("pk")).values("n"), output_field=IntegerField())
    return Coalesce(revenue, Value(Decimal(0))), Coalesce(count, Value(0))


def _apply(deltas: Deltas) -> set[int]:
    """Add the deltas to their rows (created as needed); the campaigns touched.

    Precondition: inside a transaction holding ANALYTICS_LOCK."""
    keys = deltas.keys()
    if not keys:
        return set()
    campaigns = {key[1] for key in keys}
    existing = {
        (row.tenant_id, row.campaign_id, row.period_type, row.snapshot_date, row.step_id, row.variant): row
        for row in CampaignAnalytics.objects.filter(
            campaign_id__in=campaigns, snapshot_date__in={key[3] for key in keys}
        )
    }
    created, changed = [], []
    for key in keys:
        row = existing.get(key)
        if row is None:
            tenant, campaign, period, start, step, variant = key
            row = CampaignAnalytics(
                tenant_id=tenant,
                campaign_id=campaign,
                period_type=period,
                snapshot_date=start,
                step_id=step,
                variant=variant,
                skipped_by_reason={},
            )
            created.append(row)
        else:
            changed.append(row)
        for field, amount in deltas.counts.get(key, Counter()).items():
            setattr(row, field, getattr(row, field) + amount)
        skips = Counter(row.skipped_by_reason) + deltas.skips.get(key, Counter())
        row.skipped_by_reason = dict(sorted(skips.items()))
        if key in deltas.money:
            row.revenue_attributed += deltas.money[key]
    stamp = timezone.now()
    for row in changed:
        row.updated_at = stamp
    counters = sorted({field for counts in deltas.counts.values() for field in counts})
    CampaignAnalytics.objects.bulk_create(created)
    if changed:
        CampaignAnalytics.objects.bulk_update(
            changed, [*counters, "skipped_by_reason", "revenue_attributed", "deals_attributed", "updated_at"]
        )
    return campaigns


def _derive(campaigns: set[int]) -> None:
    """The figures that follow from the counts: totals and in-flight as of each period's end
    (running sums over the campaign's own rows), then the rates and the average deal."""
    if not campaigns:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaign_analytics a SET total_enrolled = s.total, active_enrollments = s.active
            FROM (
                SELECT id,
                       sum(new_enrollments) OVER w AS total,
                       sum(new_enrollments - completed_enrollments - exited_enrollments) OVER w AS active
                FROM campaign_analytics
                WHERE step_id IS NULL AND campaign_id = ANY(%(campaigns)s)
                WINDOW w AS (PARTITION BY campaign_id, period_type ORDER BY snapshot_date)
            ) s
            WHERE a.id = s.id AND (a.total_enrolled, a.active_enrollments) IS DISTINCT FROM (s.total, s.active)
            """,
            {"campaigns": sorted(campaigns)},
        )
        cursor.execute(
            """
            UPDATE campaign_analytics SET
                open_rate = CASE WHEN emails_sent > 0 THEN round(emails_opened::numeric / emails_sent, 4) ELSE 0 END,
                click_rate = CASE WHEN emails_sent > 0 THEN round(emails_clicked::numeric / emails_sent, 4) ELSE 0 END,
                reply_rate = CASE WHEN sms_sent > 0 THEN round(sms_replied::numeric / sms_sent, 4) ELSE 0 END,
                conversion_rate = CASE WHEN total_enrolled > 0
                                       THEN round(goals_achieved::numeric / total_enrolled, 4) ELSE 0 END,
                average_deal_size = CASE WHEN deals_attributed > 0
                                         THEN round(revenue_attributed / deals_attributed, 2) ELSE 0 END
            WHERE campaign_id = ANY(%(campaigns)s)
            """,
            {"campaigns": sorted(campaigns)},
        )


def _lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ANALYTICS_LOCK])


ZONE = F("enrollment__campaign__tenant__timezone")


def _mark_counted(
    model: type[CampaignStepExecution] | type[CampaignEnrollment], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Record each row's facts as read, not as they are now: a fact that appeared since the read
    leaves the row uncounted, for the next batch (so no row lock is needed, and the engine never
    waits for the analytics)."""
    by_facts: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_facts[row["facts"]].append(row["pk"])
    for facts, ids in by_facts.items():
        model.objects.filter(pk__in=ids).update(analytics_counted=facts)


def _executions_batch(batch_size: int) -> int:
    with transaction.atomic():
        _lock()
        rows = list(
            CampaignStepExecution.objects.filter(~Q(analytics_counted=EXECUTION_FACTS))
            .order_by("pk")
            .values(
                "pk",
                "tenant_id",
                "step_id",
                "variant",
                "status",
                "skip_reason",
                "completed_at",
                "opened_at",
                "clicked_at",
                "replied_at",
                "updated_at",
                "analytics_counted",
                campaign=F("enrollment__campaign_id"),
                step_type=F("step__step_type"),
                zone=ZONE,
                facts=EXECUTION_FACTS,
            )[:batch_size]
        )
        deltas = Deltas()
        _execution_deltas(rows, deltas)
        _mark_counted(CampaignStepExecution, rows)
        _derive(_apply(deltas))
    return len(rows)


def _enrollments_batch(batch_size: int) -> int:
    with transaction.atomic():
        _lock()
        rows = list(
            CampaignEnrollment.objects.filter(~Q(analytics_counted=ENROLLMENT_FACTS))
            .order_by("pk")
            .values(
                "pk",
                "tenant_id",
                "campaign_id",
                "enrolled_at",
                "completed_at",
                "exited_at",
                "goal_achieved_at",
                "updated_at",
                "analytics_counted",
                zone=F("campaign__tenant__timezone"),
                facts=ENROLLMENT_FACTS,
            )[:batch_size]
        )
        deltas = Deltas()
        _enrollment_deltas(rows, deltas)
        _mark_counted(CampaignEnrollment, rows)
        _derive(_apply(deltas))
    return len(rows)


def _revenue_batch(*, now: datetime, after_pk: int, batch_size: int) -> tuple[int, int]:
    """Re-read the attribution of a batch of enrollments whose window is open (or just closed);
    (rows read, the last id) to go on from."""
    window = timedelta(days=settings.CAMPAIGN_ATTRIBUTION_WINDOW_DAYS)
    revenue, deals = attributed(window)
    with transaction.atomic():
        _lock()
        rows = list(
            CampaignEnrollment.objects.filter(pk__gt=after_pk, enrolled_at__gte=now - window - REVENUE_GRACE)
            .order_by("pk")
            .annotate(revenue_now=revenue, deals_now=deals)
            .values(
                "pk",
                "tenant_id",
                "campaign_id",
                "enrolled_at",
                "revenue_attributed",
                "deals_attributed",
                "revenue_now",
                "deals_now",
                zone=F("campaign__tenant__timezone"),
            )[:batch_size]
        )
        deltas = Deltas()
        moved = [
            row
            for row in rows
            if (row["revenue_now"], row["deals_now"]) != (row["revenue_attributed"], row["deals_attributed"])
        ]
        for row in moved:
            common = {"tenant": row["tenant_id"], "campaign": row["campaign_id"], "zone": row["zone"]}
            deltas.add_revenue(
                **common, when=row["enrolled_at"], revenue=row["revenue_now"] - row["revenue_attributed"]
            )
            deltas.add(
                **common,
                when=row["enrolled_at"],
                field="deals_attributed",
                amount=row["deals_now"] - row["deals_attributed"],
            )
            CampaignEnrollment.objects.filter(pk=row["pk"]).update(
                revenue_attributed=row["revenue_now"], deals_attributed=row["deals_now"]
            )
        _derive(_apply(deltas))
    return len(rows), rows[-1]["pk"] if rows else after_pk


def campaign_analytics_refresh(*, now: datetime | None = None, batch_size: int | None = None) -> dict[str, int]:
    """Count what changed since the last refresh, batch after batch (each its own transaction);
    how many executions and enrollments were counted and enrollments' revenue re-read."""
    now = now or timezone.now()
    size = batch_size or settings.CAMPAIGN_ANALYTICS_BATCH_SIZE
    counted = {"executions": 0, "enrollments": 0, "revenue_checked": 0}
    while done := _executions_batch(size):
        counted["executions"] += done
    while done := _enrollments_batch(size):
        counted["enrollments"] += done
    after = 0
    while True:
        read, after = _revenue_batch(now=now, after_pk=after, batch_size=size)
        counted["revenue_checked"] += read
        if read < size:
            break
    return counted


# Reading -------------------------------------------------------------------------------------------

FUNNEL_FIELDS = [
    "executions_completed",
    "executions_failed",
    "executions_skipped",
    "skipped_by_reason",
    "emails_sent",
    "emails_opened",
    "emails_clicked",
    "open_rate",
    "click_rate",
    "sms_sent",
    "sms_replied",
    "reply_rate",
    "tasks_created",
]
SERIES_LIMIT = 366


def campaign_funnel(*, campaign_id: int, period_type: str = PeriodType.DAILY) -> dict[str, Any]:
    """The campaign's all-time figures, each step's funnel (and each variant's, with the A/B
    decision), and the campaign's rows of one period type, newest first. Four queries."""
    from campaigns.models import CampaignAbDecision

    rows = list(
        CampaignAnalytics.objects.filter(campaign_id=campaign_id, period_type=PeriodType.ALL_TIME)
        .select_related("step__version")
        .order_by("step__version__number", "step__step_order", "step_id", F("variant").asc(nulls_first=True))
    )
    decisions = {decision.step_id: decision for decision in CampaignAbDecision.objects.filter(campaign_id=campaign_id)}
    totals = next((row for row in rows if row.step_id is None), None)
    steps: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.step is None:
            continue
        if row.variant is None:
            steps[row.step.pk] = {
                "step": row.step.pk,
                "version": row.step.version.number,
                "step_order": row.step.step_order,
                "name": row.step.name,
                "step_type": row.step.step_type,
                **{field: getattr(row, field) for field in FUNNEL_FIELDS},
                "variants": [],
                "ab_decision": decisions.get(row.step.pk),
            }
        elif row.step.pk in steps:
            steps[row.step.pk]["variants"].append(
                {"variant": row.variant, **{field: getattr(row, field) for field in FUNNEL_FIELDS}}
            )
    series = list(
        CampaignAnalytics.objects.filter(campaign_id=campaign_id, period_type=period_type, step__isnull=True).order_by(
            "-snapshot_date"
        )[:SERIES_LIMIT]
    )
    return {
        "campaign": campaign_id,
        "attribution_window_days": settings.CAMPAIGN_ATTRIBUTION_WINDOW_DAYS,
        "totals": totals,
        "steps": list(steps.values()),
        "period_type": period_type,
        "series": series,
    }
