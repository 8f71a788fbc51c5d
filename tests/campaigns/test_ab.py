"""A/B tests: the deterministic split, the z-test on constructed counts, the decision and its record."""

import datetime as dt
import math
from collections import Counter

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from campaigns import engine
from campaigns.ab import Arm, ab_judge, ab_tests_decide, two_proportion_z_test, variant_content, variant_pick
from campaigns.engine import execution_resolve, executions_reap, lease
from campaigns.models import CampaignAbDecision, CampaignStep, CampaignStepExecution
from campaigns.services import campaign_draft, campaign_enroll, step_create, step_update
from crm.errors import ApplicationError
from crm.models import Role
from tests.admin import admin_url, staff_client
from tests.api import api_errors
from tests.campaigns.conftest import build
from tests.campaigns.test_engine import drain
from tests.conftest import client_for
from tests.factories import ContactFactory

VARIANTS = [
    {"key": "a", "weight": 1, "subject": "Subject A", "body": "Body A"},
    {"key": "b", "weight": 1, "subject": "Subject B", "body": "Body B"},
]
AB_EMAIL = {
    "step_type": "send_email",
    "step_config": {"subject": "Plain", "body": "Plain body"},
    "variants": VARIANTS,
    "ab_metric": "open",
    "ab_test_size": 40,
    "ab_fallback_variant": "a",
}


# The split ----------------------------------------------------------------------------------------


def test_the_same_enrollment_and_step_always_get_the_same_variant():
    picks = [variant_pick(enrollment_id=41, step_id=7, variants=VARIANTS) for _ in range(5)]
    assert len(set(picks)) == 1
    # It is sha256("41:7") modulo the total weight, not a random draw.
    assert picks[0] == variant_pick(enrollment_id=41, step_id=7, variants=list(VARIANTS))


def test_the_split_follows_the_weights_and_differs_between_steps():
    weighted = [{"key": "a", "weight": 1}, {"key": "b", "weight": 3}]
    split = Counter(variant_pick(enrollment_id=pk, step_id=1, variants=weighted) for pk in range(1, 8001))
    assert 0.23 < split["a"] / 8000 < 0.27
    same_step = [variant_pick(enrollment_id=pk, step_id=1, variants=VARIANTS) for pk in range(200)]
    other_step = [variant_pick(enrollment_id=pk, step_id=2, variants=VARIANTS) for pk in range(200)]
    assert same_step != other_step  # the step is in the hash: tests of two steps are independent


def test_a_step_without_variants_has_no_variant_and_its_own_content():
    step = CampaignStep(step_config={"subject": "S", "body": "B"}, variants=[])
    assert variant_pick(enrollment_id=1, step_id=1, variants=[]) == ""
    assert variant_content(step, "") == {"subject": "S", "body": "B"}
    step.variants = [{"key": "x", "weight": 1, "body": "X"}, {"key": "y", "weight": 1, "body": "Y"}]
    assert variant_content(step, "x") == {"subject": "S", "body": "X"}


# The z-test -----------------------------------------------------------------------------------------


def test_no_trials_on_a_side_is_nothing_to_compare():
    assert two_proportion_z_test(successes_a=0, trials_a=0, successes_b=5, trials_b=10) == (
        two_proportion_z_test(successes_a=3, trials_a=10, successes_b=0, trials_b=0)
    )
    result = two_proportion_z_test(successes_a=0, trials_a=0, successes_b=0, trials_b=0)
    assert (result.z, result.p_value, result.significant) == (None, None, False)


@pytest.mark.parametrize(
    ("successes_a", "trials_a", "successes_b", "trials_b"),
    [(30, 100, 30, 100), (60, 200, 30, 100), (0, 100, 0, 100), (100, 100, 50, 50)],
    ids=["same counts", "same rate, other sizes", "nobody", "everybody"],
)
def test_identical_rates_are_never_significant(successes_a, trials_a, successes_b, trials_b):
    result = two_proportion_z_test(
        successes_a=successes_a, trials_a=trials_a, successes_b=successes_b, trials_b=trials_b
    )
    assert (result.z, result.p_value, result.significant) == (0.0, 1.0, False)


