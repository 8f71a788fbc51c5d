"""A/B tests (a step's winner metric, test size, window and fallback; the decisions) and
campaign_analytics (per campaign, step and variant; the counted-facts bits on executions and
enrollments). A published step's A/B settings are frozen like the rest of its definition."""

import django.core.validators
import django.db.models.deletion
import django.db.models.expressions
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


# campaign_steps_published_frozen (0002) with the A/B settings among what a published step defines.
DEFINITION = [
    "version_id",
    "name",
    "step_order",
    "parent_step_id",
    "step_type",
    "step_config",
    "delay_value",
    "delay_unit",
    "conditions",
    "true_path_step_id",
    "false_path_step_id",
    "variants",
]
AB = ["ab_metric", "ab_test_size", "ab_window_hours", "ab_fallback_variant"]


def frozen_function(columns: list[str]) -> str:
    changed = " OR ".join(f"NEW.{column} IS DISTINCT FROM OLD.{column}" for column in columns)
    return f"""
CREATE OR REPLACE FUNCTION campaign_steps_published_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM campaign_versions WHERE id = NEW.version_id AND status = 'published')
       OR (TG_OP = 'UPDATE' AND EXISTS (
           SELECT 1 FROM campaign_versions WHERE id = OLD.version_id AND status = 'published')) THEN
        RAISE EXCEPTION 'version % of the campaign is published: edit a draft version', NEW.version_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'campaign_steps_published_frozen';
    END IF;
    RETURN NEW;
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_step_executions"),
        ("contacts", "0012_sub_contractor_validate"),
        ("crm", "0015_activity_notices_validate"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CampaignAbDecision",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "metric",
                    models.CharField(
                        choices=[
                            ("", "None (keep the split)"),
                            ("open", "Opens"),
                            ("click", "Clicks"),
                            ("reply", "Replies"),
                            ("goal", "The campaign's goal"),
                        ],
                        max_length=10,
                    ),
                ),
                ("winner", models.CharField(max_length=50)),
                (
                    "reason",
                    models.CharField(
                        choices=[
                            ("significant", "A variant won (two-proportion z-test, 95%)"),
                            ("fallback", "No significant winner by the test's end: the fallback"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "z_score",
                    models.FloatField(
                        blank=True, help_text="The best against the runner-up (empty: not computable).", null=True
                    ),
                ),
                ("p_value", models.FloatField(blank=True, null=True)),
                ("figures", models.JSONField(default=dict, help_text="Per variant: trials, successes, rate.")),
                (
                    "decided_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(), default=django.utils.timezone.now
                    ),
                ),
            ],
            options={
                "db_table": "campaign_ab_decisions",
                "ordering": ["-decided_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="CampaignAnalytics",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("snapshot_date", models.DateField(help_text="The period's first day (all_time: 1970-01-01).")),
                (
                    "period_type",
                    models.CharField(
                        choices=[
                            ("daily", "Daily"),
                            ("weekly", "Weekly"),
                            ("monthly", "Monthly"),
                            ("all_time", "All Time"),
                        ],
                        max_length=10,
                    ),
                ),
                ("variant", models.CharField(blank=True, max_length=50, null=True)),
                ("total_enrolled", models.IntegerField(db_default=0, default=0)),
                ("new_enrollments", models.IntegerField(db_default=0, default=0)),
                ("active_enrollments", models.IntegerField(db_default=0, default=0)),
                ("completed_enrollments", models.IntegerField(db_default=0, default=0)),
                ("exited_enrollments", models.IntegerField(db_default=0, default=0)),
                ("emails_sent", models.IntegerField(db_default=0, default=0)),
                ("emails_opened", models.IntegerField(db_default=0, default=0)),
                ("emails_clicked", models.IntegerField(db_default=0, default=0)),
                ("sms_sent", models.IntegerField(db_default=0, default=0)),
                ("sms_replied", models.IntegerField(db_default=0, default=0)),
                ("tasks_created", models.IntegerField(db_default=0, default=0)),
                ("goals_achieved", models.IntegerField(db_default=0, default=0)),
                ("executions_completed", models.IntegerField(db_default=0, default=0)),
                ("executions_failed", models.IntegerField(db_default=0, default=0)),
                ("executions_skipped", models.IntegerField(db_default=0, default=0)),
                (
                    "skipped_by_reason",
                    models.JSONField(blank=True, db_default={}, default=dict, help_text="{reason: count}"),
                ),
                ("open_rate", models.DecimalField(db_default=0, decimal_places=4, default=0, max_digits=7)),
                ("click_rate", models.DecimalField(db_default=0, decimal_places=4, default=0, max_digits=7)),
                ("reply_rate", models.DecimalField(db_default=0, decimal_places=4, default=0, max_digits=7)),
                ("conversion_rate", models.DecimalField(db_default=0, decimal_places=4, default=0, max_digits=7)),
                ("revenue_attributed", models.DecimalField(db_default=0, decimal_places=2, default=0, max_digits=14)),
                ("deals_attributed", models.IntegerField(db_default=0, default=0)),
                ("average_deal_size", models.DecimalField(db_default=0, decimal_places=2, default=0, max_digits=14)),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
            ],
            options={
                "verbose_name_plural": "campaign analytics",
                "db_table": "campaign_analytics",
                "ordering": ["campaign", "period_type", "-snapshot_date", "step", "variant"],
            },
        ),
        migrations.AddField(
            model_name="campaignenrollment",
            name="analytics_counted",
            field=models.PositiveSmallIntegerField(
                db_default=0, default=0, editable=False, help_text="The facts campaign_analytics has counted (bits)."
            ),
        ),
        migrations.AddField(
            model_name="campaignenrollment",
            name="deals_attributed",
            field=models.IntegerField(
                db_default=0, default=0, editable=False, help_text="Projects approved within the attribution window."
            ),
        ),
        migrations.AddField(
            model_name="campaignstep",
            name="ab_fallback_variant",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Sent after a test with no significant winner.",
                max_length=50,
            ),
        ),
        migrations.AddField(
            model_name="campaignstep",
            name="ab_metric",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "None (keep the split)"),
                    ("open", "Opens"),
                    ("click", "Clicks"),
                    ("reply", "Replies"),
                    ("goal", "The campaign's goal"),
                ],
                db_default="",
                default="",
                help_text="What picks the A/B winner (empty: the variants stay split by weight).",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="campaignstep",
            name="ab_test_size",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Sends in the test before it ends.",
                null=True,
                validators=[django.core.validators.MinValueValidator(2)],
            ),
        ),
        migrations.AddField(
            model_name="campaignstep",
            name="ab_window_hours",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Hours from the step's first send until the test ends.",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
            ),
        ),
        migrations.AddField(
            model_name="campaignstepexecution",
            name="analytics_counted",
            field=models.PositiveSmallIntegerField(
                db_default=0, default=0, editable=False, help_text="The facts campaign_analytics has counted (bits)."
            ),
        ),
        migrations.AddIndex(
            model_name="campaignenrollment",
            index=models.Index(
                condition=models.Q(
                    (
                        "analytics_counted",
                        django.db.models.expressions.CombinedExpression(
                            django.db.models.expressions.CombinedExpression(
                                django.db.models.expressions.CombinedExpression(
                                    models.Case(
                                        models.When(models.Q(("pk__isnull", False)), then=models.Value(1)),
                                        default=models.Value(0),
                                        output_field=models.IntegerField(),
                                    ),
                                    "+",
                                    models.Case(
                                        models.When(models.Q(("status", "completed")), then=models.Value(2)),
                                        default=models.Value(0),
                                        output_field=models.IntegerField(),
                                    ),
                                ),
                                "+",
                                models.Case(
                                    models.When(models.Q(("status__in", ["exited", "failed"])), then=models.Value(4)),
                                    default=models.Value(0),
                                    output_field=models.IntegerField(),
                                ),
                            ),
                            "+",
                            models.Case(
                                models.When(models.Q(("goal_achieved", True)), then=models.Value(8)),
                                default=models.Value(0),
                                output_field=models.IntegerField(),
                            ),
                        ),
                    ),
                    _negated=True,
                ),
                fields=["id"],
                name="enrollments_uncounted_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignstep",
            constraint=models.CheckConstraint(
                condition=models.Q(("ab_metric__in", ["", "open", "click", "reply", "goal"])),
                name="campaign_steps_ab_metric_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignstep",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("ab_metric", ""),
                    ("ab_test_size__isnull", False),
                    ("ab_window_hours__isnull", False),
                    _connector="OR",
                ),
                name="campaign_steps_ab_test_ends",
                violation_error_message="An A/B winner metric needs a test size or a window.",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignstep",
            constraint=models.CheckConstraint(
                condition=models.Q(("ab_test_size__isnull", True), ("ab_test_size__gte", 2), _connector="OR"),
                name="campaign_steps_ab_test_size_valid",
                violation_error_message="An A/B test needs at least 2 sends.",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignstep",
            constraint=models.CheckConstraint(
                condition=models.Q(("ab_window_hours__isnull", True), ("ab_window_hours__gte", 1), _connector="OR"),
                name="campaign_steps_ab_window_valid",
                violation_error_message="An A/B window is at least 1 hour.",
            ),
        ),
        migrations.AddField(
            model_name="campaignabdecision",
            name="campaign",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="ab_decisions", to="campaigns.campaign"
            ),
        ),
        migrations.AddField(
            model_name="campaignabdecision",
            name="step",
            field=models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, related_name="ab_decision", to="campaigns.campaignstep"
            ),
        ),
        migrations.AddField(
            model_name="campaignabdecision",
            name="tenant",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="crm.tenant"),
        ),
        migrations.AddField(
            model_name="campaignanalytics",
            name="campaign",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="analytics", to="campaigns.campaign"
            ),
        ),
        migrations.AddField(
            model_name="campaignanalytics",
            name="step",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="analytics",
                to="campaigns.campaignstep",
            ),
        ),
        migrations.AddField(
            model_name="campaignanalytics",
            name="tenant",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="crm.tenant"),
        ),
        migrations.AddConstraint(
            model_name="campaignabdecision",
            constraint=models.CheckConstraint(
                condition=models.Q(("metric__in", ["", "open", "click", "reply", "goal"])),
                name="campaign_ab_decisions_metric_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignabdecision",
            constraint=models.CheckConstraint(
                condition=models.Q(("reason__in", ["significant", "fallback"])),
                name="campaign_ab_decisions_reason_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignanalytics",
            constraint=models.CheckConstraint(
                condition=models.Q(("period_type__in", ["daily", "weekly", "monthly", "all_time"])),
                name="campaign_analytics_period_type_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignanalytics",
            constraint=models.UniqueConstraint(
                condition=models.Q(("step__isnull", True)),
                fields=("campaign", "snapshot_date", "period_type"),
                name="campaign_analytics_campaign_period_unique",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignanalytics",
            constraint=models.UniqueConstraint(
                fields=("campaign", "snapshot_date", "period_type", "step", "variant"),
                name="campaign_analytics_row_unique",
                nulls_distinct=False,
            ),
        ),
        migrations.AddConstraint(
            model_name="campaignanalytics",
            constraint=models.CheckConstraint(
                condition=models.Q(("variant__isnull", True), ("step__isnull", False), _connector="OR"),
                name="campaign_analytics_variant_of_a_step",
            ),
        ),
        migrations.RunSQL(frozen_function(DEFINITION + AB), reverse_sql=frozen_function(DEFINITION)),
    ]
