"""The analytics' and A/B tests' indexes on campaign_step_executions, built without blocking
the engine's writes (a large table): the rows not counted yet, and a step's sends by variant.
Inside an outer transaction (adopt_database, the demo's rehearsal, the tests) they are built
plainly: crm.migration_operations."""

import django.db.models.expressions
from django.db import migrations, models

from crm.migration_operations import AddIndexConcurrentlyOutsideTransactions


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0006_ab_tests_and_analytics"),
    ]

    operations = [
        AddIndexConcurrentlyOutsideTransactions(
            model_name="campaignstepexecution",
            index=models.Index(
                condition=models.Q(
                    (
                        "analytics_counted",
                        django.db.models.expressions.CombinedExpression(
                            django.db.models.expressions.CombinedExpression(
                                django.db.models.expressions.CombinedExpression(
                                    models.Case(
                                        models.When(
                                            models.Q(("status__in", ("completed", "failed", "skipped"))),
                                            then=models.Value(1),
                                        ),
                                        default=models.Value(0),
                                        output_field=models.IntegerField(),
                                    ),
                                    "+",
                                    models.Case(
                                        models.When(models.Q(("opened_at__isnull", False)), then=models.Value(2)),
                                        default=models.Value(0),
                                        output_field=models.IntegerField(),
                                    ),
                                ),
                                "+",
                                models.Case(
                                    models.When(models.Q(("clicked_at__isnull", False)), then=models.Value(4)),
                                    default=models.Value(0),
                                    output_field=models.IntegerField(),
                                ),
                            ),
                            "+",
                            models.Case(
                                models.When(models.Q(("replied_at__isnull", False)), then=models.Value(8)),
                                default=models.Value(0),
                                output_field=models.IntegerField(),
                            ),
                        ),
                    ),
                    _negated=True,
                ),
                fields=["id"],
                name="executions_uncounted_idx",
            ),
        ),
        AddIndexConcurrentlyOutsideTransactions(
            model_name="campaignstepexecution",
            index=models.Index(
                condition=models.Q(("variant", ""), _negated=True),
                fields=["step", "variant"],
                name="executions_variant_idx",
            ),
        ),
    ]
