"""The execution engine without a worker: claims, leases, the reaper, `unknown`, skips, each step type."""

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from campaigns.content import WEEKDAYS
from campaigns.engine import (
    claim_due,
    execution_resolve,
    execution_run,
    executions_claim,
    executions_reap,
    executions_run,
    lease,
)
from campaigns.models import CampaignEnrollment, CampaignStepExecution
from campaigns.services import (
    campaign_archive,
    campaign_enroll,
    campaign_pause,
    campaign_publish,
    campaign_resume,
    campaign_unenroll,
    enrollment_exit,
    step_create,
)
from contacts.models import Contact
from crm.errors import Conflict
from crm.models import Activity, Role
from substatus.models import SubstatusHistory
from tests.campaigns.conftest import EMAIL, SMS, TASK, build
from tests.conftest import member
from tests.factories import ActivityFactory, ContactFactory

pytestmark = pytest.mark.django_db


def drain(django_capture_on_commit_callbacks, *, rounds: int = 10) -> None:
    """Claim and run what is due, as beat and the workers would, until nothing is due."""
    for _ in range(rounds):
        with django_capture_on_commit_callbacks(execute=True):
            ids = claim_due(batch_size=100, enqueue=lambda ids: executions_run(ids=ids))
        if not ids:
            return


def ledger(campaign) -> list[tuple]:
    return list(
        CampaignStepExecution.objects.filter(enrollment__campaign=campaign)
        .order_by("enrollment__contact_id", "step__step_order")
        .values_list("enrollment__contact_id", "step__step_order", "visit", "status", "skip_reason")
    )


def test_enrolling_writes_the_first_execution_due_after_the_steps_delay(actor, tenant):
    campaign = build(actor, steps=[{**TASK, "delay_value": 2, "delay_unit": "hours"}])
    contact = ContactFactory(tenant=tenant)

    enrollment = campaign_enroll(campaign=campaign, actor=actor, contacts=[contact]).enrollments[0]

    row = CampaignStepExecution.objects.get(enrollment=enrollment)
    assert (row.tenant_id, row.step_id, row.visit, row.status, row.attempts) == (
        tenant.pk,
        enrollment.current_step_id,
        1,
        "pending",
        0,
    )
    assert row.scheduled_at == enrollment.enrolled_at + dt.timedelta(hours=2) == enrollment.next_step_scheduled_at
    assert claim_due(batch_size=10, enqueue=list) == []  # not due yet


@pytest.mark.parametrize(
    ("zone", "enrolled", "first", "second"),
    [
        # Saturday 10:00 before each zone's spring change; the Monday and the Monday after at 10:00.
        ("America/Denver", "2026-03-07T10:00:00-07:00", "2026-03-09T10:00:00-06:00", "2026-03-16T10:00:00-06:00"),
        ("Europe/Paris", "2026-03-28T10:00:00+01:00", "2026-03-30T10:00:00+02:00", "2026-04-06T10:00:00+02:00"),
        # And before the autumn change.
        ("America/Denver", "2026-10-31T10:00:00-06:00", "2026-11-02T10:00:00-07:00", "2026-11-09T10:00:00-07:00"),
        ("Europe/Paris", "2026-10-24T10:00:00+02:00", "2026-10-26T10:00:00+01:00", "2026-11-02T10:00:00+01:00"),
    ],
)
def test_delays_in_days_and_weeks_keep_the_contacts_wall_clock_across_dst(
    zone, enrolled, first, second, actor, tenant, manager, django_capture_on_commit_callbacks
):
    campaign = build(
        actor,
        steps=[{**TASK, "delay_value": 2, "delay_unit": "days"}, {**TASK, "delay_value": 1, "delay_unit": "weeks"}],
    )
    contact = ContactFactory(tenant=tenant, timezone=zone, assigned_to=manager)
    with time_machine.travel(dt.datetime.fromisoformat(enrolled), tick=False):
        campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    with time_machine.travel(dt.datetime.fromisoformat(first), tick=False):
        drain(django_capture_on_commit_callbacks)

    scheduled = CampaignStepExecution.objects.order_by("step__step_order").values_list("scheduled_at", "status")
    assert list(scheduled) == [
        (dt.datetime.fromisoformat(first), "completed"),
        (dt.datetime.fromisoformat(second), "pending"),
    ]
    assert CampaignEnrollment.objects.get().next_step_scheduled_at == dt.datetime.fromisoformat(second)


