"""campaign_analytics: counted incrementally, equal to a full recount after each batch of changes;
the funnel endpoint."""

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.analytics import OUTCOME_COUNTERS, SENT_COUNTERS, campaign_analytics_refresh, period_starts
from campaigns.engine import claim_due, executions_run
from campaigns.models import (
    FINISHED,
    CampaignAnalytics,
    CampaignEnrollment,
    CampaignStep,
    CampaignStepExecution,
    ExecutionStatus,
    StepType,
)
from campaigns.services import campaign_enroll, campaign_unenroll
from contacts.models import Contact
from substatus.models import SubstatusHistory
from tests.campaigns.conftest import TASK, build
from tests.campaigns.test_ab import VARIANTS
from tests.campaigns.test_engine import drain
from tests.conftest import client_for
from tests.factories import ContactFactory, ProjectFactory

pytestmark = pytest.mark.django_db

EMAIL_AB = {"step_type": "send_email", "step_config": {"subject": "S", "body": "B"}, "variants": VARIANTS}
COUNTS = [
    "new_enrollments",
    "completed_enrollments",
    "exited_enrollments",
    "goals_achieved",
    "total_enrolled",
    "active_enrollments",
    "emails_sent",
    "emails_opened",
    "emails_clicked",
    "sms_sent",
    "sms_replied",
    "tasks_created",
    "executions_completed",
    "executions_failed",
    "executions_skipped",
    "deals_attributed",
]


def recount() -> dict[tuple, dict]:
    """Every analytics row computed from scratch from every execution, enrollment and approval:
    what the incremental refresh must equal."""
    rows: dict[tuple, Counter] = defaultdict(Counter)
    skips: dict[tuple, Counter] = defaultdict(Counter)
    money: dict[tuple, Decimal] = defaultdict(Decimal)

    def add(campaign, when, zone, field, step=None, variant="", skip=None, amount=1):
        day = timezone.localtime(when, ZoneInfo(zone)).date()
        levels = [(None, None)] + ([(step, None)] if step else []) + ([(step, variant)] if step and variant else [])
        for period, start in period_starts(day):
            for level in levels:
                rows[(campaign, period, start, *level)][field] += amount
                if skip:
                    skips[(campaign, period, start, *level)][skip] += amount

    for row in CampaignStepExecution.objects.select_related("step", "enrollment__campaign__tenant"):
        common = (row.enrollment.campaign_id,)
        zone = row.enrollment.campaign.tenant.timezone
        where = {"step": row.step_id, "variant": row.variant}
        if row.status in OUTCOME_COUNTERS:
            skip = (row.skip_reason or "none") if row.status == "skipped" else None
            add(*common, row.completed_at, zone, OUTCOME_COUNTERS[ExecutionStatus(row.status)], skip=skip, **where)
            if row.status == "completed" and row.step.step_type in SENT_COUNTERS:
                add(*common, row.completed_at, zone, SENT_COUNTERS[StepType(row.step.step_type)], **where)
        for stamp, field in [
            (row.opened_at, "emails_opened"),
            (row.clicked_at, "emails_clicked"),
            (row.replied_at, "sms_replied"),
        ]:
            if stamp:
                add(*common, stamp, zone, field, **where)
    window = dt.timedelta(days=90)
    for enrollment in CampaignEnrollment.objects.select_related("campaign__tenant", "contact"):
        zone = enrollment.campaign.tenant.timezone
        add(enrollment.campaign_id, enrollment.enrolled_at, zone, "new_enrollments")
        if enrollment.status == "completed":
            add(enrollment.campaign_id, enrollment.completed_at, zone, "completed_enrollments")
        if enrollment.status in ("exited", "failed"):
            add(enrollment.campaign_id, enrollment.exited_at, zone, "exited_enrollments")
        if enrollment.goal_achieved:
            add(enrollment.campaign_id, enrollment.goal_achieved_at, zone, "goals_achieved")
        for project in enrollment.contact.projects.filter(is_deleted=False):
            approved = SubstatusHistory.objects.filter(
                entity="project",
                record_id=project.pk,
                to_status="approved",
                changed_at__gte=enrollment.enrolled_at,
                changed_at__lte=enrollment.enrolled_at + window,
            ).exists()
            if approved:
                add(enrollment.campaign_id, enrollment.enrolled_at, zone, "deals_attributed")
                day = timezone.localtime(enrollment.enrolled_at, ZoneInfo(zone)).date()
                for period, start in period_starts(day):
                    money[(enrollment.campaign_id, period, start, None, None)] += project.approved_value or 0
    # As of each period's end: running sums over the campaign's rows of each period type.
    for campaign, period in {(key[0], key[1]) for key in rows if key[3] is None}:
        total = active = 0
        for key in sorted(key for key in rows if key[:2] == (campaign, period) and key[3] is None):
            total += rows[key]["new_enrollments"]
            active += (
                rows[key]["new_enrollments"] - rows[key]["completed_enrollments"] - rows[key]["exited_enrollments"]
            )
            rows[key]["total_enrolled"], rows[key]["active_enrollments"] = total, active
    return {
        key: {
            **{field: counts[field] for field in COUNTS},
            "skipped_by_reason": dict(skips[key]),
            "revenue_attributed": money[key].quantize(Decimal("0.01")),
        }
        for key, counts in rows.items()
    }


