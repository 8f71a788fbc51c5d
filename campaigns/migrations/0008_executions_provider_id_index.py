"""The providers' webhooks find a campaign message by its provider id (anymail's ESP message id,
the Message-ID, Twilio's sid): an index on the sent rows' provider_message_id, built without
blocking the engine's writes (a large table). Inside an outer transaction (adopt_database, the
demo's rehearsal, the tests) it is built plainly: crm.migration_operations."""

from django.db import migrations, models

from crm.migration_operations import AddIndexConcurrentlyOutsideTransactions


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0007_executions_analytics_indexes"),
    ]

    operations = [
        AddIndexConcurrentlyOutsideTransactions(
            model_name="campaignstepexecution",
            index=models.Index(
                condition=models.Q(("provider_message_id", ""), _negated=True),
                fields=["provider_message_id"],
                name="executions_provider_id_idx",
            ),
        ),
    ]