def test_three_task_steps_run_once_each_and_complete_the_enrollment(
    actor, tenant, manager, django_capture_on_commit_callbacks
):
    campaign = build(actor, steps=[TASK, TASK, TASK])
    contacts = ContactFactory.create_batch(4, tenant=tenant, assigned_to=manager)
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)

    drain(django_capture_on_commit_callbacks)

    assert ledger(campaign) == [
        (contact.pk, order, 1, "completed", None) for contact in contacts for order in (1, 2, 3)
    ]
    tasks = Activity.objects.filter(contact__in=contacts, type="task")
    assert sorted((task.contact_id, task.subject, task.performed_by_id) for task in tasks) == sorted(
        (contact.pk, f"Call {contact.first_name}", manager.pk) for contact in contacts for _ in range(3)
    )
    assert set(
        CampaignEnrollment.objects.filter(campaign=campaign).values_list("status", "steps_completed", "tasks_created")
    ) == {("completed", 3, 3)}
    campaign.refresh_from_db()
    assert campaign.total_completed == 4
    assert (
        list(campaign.active_version.steps.values_list("total_executed", "total_succeeded", "total_failed"))
        == [(4, 4, 0)] * 3
    )


def test_an_email_goes_once_through_the_email_backend_with_its_message_id(
    actor, tenant, django_capture_on_commit_callbacks
):
    campaign = build(actor, steps=[EMAIL])
    contact = ContactFactory(tenant=tenant, first_name="Ada")
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    drain(django_capture_on_commit_callbacks)

    [message] = mail.outbox
    row = CampaignStepExecution.objects.get(enrollment__contact=contact)
    assert (message.to, message.subject) == ([contact.email], "Hello Ada")
    assert message.body.startswith(f"From {tenant.name}\n\nTo stop receiving these emails, unsubscribe: ")
    assert (row.status, row.provider_message_id) == ("completed", message.extra_headers["Message-ID"])
    assert CampaignEnrollment.objects.get(contact=contact).emails_sent == 1


def test_a_redelivered_batch_runs_nothing_twice(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[EMAIL])
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(2, tenant=tenant))
    with django_capture_on_commit_callbacks(execute=True):
        ids = claim_due(batch_size=10, enqueue=list)

    assert executions_run(ids=ids) == {"completed": 2}
    assert executions_run(ids=ids) == {"not_ours": 2}
    assert len(mail.outbox) == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_claims_never_take_the_same_row(actor, tenant):
    campaign = build(actor)
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(5, tenant=tenant))
    first: list[int] = []
    claimed, release = threading.Event(), threading.Event()

    def hold_a_claim() -> None:
        try:
            with transaction.atomic():  # the claim's locks stay held until this commits
                first.extend(claim_due(batch_size=3, enqueue=list))
                claimed.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold_a_claim)
    thread.start()
    assert claimed.wait(timeout=30)
    second = claim_due(batch_size=10, enqueue=list)
    release.set()
    thread.join()

    assert len(first) == 3
    assert len(second) == 2
    assert set(first) | set(second) == set(CampaignStepExecution.objects.values_list("pk", flat=True))
    assert set(CampaignStepExecution.objects.values_list("status", flat=True)) == {"running"}