def stored() -> dict[tuple, dict]:
    return {
        (row.campaign_id, row.period_type, row.snapshot_date, row.step_id, row.variant): {
            **{field: getattr(row, field) for field in COUNTS},
            "skipped_by_reason": row.skipped_by_reason,
            "revenue_attributed": row.revenue_attributed,
        }
        for row in CampaignAnalytics.objects.all()
    }


def test_the_incremental_refresh_equals_a_full_recount_after_each_batch(
    actor, tenant, django_capture_on_commit_callbacks
):
    campaign = build(actor, steps=[EMAIL_AB, TASK, {**TASK, "delay_value": 3, "delay_unit": "days"}])
    other = build(actor, name="Other", steps=[TASK])
    contacts = ContactFactory.create_batch(8, tenant=tenant)
    refused = ContactFactory(tenant=tenant)

    # Batch 1: people enter and the first steps run (one opted out of email meanwhile).
    campaign_enroll(campaign=campaign, actor=actor, contacts=[*contacts[:6], refused])
    Contact.objects.filter(pk=refused.pk).update(email_opt_out=True)
    campaign_enroll(campaign=other, actor=actor, contacts=contacts[:2])
    drain(django_capture_on_commit_callbacks)
    first = campaign_analytics_refresh()
    assert first["executions"] == CampaignStepExecution.objects.filter(status__in=FINISHED).count()  # not pending ones
    assert stored() == recount()
    enrolled = CampaignEnrollment.objects.count()
    assert campaign_analytics_refresh() == {"executions": 0, "enrollments": 0, "revenue_checked": enrolled}

    # Batch 2: opens and clicks arrive (twice for one email), two more enter, one is taken out.
    sent = list(CampaignStepExecution.objects.filter(step__step_type="send_email", status="completed").order_by("pk"))
    now = timezone.now()
    CampaignStepExecution.objects.filter(pk__in=[row.pk for row in sent[:4]]).update(opened_at=now)
    CampaignStepExecution.objects.filter(pk=sent[0].pk).update(clicked_at=now)
    ProjectFactory(tenant=tenant, contact=contacts[6], status="approved", approved_value=Decimal("8000.50"))
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts[6:8])
    campaign_unenroll(campaign=campaign, actor=actor, contacts=[contacts[5]])
    drain(django_capture_on_commit_callbacks)
    second = campaign_analytics_refresh()
    assert 0 < second["executions"] < CampaignStepExecution.objects.count()  # only what changed
    assert stored() == recount()

    # Batch 3: a contact's project is approved after enrolment (revenue; contacts[6]'s was approved
    # before, so it is not); the last step runs three days on; a late open and click.
    ProjectFactory(tenant=tenant, contact=contacts[0], status="approved", approved_value=Decimal("12500.00"))
    later = timezone.now() + dt.timedelta(days=3, hours=1)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            claim_due(batch_size=100, enqueue=lambda ids: executions_run(ids=ids), now=later)
    CampaignStepExecution.objects.filter(pk=sent[1].pk).update(clicked_at=now, opened_at=now)
    campaign_analytics_refresh()
    assert stored() == recount()
    totals = CampaignAnalytics.objects.get(campaign=campaign, period_type="all_time", step__isnull=True)
    assert (totals.revenue_attributed, totals.deals_attributed, totals.average_deal_size) == (
        Decimal("12500.00"),
        1,
        Decimal("12500.00"),
    )
    assert totals.total_enrolled == 9
    assert totals.skipped_by_reason == {"no_consent": 1, "none": 1}  # none: the one taken out by staff
    assert totals.open_rate == Decimal(totals.emails_opened) / totals.emails_sent

    # Nothing new: nothing counted twice.
    before = stored()
    campaign_analytics_refresh()
    assert stored() == before