def test_a_clear_winner_is_significant_with_the_textbook_figures():
    # 20% of 1000 against 10% of 1000: pooled 15%, standard error sqrt(.15 * .85 * 2/1000).
    result = two_proportion_z_test(successes_a=200, trials_a=1000, successes_b=100, trials_b=1000)
    assert result.z == pytest.approx(0.1 / math.sqrt(0.15 * 0.85 * 0.002))
    assert result.z == pytest.approx(6.2622, abs=1e-4)
    assert result.p_value == pytest.approx(3.8e-10, rel=0.05)
    assert result.significant
    reverse = two_proportion_z_test(successes_a=100, trials_a=1000, successes_b=200, trials_b=1000)
    assert (reverse.z, reverse.significant) == (pytest.approx(-6.2622, abs=1e-4), True)


def test_the_95_percent_line():
    # 55/500 against 45/500: z about 1.05, far from 1.96.
    close = two_proportion_z_test(successes_a=55, trials_a=500, successes_b=45, trials_b=500)
    assert close.z == pytest.approx(1.0541, abs=1e-3)
    assert not close.significant
    assert close.p_value == pytest.approx(0.2918, abs=1e-3)
    # 120/1000 against 90/1000: z about 2.19, p about 0.029 (under 0.05).
    over = two_proportion_z_test(successes_a=120, trials_a=1000, successes_b=90, trials_b=1000)
    assert (over.z, over.p_value) == (pytest.approx(2.1883, abs=1e-3), pytest.approx(0.0286, abs=1e-3))
    assert over.significant


def test_the_judge_waits_for_enough_sends_then_names_the_winner_or_the_fallback():
    clear = [Arm("a", 40, 4), Arm("b", 40, 20)]
    assert ab_judge(clear, ended=False, fallback="a", min_trials=50) is None  # too few sends yet
    winner, reason, test = ab_judge(clear, ended=False, fallback="a", min_trials=30)
    assert (winner, reason, test.significant) == ("b", "significant", True)
    even = [Arm("a", 100, 20), Arm("b", 100, 22), Arm("c", 100, 19)]
    assert ab_judge(even, ended=False, fallback="c", min_trials=30) is None
    winner, reason, test = ab_judge(even, ended=True, fallback="c", min_trials=30)
    assert (winner, reason, test.significant) == ("c", "fallback", False)
    # With three variants the best is tested against the runner-up, not the worst.
    three = [Arm("a", 100, 10), Arm("b", 100, 40), Arm("c", 100, 35)]
    assert ab_judge(three, ended=True, fallback="a", min_trials=30)[:2] == ("a", "fallback")


# Settings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"ab_metric": "open", "variants": [], "ab_test_size": 10}, "ab_metric"),
        ({"ab_metric": "open", "variants": VARIANTS}, "ab_test_size"),
        ({"ab_metric": "reply", "variants": VARIANTS, "ab_test_size": 10}, "ab_metric"),
        (
            {"ab_metric": "open", "variants": VARIANTS, "ab_test_size": 10, "ab_fallback_variant": "z"},
            "ab_fallback_variant",
        ),
        ({"ab_window_hours": 24}, "ab_window_hours"),
    ],
    ids=["no variants", "no end", "replies to an email", "unknown fallback", "window without metric"],
)
def test_settings_that_make_no_test_are_refused_naming_the_field(actor, fields, attr):
    campaign = build(actor, steps=[], publish=False)
    with pytest.raises(ApplicationError) as refused:
        step_create(
            actor=actor, campaign=campaign, step_type="send_email", step_config=AB_EMAIL["step_config"], **fields
        )
    assert refused.value.attr == attr
    assert not CampaignStep.objects.filter(campaign=campaign).exists()


def test_a_published_steps_ab_settings_are_frozen(actor):
    campaign = build(actor, steps=[AB_EMAIL])
    step = CampaignStep.objects.get(version=campaign.active_version)
    with pytest.raises(DatabaseError, match="published"), transaction.atomic():
        CampaignStep.objects.filter(pk=step.pk).update(ab_fallback_variant="b")
    assert CampaignStep.objects.get(pk=step.pk).ab_fallback_variant == "a"


def test_a_draft_copy_keeps_the_ab_settings(actor):
    campaign = build(actor, steps=[AB_EMAIL])
    published = CampaignStep.objects.get(version=campaign.active_version)
    draft = campaign_draft(campaign=campaign, actor=actor)
    copy = CampaignStep.objects.get(version=draft, step_order=published.step_order)
    assert (copy.ab_metric, copy.ab_test_size, copy.ab_fallback_variant) == ("open", 40, "a")

    copy = step_update(step=copy, actor=actor, ab_test_size=60)
    assert CampaignStep.objects.get(pk=copy.pk).ab_test_size == 60