def test_an_expired_claim_is_not_run_and_the_reaper_returns_it(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    [row_id] = claim_due(batch_size=10, enqueue=list)
    later = timezone.now() + lease() + dt.timedelta(seconds=1)

    assert execution_run(execution_id=row_id, now=later) == "not_ours"
    assert executions_reap(now=later) == {"returned": 1, "unknown": 0}

    row = CampaignStepExecution.objects.get(pk=row_id)
    assert (row.status, row.attempts, row.lease_until) == ("pending", 1, None)
    drain(django_capture_on_commit_callbacks)
    assert CampaignStepExecution.objects.get(pk=row_id).status == "completed"
    assert Activity.objects.filter(type="task").count() == 1


def test_a_live_claim_is_left_alone_by_the_reaper(actor, tenant):
    campaign = build(actor)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    claim_due(batch_size=10, enqueue=list)

    assert executions_reap() == {"returned": 0, "unknown": 0}
    assert CampaignStepExecution.objects.get().status == "running"


class DyingBackend:
    """An email backend whose worker is killed mid-send (after the row was committed `sending`)."""

    def __init__(self, **kwargs):
        pass

    def send_messages(self, messages):
        raise SystemExit("killed")


def test_a_send_cut_short_becomes_unknown_and_is_never_sent_blindly(actor, tenant, settings, manager):
    campaign = build(actor, steps=[EMAIL, TASK])
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    [row_id] = claim_due(batch_size=10, enqueue=list)
    settings.EMAIL_BACKEND = f"{__name__}.DyingBackend"

    with pytest.raises(SystemExit):
        execution_run(execution_id=row_id)

    assert CampaignStepExecution.objects.get(pk=row_id).status == "sending"
    assert executions_reap() == {"returned": 0, "unknown": 0}  # its lease still runs
    assert executions_reap(now=timezone.now() + lease() + dt.timedelta(seconds=1)) == {"returned": 0, "unknown": 1}
    assert execution_run(execution_id=row_id) == "not_ours"  # a redelivered task does not send it again
    assert claim_due(batch_size=10, enqueue=list) == []
    row = CampaignStepExecution.objects.get(pk=row_id)
    assert (row.status, row.error_message) == (
        "unknown",
        "The worker stopped while the channel was sending: it is unknown whether the message went out.",
    )

    resolved = execution_resolve(execution=row, actor=actor, resolution="mark_sent")

    assert resolved.status == "completed"
    assert resolved.result_data["resolved"]["by"] == manager.pk
    assert ledger(campaign) == [(contact.pk, 1, 1, "completed", None), (contact.pk, 2, 1, "pending", None)]
    assert mail.outbox == []
    with pytest.raises(Conflict):
        execution_resolve(execution=resolved, actor=actor, resolution="send_again")


def test_send_again_sends_an_unknown_row_once_more(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[EMAIL])
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    CampaignStepExecution.objects.update(status="unknown")

    row = execution_resolve(execution=CampaignStepExecution.objects.get(), actor=actor, resolution="send_again")
    drain(django_capture_on_commit_callbacks)

    assert (row.status, row.attempts) == ("pending", 1)
    assert CampaignStepExecution.objects.get().status == "completed"
    assert len(mail.outbox) == 1


def test_the_idempotency_key_refuses_a_second_row_for_a_visit(actor, tenant):
    campaign = build(actor)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)])
    row = CampaignStepExecution.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignStepExecution.objects.create(
            tenant=tenant, enrollment=row.enrollment, step=row.step, visit=1, scheduled_at=timezone.now()
        )
    assert CampaignStepExecution.objects.count() == 1


@pytest.mark.parametrize(
    ("opt_out", "channel"),
    [({"email_opt_out": True}, EMAIL), ({"email_invalid": True}, EMAIL), ({"sms_opt_out": True}, SMS)],
    ids=["email_opt_out", "email_invalid", "sms_opt_out"],
)
def test_no_consent_at_send_time_skips_the_message_and_moves_on(
    opt_out, channel, actor, tenant, django_capture_on_commit_callbacks
):
    campaign = build(actor, steps=[channel, TASK])
    contact = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="5550100")
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    Contact.objects.filter(pk=contact.pk).update(**opt_out)

    drain(django_capture_on_commit_callbacks)

    assert ledger(campaign) == [(contact.pk, 1, 1, "skipped", "no_consent"), (contact.pk, 2, 1, "completed", None)]
    assert mail.outbox == []
    assert CampaignEnrollment.objects.get(contact=contact).status == "completed"


def test_a_deleted_contact_is_skipped_and_leaves(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[TASK, TASK])
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    Contact.objects.filter(pk=contact.pk).update(is_deleted=True)

    drain(django_capture_on_commit_callbacks)

    assert ledger(campaign) == [(contact.pk, 1, 1, "skipped", "contact_deleted")]
    enrollment = CampaignEnrollment.objects.get(contact=contact)
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "contact_deleted")
    assert not Activity.objects.filter(type="task").exists()


