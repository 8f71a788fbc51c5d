"""Validate the activity checks of crm 0014: a scan that lets writes go on."""

from django.contrib.postgres.operations import ValidateConstraint
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0014_activity_notices")]

    operations = [
        ValidateConstraint(model_name="activity", name="activities_type_valid"),
        ValidateConstraint(model_name="activity", name="activities_contact_or_project"),
        ValidateConstraint(model_name="activity", name="activities_recipient_only_on_notices"),
    ]