# The engine with a test ------------------------------------------------------------------------------


def _open(rows, keys: set[str], share: float) -> None:
    """Mark `share` of the sends of the variants in `keys` opened."""
    now = timezone.now()
    for key in keys:
        chosen = [row.pk for row in rows if row.variant == key]
        CampaignStepExecution.objects.filter(pk__in=chosen[: int(len(chosen) * share)]).update(opened_at=now)


def test_sends_are_split_by_the_hash_then_the_winner_goes_to_everyone_after(
    actor, tenant, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_AB_MIN_TRIALS = 10
    campaign = build(actor, steps=[{**AB_EMAIL, "ab_test_size": 100}])
    step = CampaignStep.objects.get(version=campaign.active_version)
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(40, tenant=tenant))
    drain(django_capture_on_commit_callbacks)

    rows = list(CampaignStepExecution.objects.filter(step=step).select_related("enrollment"))
    assert {row.variant for row in rows} == {"a", "b"}
    for row in rows:
        assert row.variant == variant_pick(enrollment_id=row.enrollment_id, step_id=step.pk, variants=VARIANTS)
    subjects = Counter(message.subject for message in mail.outbox)
    assert subjects == Counter(f"Subject {row.variant.upper()}" for row in rows)

    assert ab_tests_decide() == 0  # nothing opened: no difference, and 40 of the test's 100 sends
    assert not CampaignAbDecision.objects.exists()

    _open(rows, {"b"}, 0.9)
    _open(rows, {"a"}, 0.1)
    assert ab_tests_decide() == 1
    decision = CampaignAbDecision.objects.get(step=step)
    by_key = {variant["key"]: variant for variant in decision.figures["variants"]}
    sent_b = sum(row.variant == "b" for row in rows)
    assert (decision.winner, decision.reason, decision.metric) == ("b", "significant", "open")
    assert (by_key["b"]["trials"], by_key["b"]["successes"]) == (sent_b, int(sent_b * 0.9))
    assert decision.z_score > 1.96
    assert decision.p_value < 0.05

    mail.outbox.clear()
    later = ContactFactory.create_batch(12, tenant=tenant)
    campaign_enroll(campaign=campaign, actor=actor, contacts=later)
    drain(django_capture_on_commit_callbacks)
    assert set(
        CampaignStepExecution.objects.filter(step=step, enrollment__contact__in=later).values_list("variant", flat=True)
    ) == {"b"}
    assert {message.subject for message in mail.outbox} == {"Subject B"}
    assert ab_tests_decide() == 0  # decided once