def test_archiving_cancels_what_is_still_to_run(actor, tenant):
    campaign = build(actor, steps=[TASK, TASK])
    contacts = ContactFactory.create_batch(2, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)
    [claimed, _] = claim_due(batch_size=10, enqueue=list)

    campaign_archive(campaign=campaign, actor=actor)

    assert execution_run(execution_id=claimed) == "not_ours"
    assert ledger(campaign) == [(contact.pk, 1, 1, "skipped", "archived") for contact in contacts]
    assert not Activity.objects.filter(type="task").exists()


def test_a_step_after_an_exit_is_skipped_with_the_exit_reason(actor, tenant):
    campaign = build(actor, steps=[TASK])
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    [row_id] = claim_due(batch_size=10, enqueue=list)
    CampaignEnrollment.objects.update(status="exited", exit_reason="goal")

    assert execution_run(execution_id=row_id) == "skipped"
    assert ledger(campaign) == [(contact.pk, 1, 1, "skipped", "goal_met")]


def test_pause_stops_sending_at_once_and_resume_sends(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[EMAIL], catch_up_policy="send_now")
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(2, tenant=tenant))
    [claimed] = claim_due(batch_size=1, enqueue=list)

    campaign_pause(campaign=campaign, actor=actor)

    assert execution_run(execution_id=claimed) == "pending"  # back to waiting, not sent
    assert claim_due(batch_size=10, enqueue=list) == []  # nothing of a paused campaign is claimed
    assert mail.outbox == []
    campaign_resume(campaign=campaign, actor=actor)
    drain(django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 2


def test_field_and_tag_steps_write_through_the_services_as_the_campaign(
    actor, tenant, django_capture_on_commit_callbacks
):
    steps = [
        {"step_type": "update_field", "step_config": {"entity": "contact", "field": "stage", "value": "contacted"}},
        {"step_type": "manage_tags", "step_config": {"add": ["storm", "vip"], "remove": ["cold"]}},
        {"step_type": "exit_campaign", "step_config": {}},
        TASK,
    ]
    campaign = build(actor, steps=steps)
    contact = ContactFactory(tenant=tenant, tags=["cold", "vip"])
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    drain(django_capture_on_commit_callbacks)

    contact.refresh_from_db()
    assert (contact.stage, contact.tags) == ("contacted", ["vip", "storm"])
    history = SubstatusHistory.objects.filter(entity="contact", record_id=contact.pk).order_by("pk").last()
    assert (history.to_status, history.source) == ("contacted", "campaign")
    assert ledger(campaign) == [(contact.pk, order, 1, "completed", None) for order in (1, 2, 3)]
    enrollment = CampaignEnrollment.objects.get(contact=contact)
    assert (enrollment.status, enrollment.exit_reason, enrollment.steps_completed) == ("exited", "exit_step", 3)


def test_resume_skips_what_fell_due_while_paused_and_moves_on(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[EMAIL, TASK], catch_up_policy="skip_overdue")
    contacts = ContactFactory.create_batch(2, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=contacts)
    campaign_pause(campaign=campaign, actor=actor)

    campaign_resume(campaign=campaign, actor=actor)
    drain(django_capture_on_commit_callbacks)

    assert ledger(campaign) == [
        row
        for contact in contacts
        for row in [(contact.pk, 1, 1, "skipped", "paused"), (contact.pk, 2, 1, "completed", None)]
    ]
    assert mail.outbox == []


def test_resume_spreads_what_fell_due_over_the_catch_up_hours(actor, tenant):
    campaign = build(actor, steps=[EMAIL], catch_up_policy="spread_over_hours", catch_up_hours=2)
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(4, tenant=tenant))
    campaign_pause(campaign=campaign, actor=actor)
    before = timezone.now()

    campaign_resume(campaign=campaign, actor=actor)

    due = list(CampaignStepExecution.objects.order_by("scheduled_at").values_list("scheduled_at", flat=True))
    start = due[0]
    assert before <= start <= timezone.now()
    assert [moment - start for moment in due] == [dt.timedelta(minutes=30 * index) for index in range(4)]
    assert len(claim_due(batch_size=10, enqueue=list)) == 1  # only the first is due now


