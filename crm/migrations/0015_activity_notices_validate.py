"""Validate the activity checks of crm 0014 and index the recipients of notices, both without
blocking writes (a scan that lets writes go on; an index built CONCURRENTLY, partial: only
notices have a recipient)."""

from django.contrib.postgres.operations import AddIndexConcurrently, ValidateConstraint
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("crm", "0014_activity_notices")]

    operations = [
        ValidateConstraint(model_name="activity", name="activities_type_valid"),
        ValidateConstraint(model_name="activity", name="activities_contact_or_project"),
        ValidateConstraint(model_name="activity", name="activities_recipient_only_on_notices"),
        AddIndexConcurrently(
            model_name="activity",
            index=models.Index(
                condition=models.Q(("recipient__isnull", False)), fields=["recipient"], name="activities_recipient_idx"
            ),
        ),
    ]