def test_without_significance_by_the_windows_end_the_fallback_is_kept(
    actor, tenant, django_capture_on_commit_callbacks
):
    campaign = build(
        actor, steps=[{**AB_EMAIL, "ab_test_size": None, "ab_window_hours": 24, "ab_fallback_variant": "b"}]
    )
    step = CampaignStep.objects.get(version=campaign.active_version)
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(6, tenant=tenant))
    drain(django_capture_on_commit_callbacks)

    assert ab_tests_decide() == 0  # within the window
    assert ab_tests_decide(now=timezone.now() + dt.timedelta(hours=25)) == 1
    decision = CampaignAbDecision.objects.get(step=step)
    a, b = decision.figures["variants"]
    assert (a["successes"], b["successes"], a["trials"] + b["trials"]) == (0, 0, 6)
    # No opens on either side: z 0 and p 1, or nothing to compare when the hash put all 6 on one side.
    expected = (0.0, 1.0) if a["trials"] and b["trials"] else (None, None)
    assert (decision.winner, decision.reason, decision.z_score, decision.p_value) == ("b", "fallback", *expected)


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside the send: nothing after it runs."""


def test_a_resend_keeps_its_variant_even_after_a_decision(
    actor, tenant, monkeypatch, django_capture_on_commit_callbacks
):
    campaign = build(actor, steps=[AB_EMAIL])
    step = CampaignStep.objects.get(version=campaign.active_version)
    [enrollment] = campaign_enroll(campaign=campaign, actor=actor, contacts=[ContactFactory(tenant=tenant)]).enrollments
    picked = variant_pick(enrollment_id=enrollment.pk, step_id=step.pk, variants=VARIANTS)

    def die(execution):
        raise WorkerDied

    monkeypatch.setattr(engine, "_send_email", die)
    with pytest.raises(WorkerDied):
        drain(django_capture_on_commit_callbacks)
    monkeypatch.undo()
    assert executions_reap(now=timezone.now() + lease() * 2) == {"returned": 0, "unknown": 1}
    row = CampaignStepExecution.objects.get(step=step)
    assert (row.status, row.variant) == ("unknown", picked)
    other = "b" if picked == "a" else "a"
    CampaignAbDecision.objects.create(
        tenant=tenant, campaign=campaign, step=step, metric="open", winner=other, reason="significant", figures={}
    )

    execution_resolve(execution=row, actor=actor, resolution="send_again")
    drain(django_capture_on_commit_callbacks)

    row.refresh_from_db()
    [message] = mail.outbox
    assert (row.status, row.variant, message.subject) == ("completed", picked, f"Subject {picked.upper()}")


def test_at_the_test_size_without_significance_the_fallback_wins(actor, tenant, django_capture_on_commit_callbacks):
    campaign = build(actor, steps=[{**AB_EMAIL, "ab_test_size": 10}])
    step = CampaignStep.objects.get(version=campaign.active_version)
    campaign_enroll(campaign=campaign, actor=actor, contacts=ContactFactory.create_batch(10, tenant=tenant))
    drain(django_capture_on_commit_callbacks)

    assert ab_tests_decide() == 1
    decision = CampaignAbDecision.objects.get(step=step)
    assert (decision.winner, decision.reason) == ("a", "fallback")
    assert sum(variant["trials"] for variant in decision.figures["variants"]) == 10


@pytest.mark.django_db(transaction=True)
def test_migration_0007_freezes_the_ab_settings_and_goes_back():
    def frozen_source() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'campaign_steps_published_frozen'")
            return cursor.fetchone()[0]

    leaves = MigrationExecutor(connection).loader.graph.leaf_nodes()
    assert "ab_fallback_variant" in frozen_source()
    MigrationExecutor(connection).migrate([("campaigns", "0005_step_executions")])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                "('campaign_analytics', 'campaign_ab_decisions')"
            )
            assert cursor.fetchone() == (0,)
        assert "variants" in frozen_source()
        assert "ab_" not in frozen_source()
    finally:
        MigrationExecutor(connection).migrate(leaves)
    assert "ab_fallback_variant" in frozen_source()


# API and admin ---------------------------------------------------------------------------------------


def test_the_api_takes_the_settings_refuses_bad_ones_and_shows_the_decision(actor, tenant, manager):
    campaign = build(actor, steps=[], publish=False)
    client = client_for(manager)
    url = f"/api/v1/campaigns/{campaign.pk}/steps/"

    refused = client.post(url, {**AB_EMAIL, "ab_fallback_variant": "z"}, format="json")
    created = client.post(url, AB_EMAIL, format="json")

    assert api_errors(refused, 400, type="validation_error")[0]["attr"] == "ab_fallback_variant"
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["ab_metric"], body["ab_test_size"], body["ab_fallback_variant"], body["ab_decision"]) == (
        "open",
        40,
        "a",
        None,
    )
    step = CampaignStep.objects.get(pk=body["id"])
    CampaignAbDecision.objects.create(
        tenant=tenant,
        campaign=campaign,
        step=step,
        metric="open",
        winner="b",
        reason="significant",
        z_score=2.5,
        p_value=0.0124,
        figures={"variants": []},
    )
    shown = client.get(f"{url}{step.pk}/").json()["ab_decision"]
    assert (shown["winner"], shown["reason"], shown["z_score"], shown["p_value"]) == ("b", "significant", 2.5, 0.0124)


def test_decisions_are_read_only_in_the_admin(actor, tenant):
    campaign = build(actor, steps=[AB_EMAIL])
    step = CampaignStep.objects.get(version=campaign.active_version)
    decision = CampaignAbDecision.objects.create(
        tenant=tenant, campaign=campaign, step=step, metric="open", winner="a", reason="fallback", figures={}
    )
    client, _ = staff_client(tenant, Role.OWNER)

    page = client.get(admin_url("change", CampaignAbDecision, decision.pk))

    assert page.status_code == 200
    assert (page.context["has_change_permission"], page.context["has_delete_permission"]) == (False, False)
    assert client.get(admin_url("changelist", CampaignAbDecision)).status_code == 200
    assert client.get(admin_url("add", CampaignAbDecision)).status_code == 403