def test_claiming_stops_at_the_outstanding_cap(actor, tenant):
    campaign = build(actor)
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(7, tenant=tenant))
    batches: list[list[int]] = []

    first = executions_claim(enqueue=batches.append, batch_size=2, max_outstanding=5)
    second = executions_claim(enqueue=batches.append, batch_size=2, max_outstanding=5)

    assert (first, second) == (5, 0)  # 2 + 2 + 1, then nothing until some are run
    assert CampaignStepExecution.objects.filter(status="running").count() == 5
    assert CampaignStepExecution.objects.filter(status="pending").count() == 2


def test_outside_business_hours_a_message_moves_to_the_next_opening(actor, tenant):
    today = timezone.now().astimezone(ZoneInfo(tenant.timezone)).date()
    tomorrow = WEEKDAYS[(today.weekday() + 1) % 7]
    campaign = build(
        actor,
        steps=[EMAIL],
        respect_business_hours=True,
        business_hours={tomorrow: {"start": "09:00", "end": "17:00"}},
    )
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    opening = CampaignStepExecution.objects.get().scheduled_at
    CampaignStepExecution.objects.update(scheduled_at=timezone.now())  # due now, as if the hours changed since
    [row_id] = claim_due(batch_size=10, enqueue=list)

    assert execution_run(execution_id=row_id) == "pending"

    row = CampaignStepExecution.objects.get()
    assert (row.status, row.skip_reason, row.scheduled_at) == ("pending", "quiet_hours_moved", opening)
    assert opening.astimezone(ZoneInfo(tenant.timezone)).replace(tzinfo=None) == dt.datetime.combine(
        today + dt.timedelta(days=1), dt.time(9)
    )
    assert mail.outbox == []


