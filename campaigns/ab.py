"""A/B tests of a message step's variants.

- Which variant an enrollment gets is a hash of (enrollment, step) over the variants' weights:
  the same pair always lands on the same variant, so a retry or a second worker never re-rolls
  it. It is stored on the execution when the send starts and never changed after.
- A step with a winner metric (opens, clicks, replies or the campaign's goal) and a test size
  and/or a window is a test. `ab_tests_decide` (Celery beat) compares the best variant with the
  runner-up by a two-proportion z-test at 95%: significant (with enough sends of each), the best
  wins; at the test's end (that many sends, or the window since the first send over) without
  significance, the configured fallback does. The decision and its figures are a
  `CampaignAbDecision` row; every send after it gets the decided variant.
"""

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone

from campaigns.models import (
    AbDecisionReason,
    AbMetric,
    CampaignAbDecision,
    CampaignStatus,
    CampaignStep,
    CampaignStepExecution,
    ExecutionStatus,
    StepType,
    VersionStatus,
)
from crm.errors import ApplicationError

Z_95 = 1.959963984540054  # two-sided 95%: |z| above this is significant
ALPHA = 0.05

SUCCESS = {
    AbMetric.OPEN: Q(opened_at__isnull=False),
    AbMetric.CLICK: Q(clicked_at__isnull=False),
    AbMetric.REPLY: Q(replied_at__isnull=False),
    AbMetric.GOAL: Q(enrollment__goal_achieved=True),
}
METRIC_CHANNELS = {
    AbMetric.OPEN: {StepType.SEND_EMAIL},
    AbMetric.CLICK: {StepType.SEND_EMAIL, StepType.SEND_SMS},
    AbMetric.REPLY: {StepType.SEND_SMS},
    AbMetric.GOAL: {StepType.SEND_EMAIL, StepType.SEND_SMS},
}
AB_FIELDS = ("ab_metric", "ab_test_size", "ab_window_hours", "ab_fallback_variant")


# Choosing --------------------------------------------------------------------------------------