def test_old_campaign_rows_keep_the_legacy_key_unique(actor, tenant):
    campaign = build(actor)
    CampaignAnalytics.objects.create(
        tenant=tenant, campaign=campaign, snapshot_date=dt.date(2026, 1, 1), period_type="daily"
    )
    with pytest.raises(Exception, match="campaign_analytics"):
        CampaignAnalytics.objects.create(
            tenant=tenant, campaign=campaign, snapshot_date=dt.date(2026, 1, 1), period_type="daily"
        )


# The endpoint ---------------------------------------------------------------------------------------


@pytest.fixture
def counted(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[EMAIL_AB, TASK])
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(6, tenant=tenant))
    drain(django_capture_on_commit_callbacks)
    CampaignStepExecution.objects.filter(step__step_type="send_email", variant="a").update(opened_at=timezone.now())
    campaign_analytics_refresh()
    return campaign


def test_the_funnel_per_step_and_variant(counted, member_user):
    campaign = counted
    email, task = CampaignStep.objects.filter(version=campaign.active_version).order_by("step_order")
    sent = Counter(
        CampaignStepExecution.objects.filter(step=email, status="completed").values_list("variant", flat=True)
    )

    with CaptureQueriesContext(connection) as queries:
        response = client_for(member_user).get(f"/api/v1/campaigns/{campaign.pk}/analytics/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["campaign"], body["period_type"], body["attribution_window_days"]) == (campaign.pk, "daily", 90)
    assert body["totals"]["total_enrolled"] == 6
    assert body["totals"]["emails_sent"] == 6
    assert [step["step"] for step in body["steps"]] == [email.pk, task.pk]
    email_funnel = body["steps"][0]
    assert (email_funnel["emails_sent"], email_funnel["emails_opened"]) == (6, sent["a"])
    assert {
        variant["variant"]: (variant["emails_sent"], variant["emails_opened"]) for variant in email_funnel["variants"]
    } == {key: (count, count if key == "a" else 0) for key, count in sorted(sent.items())}  # only a's opened
    assert body["steps"][1]["tasks_created"] == 6
    assert body["steps"][1]["variants"] == []
    assert [row["period_type"] for row in body["series"]] == ["daily"]
    assert len(queries) <= 12  # auth, tenant, campaign, then four reads however many steps


def test_another_tenants_campaign_is_a_404(counted, other_tenant_client):
    response = other_tenant_client.get(f"/api/v1/campaigns/{counted.pk}/analytics/")
    assert response.status_code == 404


def test_the_period_type_is_checked(counted, member_user):
    client = client_for(member_user)
    assert (
        client.get(f"/api/v1/campaigns/{counted.pk}/analytics/", {"period_type": "weekly"}).json()["period_type"]
        == "weekly"
    )
    response = client.get(f"/api/v1/campaigns/{counted.pk}/analytics/", {"period_type": "hourly"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "period_type"


def test_the_endpoint_is_in_the_openapi_schema(member_user):
    schema = client_for(member_user).get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/campaigns/{id}/analytics/"]["get"]
    assert "period_type" in [parameter["name"] for parameter in operation["parameters"]]
    assert "200" in operation["responses"]