def test_the_frequency_cap_counts_every_campaign_and_reschedules(actor, tenant, django_capture_on_commit_callbacks):
    first = build(actor, name="First", steps=[EMAIL], max_messages_per_day=1)
    second = build(actor, name="Second", steps=[EMAIL], max_messages_per_day=1)
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=first, actor=actor, contacts=[contact])
    campaign_enroll(campaign=second, actor=actor, contacts=[contact])

    drain(django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 1
    sent = CampaignStepExecution.objects.get(status="completed")
    waiting = CampaignStepExecution.objects.get(status="pending")
    assert (waiting.skip_reason, waiting.scheduled_at) == ("frequency_cap", sent.started_at + dt.timedelta(days=1))
    assert waiting.result_data["moved"] == [{"reason": "frequency_cap", "to": waiting.scheduled_at.isoformat()}]
    assert CampaignEnrollment.objects.get(pk=waiting.enrollment_id).next_step_scheduled_at == waiting.scheduled_at


@pytest.mark.parametrize(
    ("config", "who"),
    [
        ({"role": "manager", "message": "Call {{ contact.first_name }}"}, ["manager", "second manager"]),
        ({"user": "owner", "message": "Call {{ contact.first_name }}"}, ["member"]),
    ],
    ids=["role", "owner"],
)
def test_notify_leaves_a_notice_that_only_each_user_sees(
    config, who, actor, tenant, manager, member_user, admin_user, django_capture_on_commit_callbacks
):
    people = {"manager": manager, "second manager": member(tenant, Role.MANAGER, "manager-2"), "member": member_user}
    campaign = build(actor, steps=[{"step_type": "notify", "step_config": config}])
    contact = ContactFactory(tenant=tenant, first_name="Ada", assigned_to=member_user)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    drain(django_capture_on_commit_callbacks)

    users = [people[name] for name in who]
    notices = Activity.objects.filter(type="notice").order_by("recipient_id")
    assert list(notices.values_list("recipient_id", "contact_id", "created_by_id", "content")) == [
        (user.pk, contact.pk, None, "Call Ada") for user in users
    ]
    assert CampaignStepExecution.objects.get().result_data == {"notified": [user.pk for user in users]}
    for user in users:
        assert list(Activity.objects.visible_to(user).filter(type="notice")) == [notices.get(recipient=user)]
    assert not Activity.objects.visible_to(admin_user).filter(type="notice").exists()


def test_leaving_cancels_the_pending_steps_with_the_exit_reason(actor, tenant):
    campaign = build(actor, steps=[{**TASK, "delay_value": 1}])
    staff_out, goal_met, staying = ContactFactory.create_batch(3, tenant=tenant)
    enrollments = campaign_enroll(campaign=campaign, actor=actor, contacts=[staff_out, goal_met, staying]).enrollments

    campaign_unenroll(campaign=campaign, actor=actor, contacts=[staff_out])
    enrollment_exit(enrollment=enrollments[1], actor=actor, reason="goal")

    assert ledger(campaign) == [
        (staff_out.pk, 1, 1, "skipped", None),
        (goal_met.pk, 1, 1, "skipped", "goal_met"),
        (staying.pk, 1, 1, "pending", None),
    ]
    assert CampaignStepExecution.objects.get(enrollment__contact=staff_out).error_message == (
        "The enrollment exited (Taken out by staff)."
    )


def test_a_contact_who_met_the_goal_leaves_at_send_time(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[EMAIL, TASK], goal_type="appointments")
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    ActivityFactory(tenant=tenant, contact=contact, type="meeting")

    drain(django_capture_on_commit_callbacks)

    assert ledger(campaign) == [(contact.pk, 1, 1, "skipped", "goal_met")]
    enrollment = CampaignEnrollment.objects.get(contact=contact)
    assert (enrollment.status, enrollment.exit_reason, enrollment.goal_achieved) == ("exited", "goal", True)
    assert mail.outbox == []


def test_a_contact_who_now_matches_an_exclusion_leaves_at_send_time(actor, tenant, django_capture_on_commit_callbacks):
    lost = {"field": "stage", "op": "in", "value": ["lost"]}
    campaign = build(
        actor,
        steps=[EMAIL, TASK],
        triggers=[{"trigger_type": "manual", "trigger_config": {}, "exclusion_conditions": lost}],
    )
    staying, leaving = ContactFactory.create_batch(2, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[staying, leaving])
    Contact.objects.filter(pk=leaving.pk).update(stage="lost")

    drain(django_capture_on_commit_callbacks)

    assert ledger(campaign) == [
        (staying.pk, 1, 1, "completed", None),
        (staying.pk, 2, 1, "completed", None),
        (leaving.pk, 1, 1, "skipped", "excluded"),
    ]
    assert CampaignEnrollment.objects.get(contact=leaving).exit_reason == "excluded"
    assert [message.to for message in mail.outbox] == [[staying.email]]


def test_publishing_with_a_step_mapping_moves_the_pending_executions(actor, tenant):
    campaign = build(actor, steps=[{**TASK, "delay_value": 1}])
    [old_step] = campaign.active_version.steps.all()
    contact = ContactFactory(tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    new_step = step_create(actor=actor, campaign=campaign, step_order=2, **TASK)

    campaign_publish(campaign=campaign, actor=actor, step_mapping={old_step.pk: new_step.pk})

    row = CampaignStepExecution.objects.get()
    assert (row.step_id, row.status) == (new_step.pk, "pending")


def test_two_campaigns_tagging_one_contact_in_one_batch_keep_both_tags(
    actor, tenant, django_capture_on_commit_callbacks
):
    first = build(actor, name="First", steps=[{"step_type": "manage_tags", "step_config": {"add": ["storm"]}}])
    second = build(actor, name="Second", steps=[{"step_type": "manage_tags", "step_config": {"add": ["vip"]}}])
    contact = ContactFactory(tenant=tenant, tags=["cold"])
    campaign_enroll(campaign=first, actor=actor, contacts=[contact])
    campaign_enroll(campaign=second, actor=actor, contacts=[contact])

    with django_capture_on_commit_callbacks(execute=True):
        ids = claim_due(batch_size=10, enqueue=list)
    assert executions_run(ids=ids) == {"completed": 2}  # one batch

    contact.refresh_from_db()
    assert contact.tags == ["cold", "storm", "vip"]