def variant_pick(*, enrollment_id: int, step_id: int, variants: Sequence[Mapping[str, Any]]) -> str:
    """The variant's key for this (enrollment, step): sha256 of the pair, modulo the total weight."""
    if not variants:
        return ""
    total = sum(int(variant["weight"]) for variant in variants)
    digest = hashlib.sha256(f"{enrollment_id}:{step_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        point -= int(variant["weight"])
        if point < 0:
            return str(variant["key"])
    raise AssertionError("unreachable: the point is below the total weight")


def variants_for(executions: Sequence[CampaignStepExecution]) -> dict[int, str]:
    """The variant each execution sends, by execution: the one it already has (a retry), else its
    step's decided winner, else the hash's pick; empty for a step without variants. The winners
    of the steps are read in one query."""
    tested = {execution.step_id for execution in executions if execution.step.variants and execution.step.ab_metric}
    winners = (
        dict(CampaignAbDecision.objects.filter(step_id__in=tested).values_list("step_id", "winner")) if tested else {}
    )
    chosen: dict[int, str] = {}
    for execution in executions:
        step = execution.step
        if execution.variant or not step.variants:
            chosen[execution.pk] = execution.variant
        else:
            chosen[execution.pk] = winners.get(step.pk) or variant_pick(
                enrollment_id=execution.enrollment_id, step_id=step.pk, variants=step.variants
            )
    return chosen


def variant_content(step: CampaignStep, key: str) -> dict[str, Any]:
    """The step's message with the variant's subject and body in place of its own."""
    variant = next((variant for variant in step.variants if variant["key"] == key), None)
    if variant is None:
        return dict(step.step_config)
    return {**step.step_config, **{name: variant[name] for name in ("subject", "body") if name in variant}}


# Configuring -------------------------------------------------------------------------------------


def ab_config_check(*, step_type: str, variants: Sequence[Mapping[str, Any]], config: Mapping[str, Any]) -> None:
    """The A/B fields make sense with the step's type and variants (the database checks the rest)."""
    metric = config.get("ab_metric") or ""
    if not metric:
        for name in ("ab_test_size", "ab_window_hours"):
            if config.get(name) is not None:
                raise ApplicationError(f"{name} needs a winner metric (ab_metric).", code="invalid", attr=name)
        if config.get("ab_fallback_variant"):
            raise ApplicationError(
                "ab_fallback_variant needs a winner metric (ab_metric).", code="invalid", attr="ab_fallback_variant"
            )
        return
    if not variants:
        raise ApplicationError("A winner metric needs A/B variants.", code="invalid", attr="ab_metric")
    if StepType(step_type) not in METRIC_CHANNELS[AbMetric(metric)]:
        raise ApplicationError(f"A {step_type} step cannot be judged by {metric}s.", code="invalid", attr="ab_metric")
    if config.get("ab_test_size") is None and config.get("ab_window_hours") is None:
        raise ApplicationError(
            "An A/B test needs a test size or a window (hours).", code="required", attr="ab_test_size"
        )
    fallback = config.get("ab_fallback_variant") or ""
    keys = [variant["key"] for variant in variants]
    if fallback and fallback not in keys:
        raise ApplicationError(
            f'ab_fallback_variant: "{fallback}" is not one of the variants ({", ".join(keys)}).',
            code="invalid",
            attr="ab_fallback_variant",
        )


# Deciding ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZTest:
    z: float | None  # None: not computable (a side without trials)
    p_value: float | None
    significant: bool


def two_proportion_z_test(*, successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> ZTest:
    """Whether A's rate differs from B's at 95% (two-sided), with the pooled standard error.

    No trials on a side: nothing to compare. The same rate on both sides, or a pooled rate of
    0 or 1 (no spread at all): z = 0, not significant.
    """
    if trials_a <= 0 or trials_b <= 0:
        return ZTest(z=None, p_value=None, significant=False)
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    spread = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if spread <= 0:
        return ZTest(z=0.0, p_value=1.0, significant=False)
    z = (rate_a - rate_b) / math.sqrt(spread)
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return ZTest(z=z, p_value=p_value, significant=abs(z) > Z_95)


@dataclass(frozen=True)
class Arm:
    key: str
    trials: int
    successes: int

    @property
    def rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


def ab_figures(step: CampaignStep) -> list[Arm]:
    """Each variant's sends (completed executions) and successes by the step's metric, in the
    variants' order (one query)."""
    counts: dict[str, tuple[int, int]] = {
        row["variant"]: (row["trials"], row["successes"])
        for row in CampaignStepExecution.objects.filter(step=step, status=ExecutionStatus.COMPLETED)
        .exclude(variant="")
        .values("variant")
        .annotate(trials=Count("pk"), successes=Count("pk", filter=SUCCESS[AbMetric(step.ab_metric)]))
    }
    return [Arm(variant["key"], *counts.get(variant["key"], (0, 0))) for variant in step.variants]


def ab_judge(arms: Sequence[Arm], *, ended: bool, fallback: str, min_trials: int) -> tuple[str, str, ZTest] | None:
    """The decision on these figures: (winner, reason, the test), or None to keep testing.

    The best rate is tested against the runner-up (the hardest of the others to beat). Before the
    test's end a winner needs `min_trials` sends on each side; at the end, significance alone.
    """
    ranked = sorted(arms, key=lambda arm: (-arm.rate, -arm.trials, arm.key))
    best, runner_up = ranked[0], ranked[1]
    test = two_proportion_z_test(
        successes_a=best.successes, trials_a=best.trials, successes_b=runner_up.successes, trials_b=runner_up.trials
    )
    enough = min(best.trials, runner_up.trials) >= min_trials
    if test.significant and (ended or enough):
        return best.key, AbDecisionReason.SIGNIFICANT, test
    if ended:
        return fallback, AbDecisionReason.FALLBACK, test
    return None


def ab_test_ended(step: CampaignStep, arms: Sequence[Arm], now: datetime) -> bool:
    """The test size is reached, or the window since the step's first send is over."""
    if step.ab_test_size is not None and sum(arm.trials for arm in arms) >= step.ab_test_size:
        return True
    if step.ab_window_hours is not None:
        first = (
            CampaignStepExecution.objects.filter(step=step, status=ExecutionStatus.COMPLETED)
            .exclude(variant="")
            .aggregate(first=Min("completed_at"))["first"]
        )
        return first is not None and now >= first + timedelta(hours=step.ab_window_hours)
    return False


def ab_test_decide(*, step: CampaignStep, now: datetime | None = None) -> CampaignAbDecision | None:
    """Decide the step's test if its figures allow; the decision (an earlier one stands)."""
    now = now or timezone.now()
    existing = CampaignAbDecision.objects.filter(step=step).first()
    if existing is not None or not step.ab_metric or len(step.variants) < 2:
        return existing
    arms = ab_figures(step)
    fallback = step.ab_fallback_variant or step.variants[0]["key"]
    judged = ab_judge(
        arms, ended=ab_test_ended(step, arms, now), fallback=fallback, min_trials=settings.CAMPAIGN_AB_MIN_TRIALS
    )
    if judged is None:
        return None
    winner, reason, test = judged
    decision, _ = CampaignAbDecision.objects.get_or_create(
        step=step,
        defaults={
            "tenant_id": step.tenant_id,
            "campaign_id": step.campaign_id,
            "metric": step.ab_metric,
            "winner": winner,
            "reason": reason,
            "z_score": test.z,
            "p_value": test.p_value,
            "figures": {
                "variants": [
                    {"key": arm.key, "trials": arm.trials, "successes": arm.successes, "rate": round(arm.rate, 6)}
                    for arm in arms
                ],
                "alpha": ALPHA,
                "min_trials": settings.CAMPAIGN_AB_MIN_TRIALS,
            },
            "decided_at": now,
        },
    )
    return decision


def ab_tests_decide(*, now: datetime | None = None) -> int:
    """Periodic: decide every open test of a published step of an active campaign; how many were decided."""
    sent = CampaignStepExecution.objects.filter(step=OuterRef("pk"), status=ExecutionStatus.COMPLETED)
    steps = CampaignStep.objects.filter(
        Exists(sent),
        campaign__status=CampaignStatus.ACTIVE,
        version__status=VersionStatus.PUBLISHED,
        ab_decision__isnull=True,
    ).exclude(ab_metric="")
    return sum(ab_test_decide(step=step, now=now) is not None for step in steps)
